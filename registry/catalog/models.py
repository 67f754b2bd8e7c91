"""Registered models, their versions, aliases, stages, transition requests, stage history and artifact files."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from registry import rawsql
from registry.lib.names import ALIAS_MAX, MODEL_NAME_MAX, NameError_, check_alias, check_model_name
from registry.lib.paths import PATH_MAX, PathError, normalise_artifact_path
from registry.lib.references import Reference
from registry.tracking.models import MetricSeries, Run

# How many of a model's newest versions its page reads for metric keys and the trend chart.
RECENT_VERSIONS = 500


def validate_model_name(value: str) -> None:
    try:
        check_model_name(value)
    except NameError_ as exc:
        raise ValidationError(str(exc)) from None


def validate_alias(value: str) -> None:
    try:
        check_alias(value)
    except NameError_ as exc:
        raise ValidationError(str(exc)) from None


def validate_artifact_path(value: str) -> None:
    try:
        if normalise_artifact_path(value) != value:
            raise ValidationError("Artifact paths are stored normalised (no empty or '.' segments).")
    except PathError as exc:
        raise ValidationError(str(exc)) from None


class Stage(models.TextChoices):
    NONE = "None", "None"
    STAGING = "Staging", "Staging"
    PRODUCTION = "Production", "Production"
    ARCHIVED = "Archived", "Archived"

    @classmethod
    def parse(cls, text: str) -> Stage:
        """Accept any capitalisation ("production", "PRODUCTION") as MLflow clients do."""
        for stage in cls:
            if stage.value.lower() == str(text).strip().lower():
                return stage
        raise ValueError(f"Unknown stage {text!r}; use one of: {', '.join(s.value for s in cls)}.")


STAGE_VALUES = [s.value for s in Stage]


class CommaList(models.Aggregate):
    """The group's values joined by commas: GROUP_CONCAT on SQLite, STRING_AGG on PostgreSQL.

    Django 5.2 has no portable string aggregate. The order inside the list is not guaranteed; readers sort.
    """

    function = "GROUP_CONCAT"
    output_field = models.TextField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            function="STRING_AGG",
            template="%(function)s((%(expressions)s)::text, ',')",
            **extra_context,
        )


class RegisteredModelQuerySet(models.QuerySet):
    def search(self, text: str) -> RegisteredModelQuerySet:
        text = text.strip()
        return self.filter(Q(name__icontains=text) | Q(description__icontains=text)) if text else self

    def tagged(self, spec: str) -> RegisteredModelQuerySet:
        """Models with tag `key` (spec "key") or with tag `key` equal to `value` (spec "key:value")."""
        key, has_value, value = spec.partition(":")
        key = key.strip()
        if not key:
            return self
        models_ = self.filter(tags__has_key=key)
        if has_value:
            # Cast: a bare KeyTextTransform would compare as JSON on SQLite and choke on plain text.
            tag_value = Cast(KeyTextTransform(key, "tags"), models.TextField())
            models_ = models_.alias(_tag_value=tag_value).filter(_tag_value=value.strip())
        return models_

    def having_stage(self, stage: str) -> RegisteredModelQuerySet:
        """Models with at least one version in `stage`, read from the (model, stage) index."""
        return self.filter(Exists(ModelVersion.objects.filter(model=OuterRef("pk"), stage=stage)))

    def with_version_summary(self) -> RegisteredModelQuerySet:
        """Annotate `latest_version`, `version_count` and `production_list` (see `production_versions`).

        Each is a correlated subquery answered from the (model, version) or (model, stage) index, so a page of
        models costs the same whatever the number of versions behind them.
        """
        versions = ModelVersion.objects.filter(model=OuterRef("pk")).order_by()
        return self.annotate(
            latest_version=Subquery(versions.order_by("-version").values("version")[:1]),
            version_count=Coalesce(Subquery(versions.values("model").annotate(n=Count("*")).values("n")), 0),
            production_list=Subquery(
                versions.filter(stage=Stage.PRODUCTION).values("model").annotate(v=CommaList("version")).values("v")
            ),
        )

    def prefetch_aliases(self) -> RegisteredModelQuerySet:
        aliases = (
            ModelAlias.objects.select_related("version").only("model_id", "alias", "version__version").order_by("alias")
        )
        return self.prefetch_related(Prefetch("aliases", queryset=aliases))


class RegisteredModel(models.Model):
    name = models.CharField(max_length=MODEL_NAME_MAX, unique=True, validators=[validate_model_name])
    description = models.TextField(blank=True, help_text="Markdown.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_models",
    )
    tags = models.JSONField(default=dict, blank=True)
    # The highest version number ever handed out; versions are numbered by incrementing it under a row lock.
    last_version = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = RegisteredModelQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(name="") & ~Q(name__contains="/") & ~Q(name__contains="@"),
                name="registered_model_name_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def production_versions(self) -> list[int]:
        """Version numbers in Production, from the `production_list` annotation of `with_version_summary`."""
        raw = getattr(self, "production_list", None) or ""
        return sorted(int(number) for number in str(raw).split(",") if number.strip())

    def recent_versions(self) -> ModelVersionQuerySet:
        """The newest RECENT_VERSIONS versions, as a range on the (model, version) index (numbers have no gaps)."""
        return self.versions.filter(version__gt=self.last_version - RECENT_VERSIONS)

    def recent_metric_keys(self) -> list[tuple[str, int]]:
        """(metric key, number of recent versions whose run logged it), most common first, in one query."""
        return MetricSeries.objects.key_counts(self.recent_versions().values("run_id"))


class ModelVersionQuerySet(models.QuerySet):
    def in_stage(self, stage: str) -> ModelVersionQuerySet:
        return self.filter(stage=stage)

    def resolve(self, reference: Reference) -> ModelVersion:
        """The version a reference names, with its model and creator loaded; for a stage, the newest version holding
        it. Raises DoesNotExist.

        Deployment jobs resolve on every start, so this is one hand-written query (see registry.rawsql); it reads the
        table, not this queryset's filters.
        """
        version_columns, model_columns, user_columns, sql = _resolve_sql()
        if reference.version is not None:
            if reference.version > VERSION_MAX:
                raise self.model.DoesNotExist(f"No version of {reference.model!r} matches {reference}.")
            query, params = sql["version"], [reference.model, reference.version]
        elif reference.alias is not None:
            query, params = sql["alias"], [reference.model, reference.alias]
        elif reference.stage is not None:
            query, params = sql["stage"], [reference.model, reference.stage]
        else:
            query, params = sql["latest"], [reference.model]
        connection = rawsql.connection_for(ModelVersion)
        row = rawsql.fetchone(connection, query, params)
        if row is None:
            raise self.model.DoesNotExist(f"No version of {reference.model!r} matches {reference}.")
        n, m = len(version_columns), len(version_columns) + len(model_columns)
        version = version_columns.load(row[:n], connection)
        version.model = model_columns.load(row[n:m], connection)
        version.created_by = user_columns.load(row[m:], connection) if row[m] is not None else None
        return version

    def with_metric_value(self, key: str) -> ModelVersionQuerySet:
        """Annotate `metric_value`: the last value of metric `key` in the version's run (NaN when absent)."""
        series = MetricSeries.objects.filter(run=OuterRef("run_id"), key=key)
        return self.annotate(metric_value=Subquery(series.values("last_value")[:1]))


