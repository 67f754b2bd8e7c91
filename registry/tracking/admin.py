from __future__ import annotations

from django.contrib import admin
from django.db.models import Count

from registry.tracking.models import Dataset, Experiment, MetricPoint, MetricSeries, Param, Run, RunInput, RunStep


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["name", "run_count", "created_at", "updated_at", "deleted_at"]
    list_filter = ["created_at", ("deleted_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "description"]
    readonly_fields = ["created_at", "updated_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(run_count=Count("runs"))

    @admin.display(description="Runs", ordering="run_count")
    def run_count(self, obj: Experiment) -> int:
        return obj.run_count


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
class RunAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "experiment", "status", "user", "start_time", "end_time", "git_commit_short"]
    list_select_related = ["experiment", "user"]
    list_filter = ["status", "experiment", "start_time"]
    search_fields = ["id", "name", "git_commit", "git_branch", "image"]
    date_hierarchy = "start_time"
    raw_id_fields = ["experiment", "user"]
    readonly_fields = ["id"]
    inlines = [ParamInline, MetricSeriesInline, RunStepInline, RunInputInline]
    fieldsets = [
        (None, {"fields": ["id", "experiment", "name", "status", "user", "start_time", "end_time", "deleted_at"]}),
        ("Code", {"fields": ["git_remote", "git_commit", "git_branch", "git_dirty", "entry_point"]}),
        ("Environment", {"fields": ["python_version", "platform", "packages", "image"]}),
        ("Tags", {"fields": ["tags"]}),
    ]

    @admin.display(description="Commit", ordering="git_commit")
    def git_commit_short(self, obj: Run) -> str:
        return obj.git_commit[:10]


@admin.register(Param)
class ParamAdmin(admin.ModelAdmin):
    list_display = ["key", "value_short", "run"]
    list_select_related = ["run"]
    search_fields = ["key", "run__id", "run__name"]
    raw_id_fields = ["run"]

    def get_readonly_fields(self, request, obj=None):
        # Params never change once logged.
        return ["run", "key", "value"] if obj else []

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
    readonly_fields = ["created_at"]

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
    list_display = ["run", "dataset", "context"]
    list_select_related = ["run", "dataset"]
    list_filter = ["context"]
    search_fields = ["run__id", "run__name", "dataset__name"]
    raw_id_fields = ["run", "dataset"]
