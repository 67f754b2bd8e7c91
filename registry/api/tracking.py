"""Experiments, runs, batched logging, metric history and datasets."""

from __future__ import annotations

from datetime import datetime

import pydantic_core
from django.db import transaction
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Status

from registry.api.errors import ApiError, get_or_404
from registry.api.schemas import (  # noqa: E402  (the bounds the types state)
    HISTORY_MAX_PAGE,
    MAX_OFFSET,
    MAX_PAGE,
    DatasetIn,
    DatasetOut,
    DatasetPage,
    ExperimentIn,
    ExperimentOut,
    ExperimentPage,
    ExperimentPatch,
    HistoryOut,
    Limit,
    LogBatchIn,
    LogBatchOut,
    Offset,
    OrderText,
    RunIn,
    RunInputIn,
    RunInputOut,
    RunOut,
    RunPage,
    RunPatch,
    SeriesOut,
    errors,
)
from registry.keyset import Key, decode_token, encode_token, rows_after
from registry.lib.numbers import float_to_json
from registry.lib.search import parse_filter, parse_order
from registry.lib.series import minmax_downsample
from registry.tracking import services
from registry.tracking.access import dataset_for, experiment_for, run_for
from registry.tracking.models import HISTORY_ORDER, Dataset, Experiment, MetricPoint, MetricSeries, Run, RunInput
from registry.tracking.search import filter_runs, order_runs

router = Router(tags=["tracking"])

ERRORS = errors()
FINAL_STATUSES = ("finished", "failed", "killed")


RUN_KEYS = [Key("start_time", True, datetime), Key("id", False, str)]


def cursor_page(queryset, keys: list[Key], after: str, offset: int, limit: int) -> dict:
    """A page in the default order: by keyset from `after` (a `next_after` token), or from `offset` for clients
    that page by offset. Both tokens come back while paging by offset (a client may switch); only `next_after`
    while paging by `after`."""
    if limit < 1:
        raise ApiError(400, "limit must be ≥ 1.")
    limit = min(limit, MAX_PAGE)
    if not after:
        if not 0 <= offset < MAX_OFFSET:
            raise ApiError(400, f"offset must be ≥ 0 and < {MAX_OFFSET}.")
        rows = list(queryset.order_by(*(k.order() for k in keys))[offset : offset + limit + 1])
        more = len(rows) > limit
        rows = rows[:limit]
        return {
            "rows": rows,
            "next_offset": offset + limit if more else None,
            "next_after": encode_token(keys, rows[-1]) if more and rows else None,
        }
    if offset:
        raise ApiError(400, "Pass after or offset, not both.")
    values = decode_token(keys, after)
    if values is None:
        raise ApiError(400, "after is not a next_after token of this list; start again without it.")
    rows, next_after = rows_after(queryset, keys, values, limit)
    return {"rows": rows, "next_offset": None, "next_after": next_after}


def _page(queryset, offset: int, limit: int):
    # offset and limit are bounded by their types (Offset, Limit): out of range is a 422 before this runs.
    rows = list(queryset[offset : offset + limit + 1])
    next_offset = offset + limit if len(rows) > limit else None
    return rows[:limit], next_offset


# --- Experiments ----------------------------------------------------------------------------------------------------


@router.post("/experiments", response={201: ExperimentOut, **ERRORS}, summary="Create an experiment (you own it)")
def create_experiment(request: HttpRequest, payload: ExperimentIn):
    experiment = services.experiment_create(
        name=payload.name, by=request.user, description=payload.description, tags=payload.tags
    )
    return Status(201, experiment)


@router.get("/experiments", response={200: ExperimentPage, **ERRORS}, summary="List the experiments you may read")
def list_experiments(request: HttpRequest, q: str = "", offset: Offset = 0, limit: Limit = 100):
    queryset = Experiment.objects.active().readable_by(request.user).search(q)
    items, next_offset = _page(queryset.order_by("name"), offset, limit)
    return {"items": items, "next_offset": next_offset}


