"""Registered models, their versions, aliases, artifact files, and who may do what with them.

Stages (a version's `stage`) and aliases are moved only by the governance services, which also keep the requests and
the stage history.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Lower
from django.utils import timezone

from registry import rawsql
from registry.accounts.access import DEFAULT_LEVEL_CHOICES, AccessQuerySet, Grant, best_grant_sql, level_from
from registry.lib.access import Level
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


class RegisteredModelQuerySet(AccessQuerySet):
    def get_with_access(self, name: str, user) -> RegisteredModel | None:
        """The model named `name` with `user`'s level cached on it (see accounts.access.level_of), in one
        hand-written statement: registration starts here."""
        grant_sql, grant_params = _model_grant_sql(user)
        columns = _model_columns()
        connection = rawsql.connection_for(RegisteredModel)
        row = rawsql.fetchone(
            connection,
            f"SELECT {columns.select('m')}, {grant_sql} FROM {rawsql.table(RegisteredModel)} m"
            f" WHERE m.{rawsql.column(RegisteredModel, 'name')} = %s",
            [*grant_params, name],
        )
        if row is None:
            return None
        model = columns.load(row[:-1], connection)
        level = level_from(user, owner_id=model.owner_id, default_level=model.default_level, best_grant=row[-1])
        model.__dict__["_level_cache"] = {user.pk: level}  # what accounts.access.level_of reads
        return model

    def search(self, text: str) -> RegisteredModelQuerySet:
        text = text.strip()
        return self.filter(Q(name__icontains=text) | Q(description__icontains=text)) if text else self

    def named_ignoring_case(self, name: str) -> RegisteredModelQuerySet:
        """The model whose name is `name` ignoring case, by the expression the unique index holds (LOWER(name))."""
        return self.alias(_name_folded=Lower("name")).filter(_name_folded=Lower(models.Value(name)))

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
    default_level = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        choices=DEFAULT_LEVEL_CHOICES,
        help_text="The level of every signed-in user without a grant; empty for the registry's default "
        "(REGISTRY_DEFAULT_PERMISSION). None makes the model private to its owner and grantees.",
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
            # Names are unique ignoring case: "M1" beside "m1" invites pulling the wrong model. (SQLite's LOWER()
            # folds ASCII letters only; PostgreSQL's folds every letter its collation knows.)
            models.UniqueConstraint(
                Lower("name"),
                name="registered_model_name_unique_ignoring_case",
                violation_error_message="A model with this name in other letter case exists; names are unique "
                "ignoring case. Use that model or choose another name.",
            ),
            models.CheckConstraint(
                condition=Q(default_level__isnull=True) | Q(default_level__in=[0, 1, 2]),
                name="registered_model_default_level_valid",
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
    def readable_by(self, user) -> ModelVersionQuerySet:
        """Versions of the models `user` may read (see RegisteredModelQuerySet.readable_by)."""
        if user is not None and user.is_authenticated and user.is_superuser:
            return self
        return self.filter(model__in=RegisteredModel.objects.readable_by(user).values("pk"))

    def in_stage(self, stage: str) -> ModelVersionQuerySet:
        return self.filter(stage=stage)

    def resolve(self, reference: Reference, user) -> ModelVersion:
        """The version a reference names, with its model and creator loaded, if `user` may read the model; for a
        stage, the newest version holding it. Raises DoesNotExist (also when the user may not read the model, so
        that names do not leak).

        Deployment jobs resolve on every start, so this is one hand-written statement (see registry.rawsql) that
        reads the user's access with the version; it reads the table, not this queryset's filters.
        """
        version_columns, model_columns, user_columns, sql = _resolve_sql()
        if reference.version is not None:
            if reference.version > VERSION_MAX:
                raise self.model.DoesNotExist(f"No version of {reference.model!r} matches {reference}.")
            kind, params = "version", [reference.model, reference.version]
        elif reference.alias is not None:
            kind, params = "alias", [reference.model, reference.alias]
        elif reference.stage is not None:
            kind, params = "stage", [reference.model, reference.stage]
        else:
            kind, params = "latest", [reference.model]
        grant_sql, grant_params = _model_grant_sql(user)
        connection = rawsql.connection_for(ModelVersion)
        row = rawsql.fetchone(connection, sql[kind].format(best_grant=grant_sql), [*grant_params, *params])
        if row is None:
            raise self.model.DoesNotExist(f"No version of {reference.model!r} matches {reference}.")
        n, m = len(version_columns), len(version_columns) + len(model_columns)
        model = model_columns.load(row[n:m], connection)
        level = level_from(user, owner_id=model.owner_id, default_level=model.default_level, best_grant=row[-1])
        if level < Level.READ:
            raise self.model.DoesNotExist(f"No version of {reference.model!r} matches {reference}.")
        version = version_columns.load(row[:n], connection)
        version.model = model
        version.created_by = user_columns.load(row[m:-1], connection) if row[m] is not None else None
        return version

    def with_metric_value(self, key: str) -> ModelVersionQuerySet:
        """Annotate `metric_value`: the last value of metric `key` in the version's run (NaN when absent)."""
        series = MetricSeries.objects.filter(run=OuterRef("run_id"), key=key)
        return self.annotate(metric_value=Subquery(series.values("last_value")[:1]))


