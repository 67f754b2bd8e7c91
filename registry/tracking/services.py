"""Writes to tracking data: experiments, runs and what they log (params, metrics, tags, steps, datasets), and who
may do what with experiments.

Each function checks that `by` may do it, validates everything first and writes in one transaction, so a bad item
leaves nothing half-written. Changes to experiments and deletions are recorded in the audit log; logging into your
own runs is the run's own history and is not.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from registry import rawsql
from registry.accounts import grants
from registry.audit import services as audit
from registry.audit.models import AuditAction
from registry.lib.access import Level
from registry.lib.errors import AlreadyExists, Conflict, Forbidden, Invalid, NameClash, NotFound
from registry.lib.metrics import INGEST_POINTS
from registry.lib.names import (
    NameError_,
    case_clash_message,
    check_experiment_name,
    check_key,
    check_tag_key,
)
from registry.lib.numbers import float_from_json
from registry.tracking.access import require_experiment, require_run_write
from registry.tracking.models import (
    PARAM_VALUE_MAX,
    BatchSummary,
    Dataset,
    Experiment,
    MetricPoint,
    MetricSeries,
    Param,
    Run,
    RunInput,
    RunStatus,
    RunStep,
)


class TrackingError(Invalid):
    """Input the tracking layer refuses. `details` lists per-item problems: [{"index": i, "message": ...}]."""

    status = 422
    code = "invalid"


class ParamConflict(TrackingError):
    """A param was logged again with a different value."""

    status = 409
    code = "param_conflict"


def _require_user(by) -> None:
    if by is None or not getattr(by, "is_authenticated", False) or not by.is_active:
        raise Forbidden("Sign in to change the registry.")


def _experiment_name(name: object) -> str:
    try:
        return check_experiment_name(name)
    except NameError_ as exc:
        raise Invalid(str(exc)) from None


def _refuse_case_clash(name: str, *, other_than: Experiment | None = None) -> None:
    """Experiment names are unique ignoring case (a unique index on LOWER(name) holds it)."""
    clash = Experiment.objects.named_ignoring_case(name)
    if other_than is not None:
        clash = clash.exclude(pk=other_than.pk)
    existing = clash.values_list("name", flat=True).first()
    if existing is not None:
        raise _taken(name, existing)


def _taken(name: str, existing: str | None = None) -> Conflict:
    """AlreadyExists for the very name, NameClash for another case of it; the message names the one that exists."""
    if existing is None:
        existing = Experiment.objects.named_ignoring_case(name).values_list("name", flat=True).first() or name
    message = case_clash_message("experiment", name, existing)
    return AlreadyExists(message) if existing == name else NameClash(message)


# --- Experiments ----------------------------------------------------------------------------------------------------


def experiment_create(
    *, name: str, by, description: str = "", tags: Mapping[str, object] | None = None, default_level=None
) -> Experiment:
    """A new experiment owned by `by`; any signed-in user with a write token may create one."""
    _require_user(by)
    name = _experiment_name(name)
    checked = _checked_tags(tags or {})
    _refuse_case_clash(name)
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(
                name=name, description=description, tags=checked, owner=by, default_level=default_level
            )
            audit.record(AuditAction.EXPERIMENT_CREATED, actor=by, experiment=experiment, to_value=name)
    except IntegrityError:
        raise _taken(name) from None
    return experiment


def experiment_named(name: str, *, by) -> Experiment:
    """The experiment called `name`, created (owned by `by`) when there is none: what logging to a named experiment
    does. Whether `by` may log runs there is run_create's question. Every new run asks, so the lookup is
    hand-written (see registry.rawsql)."""
    experiment = rawsql.get(Experiment, name=name)
    if experiment is not None:
        return experiment
    try:
        return experiment_create(name=name, by=by)
    except AlreadyExists:  # created by a concurrent call
        return Experiment.objects.get(name=name)


def experiment_rename(*, experiment: Experiment, name: str, by) -> Experiment:
    """Rename an experiment (MANAGE)."""
    require_experiment(experiment, by, Level.MANAGE, doing="rename")
    name = _experiment_name(name)
    old = experiment.name
    if name == old:
        return experiment
    if experiment.is_default:
        raise Invalid("The Default experiment keeps its name: runs logged without an experiment land there.")
    _refuse_case_clash(name, other_than=experiment)
    try:
        with transaction.atomic():
            Experiment.objects.filter(pk=experiment.pk).update(name=name, updated_at=timezone.now())
            experiment.name = name
            audit.record(AuditAction.EXPERIMENT_RENAMED, actor=by, experiment=experiment, from_value=old, to_value=name)
    except IntegrityError:
        experiment.name = old
        raise _taken(name) from None
    return experiment


def experiment_update(
    *, experiment: Experiment, by, description: str | None = None, tags: Mapping[str, object] | None = None
) -> Experiment:
    """Change the description and/or merge tags (EDIT)."""
    require_experiment(experiment, by, Level.EDIT, doing="change")
    checked = _checked_tags(tags) if tags is not None else None
    with transaction.atomic():
        locked = Experiment.objects.select_for_update().only("description", "tags").get(pk=experiment.pk)
        changes: dict = {}
        if description is not None and description != locked.description:
            changes["description"] = description
        if checked:
            merged = {**locked.tags, **checked}
            if merged != locked.tags:
                changes["tags"] = merged
        if changes:
            Experiment.objects.filter(pk=experiment.pk).update(**changes, updated_at=timezone.now())
            for field, value in changes.items():
                setattr(experiment, field, value)
            audit.record(
                AuditAction.EXPERIMENT_UPDATED,
                actor=by,
                experiment=experiment,
                data={k: v if k == "tags" else str(v)[:2000] for k, v in changes.items()},
            )
    return experiment


def experiment_tag_delete(*, experiment: Experiment, key: str, by) -> Experiment:
    require_experiment(experiment, by, Level.EDIT, doing="change")
    with transaction.atomic():
        locked = Experiment.objects.select_for_update().only("tags").get(pk=experiment.pk)
        if key not in locked.tags:
            raise NotFound(f"No tag with key {key!r} on experiment {experiment.pk}.")
        tags = {k: v for k, v in locked.tags.items() if k != key}
        Experiment.objects.filter(pk=experiment.pk).update(tags=tags, updated_at=timezone.now())
        experiment.tags = tags
        audit.record(AuditAction.EXPERIMENT_UPDATED, actor=by, experiment=experiment, data={"removed_tag": key})
    return experiment


def experiment_set_deleted(*, experiment: Experiment, deleted: bool, by) -> Experiment:
    """Delete (hide, with its runs) or restore an experiment (MANAGE). The Default experiment stays."""
    require_experiment(experiment, by, Level.MANAGE, doing="delete or restore")
    if deleted and experiment.is_default:
        raise Invalid("The Default experiment cannot be deleted.")
    with transaction.atomic():
        experiment.deleted_at = timezone.now() if deleted else None
        Experiment.objects.filter(pk=experiment.pk).update(deleted_at=experiment.deleted_at, updated_at=timezone.now())
        action = AuditAction.EXPERIMENT_DELETED if deleted else AuditAction.EXPERIMENT_RESTORED
        audit.record(action, actor=by, experiment=experiment)
    return experiment


def _what(experiment: Experiment) -> str:
    return f"experiment {experiment.name!r}"


def experiment_grant_set(*, experiment: Experiment, by, user=None, group=None, level):
    require_experiment(experiment, by, Level.MANAGE, doing="share")
    return grants.grant_set(
        obj=experiment,
        by=by,
        user=user,
        group=group,
        level=level,
        scope={"experiment": experiment},
        what=_what(experiment),
    )


def experiment_grant_revoke(*, experiment: Experiment, by, user=None, group=None) -> None:
    require_experiment(experiment, by, Level.MANAGE, doing="share")
    grants.grant_revoke(
        obj=experiment, by=by, user=user, group=group, scope={"experiment": experiment}, what=_what(experiment)
    )


def experiment_owner_set(*, experiment: Experiment, by, owner) -> None:
    require_experiment(experiment, by, Level.MANAGE, doing="hand over")
    grants.owner_set(obj=experiment, by=by, owner=owner, scope={"experiment": experiment}, what=_what(experiment))


def experiment_default_level_set(*, experiment: Experiment, by, level) -> None:
    require_experiment(experiment, by, Level.MANAGE, doing="share")
    grants.default_level_set(
        obj=experiment, by=by, level=level, scope={"experiment": experiment}, what=_what(experiment)
    )


def now_ms() -> int:
    return int(time.time() * 1000)


def run_create(
    *,
    by,
    experiment: Experiment | None = None,
    name: str = "",
    start_time: datetime | None = None,
    code: Mapping[str, object] | None = None,
    environment: Mapping[str, object] | None = None,
    image: str = "",
    tags: Mapping[str, str] | None = None,
    run_id: str | None = None,
) -> Run:
    """Start a run in `experiment` (the Default experiment when none): EDIT on the experiment."""
    experiment = experiment or Experiment.default()
    require_experiment(experiment, by, Level.EDIT)
    if experiment.deleted_at is not None:
        raise Invalid(f"The experiment {experiment.pk} must be in the 'active' state; it is deleted.")
    code = dict(code or {})
    environment = dict(environment or {})
    run = Run(
        experiment=experiment,
        name=name,
        user=by,
        start_time=start_time or timezone.now(),
        git_remote=str(code.get("git_remote") or ""),
        git_commit=str(code.get("git_commit") or ""),
        git_branch=str(code.get("git_branch") or ""),
        git_dirty=code.get("git_dirty"),
        entry_point=str(code.get("entry_point") or ""),
        python_version=str(environment.get("python_version") or ""),
        platform=str(environment.get("platform") or ""),
        packages=dict(environment.get("packages") or {}),
        image=image,
        tags=_checked_tags(tags or {}),
    )
    if run_id:
        run.id = run_id
    rawsql.insert(run)  # run.save(force_insert=True), without compiling the INSERT for every new run
    run.__dict__["_level_cache"] = dict(experiment.__dict__.get("_level_cache", {}))
    return run


def run_rename(*, run: Run, name: str, by) -> Run:
    """Rename a run (its writer); recorded in the audit log."""
    require_run_write(run, by)
    if len(name) > 256:
        raise Invalid("Run names are at most 256 characters.")
    with transaction.atomic():
        old = run.name
        Run.objects.filter(pk=run.pk).update(name=name)
        run.name = name
        audit.record(AuditAction.RUN_RENAMED, actor=by, run=run, from_value=old, to_value=name)
    return run


def run_set_deleted(*, run: Run, deleted: bool, by) -> Run:
    """Delete (hide) or restore a run: its writer; recorded in the audit log."""
    require_run_write(run, by)
    with transaction.atomic():
        run.deleted_at = timezone.now() if deleted else None
        Run.objects.filter(pk=run.pk).update(deleted_at=run.deleted_at)
        audit.record(AuditAction.RUN_DELETED if deleted else AuditAction.RUN_RESTORED, actor=by, run=run)
    return run


def run_finish(*, run: Run, by, status: str = RunStatus.FINISHED, end_time: datetime | None = None) -> Run:
    require_run_write(run, by)
    if status not in RunStatus.values:
        raise TrackingError(f"Unknown run status {status!r}; use one of {', '.join(RunStatus.values)}.")
    terminal = status in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)
    if end_time is not None and not terminal:
        raise TrackingError(f"end_time needs a final status (finished, failed or killed), not {status!r}.")
    run.status = status
    if terminal:
        run.end_time = end_time or run.end_time or timezone.now()
        if run.end_time < run.start_time:
            raise TrackingError("A run cannot end before it started.")
    run.save(update_fields=["status", "end_time"])
    return run


def run_steps_set(*, run: Run, by, steps: Iterable[Mapping[str, object]]) -> list[RunStep]:
    """Replace the run's reported pipeline steps with `steps`, in order."""
    require_run_write(run, by)
    rows = [
        RunStep(
            run=run,
            position=position,
            name=str(step["name"]),
            status=str(step.get("status") or RunStep.Status.PENDING),
            started_at=step.get("started_at"),
            ended_at=step.get("ended_at"),
            log_excerpt=str(step.get("log_excerpt") or "")[-20_000:],
        )
        for position, step in enumerate(steps, start=1)
    ]
    with transaction.atomic():
        RunStep.objects.filter(run=run).delete()
        return RunStep.objects.bulk_create(rows)