@router.get("/experiments/{ref}", response={200: ExperimentOut, **ERRORS}, summary="Get an experiment by id or name")
def get_experiment(request: HttpRequest, ref: str):
    return experiment_for(request.user, ref)


@router.patch(
    "/experiments/{ref}",
    response={200: ExperimentOut, **ERRORS},
    summary="Rename an experiment (MANAGE) or edit its description and tags (EDIT)",
)
def update_experiment(request: HttpRequest, ref: str, payload: ExperimentPatch):
    experiment = experiment_for(request.user, ref)
    data = {k: v for k, v in payload.dict(exclude_unset=True).items() if v is not None}
    with transaction.atomic():
        if "name" in data:
            services.experiment_rename(experiment=experiment, name=data["name"], by=request.user)
        if "description" in data or "tags" in data:
            services.experiment_update(
                experiment=experiment, by=request.user, description=data.get("description"), tags=data.get("tags")
            )
    return Experiment.objects.get(pk=experiment.pk)


# --- Runs -----------------------------------------------------------------------------------------------------------


def _runs_with_details():
    return Run.objects.select_related("experiment", "user").prefetch_related(
        "params",
        "metrics",
        "steps",
        Prefetch("inputs", queryset=RunInput.objects.select_related("dataset").only("run_id", "context", "dataset")),
    )


def run_out(run: Run, *, empty: bool = False) -> dict:
    """The run as the API shows it; `empty` skips reading params, metrics, inputs and steps (a run just created)."""
    if empty:
        params, metrics, inputs, steps = [], [], [], []
    else:
        params, metrics, inputs, steps = run.params.all(), run.metrics.all(), run.inputs.all(), run.steps.all()
    return {
        "id": run.id,
        "experiment_id": run.experiment_id,
        "experiment": run.experiment.name,
        "name": run.name,
        "status": run.status,
        "user": run.user.get_username() if run.user else None,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "code": {
            "git_remote": run.git_remote,
            "git_commit": run.git_commit,
            "git_branch": run.git_branch,
            "git_dirty": run.git_dirty,
            "entry_point": run.entry_point,
        },
        "environment": {"python_version": run.python_version, "platform": run.platform, "packages": run.packages},
        "image": run.image,
        "tags": run.tags,
        "params": {p.key: p.value for p in params},
        "metrics": {
            m.key: {
                "value": m.last_value,
                "step": m.last_step,
                "timestamp": m.last_timestamp,
                "min": m.min_value,
                "max": m.max_value,
                "count": m.count,
            }
            for m in metrics
        },
        "inputs": [
            {"dataset_id": i.dataset_id, "name": i.dataset.name, "digest": i.dataset.digest, "context": i.context}
            for i in inputs
        ],
        "steps": list(steps),
    }


@router.post("/runs", response={201: RunOut, **ERRORS}, summary="Start a run")
def create_run(request: HttpRequest, payload: RunIn):
    if payload.experiment_id is not None:
        experiment = experiment_for(request.user, payload.experiment_id)
    elif payload.experiment:
        experiment = services.experiment_named(payload.experiment, by=request.user)
    else:
        experiment = Experiment.default()
    with transaction.atomic():
        run = services.run_create(
            experiment=experiment,
            name=payload.name,
            by=request.user,
            start_time=payload.start_time,
            code=payload.code.dict(),
            environment=payload.environment.dict(),
            image=payload.image,
            tags=payload.tags,
        )
        steps = (
            services.run_steps_set(run=run, by=request.user, steps=[s.dict() for s in payload.steps])
            if payload.steps
            else []
        )
    # A new run has no params, metrics or inputs yet: answer from memory instead of reading it back.
    return Status(201, {**run_out(run, empty=True), "steps": steps})


@router.get("/runs/{run_id}", response={200: RunOut, **ERRORS}, summary="Get a run with its params and metrics")
def get_run(request: HttpRequest, run_id: str):
    return run_out(run_for(request.user, run_id, queryset=_runs_with_details()))