# Version numbers are PositiveIntegerFields: beyond this no row can match (and SQLite could not take the value).
VERSION_MAX = 2**31 - 1


@functools.cache
def _model_columns() -> rawsql.Columns:
    return rawsql.Columns(RegisteredModel)


def _model_grant_sql(user) -> tuple[str, list]:
    """The user's best grant on the model `m` of a hand-written statement, as a scalar subquery (NULL for superusers,
    who need none)."""
    if user.is_superuser:
        return "NULL", []
    return best_grant_sql(rawsql.table(ModelGrant), rawsql.column(ModelGrant, "model"), f"m.{rawsql.quote('id')}", user)


@functools.cache
def _resolve_sql() -> tuple[rawsql.Columns, rawsql.Columns, rawsql.Columns, dict[str, str]]:
    """The SELECT of ModelVersionQuerySet.resolve, one per kind of reference, each with a `{best_grant}` slot (its
    parameters come first, then the model name)."""
    user_model = get_user_model()
    versions = rawsql.Columns(ModelVersion)
    models_ = rawsql.Columns(RegisteredModel, "id", "name", "owner", "default_level")
    users = rawsql.Columns(user_model, "id", user_model.USERNAME_FIELD)
    q, col = rawsql.quote, rawsql.column
    base = (
        f"SELECT {versions.select('v')}, {models_.select('m')}, {users.select('u')}, {{best_grant}}"
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
    # An external reference: where the files are when this registry does not store them (s3://..., a path, a run of
    # another server). Recorded as text and never read, fetched, listed or resolved by the registry; empty for
    # versions whose files are stored here. A copy of an external version keeps its original's location.
    external_location = models.CharField(max_length=2048, blank=True)
    # Lineage as the client named it, kept as text: the run id when this registry has no such run, and the MLflow
    # logged model the version was registered from.
    external_run_id = models.CharField(max_length=256, blank=True)
    logged_model_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.READY)
    status_message = models.CharField(max_length=1024, blank=True)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.NONE)
    description = models.TextField(blank=True, help_text="Markdown.")
    tags = models.JSONField(default=dict, blank=True)
    signature = models.JSONField(
        null=True,
        blank=True,
        help_text="Input and output columns and an input example, in registry.lib.signature's form; read from the "
        "version's MLmodel file or given when registering.",
    )
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

    @property
    def is_external(self) -> bool:
        """Its files are not stored here: the source is an external reference, recorded as text only."""
        return bool(self.external_location)

    @property
    def lineage_run_id(self) -> str:
        """The run the version came from: this registry's run, else the id the client named."""
        return self.run_id or self.external_run_id

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


@functools.cache
def _file_columns() -> rawsql.Columns:
    return rawsql.Columns(
        ArtifactFile, "id", "run", "version", "path", "storage_key", "size", "sha256", "content_type", "created_at"
    )


@functools.cache
def _artifact_file_columns() -> rawsql.Columns:
    return rawsql.Columns(ArtifactFile)


