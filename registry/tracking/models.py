"""Experiments, runs (builds) and what they log: params, metrics, steps, datasets."""

from __future__ import annotations

import functools
import math
import uuid
from collections.abc import Iterable
from itertools import groupby
from operator import itemgetter
from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, models
from django.db.models import Count, Exists, F, FilteredRelation, OuterRef, Prefetch, Q, Subquery
from django.db.models.functions import Coalesce, Length, Lower
from django.db.models.lookups import LessThanOrEqual
from django.utils import timezone

from registry import rawsql
from registry.accounts.access import DEFAULT_LEVEL_CHOICES, AccessQuerySet, Grant, best_grant_sql, level_from
from registry.lib.access import Level
from registry.lib.names import EXPERIMENT_NAME_MAX, KEY_MAX, NameError_, check_experiment_name

PARAM_VALUE_MAX = 6000


def new_run_id() -> str:
    return uuid.uuid4().hex


class NaNFloatField(models.FloatField):
    """A float column that keeps NaN on every database.

    SQLite stores NaN as NULL, so NaN is *always* stored as NULL (on PostgreSQL too) and read back as NaN. The
    column is therefore nullable in the schema but never None in Python. Infinities are stored natively on both.
    Aggregates such as MIN and MAX skip the NULLs, which is what a summary of a metric wants.
    """

    def __init__(self, *args, **kwargs):
        kwargs["null"] = True
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("null", None)
        return name, path, args, kwargs

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is not None and math.isnan(value):
            return None
        return value

    def from_db_value(self, value, expression, connection):
        return math.nan if value is None else float(value)

    def to_python(self, value):
        if value is None:
            return math.nan
        return super().to_python(value)


def validate_experiment_name(value: str) -> None:
    try:
        check_experiment_name(value)
    except NameError_ as exc:
        raise ValidationError(str(exc)) from None


class ExperimentQuerySet(AccessQuerySet):
    def active(self) -> ExperimentQuerySet:
        return self.filter(deleted_at__isnull=True)

    def named_ignoring_case(self, name: str) -> ExperimentQuerySet:
        """The experiment whose name is `name` ignoring case, by the expression the unique index holds."""
        return self.alias(_name_folded=Lower("name")).filter(_name_folded=Lower(models.Value(name)))

    def search(self, text: str) -> ExperimentQuerySet:
        text = text.strip()
        return self.filter(Q(name__icontains=text) | Q(description__icontains=text)) if text else self

    def with_run_stats(self) -> ExperimentQuerySet:
        """Annotate `run_count` and `last_run_at` over active runs, each read from the (experiment, start) index."""
        runs = Run.objects.active().filter(experiment=OuterRef("pk"))
        return self.annotate(
            run_count=Coalesce(Subquery(runs.order_by().values("experiment").annotate(n=Count("*")).values("n")), 0),
            last_run_at=Subquery(runs.order_by("-start_time").values("start_time")[:1]),
        )


