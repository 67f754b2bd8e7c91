"""Governance in the admin: policies and their gates (changes recorded in the audit log), transition requests
(decided through the services) and the stage history (read-only)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count

from registry.admin_base import ReadOnlyAdmin
from registry.catalog.models import Stage
from registry.governance import services as governance
from registry.governance.models import GateKind, PolicyGate, StageChange, StagePolicy, StageTransitionRequest
from registry.lib.errors import DomainError

# --- Policies -------------------------------------------------------------------------------------------------------


class PolicyGateForm(forms.ModelForm):
    """Says which field a gate is missing, instead of the database's check constraint failing on save."""

    class Meta:
        model = PolicyGate
        fields = ["stage", "kind", "metric", "operator", "threshold", "context"]

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind in (GateKind.METRIC, GateKind.METRIC_VS_CURRENT):
            what = "the margin over the current holder" if kind == GateKind.METRIC_VS_CURRENT else "the bound"
            if not cleaned.get("metric"):
                self.add_error("metric", "Metric gates need the metric key, e.g. f1.")
            if not cleaned.get("operator"):
                self.add_error("operator", "Metric gates need a comparison operator.")
            if cleaned.get("threshold") is None:
                self.add_error("threshold", f"Metric gates need a threshold: {what}.")
        elif kind == GateKind.DATASET and not cleaned.get("context"):
            self.add_error("context", "Dataset gates need the run input context to look for, e.g. evaluation.")
        return cleaned


class PolicyGateInline(admin.TabularInline):
    model = PolicyGate
    form = PolicyGateForm
    extra = 0


class StagePolicyForm(forms.ModelForm):
    approval_required_for = forms.MultipleChoiceField(
        choices=Stage.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Target stages that need an approved request.",
    )

    protected_aliases = forms.CharField(
        required=False,
        help_text="Comma-separated, e.g. champion, production: moved only as a Production move is.",
    )

    class Meta:
        model = StagePolicy
        fields = ["model", "approval_required_for", "allow_self_approval", "allow_direct_changes", "protected_aliases"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["protected_aliases"] = ", ".join(self.instance.protected_aliases or [])
        else:
            self.initial["protected_aliases"] = "champion, production"

    def clean_protected_aliases(self) -> list[str]:
        raw = self.cleaned_data.get("protected_aliases") or ""
        return sorted({name.strip() for name in raw.split(",") if name.strip()})


@admin.register(StagePolicy)
class StagePolicyAdmin(admin.ModelAdmin):
    form = StagePolicyForm
    list_display = ["__str__", "approval_stages", "gate_count", "allow_self_approval", "allow_direct_changes"]
    list_select_related = ["model"]
    search_fields = ["model__name"]
    raw_id_fields = ["model"]
    readonly_fields = ["updated_at"]
    inlines = [PolicyGateInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(gate_count=Count("gates"))

    @admin.display(description="Approval required for")
    def approval_stages(self, obj: StagePolicy) -> str:
        return ", ".join(obj.approval_required_for or []) or "—"

    @admin.display(description="Gates", ordering="gate_count")
    def gate_count(self, obj: StagePolicy) -> int:
        return obj.gate_count

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        governance.policy_record(policy=form.instance, by=request.user, created=not change)

    def delete_model(self, request, obj: StagePolicy) -> None:
        governance.policy_record(policy=obj, by=request.user, deleted=True)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        """The list's "delete selected" action: each policy through delete_model, so each deletion is recorded."""
        for policy in queryset:
            self.delete_model(request, policy)


# --- Requests and stage history -------------------------------------------------------------------------------------


@admin.register(StageTransitionRequest)
class StageTransitionRequestAdmin(admin.ModelAdmin):
    list_display = ["version", "action", "alias", "from_stage", "to_stage", "status", "requested_by", "created_at"]
    list_select_related = ["version__model", "requested_by", "decided_by"]
    list_filter = ["status", "action", "to_stage", "created_at"]
    search_fields = ["version__model__name", "alias", "comment", "decision_comment"]
    actions = ["approve_selected", "reject_selected"]

    def has_add_permission(self, request) -> bool:
        return False  # requests are made on the version page, through the API or the CLI

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # decided with the actions below, through the governance rules

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Approve selected requests")
    def approve_selected(self, request, queryset) -> None:
        self._decide(request, queryset, governance.transition_approve, "approved")

    @admin.action(description="Reject selected requests")
    def reject_selected(self, request, queryset) -> None:
        self._decide(request, queryset, governance.transition_reject, "rejected")

    def _decide(self, request, queryset, decide, done: str) -> None:
        """Decide each request as the signed-in user through the governance rules; one message per request."""
        for transition in queryset.select_related("version__model").order_by("created_at", "id"):
            label = f"{transition.version.model.name} v{transition.version.version}: {transition.describe()}"
            try:
                decide(request_id=transition.pk, by=request.user)
            except DomainError as exc:
                details = "; ".join(
                    f"{d['gate']}: {d['message']}" for d in exc.details if isinstance(d, dict) and "gate" in d
                )
                message = f"{label}: {exc.message}" + (f" ({details})" if details else "")
                self.message_user(request, message, messages.ERROR)
            else:
                self.message_user(request, f"{label}: {done}.", messages.SUCCESS)


@admin.register(StageChange)
class StageChangeAdmin(ReadOnlyAdmin):
    list_display = ["changed_at", "version", "from_stage", "to_stage", "kind", "changed_by", "request"]
    list_select_related = ["version__model", "changed_by", "request__version__model"]
    list_filter = ["to_stage", "kind", "changed_at"]
    search_fields = ["model__name", "comment"]
    date_hierarchy = "changed_at"
