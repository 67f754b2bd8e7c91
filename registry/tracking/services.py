"""Workflows that write tracking data: creating runs and logging params, metrics and datasets.

Each function validates everything first and writes in one transaction, so a bad item leaves nothing half-written.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db import connections, router, transaction
from django.utils import timezone

from registry.lib.names import NameError_, check_key
from registry.tracking.models import (
    PARAM_VALUE_MAX,
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


class TrackingError(ValueError):
    """Input the tracking layer refuses. `details` lists per-item problems: [{"index": i, "message": ...}]."""

    def __init__(self, message: str, details: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []


class ParamConflict(TrackingError):
    """A param was logged again with a different value."""


def now_ms() -> int:
    return int(time.time() * 1000)


def run_create(
    *,
    experiment: Experiment | None = None,
    name: str = "",
    user=None,
    start_time: datetime | None = None,
    code: Mapping[str, object] | None = None,
    environment: Mapping[str, object] | None = None,
    image: str = "",
    tags: Mapping[str, str] | None = None,
    run_id: str | None = None,
) -> Run:
    code = dict(code or {})
    environment = dict(environment or {})
    run = Run(
        experiment=experiment or Experiment.default(),
        name=name,
        user=user,
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
    run.save(force_insert=True)
    return run


def run_finish(*, run: Run, status: str = RunStatus.FINISHED, end_time: datetime | None = None) -> Run:
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


def run_steps_set(*, run: Run, steps: Iterable[Mapping[str, object]]) -> list[RunStep]:
    """Replace the run's reported pipeline steps with `steps`, in order."""
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
            check_key(key, what="tag key")
        except NameError_ as exc:
            details.append({"index": index, "key": key, "message": str(exc)})
    if details:
        raise TrackingError("Some tags are invalid.", details)
    return {key: str(value) for key, value in tags.items()}


def run_tags_set(*, run: Run, tags: Mapping[str, object]) -> Run:
    checked = _checked_tags(tags)
    with transaction.atomic():
        locked = Run.objects.select_for_update().get(pk=run.pk)
        locked.tags = {**locked.tags, **checked}
        locked.save(update_fields=["tags"])
    run.tags = locked.tags
    return run


def params_log(*, run: Run, params: Mapping[str, object]) -> list[Param]:
    """Log params; logging the same value again is fine, a different value is a ParamConflict."""
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
    if not values:
        return []
    with transaction.atomic():
        Param.objects.bulk_create(
            [Param(run=run, key=key, value=value) for key, value in values.items()], ignore_conflicts=True
        )
        stored = {p.key: p for p in Param.objects.filter(run=run, key__in=list(values))}
        conflicts = [
            {"key": key, "message": f"Already logged as {stored[key].value!r}; params cannot change."}
            for key, value in values.items()
            if stored[key].value != value
        ]
        if conflicts:
            raise ParamConflict("Params cannot change once logged.", conflicts)
    return [stored[key] for key in values]


@dataclass(frozen=True, slots=True)
class Point:
    key: str
    value: float
    step: int = 0
    timestamp: int | None = None