def _checked_tags(tags: Mapping[str, object]) -> dict[str, str]:
    details = []
    for index, key in enumerate(tags):
        try:
            check_tag_key(key)
        except NameError_ as exc:
            details.append({"index": index, "key": key, "message": str(exc)})
    if details:
        raise TrackingError("Some tags are invalid.", details)
    return {key: str(value) for key, value in tags.items()}


def run_tags_set(*, run: Run, by, tags: Mapping[str, object]) -> Run:
    require_run_write(run, by)
    checked = _checked_tags(tags)
    with transaction.atomic():
        _write_tags(run, checked)
    return run


# Run columns that clients set through tags (MLflow's system tags: mlflow.runName, mlflow.source.git.commit, ...).
RUN_TAG_FIELDS = ("name", "git_remote", "git_commit", "git_branch", "git_dirty", "entry_point")


def run_fields_set(*, run: Run, by, fields: Mapping[str, object]) -> Run:
    """Set some of the run's name, code and entry-point columns (RUN_TAG_FIELDS)."""
    require_run_write(run, by)
    unknown = set(fields) - set(RUN_TAG_FIELDS)
    if unknown:
        raise TrackingError(f"These run fields cannot be set this way: {', '.join(sorted(unknown))}.")
    Run.objects.filter(pk=run.pk).update(**fields)
    for field, value in fields.items():
        setattr(run, field, value)
    return run