@router.patch("/runs/{run_id}", response={200: RunOut, **ERRORS}, summary="Update a run's status, end time or tags")
def update_run(request: HttpRequest, run_id: str, payload: RunPatch):
    run = run_for(request.user, run_id, write=True)
    data = payload.dict(exclude_unset=True)
    by = request.user
    with transaction.atomic():
        if data.get("name") is not None:
            services.run_rename(run=run, name=data["name"], by=by)
        if data.get("tags"):
            services.run_tags_set(run=run, by=by, tags=data["tags"])
        if data.get("steps") is not None:
            services.run_steps_set(run=run, by=by, steps=data["steps"])
        if data.get("status") or data.get("end_time"):
            status = data.get("status") or run.status
            end_time = data.get("end_time")
            # What the schema cannot say: the run's own state (the schema already ties end_time to a final status
            # sent in the body).
            if end_time is not None and status not in FINAL_STATUSES:
                message = f"The run is {status}: send a final status (finished, failed or killed) with end_time."
                raise ApiError(409, message)
            if end_time is not None and end_time < run.start_time:
                raise ApiError(409, f"A run cannot end before it started ({run.start_time.isoformat()}).")
            services.run_finish(run=run, by=by, status=status, end_time=end_time)
    return run_out(run_for(by, run.pk, queryset=_runs_with_details()))


@router.get("/runs", response={200: RunPage, **ERRORS}, summary="Search runs")
def search_runs(
    request: HttpRequest,
    experiment: str = "",
    status: str = "",
    filter: str = Query("", description="e.g. metrics.f1 > 0.9 AND params.optimizer = 'adam'"),
    order_by: list[OrderText] = Query(
        [], description="e.g. metrics.f1 DESC; repeat for more keys. The search grammar: a 400 names what is wrong."
    ),
    offset: Offset = 0,
    limit: Limit = 100,
    after: str = Query("", description="`next_after` of the previous page (default order only)"),
):
    queryset = _runs_with_details().readable_by(request.user).filter(deleted_at__isnull=True)
    if experiment:
        queryset = queryset.filter(experiment=experiment_for(request.user, experiment))
    if status:
        queryset = queryset.filter(status=status.lower())
    queryset = filter_runs(queryset, parse_filter(filter))
    orders = [parse_order(text) for text in order_by]
    if not orders:
        page = cursor_page(queryset, RUN_KEYS, after, offset, limit)
        rows = page.pop("rows")
        return {**page, "items": [run_out(run) for run in rows]}
    if after:
        raise ApiError(400, "after pages the default order only (newest run first); use offset with order_by.")
    items, next_offset = _page(order_runs(queryset, orders, tiebreak=["-start_time", "id"]), offset, limit)
    return {"items": [run_out(run) for run in items], "next_offset": next_offset}


@router.post(
    "/runs/{run_id}/log-batch",
    response={200: LogBatchOut, **ERRORS},
    summary="Log metrics, params and tags of one run in one transaction",
    description="Up to 100,000 metric points per request. All items are validated first; if any is invalid nothing "
    "is written and `details` lists each problem with its index.",
)
def log_batch(request: HttpRequest, run_id: str, payload: LogBatchIn):
    run = run_for(request.user, run_id, write=True)
    if run.deleted_at is not None:
        raise ApiError(409, f"Run {run.pk} is deleted.")
    points = [(m["key"], m["value"], m.get("step", 0), m.get("timestamp")) for m in payload.metrics]
    metrics, params, tags = services.log_batch(
        run=run, by=request.user, params=payload.params, points=points, tags=payload.tags
    )
    return {"metrics": metrics, "params": params, "tags": tags}


def _series_or_404(request: HttpRequest, run_id: str, key: str) -> MetricSeries:
    run = run_for(request.user, run_id)
    series = MetricSeries.objects.only("id", "key", "count")
    return get_or_404(series, f"Run {run_id!r} has no metric {key!r}.", run_id=run.pk, key=key)