class Experiment(models.Model):
    DEFAULT_NAME = "Default"

    name = models.CharField(max_length=EXPERIMENT_NAME_MAX, unique=True, validators=[validate_experiment_name])
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_experiments"
    )
    default_level = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        choices=DEFAULT_LEVEL_CHOICES,
        help_text="The level of every signed-in user without a grant; empty for the registry's default "
        "(REGISTRY_DEFAULT_PERMISSION). Edit lets everyone log runs here (the Default experiment has it).",
    )
    tags = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = ExperimentQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="experiment_name_not_empty"),
            # Unique ignoring case, as model names are.
            models.UniqueConstraint(
                Lower("name"),
                name="experiment_name_unique_ignoring_case",
                violation_error_message="An experiment with this name in other letter case exists; names are "
                "unique ignoring case. Use that experiment or choose another name.",
            ),
            models.CheckConstraint(
                condition=Q(default_level__isnull=True) | Q(default_level__in=[0, 1, 2]),
                name="experiment_default_level_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_default(self) -> bool:
        """The Default experiment keeps its name and is never deleted: runs logged without an experiment land there."""
        return self.name == self.DEFAULT_NAME

    @classmethod
    def default(cls) -> Experiment:
        """The experiment runs land in when none is named: every signed-in user may log runs there (EDIT), unless an
        administrator changes its level."""
        experiment, _ = cls.objects.get_or_create(name=cls.DEFAULT_NAME, defaults={"default_level": Level.EDIT})
        return experiment


class ExperimentGrant(Grant):
    """A level on one experiment (and so its runs, their datasets and files) for a user or a group."""

    object_field = "experiment"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="grants")

    class Meta(Grant.Meta):
        ordering = ["experiment", "-level", "id"]
        constraints = [
            *Grant.Meta.constraints,
            models.UniqueConstraint(fields=["experiment", "user"], name="experiment_grant_user_unique"),
            models.UniqueConstraint(fields=["experiment", "group"], name="experiment_grant_group_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment}: {self.grantee} {self.level_name}"


# Comparison operators a metric filter may use, as ORM lookups; "!=" is the negation of "=".
METRIC_LOOKUPS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "=": "exact", "!=": "exact"}


def build_prefetches(prefix: str = "") -> list[Prefetch]:
    """What a build page shows of a run, one query each; `prefix` reaches the run through a relation ("run__")."""
    return [
        Prefetch(f"{prefix}params", queryset=Param.objects.only("id", "run_id", "key", "value")),
        Prefetch(f"{prefix}metrics", queryset=MetricSeries.objects.all()),
        Prefetch(
            f"{prefix}inputs",
            queryset=RunInput.objects.select_related("dataset").order_by("context", "dataset__name"),
        ),
        Prefetch(f"{prefix}steps", queryset=RunStep.objects.all()),
    ]


class RunQuerySet(models.QuerySet):
    def active(self) -> RunQuerySet:
        return self.filter(deleted_at__isnull=True)

    def get_with_access(self, run_id: str, user) -> Run | None:
        """The run (its installed packages left unread) with `user`'s level on its experiment cached on it (see
        tracking.access.run_level), in one hand-written statement: every logging call starts here."""
        columns, sql = _run_access_sql()
        if user.is_superuser:
            grant_sql, grant_params = "NULL", []
        else:
            grant_sql, grant_params = best_grant_sql(
                rawsql.table(ExperimentGrant), rawsql.column(ExperimentGrant, "experiment"), 'e."id"', user
            )
        connection = rawsql.connection_for(Run)
        row = rawsql.fetchone(connection, sql.format(best_grant=grant_sql), [*grant_params, run_id])
        if row is None:
            return None
        run = columns.load(row[:-3], connection)
        owner_id, default_level, best_grant = row[-3:]
        level = level_from(user, owner_id=owner_id, default_level=default_level, best_grant=best_grant)
        run.__dict__["_level_cache"] = {user.pk: level}
        return run

    def readable_by(self, user) -> RunQuerySet:
        """Runs of the experiments `user` may read."""
        if user is not None and user.is_authenticated and user.is_superuser:
            return self
        return self.filter(experiment__in=Experiment.objects.readable_by(user).values("pk"))

    def prefetch_build(self) -> RunQuerySet:
        return self.prefetch_related(*build_prefetches())

    def with_metric_value(self, key: str) -> RunQuerySet:
        """Annotate `metric_value`: the last value of metric `key` (NaN when the run never logged it).

        A LEFT JOIN on the (run, key) summary rather than a subquery per run: ordering a large experiment by a
        metric then costs one hash join and a top-N sort instead of one lookup per run.
        """
        return self.annotate(
            _metric_series=FilteredRelation("metrics", condition=Q(metrics__key=key)),
            metric_value=F("_metric_series__last_value"),
        )

    def metric_matches(self, key: str, operator: str, value: float) -> RunQuerySet:
        """Runs whose metric `key` last value compares to `value` by `operator` (one of METRIC_LOOKUPS)."""
        condition = Q(**{f"last_value__{METRIC_LOOKUPS[operator]}": value})
        if operator == "!=":
            condition = ~condition
        return self.filter(Exists(MetricSeries.objects.filter(condition, run=OuterRef("pk"), key=key)))


@functools.cache
def _run_access_sql() -> tuple[rawsql.Columns, str]:
    columns = rawsql.Columns(Run, *(f.name for f in Run._meta.concrete_fields if f.name not in Run.HEAVY_FIELDS))
    e = rawsql.column
    sql = (
        f"SELECT {columns.select('r')}, e.{e(Experiment, 'owner')}, e.{e(Experiment, 'default_level')}, {{best_grant}}"
        f" FROM {rawsql.table(Run)} r JOIN {rawsql.table(Experiment)} e"
        f" ON e.{rawsql.quote('id')} = r.{e(Run, 'experiment')} WHERE r.{rawsql.quote('id')} = %s"
    )
    return columns, sql


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SCHEDULED = "scheduled", "Scheduled"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"
    KILLED = "killed", "Killed"


class Run(models.Model):
    """One training execution: what the dashboard calls a build."""

    Status = RunStatus
    # Read by the run, version and compare pages; left unread by the lookups every logging call makes.
    HEAVY_FIELDS = ("packages",)

    id = models.CharField(primary_key=True, max_length=32, default=new_run_id, editable=False)
    experiment = models.ForeignKey(Experiment, on_delete=models.PROTECT, related_name="runs")
    name = models.CharField(max_length=256, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    start_time = models.DateTimeField(default=timezone.now, db_index=True)
    end_time = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    # Code
    git_remote = models.CharField(max_length=1024, blank=True)
    git_commit = models.CharField(max_length=64, blank=True)
    git_branch = models.CharField(max_length=256, blank=True)
    git_dirty = models.BooleanField(null=True, blank=True)
    entry_point = models.CharField(max_length=1024, blank=True)

    # Environment
    python_version = models.CharField(max_length=64, blank=True)
    platform = models.CharField(max_length=256, blank=True)
    packages = models.JSONField(default=dict, blank=True, help_text="Installed packages: {name: version}.")

    # Container image reference, e.g. registry.example.com/team/train@sha256:...
    image = models.CharField(max_length=1024, blank=True)

    tags = models.JSONField(default=dict, blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-start_time"]
        indexes = [models.Index(fields=["experiment", "-start_time"], name="run_experiment_start")]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=RunStatus.values), name="run_status_valid"),
            models.CheckConstraint(condition=Q(id__regex=r"^[0-9a-f]{32}$"), name="run_id_32_hex"),
            models.CheckConstraint(
                condition=Q(end_time__isnull=True) | Q(end_time__gte=models.F("start_time")),
                name="run_end_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.id

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def package_list(self) -> list[tuple[str, str]]:
        packages = self.packages if isinstance(self.packages, dict) else {}
        return sorted(((str(k), str(v)) for k, v in packages.items()), key=lambda item: item[0].lower())

    @property
    def has_code(self) -> bool:
        return bool(self.git_remote or self.git_commit or self.git_branch or self.entry_point)

    @property
    def is_terminal(self) -> bool:
        return self.status in (self.Status.FINISHED, self.Status.FAILED, self.Status.KILLED)

    @property
    def duration(self):
        return (self.end_time - self.start_time) if self.end_time else None


class StepStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class RunStep(models.Model):
    """An ordered pipeline step that a run reported (fetch data, train, evaluate, ...)."""

    Status = StepStatus

    # The run foreign keys below are indexed by the unique constraints that start with them.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps", db_index=False)
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=256)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    log_excerpt = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="run_step_position_unique"),
            models.CheckConstraint(condition=Q(status__in=StepStatus.values), name="run_step_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.name}"


class KeyedQuerySet(models.QuerySet):
    """Params and metric summaries: rows keyed by (run, key)."""

    def key_counts(self, runs: models.QuerySet) -> list[tuple[str, int]]:
        """(key, number of runs) among `runs` (a queryset of run ids), most common first, in one query."""
        rows = self.filter(run__in=runs).order_by().values("key").annotate(n=Count("*")).order_by("-n", "key")
        return list(rows.values_list("key", "n"))

    def values_by_run(self, run_ids: Iterable[str], keys: Iterable[str], field: str) -> dict[tuple[str, str], object]:
        """{(run id, key): field value} for those runs and keys, in one query."""
        run_ids, keys = list(run_ids), list(keys)
        if not run_ids or not keys:
            return {}
        rows = self.filter(run_id__in=run_ids, key__in=keys).order_by().values_list("run_id", "key", field)
        return {(run_id, key): value for run_id, key, value in rows}


class BatchSummary(NamedTuple):
    """What one batch logged for one metric key: its point count, smallest and largest finite value (None when it
    logged only NaN), and its latest point (highest (step, timestamp), the later one of equals)."""

    key: str
    count: int
    min_value: float | None
    max_value: float | None
    last_step: int
    last_timestamp: int
    last_value: float | None


class MetricSeriesQuerySet(KeyedQuerySet):
    def merge_batch(self, run_id: str, batch: list[BatchSummary]) -> dict[str, int]:
        """Fold each key's BatchSummary into the run's summary row for it, creating the rows that are missing, and
        return {key: series id}: one upsert (INSERT ... ON CONFLICT DO UPDATE ... RETURNING) per thousand keys.

        The database merges: min and max skip NULL (NaN), the latest point is replaced by a later (step, timestamp)
        or an equal one, counts add up. The rows stay locked until the transaction ends, so concurrent batches of
        one metric queue here; keys go in sorted order, so two batches never each hold a row the other waits for.
        Hand-written (see registry.rawsql): it replaces three statements a batch (create the missing rows, lock and
        read them, write the summaries back) on the ingestion path.
        """
        connection = rawsql.connection_for(MetricSeries, write=True)
        c = {name: rawsql.column(MetricSeries, name) for name in (*BatchSummary._fields, "run", "id")}
        newer = (
            f"t.{c['count']} = 0 OR EXCLUDED.{c['last_step']} > t.{c['last_step']}"
            f" OR (EXCLUDED.{c['last_step']} = t.{c['last_step']}"
            f" AND EXCLUDED.{c['last_timestamp']} >= t.{c['last_timestamp']})"
        )

        def extreme(name: str, keep: str) -> str:
            # t's value unless t has none yet (no point, or only NaN) or the batch's is beyond it.
            return (
                f"{c[name]} = CASE WHEN t.{c['count']} = 0 OR t.{c[name]} IS NULL THEN EXCLUDED.{c[name]}"
                f" WHEN EXCLUDED.{c[name]} IS NULL OR t.{c[name]} {keep} EXCLUDED.{c[name]} THEN t.{c[name]}"
                f" ELSE EXCLUDED.{c[name]} END"
            )

        sets = [
            extreme("min_value", "<="),
            extreme("max_value", ">="),
            *(
                f"{c[name]} = CASE WHEN {newer} THEN EXCLUDED.{c[name]} ELSE t.{c[name]} END"
                for name in ("last_step", "last_timestamp", "last_value")
            ),
            f"{c['count']} = t.{c['count']} + EXCLUDED.{c['count']}",
        ]
        columns = [c["run"], *(c[name] for name in BatchSummary._fields)]
        ids: dict[str, int] = {}
        for rows in rawsql.chunks(sorted(batch)):
            sql = (
                f"INSERT INTO {rawsql.table(MetricSeries)} AS t ({', '.join(columns)})"
                f" VALUES {rawsql.values_rows(len(rows), len(columns))}"
                f" ON CONFLICT ({c['run']}, {c['key']}) DO UPDATE SET {', '.join(sets)}"
                f" RETURNING {c['key']}, {c['id']}"
            )
            params = [value for row in rows for value in (run_id, *row)]
            ids.update(rawsql.fetchall(connection, sql, params))
        return ids

    def last_values(self, run_id: str) -> dict[str, float]:
        """{key: last value} of one run's metrics, NaN where NaN was logged; one hand-written query, as it is on the
        registration path (see registry.rawsql)."""
        connection = rawsql.connection_for(MetricSeries)
        key, value = rawsql.column(MetricSeries, "key"), rawsql.column(MetricSeries, "last_value")
        rows = rawsql.fetchall(
            connection,
            f"SELECT {key}, {value} FROM {rawsql.table(MetricSeries)}"
            f" WHERE {rawsql.column(MetricSeries, 'run')} = %s ORDER BY {key}",
            [run_id],
        )
        return {k: math.nan if v is None else v for k, v in rows}


class Param(models.Model):
    """A hyperparameter. Once logged it cannot change (see services.params_log)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="params", db_index=False)
    key = models.CharField(max_length=KEY_MAX)
    value = models.TextField(max_length=PARAM_VALUE_MAX, blank=True)

    objects = KeyedQuerySet.as_manager()

    class Meta:
        ordering = ["run", "key"]
        constraints = [
            models.UniqueConstraint(fields=["run", "key"], name="param_run_key_unique"),
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("value"), PARAM_VALUE_MAX), name="param_value_max_6000"
            ),
            models.CheckConstraint(condition=~Q(key=""), name="param_key_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class MetricSeries(models.Model):
    """One metric of one run: its summary, kept current on ingestion so tables and search never read history.

    `last_*` is the point with the highest (step, timestamp), as in MLflow's "latest metric".
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metrics", db_index=False)
    key = models.CharField(max_length=KEY_MAX)
    last_value = NaNFloatField()
    last_step = models.BigIntegerField(default=0)
    last_timestamp = models.BigIntegerField(default=0, help_text="Epoch milliseconds.")
    min_value = NaNFloatField()
    max_value = NaNFloatField()
    count = models.PositiveBigIntegerField(default=0)

    objects = MetricSeriesQuerySet.as_manager()

    class Meta:
        ordering = ["run", "key"]
        verbose_name_plural = "metric series"
        constraints = [
            models.UniqueConstraint(fields=["run", "key"], name="metric_series_run_key_unique"),
            models.CheckConstraint(condition=~Q(key=""), name="metric_series_key_not_empty"),
        ]
        indexes = [models.Index(fields=["key", "last_value"], name="metric_series_key_value")]

    def __str__(self) -> str:
        return f"{self.key}={self.last_value}"

    def history(self) -> tuple[list[int], list[float]]:
        """Every point's (step, value) in step order, in one query over the covering history index."""
        return MetricPoint.objects.histories([self.pk]).get(self.pk, ([], []))


# History order: the covering index's own column order, so that reading a history needs no sort. Points sharing
# (step, timestamp) come by value (NULL, i.e. NaN, first on SQLite and last on PostgreSQL).
HISTORY_ORDER = ("step", "timestamp", "value")


class MetricPointQuerySet(models.QuerySet):
    def page_of(self, series_id: int, *, offset: int, limit: int) -> list[tuple[int, int, float | None]]:
        """(step, timestamp, value) rows of one series in history order, read through a plain cursor over the
        covering index; value is None where NaN was logged."""
        query = (
            self.filter(series_id=series_id)
            .order_by(*HISTORY_ORDER)
            .values_list("step", "timestamp", "value")[offset : offset + limit]
        )
        sql, params = query.query.sql_with_params()
        with connections[query.db].cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def page_from(
        self, series_id: int, start: tuple[int, int, int] | None, limit: int
    ) -> tuple[list[tuple[int, int, float | None]], tuple[int, int, int] | None]:
        """A page of (step, timestamp, value) rows in history order, and where the next page starts.

        A position is (step, timestamp, skip): the rows from that (step, timestamp) on, less the first `skip` of
        those at exactly that (step, timestamp), which an earlier page sent. The range seek on the covering index
        makes the thousandth page of a long history cost what the first does, and ordering by the index's own
        columns spares the database a sort. Hand-written (see registry.rawsql).
        """
        connection = rawsql.connection_for(MetricPoint)
        columns = ", ".join(rawsql.column(MetricPoint, name) for name in HISTORY_ORDER)
        step, timestamp = rawsql.column(MetricPoint, "step"), rawsql.column(MetricPoint, "timestamp")
        sql = f"SELECT {columns} FROM {rawsql.table(MetricPoint)} WHERE {rawsql.column(MetricPoint, 'series')} = %s"
        params: list[int] = [series_id]
        if start is not None:
            sql += f" AND ({step}, {timestamp}) >= (%s, %s)"
            params += [start[0], start[1]]
        sql += f" ORDER BY {columns} LIMIT %s OFFSET %s"
        params += [limit + 1, start[2] if start is not None else 0]
        rows = rawsql.fetchall(connection, sql, params)
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        last = rows[-1][:2]
        ties = 0
        for row in reversed(rows):
            if row[:2] != last:
                break
            ties += 1
        if start is not None and ties == len(rows) and (start[0], start[1]) == last:
            ties += start[2]  # the whole page sat on one (step, timestamp), as did the skipped rows before it
        return rows, (last[0], last[1], ties)

    def histories(self, series_ids: Iterable[int]) -> dict[int, tuple[list[int], list[float]]]:
        """Every point of the given series as ({series_id: (steps, values)}), in step order, in one query.

        Read through a plain cursor: on long histories the ORM's per-row conversion costs more than the database
        does. The (series, step, timestamp, value) index covers the query. NULL is how NaN is stored.
        """
        ids = list(series_ids)
        if not ids:
            return {}
        query = (
            self.filter(series_id__in=ids)
            .order_by("series_id", "step", "timestamp")
            .values_list("series_id", "step", "value")
        )
        sql, params = query.query.sql_with_params()
        with connections[query.db].cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        nan = math.nan
        out: dict[int, tuple[list[int], list[float]]] = {}
        for series_id, points in groupby(rows, key=itemgetter(0)):
            points = list(points)
            out[series_id] = ([p[1] for p in points], [nan if p[2] is None else p[2] for p in points])
        return out


class MetricPoint(models.Model):
    """One point of a metric's full history. Several points may share a step (MLflow allows it)."""

    # No index of its own: the history index below starts with the series, and every insert pays for each index.
    # No constraint in the database either: PostgreSQL checks a foreign key row by row, which was 45% of a
    # 1,000-point COPY's time on the server (2.4 of 5.5 ms, measured) and a quarter of a log-batch. What it guarded
    # holds without it: points are written only by tracking.services._write_points, in the transaction whose upsert
    # created or locked their series row, and series are deleted only through the ORM, whose CASCADE deletes their
    # points (as it did before: Django's constraints do not cascade in the database). tests/test_metrics.py
    # checks that deleting a run, an experiment or a series leaves no point behind.
    series = models.ForeignKey(
        MetricSeries, on_delete=models.CASCADE, related_name="points", db_index=False, db_constraint=False
    )
    step = models.BigIntegerField(default=0)
    timestamp = models.BigIntegerField(help_text="Epoch milliseconds.")
    value = NaNFloatField()

    objects = MetricPointQuerySet.as_manager()

    class Meta:
        # Covering: history reads never touch the table itself.
        indexes = [models.Index(fields=["series", "step", "timestamp", "value"], name="metric_point_history")]

    def __str__(self) -> str:
        return f"step {self.step}: {self.value}"


class MetricPreview(models.Model):
    """A long history downsampled for charts, cached: valid while the series still has `count` points.

    A finished run's histories never change, so a chart of 100,000 points costs one small read after its first
    view; a running one is rebuilt when it has grown.
    """

    series = models.OneToOneField(MetricSeries, primary_key=True, on_delete=models.CASCADE, related_name="preview")
    count = models.PositiveBigIntegerField()
    max_points = models.PositiveIntegerField()
    steps = models.JSONField()
    values = models.JSONField(help_text='Numbers, or "NaN", "Infinity", "-Infinity".')
    built_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"preview of series {self.series_id} ({len(self.steps)} of {self.count} points)"


class DatasetQuerySet(models.QuerySet):
    def readable_by(self, user) -> DatasetQuerySet:
        """Datasets a run `user` may read used, datasets the user registered, and datasets no run uses yet (they
        are content-addressed: whoever knows the name and digest may register the same one)."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self
        used = RunInput.objects.filter(dataset=OuterRef("pk"))
        readable = used.filter(run__in=Run.objects.readable_by(user).values("pk"))
        return self.filter(Q(created_by=user) | Exists(readable) | ~Exists(used))


class Dataset(models.Model):
    """A data set as it was when a run used it: its content digest, schema and profile."""

    name = models.CharField(max_length=256)
    digest = models.CharField(max_length=128, help_text="Content hash of the data.")
    source_uri = models.CharField(max_length=2048, blank=True)
    source_type = models.CharField(max_length=64, blank=True)
    schema = models.JSONField(default=list, blank=True, help_text='Columns: [{"name": "age", "type": "float64"}, ...]')
    profile = models.JSONField(
        default=dict,
        blank=True,
        help_text='{"num_rows": N, "columns": {"age": {"nulls": 0, "mean": ..., "histogram": {...}}}}',
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = DatasetQuerySet.as_manager()

    class Meta:
        ordering = ["name", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["name", "digest"], name="dataset_name_digest_unique"),
            models.CheckConstraint(condition=~Q(name="") & ~Q(digest=""), name="dataset_name_digest_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.digest[:12]})"

    @property
    def num_rows(self) -> int | None:
        return self.profile.get("num_rows") if isinstance(self.profile, dict) else None


class RunInput(models.Model):
    """A dataset a run used, and in which role (training, validation, test, evaluation, ...)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="inputs", db_index=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="run_inputs")
    context = models.CharField(max_length=64, default="training")
    # The input's tags exactly as MLflow logged them ([{"key": ..., "value": ...}], in order; the context is one of
    # them); None for inputs logged without tags of their own (our client), which MLflow sees as the context tag.
    tags = models.JSONField(null=True, blank=True, default=None)

    class Meta:
        ordering = ["run", "context"]
        constraints = [
            models.UniqueConstraint(fields=["run", "dataset", "context"], name="run_input_unique"),
            models.CheckConstraint(condition=~Q(context=""), name="run_input_context_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset} ({self.context})"