# Version numbers are PositiveIntegerFields: beyond this no row can match (and SQLite could not take the value).
VERSION_MAX = 2**31 - 1


@functools.cache
def _resolve_sql() -> tuple[rawsql.Columns, rawsql.Columns, rawsql.Columns, dict[str, str]]:
    """The SELECT of ModelVersionQuerySet.resolve, one per kind of reference (a model name is always the first
    parameter)."""
    user_model = get_user_model()
    versions = rawsql.Columns(ModelVersion)
    models_ = rawsql.Columns(RegisteredModel, "id", "name")
    users = rawsql.Columns(user_model, "id", user_model.USERNAME_FIELD)
    q, col = rawsql.quote, rawsql.column
    base = (
        f"SELECT {versions.select('v')}, {models_.select('m')}, {users.select('u')}"
        f" FROM {rawsql.table(ModelVersion)} v"
        f" JOIN {rawsql.table(RegisteredModel)} m ON m.{q('id')} = v.{col(ModelVersion, 'model')}"
        f" LEFT JOIN {rawsql.table(user_model)} u"
        f" ON u.{q(user_model._meta.pk.column)} = v.{col(ModelVersion, 'created_by')}"
        f" WHERE m.{col(RegisteredModel, 'name')} = %s"
    )
    alias_version = (
        f"SELECT a.{col(ModelAlias, 'version')} FROM {rawsql.table(ModelAlias)} a"
        f" WHERE a.{col(ModelAlias, 'model')} = m.{q('id')} AND a.{col(ModelAlias, 'alias')} = %s"
    )
    newest = f" ORDER BY v.{col(ModelVersion, 'version')} DESC LIMIT 1"
    sql = {
        "version": f"{base} AND v.{col(ModelVersion, 'version')} = %s",
        "alias": f"{base} AND v.{q('id')} = ({alias_version})",
        "stage": f"{base} AND v.{col(ModelVersion, 'stage')} = %s{newest}",
        "latest": f"{base}{newest}",
    }
    return versions, models_, users, sql