@router.get(
    "/runs/{run_id}/metrics/history",
    response={200: HistoryOut, **ERRORS},
    summary="A metric's full history, in pages of columns (steps, timestamps, values)",
    description="Pages hold up to 100,000 points, ordered by step then timestamp.",
)
def metric_history(
    request: HttpRequest,
    run_id: str,
    key: str,
    offset: Offset = 0,
    limit: int = Query(25_000, ge=1, le=HISTORY_MAX_PAGE, description=f"Points per page, at most {HISTORY_MAX_PAGE}."),
):
    series = _series_or_404(request, run_id, key)
    rows = MetricPoint.objects.page_of(series.pk, offset=offset, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    # Built by hand: 100,000 points through pydantic would cost more than the query. NaN is stored as NULL; a
    # finite v has v - v == 0, so only NaN and the infinities take the slow path.
    body = {
        "key": series.key,
        "steps": [r[0] for r in rows],
        "timestamps": [r[1] for r in rows],
        "values": ["NaN" if v is None else v if v - v == 0 else float_to_json(v) for v in (r[2] for r in rows)],
        "next_offset": offset + limit if more else None,
    }
    # pydantic's serializer writes these long lists of numbers several times faster than json.dumps.
    return HttpResponse(pydantic_core.to_json(body), content_type="application/json")


@router.get(
    "/runs/{run_id}/metrics/series",
    response={200: SeriesOut, **ERRORS},
    summary="A metric's history downsampled for charts (each bucket keeps its min and max)",
)
def metric_series(request: HttpRequest, run_id: str, key: str, max_points: int = Query(2000, ge=4, le=100_000)):
    series = _series_or_404(request, run_id, key)
    rows = list(MetricPoint.objects.filter(series=series).order_by(*HISTORY_ORDER).values_list("step", "value"))
    steps, values = minmax_downsample([r[0] for r in rows], [r[1] for r in rows], max_points)
    return {
        "key": series.key,
        "total_points": len(rows),
        "downsampled": len(steps) < len(rows),
        "steps": steps,
        "values": values,
    }


@router.post("/runs/{run_id}/inputs", response={201: RunInputOut, **ERRORS}, summary="Link a dataset to a run")
def add_run_input(request: HttpRequest, run_id: str, payload: RunInputIn):
    run = run_for(request.user, run_id, write=True)
    dataset = dataset_for(request.user, payload.dataset_id)
    run_input = services.run_input_add(run=run, by=request.user, dataset=dataset, context=payload.context)
    return Status(
        201, {"dataset_id": dataset.pk, "name": dataset.name, "digest": dataset.digest, "context": run_input.context}
    )


# --- Datasets -------------------------------------------------------------------------------------------------------


@router.post(
    "/datasets",
    response={200: DatasetOut, 201: DatasetOut, **ERRORS},
    summary="Register a dataset (idempotent by name and digest)",
    by_alias=True,
)
def register_dataset(request: HttpRequest, payload: DatasetIn):
    existed = Dataset.objects.filter(name=payload.name, digest=payload.digest).exists()
    dataset = services.dataset_register(
        by=request.user,
        name=payload.name,
        digest=payload.digest,
        source_uri=payload.source_uri,
        source_type=payload.source_type,
        schema=[c.dict() for c in payload.schema_],
        profile=payload.profile,
    )
    return Status(200 if existed else 201, dataset)


# by_alias: the field is `schema_` in Python (pydantic reserves `schema`) and `schema` in JSON.
@router.get("/datasets", response={200: DatasetPage, **ERRORS}, summary="List datasets", by_alias=True)
def list_datasets(request: HttpRequest, name: str = "", digest: str = "", offset: Offset = 0, limit: Limit = 100):
    queryset = Dataset.objects.readable_by(request.user)
    if name:
        queryset = queryset.filter(name=name)
    if digest:
        queryset = queryset.filter(digest=digest)
    items, next_offset = _page(queryset.order_by("name", "-created_at", "id"), offset, limit)
    return {"items": items, "next_offset": next_offset}


@router.get("/datasets/{dataset_id}", response={200: DatasetOut, **ERRORS}, summary="Get a dataset", by_alias=True)
def get_dataset(request: HttpRequest, dataset_id: int):
    return dataset_for(request.user, dataset_id)