def run_tag_delete(*, run: Run, by, key: str) -> Run:
    require_run_write(run, by)
    with transaction.atomic():
        locked = Run.objects.select_for_update().only("id", "tags").get(pk=run.pk)
        if key not in locked.tags:
            raise NotFound(f"Run {run.pk} has no tag {key!r}.")
        locked.tags = {k: v for k, v in locked.tags.items() if k != key}
        locked.save(update_fields=["tags"])
        run.tags = locked.tags
    return run


def _write_tags(run: Run, checked: dict[str, str]) -> None:
    locked = Run.objects.select_for_update().only("id", "tags").get(pk=run.pk)
    locked.tags = {**locked.tags, **checked}
    locked.save(update_fields=["tags"])
    run.tags = locked.tags


def log_batch(
    *, run: Run, by, params: Mapping[str, object], points: Iterable[Point | tuple], tags: Mapping[str, object]
) -> tuple[int, int, int]:
    """Params, metric points and tags of one run: all validated first, then written in one transaction (without the
    savepoints that calling the three services in turn would add). Returns how many of each were written."""
    require_run_write(run, by)
    values = _checked_params(params)
    by_key = _checked_points(points)
    checked_tags = _checked_tags(tags)
    written = 0
    with _telemetry_transaction():
        if values:
            _write_params(run, values)
        if by_key:
            written = _write_points(run, by_key)
        if checked_tags:
            _write_tags(run, checked_tags)
    return written, len(values), len(checked_tags)