class VersionStatus(models.TextChoices):
    PENDING = "pending", "Pending registration"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed registration"


class ModelVersion(models.Model):
    Status = VersionStatus

    # No single-column indexes on FKs that a composite index or unique constraint already starts with: every
    # insert pays for each index.
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions", db_index=False)
    version = models.PositiveIntegerField()
    run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="model_versions", db_index=False
    )
    source = models.CharField(
        max_length=2048, blank=True, help_text="Where the artifacts came from, e.g. runs:/<run id>/model."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.READY)
    status_message = models.CharField(max_length=1024, blank=True)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.NONE)
    description = models.TextField(blank=True, help_text="Markdown.")
    tags = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["model", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="model_version_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="model_version_positive"),
            models.CheckConstraint(condition=Q(stage__in=STAGE_VALUES), name="model_version_stage_valid"),
            models.CheckConstraint(condition=Q(status__in=VersionStatus.values), name="model_version_status_valid"),
        ]
        indexes = [
            models.Index(fields=["model", "stage"], name="model_version_model_stage"),
            models.Index(fields=["run"], name="model_version_run"),
        ]

    def __str__(self) -> str:
        return f"{self.model.name}/{self.version}"

    def alias_names(self) -> list[str]:
        """This version's aliases, sorted; one hand-written query (resolve and registration answer with them)."""
        alias = rawsql.column(ModelAlias, "alias")
        rows = rawsql.fetchall(
            rawsql.connection_for(ModelAlias),
            f"SELECT {alias} FROM {rawsql.table(ModelAlias)} WHERE {rawsql.column(ModelAlias, 'version')} = %s"
            f" ORDER BY {alias}",
            [self.pk],
        )
        return [row[0] for row in rows]

    def files(self) -> list[ArtifactFile]:
        """This version's artifact files in path order; one hand-written query, as for `alias_names`."""
        columns = _file_columns()
        connection = rawsql.connection_for(ArtifactFile)
        rows = rawsql.fetchall(
            connection,
            f"SELECT {columns.select('f')} FROM {rawsql.table(ArtifactFile)} f"
            f" WHERE f.{rawsql.column(ArtifactFile, 'version')} = %s ORDER BY f.{rawsql.column(ArtifactFile, 'path')}",
            [self.pk],
        )
        return [columns.load(row, connection) for row in rows]

    def record_stage_change(
        self, stage: str, *, by=None, at=None, kind: str = "direct", comment: str = "", request=None
    ) -> StageChange:
        """Set this (locked) version's stage and append the change to the stage history."""
        at = at or timezone.now()
        change = StageChange.objects.create(
            model_id=self.model_id,
            version=self,
            from_stage=self.stage,
            to_stage=stage,
            kind=kind,
            changed_by=by,
            changed_at=at,
            comment=comment,
            request=request,
        )
        self.stage = stage
        self.updated_at = at
        self.save(update_fields=["stage", "updated_at"])
        return change