class ArtifactFileQuerySet(models.QuerySet):
    def copy_folder(self, *, run_id: str, prefix: str, version_id: int) -> list[ArtifactFile]:
        """Give a version the run's files under `prefix` (the same blobs), with paths relative to the prefix (a
        prefix naming one file gives that file under its own name), and return the new rows in path order.

        One INSERT ... SELECT ... RETURNING whatever the number of files. The run's rows are locked (PostgreSQL;
        SQLite's IMMEDIATE transaction holds the write lock already): a concurrent re-upload of one of these files
        waits for this copy to commit, so its "delete the old blob if nothing uses it" check sees the version's rows
        (and the reverse order copies the new blob). Hand-written: it is on the registration path (registry.rawsql).
        """
        path = rawsql.column(ArtifactFile, "path")
        relative, params = f"f.{path}", []
        where, where_params = f"f.{rawsql.column(ArtifactFile, 'run')} = %s", [run_id]
        if prefix:
            # A prefix match without LIKE, whose '%' and '_' would need escaping, and without ranges, which
            # PostgreSQL's collations would reorder.
            relative = f"CASE WHEN f.{path} = %s THEN %s ELSE SUBSTR(f.{path}, %s) END"
            params = [prefix, prefix.rsplit("/", 1)[-1], len(prefix) + 2]
            where += f" AND (f.{path} = %s OR SUBSTR(f.{path}, 1, %s) = %s)"
            where_params += [prefix, len(prefix) + 1, prefix + "/"]
        return self._copy_to_version(version_id, (relative, params), (where, where_params))

    def copy_version(self, *, from_version_id: int, to_version_id: int) -> list[ArtifactFile]:
        """Give a version another version's files (the same blobs, the same paths), in one statement; the new rows
        in path order. The source's rows are locked as copy_folder locks a run's."""
        where = f"f.{rawsql.column(ArtifactFile, 'version')} = %s"
        return self._copy_to_version(
            to_version_id, (f"f.{rawsql.column(ArtifactFile, 'path')}", []), (where, [from_version_id])
        )

    def _copy_to_version(self, version_id: int, path_sql: tuple[str, list], where_sql: tuple[str, list]):
        """INSERT the rows `where_sql` selects (as `f`) as files of `version_id`, their paths given by `path_sql`."""
        connection = rawsql.connection_for(ArtifactFile, write=True)
        c = {f.name: rawsql.column(ArtifactFile, f.name) for f in ArtifactFile._meta.concrete_fields}
        copied = ("storage_key", "size", "sha256", "content_type")
        (path, path_params), (where, where_params) = path_sql, where_sql
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        columns = _artifact_file_columns()
        now = rawsql.adapt(ArtifactFile, "created_at", timezone.now(), connection)
        rows = rawsql.fetchall(
            connection,
            f"INSERT INTO {rawsql.table(ArtifactFile)} ({c['run']}, {c['version']}, {c['path']},"
            f" {', '.join(c[name] for name in copied)}, {c['created_at']})"
            f" SELECT NULL, %s, {path}, {', '.join(f'f.{c[name]}' for name in copied)}, %s"
            f" FROM {rawsql.table(ArtifactFile)} f WHERE {where}{lock}"
            f" RETURNING {', '.join(c[f.name] for f in columns.fields)}",
            [version_id, *path_params, now, *where_params],
        )
        return sorted((columns.load(row, connection) for row in rows), key=lambda f: f.path)


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

    objects = ArtifactFileQuerySet.as_manager()

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

    @property
    def preview_kind(self) -> str | None:
        """How the dashboard previews the file inline: "markdown", "json" or "text"; None for anything else (binary,
        or too large to be worth opening in a page)."""
        if self.size > PREVIEW_FILE_MAX:
            return None
        name = self.filename.lower()
        suffix = name.rpartition(".")[2] if "." in name else ""
        if suffix in ("md", "markdown"):
            return "markdown"
        if suffix == "json":
            return "json"
        if name in PREVIEW_NAMES or suffix in PREVIEW_SUFFIXES:
            return "text"
        return None

    @staticmethod
    def tree(files: Iterable[ArtifactFile]) -> list[tuple[str, list[ArtifactFile]]]:
        """Files grouped by folder ("" for the root), folders and files in path order."""
        folders: dict[str, list[ArtifactFile]] = {}
        for file in sorted(files, key=lambda f: f.path):
            folders.setdefault(file.folder, []).append(file)
        return sorted(folders.items())


# Files the version and run pages preview inline: text that tells a user how to load and run the model.
PREVIEW_FILE_MAX = 2 * 1024 * 1024
PREVIEW_NAMES = {"mlmodel", "requirements.txt", "dockerfile", "license", "readme", "makefile"}
PREVIEW_SUFFIXES = {"txt", "yaml", "yml", "toml", "cfg", "ini", "py", "csv", "tsv", "log", "sh", "xml", "properties"}


class ModelGrant(Grant):
    """A level on one registered model (and so its versions, aliases and files) for a user or a group, with the
    stages they may request and approve for that model on top of the registry-wide roles."""

    object_field = "model"

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="grants")
    request_stages = models.JSONField(default=list, blank=True, help_text='Stages they may request, e.g. ["Staging"].')
    approve_stages = models.JSONField(
        default=list, blank=True, help_text='Stages they may approve moves to, e.g. ["Production"].'
    )

    class Meta(Grant.Meta):
        ordering = ["model", "-level", "id"]
        constraints = [
            *Grant.Meta.constraints,
            models.UniqueConstraint(fields=["model", "user"], name="model_grant_user_unique"),
            models.UniqueConstraint(fields=["model", "group"], name="model_grant_group_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.model}: {self.grantee} {self.level_name}"


class ModelCardQuerySet(models.QuerySet):
    def for_version(self, version: ModelVersion) -> tuple[ModelCard | None, ModelCard | None]:
        """(the model's card, the version's own card), either None when not written yet; one query."""
        cards = list(self.filter(Q(model_id=version.model_id, version__isnull=True) | Q(version_id=version.pk)))
        model_card = next((c for c in cards if c.version_id is None), None)
        version_card = next((c for c in cards if c.version_id == version.pk), None)
        return model_card, version_card


class ModelCard(models.Model):
    """A model's card (`version` empty) or a version's own sections over it (registry.lib.model_card.SECTIONS).

    Each save bumps `revision` and records the changed sections whole in the audit log, which is the card's history.
    """

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="cards", db_index=False)
    version = models.OneToOneField(ModelVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="card")
    sections = models.JSONField(default=dict, blank=True, help_text="{section key: Markdown}.")
    revision = models.PositiveIntegerField(default=0)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    objects = ModelCardQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model"], condition=Q(version__isnull=True), name="model_card_one_per_model"
            ),
        ]
        indexes = [models.Index(fields=["model", "version"], name="model_card_model_version")]

    def __str__(self) -> str:
        return f"Card of {self.model_id}" + (f" v{self.version_id}" if self.version_id else "")