def params_log(*, run: Run, by, params: Mapping[str, object]) -> dict[str, str]:
    """Log params and return them as stored text; logging the same value again is fine, a different value is a
    ParamConflict (and nothing of the call is written)."""
    require_run_write(run, by)
    values = _checked_params(params)
    if values:
        with transaction.atomic():
            _write_params(run, values)
    return values


def _checked_params(params: Mapping[str, object]) -> dict[str, str]:
    values: dict[str, str] = {}
    details = []
    for index, (key, raw) in enumerate(params.items()):
        value = "" if raw is None else str(raw)
        try:
            check_key(key, what="param key")
        except NameError_ as exc:
            details.append({"index": index, "key": key, "message": str(exc)})
            continue
        if len(value) > PARAM_VALUE_MAX:
            details.append(
                {
                    "index": index,
                    "key": key,
                    "message": f"Param values are at most {PARAM_VALUE_MAX} characters.",
                }
            )
            continue
        values[key] = value
    if details:
        raise TrackingError("Some params are invalid; none were logged.", details)
    return values


def _write_params(run: Run, values: dict[str, str]) -> None:
    """Insert the params the run does not have yet; those it had already are compared with what is stored (in the
    caller's transaction, which a ParamConflict rolls back). A first logging is one statement: the INSERT answers
    with the keys it wrote, and only the others are read back."""
    connection = rawsql.connection_for(Param, write=True)
    table, run_col = rawsql.table(Param), rawsql.column(Param, "run")
    key_col, value_col = rawsql.column(Param, "key"), rawsql.column(Param, "value")
    items = sorted(values.items())  # in key order: concurrent batches wait for each other's keys, never in a cycle
    written = set()
    for rows in rawsql.chunks(items):
        written.update(
            key
            for (key,) in rawsql.fetchall(
                connection,
                f"INSERT INTO {table} ({run_col}, {key_col}, {value_col}) VALUES {rawsql.values_rows(len(rows), 3)}"
                f" ON CONFLICT DO NOTHING RETURNING {key_col}",
                [value for key, text in rows for value in (run.pk, key, text)],
            )
        )
    logged_before = [key for key in values if key not in written]
    if not logged_before:
        return
    stored = {}
    for keys in rawsql.chunks(logged_before):
        stored.update(
            rawsql.fetchall(
                connection,
                f"SELECT {key_col}, {value_col} FROM {table}"
                f" WHERE {run_col} = %s AND {key_col} IN ({rawsql.placeholders(len(keys))})",
                [run.pk, *keys],
            )
        )
    conflicts = [
        {"key": key, "message": f"Already logged as {stored[key]!r}; params cannot change."}
        for key in logged_before
        if stored[key] != values[key]
    ]
    if conflicts:
        raise ParamConflict("Params cannot change once logged.", conflicts)