class ModelAlias(models.Model):
    """A movable name (`champion`) for one version of a model; `name@champion` resolves through it."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases", db_index=False)
    alias = models.CharField(max_length=ALIAS_MAX, validators=[validate_alias])
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["model", "alias"]
        verbose_name_plural = "model aliases"
        constraints = [
            models.UniqueConstraint(fields=["model", "alias"], name="model_alias_unique"),
            models.CheckConstraint(condition=~Q(alias=""), name="model_alias_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.alias}"

    def clean(self) -> None:
        if self.version_id and self.model_id and self.version.model_id != self.model_id:
            raise ValidationError({"version": "The version must belong to the alias's model."})


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


class StageTransitionRequestQuerySet(models.QuerySet):
    def pending(self) -> StageTransitionRequestQuerySet:
        return self.filter(status=RequestStatus.PENDING)


class StageTransitionRequest(models.Model):
    """A request to move a version to a stage; decided by an approver (behaviour in the governance work)."""

    Status = RequestStatus

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="transition_requests")
    from_stage = models.CharField(max_length=16, choices=Stage.choices)
    to_stage = models.CharField(max_length=16, choices=Stage.choices)
    archive_existing = models.BooleanField(default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="transition_requests"
    )
    comment = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True, help_text="Frozen when the request is made.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = StageTransitionRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(from_stage__in=STAGE_VALUES), name="transition_from_valid"),
            models.CheckConstraint(condition=Q(to_stage__in=STAGE_VALUES), name="transition_to_valid"),
            models.CheckConstraint(condition=~Q(from_stage=models.F("to_stage")), name="transition_moves"),
            models.CheckConstraint(condition=Q(status__in=RequestStatus.values), name="transition_status_valid"),
            # A decision carries its date; a pending request has none.
            models.CheckConstraint(
                condition=(Q(status="pending") & Q(decided_at__isnull=True))
                | (~Q(status="pending") & Q(decided_at__isnull=False)),
                name="transition_decided_when_not_pending",
            ),
            # At most one open request per version and target stage.
            models.UniqueConstraint(
                fields=["version", "to_stage"],
                condition=Q(status="pending"),
                name="transition_one_pending_per_target",
            ),
        ]
        indexes = [models.Index(fields=["status", "-created_at"], name="transition_status_created")]

    def __str__(self) -> str:
        return f"{self.version}: {self.from_stage} → {self.to_stage} ({self.status})"


class ChangeKind(models.TextChoices):
    DIRECT = "direct", "Direct change"
    APPROVAL = "approval", "Approved request"
    ARCHIVE_EXISTING = "archive_existing", "Archived by a newer version"
    ROLLBACK = "rollback", "Rollback"


@dataclass(frozen=True, slots=True)
class StageInterval:
    """A span during which one version held one stage. `start` is None when it began before the changes read;
    `end` is None while the version still holds the stage."""

    version: int
    stage: str
    start: datetime | None
    end: datetime | None

    def duration(self, now: datetime) -> timedelta | None:
        return None if self.start is None else (self.end or now) - self.start


class StageChangeRow(NamedTuple):
    """The part of a StageChange that timelines read, without building model instances."""

    version_id: int
    version: int
    from_stage: str
    to_stage: str
    changed_at: datetime


def stage_intervals(changes: Iterable[StageChangeRow], stages: Iterable[str] | None = None) -> list[StageInterval]:
    """Turn stage changes, oldest first, into the intervals each version spent in each of `stages`.

    A change out of a stage with no earlier change into it (older than the rows read) opens the interval at None.
    """
    wanted = set(stages) if stages is not None else {s.value for s in Stage} - {Stage.NONE.value}
    held: dict[int, tuple[str, datetime | None, int]] = {}
    intervals = []
    for change in changes:
        stage, start, _ = held.pop(change.version_id, (change.from_stage, None, change.version))
        if stage in wanted and stage != Stage.NONE:
            intervals.append(StageInterval(change.version, stage, start, change.changed_at))
        held[change.version_id] = (change.to_stage, change.changed_at, change.version)
    for stage, start, number in held.values():
        if stage in wanted and stage != Stage.NONE:
            intervals.append(StageInterval(number, stage, start, None))
    oldest = datetime.min.replace(tzinfo=timezone.get_current_timezone())
    intervals.sort(key=lambda i: (i.start or oldest, i.version))
    return intervals


class StageChangeQuerySet(models.QuerySet):
    def timeline_rows(self, limit: int) -> list[StageChangeRow]:
        """The newest `limit` changes with their version numbers, returned oldest first, in one query."""
        rows = self.order_by("-changed_at", "-id").values_list(
            "version_id", "version__version", "from_stage", "to_stage", "changed_at"
        )[:limit]
        return [StageChangeRow(*row) for row in reversed(rows)]


class StageChange(models.Model):
    """Append-only history of every stage a version entered: the Production timeline is read from here."""

    Kind = ChangeKind

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="stage_changes", db_index=False)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.CharField(max_length=16, choices=Stage.choices)
    to_stage = models.CharField(max_length=16, choices=Stage.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.DIRECT)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(default=timezone.now, db_index=True)
    comment = models.TextField(blank=True)
    request = models.ForeignKey(
        StageTransitionRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="changes"
    )

    objects = StageChangeQuerySet.as_manager()

    class Meta:
        ordering = ["-changed_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(from_stage__in=STAGE_VALUES), name="stage_change_from_valid"),
            models.CheckConstraint(condition=Q(to_stage__in=STAGE_VALUES), name="stage_change_to_valid"),
            models.CheckConstraint(condition=~Q(from_stage=models.F("to_stage")), name="stage_change_moves"),
            models.CheckConstraint(condition=Q(kind__in=ChangeKind.values), name="stage_change_kind_valid"),
        ]
        indexes = [models.Index(fields=["model", "to_stage", "changed_at"], name="stage_change_timeline")]

    def __str__(self) -> str:
        return f"{self.version}: {self.from_stage} → {self.to_stage}"


@functools.cache
def _file_columns() -> rawsql.Columns:
    return rawsql.Columns(
        ArtifactFile, "id", "run", "version", "path", "storage_key", "size", "sha256", "content_type", "created_at"
    )


class ArtifactFile(models.Model):
    """A file stored for a run or for a model version, through the `artifacts` storage alias.

    Versions registered from a run's artifacts get their own rows pointing at the same stored blobs.
    """

    # Indexed by the (run, path) and (version, path) unique constraints.
    run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.CASCADE, related_name="artifacts", db_index=False
    )
    version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="artifacts", db_index=False
    )
    path = models.CharField(max_length=PATH_MAX, validators=[validate_artifact_path])
    storage_key = models.CharField(max_length=PATH_MAX + 64, help_text="Name of the blob in the artifacts storage.")
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    content_type = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["path"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(run__isnull=False) & Q(version__isnull=True))
                | (Q(run__isnull=True) & Q(version__isnull=False)),
                name="artifact_one_owner",
            ),
            models.UniqueConstraint(fields=["run", "path"], name="artifact_run_path_unique"),
            models.UniqueConstraint(fields=["version", "path"], name="artifact_version_path_unique"),
            models.CheckConstraint(
                condition=~Q(path="")
                & ~Q(path__startswith="/")
                & ~Q(path__contains="\\")
                & ~Q(path="..")
                & ~Q(path__startswith="../")
                & ~Q(path__endswith="/..")
                & ~Q(path__contains="/../"),
                name="artifact_path_relative",
            ),
            models.CheckConstraint(condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="artifact_sha256_hex"),
        ]

    def __str__(self) -> str:
        return self.path

    @property
    def owner(self) -> Run | ModelVersion:
        return self.run if self.run_id else self.version

    @property
    def folder(self) -> str:
        return self.path.rpartition("/")[0]

    @property
    def filename(self) -> str:
        return self.path.rpartition("/")[2]

    @staticmethod
    def tree(files: Iterable[ArtifactFile]) -> list[tuple[str, list[ArtifactFile]]]:
        """Files grouped by folder ("" for the root), folders and files in path order."""
        folders: dict[str, list[ArtifactFile]] = {}
        for file in sorted(files, key=lambda f: f.path):
            folders.setdefault(file.folder, []).append(file)
        return sorted(folders.items())
