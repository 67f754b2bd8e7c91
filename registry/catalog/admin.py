"""The catalog in the admin: models, versions, aliases, grants and files, each saved through the services."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Count

from registry.admin_base import ServiceAdmin
from registry.catalog import artifact_files, services
from registry.catalog.models import ArtifactFile, ModelAlias, ModelGrant, ModelVersion, RegisteredModel
from registry.governance import services as governance
from registry.lib.errors import Invalid


class ModelGrantInline(admin.TabularInline):
    """Shown on the model's page; grants are added and changed on their own page (through the services)."""

    model = ModelGrant
    extra = 0
    fields = ["user", "group", "level", "request_stages", "approve_stages", "granted_by", "granted_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ServiceAdmin):
    list_display = ["name", "owner", "default_level", "version_count", "last_version", "updated_at"]
    list_select_related = ["owner"]
    list_filter = ["updated_at"]
    search_fields = ["name", "description"]
    readonly_fields = ["last_version", "created_at", "updated_at"]
    raw_id_fields = ["owner"]
    inlines = [ModelGrantInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(version_count=Count("versions"))

    @admin.display(description="Versions", ordering="version_count")
    def version_count(self, obj: RegisteredModel) -> int:
        return obj.version_count

    def save_model(self, request, obj: RegisteredModel, form, change: bool) -> None:
        by = request.user
        if not change:
            created = services.model_create(
                name=obj.name, by=by, description=obj.description, tags=obj.tags, default_level=obj.default_level
            )
            if obj.owner_id and obj.owner_id != by.pk:
                services.model_owner_set(model=created, by=by, owner=obj.owner)
            obj.pk = created.pk
            return
        stored = RegisteredModel.objects.get(pk=obj.pk)
        changed = set(form.changed_data)
        if "name" in changed:
            services.model_rename(model=stored, new_name=obj.name, by=by)
        if changed & {"description", "tags"}:
            services.model_update(
                model=stored,
                by=by,
                description=obj.description if "description" in changed else None,
                tags=obj.tags if "tags" in changed else None,
            )
        if "default_level" in changed:
            services.model_default_level_set(model=stored, by=by, level=obj.default_level)
        if "owner" in changed:
            if obj.owner is None:
                raise Invalid("A model keeps an owner; hand it over to another user instead.")
            services.model_owner_set(model=stored, by=by, owner=obj.owner)

    def delete_model(self, request, obj: RegisteredModel) -> None:
        services.model_delete(model=obj, by=request.user)


@admin.register(ModelGrant)
class ModelGrantAdmin(ServiceAdmin):
    list_display = ["model", "user", "group", "level", "granted_by", "granted_at"]
    list_select_related = ["model", "user", "group", "granted_by"]
    list_filter = ["level"]
    search_fields = ["model__name", "user__username", "group__name"]
    raw_id_fields = ["model", "user"]
    fields = ["model", "user", "group", "level", "request_stages", "approve_stages"]

    def save_model(self, request, obj: ModelGrant, form, change: bool) -> None:
        grant = services.model_grant_set(
            model=obj.model,
            by=request.user,
            user=obj.user,
            group=obj.group,
            level=obj.level,
            request_stages=obj.request_stages,
            approve_stages=obj.approve_stages,
        )
        obj.pk = grant.pk

    def delete_model(self, request, obj: ModelGrant) -> None:
        services.model_grant_revoke(model=obj.model, by=request.user, user=obj.user, group=obj.group)


@admin.register(ModelVersion)
class ModelVersionAdmin(ServiceAdmin):
    list_display = ["__str__", "model", "version", "stage", "status", "run", "created_by", "created_at"]
    list_select_related = ["model", "run", "created_by"]
    list_filter = ["stage", "status", "created_at"]
    search_fields = ["model__name", "description", "run__id"]
    # Stages move through governance (requests, approvals), never a bare edit; versions are registered by the API.
    fields = ["model", "version", "stage", "status", "source", "run", "created_by", "description", "tags"]
    readonly_fields = ["model", "version", "stage", "status", "source", "run", "created_by", "created_at"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        # Versions are numbered by services.version_create; adding one by hand would bypass it.
        return False

    def save_model(self, request, obj: ModelVersion, form, change: bool) -> None:
        changed = set(form.changed_data)
        services.version_update(
            version=ModelVersion.objects.select_related("model").get(pk=obj.pk),
            by=request.user,
            description=obj.description if "description" in changed else None,
            tags=obj.tags if "tags" in changed else None,
        )

    def delete_model(self, request, obj: ModelVersion) -> None:
        services.version_delete(version=obj, by=request.user)


class AliasForm(forms.ModelForm):
    """An alias names its version by number (v6), as everywhere else, not by the version's database id."""

    version_number = forms.IntegerField(min_value=1, label="Version", help_text="The version number, e.g. 6.")

    class Meta:
        model = ModelAlias
        fields = ["model", "alias"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["version_number"].initial = self.instance.version.version
            self.fields["model"].disabled = True
            self.fields["alias"].disabled = True

    def clean(self):
        cleaned = super().clean()
        model, number = cleaned.get("model"), cleaned.get("version_number")
        if model is not None and number is not None:
            version = ModelVersion.objects.filter(model=model, version=number).first()
            if version is None:
                self.add_error(
                    "version_number", f"{model.name} has no version {number} (it has 1 to {model.last_version})."
                )
            else:
                self.instance.version = version
        return cleaned

    def validate_unique(self):
        pass  # an existing alias is moved, as the services do


@admin.register(ModelAlias)
class ModelAliasAdmin(ServiceAdmin):
    """Aliases move through governance: a protected one (champion, production by default) moves only for someone
    who may approve Production; otherwise the save opens a request and says so."""

    form = AliasForm
    list_display = ["__str__", "model", "alias", "version_number", "updated_at", "updated_by"]
    list_select_related = ["model", "version", "updated_by"]
    search_fields = ["alias", "model__name"]
    raw_id_fields = ["model"]

    @admin.display(description="Version", ordering="version__version")
    def version_number(self, obj: ModelAlias) -> int:
        return obj.version.version

    def save_model(self, request, obj: ModelAlias, form, change: bool) -> None:
        governance.alias_set(model=obj.model, alias=obj.alias, version=obj.version, by=request.user)
        obj.pk = ModelAlias.objects.get(model=obj.model, alias=obj.alias).pk

    def delete_model(self, request, obj: ModelAlias) -> None:
        governance.alias_delete(model=obj.model, alias=obj.alias, by=request.user)


@admin.register(ArtifactFile)
class ArtifactFileAdmin(ServiceAdmin):
    list_display = ["path", "owner_label", "size", "sha256_short", "created_at"]
    list_select_related = ["run", "version__model"]
    search_fields = ["path", "sha256", "run__id", "version__model__name"]
    readonly_fields = ["run", "version", "path", "storage_key", "size", "sha256", "content_type", "created_at"]

    def has_add_permission(self, request) -> bool:
        # Files are uploaded through the API so that size and sha256 are computed from the bytes.
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def delete_model(self, request, obj: ArtifactFile) -> None:
        artifact_files.artifact_delete(artifact=obj, by=request.user)

    @admin.display(description="Owner")
    def owner_label(self, obj: ArtifactFile) -> str:
        return f"run {obj.run_id}" if obj.run_id else f"version {obj.version}"

    @admin.display(description="sha256", ordering="sha256")
    def sha256_short(self, obj: ArtifactFile) -> str:
        return obj.sha256[:12]
