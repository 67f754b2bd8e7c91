"""Tracking data in the admin. What runs log is their history: shown, never edited here. Experiments and their
grants are changed through the services (audited); a run is deleted or restored through its service too."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count

from registry.admin_base import ServiceAdmin
from registry.lib.errors import Invalid
from registry.tracking import services
from registry.tracking.models import (
    Dataset,
    Experiment,
    ExperimentGrant,
    MetricPoint,
    MetricSeries,
    Param,
    Run,
    RunInput,
    RunStep,
)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ExperimentGrantInline(ReadOnlyInline):
    model = ExperimentGrant
    fields = ["user", "group", "level", "granted_by", "granted_at"]
    show_change_link = True


@admin.register(Experiment)
class ExperimentAdmin(ServiceAdmin):
    list_display = ["name", "owner", "default_level", "run_count", "created_at", "updated_at", "deleted_at"]
    list_select_related = ["owner"]
    list_filter = ["created_at", ("deleted_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "description"]
    fields = ["name", "description", "tags", "owner", "default_level", "created_at", "updated_at", "deleted_at"]
    readonly_fields = ["created_at", "updated_at", "deleted_at"]
    raw_id_fields = ["owner"]
    inlines = [ExperimentGrantInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(run_count=Count("runs"))

    @admin.display(description="Runs", ordering="run_count")
    def run_count(self, obj: Experiment) -> int:
        return obj.run_count

    def save_model(self, request, obj: Experiment, form, change: bool) -> None:
        by = request.user
        if not change:
            created = services.experiment_create(
                name=obj.name, by=by, description=obj.description, tags=obj.tags, default_level=obj.default_level
            )
            if obj.owner_id and obj.owner_id != by.pk:
                services.experiment_owner_set(experiment=created, by=by, owner=obj.owner)
            obj.pk = created.pk
            return
        stored = Experiment.objects.get(pk=obj.pk)
        changed = set(form.changed_data)
        if "name" in changed:
            services.experiment_rename(experiment=stored, name=obj.name, by=by)
        if changed & {"description", "tags"}:
            services.experiment_update(
                experiment=stored,
                by=by,
                description=obj.description if "description" in changed else None,
                tags=obj.tags if "tags" in changed else None,
            )
        if "default_level" in changed:
            services.experiment_default_level_set(experiment=stored, by=by, level=obj.default_level)
        if "owner" in changed:
            if obj.owner is None:
                raise Invalid("An experiment keeps an owner; hand it over to another user instead.")
            services.experiment_owner_set(experiment=stored, by=by, owner=obj.owner)

    def delete_model(self, request, obj: Experiment) -> None:
        # Experiments are deleted as MLflow deletes them: hidden with their runs, restorable.
        services.experiment_set_deleted(experiment=obj, deleted=True, by=request.user)


@admin.register(ExperimentGrant)
class ExperimentGrantAdmin(ServiceAdmin):
    list_display = ["experiment", "user", "group", "level", "granted_by", "granted_at"]
    list_select_related = ["experiment", "user", "group", "granted_by"]
    list_filter = ["level"]
    search_fields = ["experiment__name", "user__username", "group__name"]
    raw_id_fields = ["experiment", "user"]
    fields = ["experiment", "user", "group", "level"]

    def save_model(self, request, obj: ExperimentGrant, form, change: bool) -> None:
        grant = services.experiment_grant_set(
            experiment=obj.experiment, by=request.user, user=obj.user, group=obj.group, level=obj.level
        )
        obj.pk = grant.pk

    def delete_model(self, request, obj: ExperimentGrant) -> None:
        services.experiment_grant_revoke(experiment=obj.experiment, by=request.user, user=obj.user, group=obj.group)


class ParamInline(ReadOnlyInline):
    model = Param
    fields = ["key", "value"]


class MetricSeriesInline(ReadOnlyInline):
    model = MetricSeries
    fields = ["key", "last_value", "last_step", "min_value", "max_value", "count"]


class RunStepInline(ReadOnlyInline):
    model = RunStep
    fields = ["position", "name", "status", "started_at", "ended_at"]


class RunInputInline(ReadOnlyInline):
    model = RunInput
    fields = ["dataset", "context"]
    autocomplete_fields = ["dataset"]


@admin.register(Run)
class RunAdmin(ServiceAdmin):
    """A run is what its training job logged: read-only here; deleting hides it (restorable), as the APIs do."""

    list_display = ["id", "name", "experiment", "status", "user", "start_time", "end_time", "git_commit_short"]
    list_select_related = ["experiment", "user"]
    list_filter = ["status", "experiment", "start_time"]
    search_fields = ["id", "name", "git_commit", "git_branch", "image"]
    date_hierarchy = "start_time"
    inlines = [ParamInline, MetricSeriesInline, RunStepInline, RunInputInline]
    fieldsets = [
        (None, {"fields": ["id", "experiment", "name", "status", "user", "start_time", "end_time", "deleted_at"]}),
        ("Code", {"fields": ["git_remote", "git_commit", "git_branch", "git_dirty", "entry_point"]}),
        ("Environment", {"fields": ["python_version", "platform", "packages", "image"]}),
        ("Tags", {"fields": ["tags"]}),
    ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Run._meta.concrete_fields]

    def delete_model(self, request, obj: Run) -> None:
        services.run_set_deleted(run=obj, deleted=True, by=request.user)

    @admin.display(description="Commit", ordering="git_commit")
    def git_commit_short(self, obj: Run) -> str:
        return obj.git_commit[:10]


@admin.register(Param)
class ParamAdmin(admin.ModelAdmin):
    """Params are logged by runs and never change."""

    list_display = ["key", "value_short", "run"]
    list_select_related = ["run"]
    search_fields = ["key", "run__id", "run__name"]
    readonly_fields = ["run", "key", "value"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Value")
    def value_short(self, obj: Param) -> str:
        return obj.value if len(obj.value) <= 80 else obj.value[:77] + "..."


@admin.register(MetricSeries)
class MetricSeriesAdmin(admin.ModelAdmin):
    """Summaries are derived from history, so they are read-only here."""

    list_display = ["key", "run", "last_value", "last_step", "min_value", "max_value", "count"]
    list_select_related = ["run"]
    search_fields = ["key", "run__id", "run__name"]
    readonly_fields = [
        "run",
        "key",
        "last_value",
        "last_step",
        "last_timestamp",
        "min_value",
        "max_value",
        "count",
    ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(MetricPoint)
class MetricPointAdmin(admin.ModelAdmin):
    """Metric history is append-only."""

    list_display = ["series_key", "series_run", "step", "timestamp", "value"]
    list_select_related = ["series__run"]
    search_fields = ["series__key", "series__run__id"]
    readonly_fields = ["series", "step", "timestamp", "value"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Key", ordering="series__key")
    def series_key(self, obj: MetricPoint) -> str:
        return obj.series.key

    @admin.display(description="Run")
    def series_run(self, obj: MetricPoint) -> Run:
        return obj.series.run


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "digest_short", "rows", "source_uri", "used_by", "created_at"]
    list_filter = ["source_type", "created_at"]
    search_fields = ["name", "digest", "source_uri"]

    readonly_fields = ["name", "digest", "source_uri", "source_type", "schema", "profile", "created_by", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False  # datasets are registered by runs, with the digest of their content

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(used_by=Count("run_inputs__run", distinct=True))

    @admin.display(description="Digest", ordering="digest")
    def digest_short(self, obj: Dataset) -> str:
        return obj.digest[:12]

    @admin.display(description="Rows")
    def rows(self, obj: Dataset):
        return obj.num_rows

    @admin.display(description="Runs", ordering="used_by")
    def used_by(self, obj: Dataset) -> int:
        return obj.used_by


@admin.register(RunInput)
class RunInputAdmin(admin.ModelAdmin):
    """Which datasets runs used: logged by the runs, read-only here."""

    list_display = ["run", "dataset", "context"]
    list_select_related = ["run", "dataset"]
    list_filter = ["context"]
    search_fields = ["run__id", "run__name", "dataset__name"]
    readonly_fields = ["run", "dataset", "context"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
