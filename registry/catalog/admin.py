from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count

from registry.catalog.models import (
    ArtifactFile,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    StageChange,
    StageTransitionRequest,
)
from registry.governance import services as governance


class AliasInline(admin.TabularInline):
    model = ModelAlias
    extra = 0
    fields = ["alias", "version", "updated_at", "updated_by"]
    readonly_fields = ["updated_at", "updated_by"]
    raw_id_fields = ["version"]


@admin.register(RegisteredModel)
class RegisteredModelAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "version_count", "last_version", "updated_at"]
    list_select_related = ["owner"]
    list_filter = ["updated_at"]
    search_fields = ["name", "description"]
    readonly_fields = ["last_version", "created_at", "updated_at"]
    raw_id_fields = ["owner"]
    inlines = [AliasInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(version_count=Count("versions"))

    @admin.display(description="Versions", ordering="version_count")
    def version_count(self, obj: RegisteredModel) -> int:
        return obj.version_count


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "model", "version", "stage", "status", "run", "created_by", "created_at"]
    list_select_related = ["model", "run", "created_by"]
    list_filter = ["stage", "status", "created_at"]
    search_fields = ["model__name", "description", "run__id"]
    raw_id_fields = ["model", "run", "created_by"]
    # Stage moves go through the recorded workflow (services.version_stage_set), never a bare edit.
    readonly_fields = ["model", "version", "stage", "created_at", "updated_at"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        # Versions are numbered by services.version_create; adding one by hand would bypass it.
        return False


@admin.register(ModelAlias)
class ModelAliasAdmin(admin.ModelAdmin):
    list_display = ["__str__", "model", "alias", "version_number", "updated_at", "updated_by"]
    list_select_related = ["model", "version", "updated_by"]
    search_fields = ["alias", "model__name"]
    raw_id_fields = ["model", "version", "updated_by"]

    @admin.display(description="Version", ordering="version__version")
    def version_number(self, obj: ModelAlias) -> int:
        return obj.version.version


@admin.register(StageTransitionRequest)
class StageTransitionRequestAdmin(admin.ModelAdmin):
    list_display = ["version", "from_stage", "to_stage", "status", "requested_by", "created_at", "decided_by"]
    list_select_related = ["version__model", "requested_by", "decided_by"]
    list_filter = ["status", "to_stage", "created_at"]
    search_fields = ["version__model__name", "comment", "decision_comment"]
    raw_id_fields = ["version", "requested_by", "decided_by"]
    readonly_fields = ["evidence", "created_at", "decided_by", "decided_at"]
    actions = ["approve_selected", "reject_selected"]

    @admin.action(description="Approve selected requests")
    def approve_selected(self, request, queryset) -> None:
        self._decide(request, queryset, governance.transition_approve, "approved")

    @admin.action(description="Reject selected requests")
    def reject_selected(self, request, queryset) -> None:
        self._decide(request, queryset, governance.transition_reject, "rejected")

    def _decide(self, request, queryset, decide, done: str) -> None:
        """Decide each request as the signed-in user through the governance rules; one message per request."""
        for transition in queryset.select_related("version__model").order_by("created_at", "id"):
            label = f"{transition.version.model.name} v{transition.version.version} → {transition.to_stage}"
            try:
                decide(request_id=transition.pk, by=request.user)
            except governance.GovernanceError as exc:
                details = "; ".join(f"{d['gate']}: {d['message']}" for d in exc.details if isinstance(d, dict))
                message = f"{label}: {exc.message}" + (f" ({details})" if details else "")
                self.message_user(request, message, messages.ERROR)
            else:
                self.message_user(request, f"{label}: {done}.", messages.SUCCESS)


class ReadOnlyAdmin(admin.ModelAdmin):
    """History: viewable, never added, edited or deleted through the admin."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StageChange)
class StageChangeAdmin(ReadOnlyAdmin):
    list_display = ["changed_at", "version", "from_stage", "to_stage", "kind", "changed_by", "request"]
    list_select_related = ["version__model", "changed_by", "request__version__model"]
    list_filter = ["to_stage", "kind", "changed_at"]
    search_fields = ["model__name", "comment"]
    date_hierarchy = "changed_at"


@admin.register(ArtifactFile)
class ArtifactFileAdmin(admin.ModelAdmin):
    list_display = ["path", "owner_label", "size", "sha256_short", "created_at"]
    list_select_related = ["run", "version__model"]
    search_fields = ["path", "sha256", "run__id", "version__model__name"]
    raw_id_fields = ["run", "version"]
    readonly_fields = ["storage_key", "size", "sha256", "content_type", "created_at"]

    def has_add_permission(self, request) -> bool:
        # Files are uploaded through the API so that size and sha256 are computed from the bytes.
        return False

    @admin.display(description="Owner")
    def owner_label(self, obj: ArtifactFile) -> str:
        return f"run {obj.run_id}" if obj.run_id else f"version {obj.version}"

    @admin.display(description="sha256", ordering="sha256")
    def sha256_short(self, obj: ArtifactFile) -> str:
        return obj.sha256[:12]
