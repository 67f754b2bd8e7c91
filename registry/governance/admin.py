from __future__ import annotations

import secrets

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.validators import URLValidator
from django.db.models import Count

from registry.catalog.admin import ReadOnlyAdmin
from registry.catalog.models import Stage
from registry.governance import webhooks
from registry.governance.models import (
    AuditEvent,
    DeliveryAttempt,
    GateKind,
    OutboxEvent,
    PolicyGate,
    StagePolicy,
    Webhook,
    WebhookDelivery,
    WebhookEventType,
)

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

    class Meta:
        model = StagePolicy
        fields = ["model", "approval_required_for", "allow_self_approval", "allow_direct_changes"]


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


# --- Audit ----------------------------------------------------------------------------------------------------------


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "action", "model", "version_number", "actor_name", "from_value", "to_value", "short_comment"]
    list_select_related = ["model"]
    list_filter = ["action", "model", "at"]
    search_fields = ["model__name", "actor_name", "comment"]
    date_hierarchy = "at"

    @admin.display(description="Comment")
    def short_comment(self, obj: AuditEvent) -> str:
        return obj.comment if len(obj.comment) <= 80 else obj.comment[:79] + "…"


# --- Webhooks -------------------------------------------------------------------------------------------------------


class WebhookForm(forms.ModelForm):
    url = forms.URLField(
        max_length=2048,
        assume_scheme="https",
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="http(s) only; private and loopback addresses are refused unless the server allows them.",
    )
    events = forms.MultipleChoiceField(choices=WebhookEventType.choices, widget=forms.CheckboxSelectMultiple)
    secret = forms.CharField(
        max_length=256,
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Signs every delivery. Leave blank to generate one (shown once after saving); on an existing "
        "webhook, leave blank to keep the current secret.",
    )

    class Meta:
        model = Webhook
        fields = ["name", "url", "events", "model", "secret", "active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if not settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS:
            try:
                webhooks.check_target(url)
            except webhooks.TargetRefused as exc:
                raise forms.ValidationError(str(exc)) from None
            except webhooks.TargetUnresolvable:
                pass  # DNS may be down or not yet set up; every delivery checks again
        return url

    def clean_secret(self) -> str:
        secret = self.cleaned_data["secret"]
        if secret:
            return secret
        if self.instance.pk:
            return Webhook.objects.values_list("secret", flat=True).get(pk=self.instance.pk)
        self.generated_secret = secrets.token_urlsafe(32)
        return self.generated_secret


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookForm
    list_display = ["name", "url", "event_list", "model", "active", "created_by", "created_at"]
    list_select_related = ["model", "created_by"]
    list_filter = ["active"]
    search_fields = ["name", "url", "model__name"]
    raw_id_fields = ["model"]
    readonly_fields = ["created_by", "created_at"]

    @admin.display(description="Events")
    def event_list(self, obj: Webhook) -> str:
        return ", ".join(obj.events or [])

    def save_model(self, request, obj: Webhook, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        generated = getattr(form, "generated_secret", None)
        if generated:
            self.message_user(
                request,
                f"Generated secret for {obj.name!r} (shown only now; receivers verify X-Registry-Signature with it): "
                f"{generated}",
                messages.WARNING,
            )


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "type", "model", "created_at", "delivery_count"]
    list_select_related = ["model"]
    list_filter = ["type", "created_at"]
    search_fields = ["model__name"]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(delivery_count=Count("deliveries"))

    @admin.display(description="Deliveries", ordering="delivery_count")
    def delivery_count(self, obj: OutboxEvent) -> int:
        return obj.delivery_count


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ["at", "status_code", "latency_ms", "error", "replay"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "__str__",
        "status",
        "attempts",
        "last_status_code",
        "last_latency_ms",
        "next_attempt_at",
        "delivered_at",
    ]
    list_select_related = ["webhook", "event"]
    list_filter = ["status", "webhook", "event__type"]
    search_fields = ["webhook__name", "last_error"]
    inlines = [DeliveryAttemptInline]
    actions = ["replay_selected"]

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm("governance.change_webhook")

    @admin.action(description="Replay selected deliveries", permissions=["replay"])
    def replay_selected(self, request, queryset) -> None:
        for delivery in queryset.select_related("webhook", "event").order_by("id"):
            attempt = webhooks.replay(delivery)
            if attempt.error:
                self.message_user(request, f"Delivery {delivery.pk}: {attempt.error}", messages.ERROR)
            else:
                self.message_user(
                    request, f"Delivery {delivery.pk}: HTTP {attempt.status_code} in {attempt.latency_ms} ms."
                )