def metrics_log(*, run: Run, points: Iterable[Point]) -> int:
    """Append points to the run's metric histories and bring each metric's summary row up to date.

    Returns the number of points written. Everything is validated before anything is written; then the points go
    in with one executemany (the ORM's bulk_create costs more per row than the database does) and the summaries
    with one bulk update, in one transaction.
    """
    default_ts = now_ms()
    by_key: dict[str, list[Point]] = {}
    key_errors: dict[str, str | None] = {}  # each distinct key is checked once, not once per point
    details = []
    for index, point in enumerate(points):
        key = getattr(point, "key", None)
        if key not in key_errors:
            try:
                check_key(key, what="metric key")
                key_errors[key] = None
            except (NameError_, TypeError) as exc:
                key_errors[key] = str(exc)
        if key_errors[key] is not None:
            details.append({"index": index, "key": key, "message": key_errors[key]})
            continue
        try:
            value = float(point.value)
            step = int(point.step)
            timestamp = default_ts if point.timestamp is None else int(point.timestamp)
        except (TypeError, ValueError, OverflowError) as exc:
            details.append({"index": index, "key": key, "message": str(exc)})
            continue
        if not -(2**63) <= step < 2**63:
            details.append({"index": index, "key": key, "message": "A step must fit in 64 bits."})
            continue
        if not -(2**63) <= timestamp < 2**63:
            details.append({"index": index, "key": key, "message": "A timestamp must fit in 64 bits."})
            continue
        by_key.setdefault(key, []).append(Point(key, value, step, timestamp))
    if details:
        raise TrackingError("Some metric points are invalid; none were logged.", details)
    if not by_key:
        return 0

    with transaction.atomic():
        MetricSeries.objects.bulk_create([MetricSeries(run=run, key=key) for key in by_key], ignore_conflicts=True)
        series_by_key = {
            s.key: s for s in MetricSeries.objects.select_for_update().filter(run=run, key__in=list(by_key))
        }
        rows = []
        for key, key_points in by_key.items():
            series = series_by_key[key]
            _fold_into_summary(series, key_points)
            series_id = series.pk
            # NaN is stored as NULL on every database (see NaNFloatField).
            rows.extend((series_id, p.step, p.timestamp, _nan_to_null(p.value)) for p in key_points)
        _insert_points(rows)
        _update_summaries(series_by_key.values())
    return len(rows)


def _nan_to_null(value: float) -> float | None:
    return None if value != value else value


def _update_summaries(series: Iterable[MetricSeries]) -> None:
    """One executemany UPDATE: bulk_update builds a CASE expression per field and row, which costs more than the
    write itself."""
    connection = connections[router.db_for_write(MetricSeries)]
    quote = connection.ops.quote_name
    fields = ("last_value", "last_step", "last_timestamp", "min_value", "max_value", "count")
    columns = ", ".join(f"{quote(MetricSeries._meta.get_field(name).column)} = %s" for name in fields)
    rows = [
        (
            _nan_to_null(s.last_value),
            s.last_step,
            s.last_timestamp,
            _nan_to_null(s.min_value),
            _nan_to_null(s.max_value),
            s.count,
            s.pk,
        )
        for s in series
    ]
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {quote(MetricSeries._meta.db_table)} SET {columns} WHERE {quote('id')} = %s", rows)


def _insert_points(rows: list[tuple[int, int, int, float | None]]) -> None:
    connection = connections[router.db_for_write(MetricPoint)]
    quote = connection.ops.quote_name
    table = quote(MetricPoint._meta.db_table)
    columns = ", ".join(
        quote(MetricPoint._meta.get_field(name).column) for name in ("series", "step", "timestamp", "value")
    )
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 50_000):
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s)", rows[start : start + 50_000])


def _fold_into_summary(series: MetricSeries, points: list[Point]) -> None:
    had_points = series.count > 0
    lo = series.min_value if had_points else math.nan
    hi = series.max_value if had_points else math.nan
    last = (series.last_step, series.last_timestamp) if had_points else None
    for p in points:
        if not math.isnan(p.value):
            lo = p.value if math.isnan(lo) else min(lo, p.value)
            hi = p.value if math.isnan(hi) else max(hi, p.value)
        if last is None or (p.step, p.timestamp) >= last:
            last = (p.step, p.timestamp)
            series.last_value = p.value
    series.last_step, series.last_timestamp = last
    series.min_value, series.max_value = lo, hi
    series.count += len(points)


def dataset_register(
    *,
    name: str,
    digest: str,
    source_uri: str = "",
    source_type: str = "",
    schema: list | None = None,
    profile: dict | None = None,
) -> Dataset:
    """Return the dataset with this (name, digest), creating it on first sight. Content never changes a digest."""
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
        },
    )
    return dataset


def run_input_add(*, run: Run, dataset: Dataset, context: str = "training") -> RunInput:
    if not context:
        raise TrackingError("A dataset's context must not be empty (training, validation, test, evaluation...).")
    run_input, _ = RunInput.objects.get_or_create(run=run, dataset=dataset, context=context)
    return run_input