class Point(NamedTuple):
    """One metric point. A tuple: a batch holds up to 100,000 of them, and tuples are the cheapest to make."""

    key: str
    value: float
    step: int = 0
    timestamp: int | None = None


_INT64 = range(-(2**63), 2**63)


def metrics_log(*, run: Run, by, points: Iterable[Point | tuple]) -> int:
    """Append points to the run's metric histories and bring each metric's summary row up to date.

    Returns the number of points written. Everything is validated before anything is written; then, in one
    transaction, missing series rows are created, the points go in with one executemany and the summaries with
    another. Hand-written SQL (registry.rawsql): per point, the ORM's bulk_create costs more than the database does.
    """
    require_run_write(run, by)
    by_key = _checked_points(points)
    if not by_key:
        return 0
    with _telemetry_transaction():
        return _write_points(run, by_key)


@contextlib.contextmanager
def _telemetry_transaction():
    """A transaction for a run's points, params and tags. With METRICS_ASYNC_COMMIT on PostgreSQL its commit does not
    wait for the WAL flush (`SET LOCAL synchronous_commit TO OFF`: this transaction only, and only when it is not
    part of a caller's, whose other writes must stay durable). A crash of the database server can then lose points
    acknowledged in its last fraction of a second, never half a batch."""
    connection = rawsql.connection_for(MetricPoint, write=True)
    relaxed = settings.METRICS_ASYNC_COMMIT and connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic(using=connection.alias):
        if relaxed:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


def _checked_points(points: Iterable[Point | tuple]) -> dict[str, list[tuple[int, int, float]]]:
    """{key: [(step, timestamp, value)]} from (key, value, step, timestamp) points, or a TrackingError listing every
    invalid point by index."""
    default_ts = now_ms()
    by_key: dict[str, list[tuple[int, int, float]]] = {}
    details = []
    for index, (key, value, step, timestamp) in enumerate(points):
        rows = by_key.get(key) if type(key) is str else None
        if rows is None:
            try:
                check_key(key, what="metric key")
            except (NameError_, TypeError) as exc:
                details.append({"index": index, "key": key, "message": str(exc)})
                continue
            rows = by_key[key] = []
        try:
            value = value if type(value) is float else float_from_json(value)
            step = int(step)
            timestamp = default_ts if timestamp is None else int(timestamp)
        except (TypeError, ValueError, OverflowError) as exc:
            details.append({"index": index, "key": key, "message": str(exc)})
            continue
        if step not in _INT64 or timestamp not in _INT64:
            what = "step" if step not in _INT64 else "timestamp"
            details.append({"index": index, "key": key, "message": f"A {what} must fit in 64 bits."})
            continue
        rows.append((step, timestamp, value))
    if details:
        raise TrackingError("Some metric points are invalid; none were logged.", details)
    return {key: rows for key, rows in by_key.items() if rows}


def _write_points(run: Run, by_key: dict[str, list[tuple[int, int, float]]]) -> int:
    """The points of one batch and their keys' summaries, in the caller's transaction: one upsert folds each key's
    summary into its series row (created where missing, and locked), then the points go in with one COPY
    (PostgreSQL) or executemany."""
    connection = rawsql.connection_for(MetricPoint, write=True)
    series_ids = MetricSeries.objects.merge_batch(run.pk, [_batch_summary(key, rows) for key, rows in by_key.items()])
    rows = []
    for key, key_rows in by_key.items():
        series_id = series_ids[key]
        # NaN is stored as NULL on every database (see NaNFloatField); v != v only for NaN.
        rows += [(series_id, step, ts, None if v != v else v) for step, ts, v in key_rows]
    rawsql.insert_rows(connection, MetricPoint, ("series", "step", "timestamp", "value"), rows)
    INGEST_POINTS.inc(len(rows))
    return len(rows)


def _batch_summary(key: str, rows: list[tuple[int, int, float]]) -> BatchSummary:
    """A key's (step, timestamp, value) rows summed up for MetricSeries.objects.merge_batch: NaN (v != v) is left
    out of min and max, and stored as NULL."""
    finite = [v for _, _, v in rows if v == v]
    newest = rows[0]
    step, ts = newest[0], newest[1]
    for row in rows:
        if row[0] > step or (row[0] == step and row[1] >= ts):
            newest, step, ts = row, row[0], row[1]
    value = newest[2]
    return BatchSummary(
        key=key,
        count=len(rows),
        min_value=min(finite) if finite else None,
        max_value=max(finite) if finite else None,
        last_step=step,
        last_timestamp=ts,
        last_value=None if value != value else value,
    )


def dataset_register(
    *,
    by,
    name: str,
    digest: str,
    source_uri: str = "",
    source_type: str = "",
    schema: list | None = None,
    profile: dict | None = None,
) -> Dataset:
    """Return the dataset with this (name, digest), creating it on first sight (any signed-in writer may: datasets
    are content-addressed). Content never changes a digest."""
    _require_user(by)
    if not name or not digest:
        raise TrackingError("A dataset needs a name and a digest.")
    dataset, _ = Dataset.objects.get_or_create(
        name=name,
        digest=digest,
        defaults={
            "source_uri": source_uri,
            "source_type": source_type,
            "schema": schema or [],
            "profile": profile or {},
            "created_by": by,
        },
    )
    return dataset


def run_input_add(
    *, run: Run, by, dataset: Dataset, context: str = "training", tags: list[dict[str, str]] | None = None
) -> RunInput:
    """Link a dataset to the run in a context; `tags` (MLflow's input tags, as logged) replace the link's tags."""
    require_run_write(run, by)
    if not context:
        raise TrackingError("A dataset's context must not be empty (training, validation, test, evaluation...).")
    run_input, created = RunInput.objects.get_or_create(
        run=run, dataset=dataset, context=context, defaults={"tags": tags}
    )
    if not created and tags is not None and run_input.tags != tags:
        run_input.tags = tags
        run_input.save(update_fields=["tags"])
    return run_input
