"""MLflow tracking endpoints: experiments, runs, logging, metric history, inputs and outputs."""

from __future__ import annotations

import json

from django.db import transaction
from django.http import HttpRequest, HttpResponse

from registry.lib.numbers import float_from_json
from registry.mlflow_compat import search, services, wire
from registry.mlflow_compat.auth import Caller
from registry.mlflow_compat.errors import invalid, not_found
from registry.mlflow_compat.inputs import (
    Params,
    decode_cursor,
    encode_cursor,
    missing_value,
    ms_to_datetime,
    page,
    to_int,
    to_str,
)
from registry.mlflow_compat.views.common import (
    experiment_ids,
    experiment_or_404,
    run_id_param,
    run_or_404,
    runs_for_output,
    writable_run,
)
from registry.tracking import services as tracking
from registry.tracking.models import Experiment, MetricPoint, MetricSeries

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
SEARCH_RUNS_DEFAULT = 1000
SEARCH_RUNS_MAX = 50_000
HISTORY_PAGE = 25_000
HISTORY_MAX_PAGE = 100_000
VIEW_TYPES = {
    "ACTIVE_ONLY": "active",
    "1": "active",
    "DELETED_ONLY": "deleted",
    "2": "deleted",
    "ALL": "all",
    "3": "all",
}
RUN_STATUS_NUMBERS = {"1": "RUNNING", "2": "SCHEDULED", "3": "FINISHED", "4": "FAILED", "5": "KILLED"}


def _view_type(params: Params, name: str) -> str:
    value = params.str(name, default="ACTIVE_ONLY").upper()
    if value not in VIEW_TYPES:
        raise invalid(f"{name} must be ACTIVE_ONLY, DELETED_ONLY or ALL (got {value!r}).")
    return VIEW_TYPES[value]


def _by_lifecycle(queryset, view: str):
    if view == "active":
        return queryset.filter(deleted_at__isnull=True)
    if view == "deleted":
        return queryset.filter(deleted_at__isnull=False)
    return queryset


# --- Experiments ----------------------------------------------------------------------------------------------------


def get_experiment_by_name(request: HttpRequest, params: Params, caller: Caller) -> dict:
    name = params.str("experiment_name", required=True)
    experiment = Experiment.objects.readable_by(caller.user).filter(name=name).first()
    if experiment is None:
        raise not_found(f"Could not find experiment with name '{name}'")
    return {"experiment": wire.experiment_json(experiment)}


def create_experiment(request: HttpRequest, params: Params, caller: Caller) -> dict:
    experiment = services.experiment_create(
        name=params.str("name", required=True),
        tags=services.checked_tags(params.objects("tags"), "experiment tag"),
        by=caller.user,
        artifact_location=params.str("artifact_location"),
    )
    return {"experiment_id": str(experiment.pk)}


def get_experiment(request: HttpRequest, params: Params, caller: Caller) -> dict:
    experiment = experiment_or_404(params.str("experiment_id", required=True), caller.user)
    return {"experiment": wire.experiment_json(experiment)}


def search_experiments(request: HttpRequest, params: Params, caller: Caller) -> dict:
    queryset = _by_lifecycle(Experiment.objects.readable_by(caller.user), _view_type(params, "view_type"))
    queryset = search.filter_rows(
        queryset, params.str("filter"), search.EXPERIMENT_ATTRIBUTES, tag_columns={wire.NOTE_TAG: "description"}
    )
    queryset = search.order_rows(
        queryset, params.strings("order_by"), search.EXPERIMENT_ATTRIBUTES, ["-created_at", "pk"]
    )
    rows, token = page(queryset, params, default=1000, maximum=50_000)
    body = {"experiments": [wire.experiment_json(e) for e in rows]}
    if token:
        body["next_page_token"] = token
    return body


def delete_experiment(request: HttpRequest, params: Params, caller: Caller) -> dict:
    experiment = experiment_or_404(params.str("experiment_id", required=True), caller.user)
    tracking.experiment_set_deleted(experiment=experiment, deleted=True, by=caller.user)
    return {}


def restore_experiment(request: HttpRequest, params: Params, caller: Caller) -> dict:
    experiment = experiment_or_404(params.str("experiment_id", required=True), caller.user)
    tracking.experiment_set_deleted(experiment=experiment, deleted=False, by=caller.user)
    return {}


def update_experiment(request: HttpRequest, params: Params, caller: Caller) -> dict:
    experiment = experiment_or_404(params.str("experiment_id", required=True), caller.user)
    if "new_name" in params:
        tracking.experiment_rename(experiment=experiment, name=params.str("new_name"), by=caller.user)
    return {}


def set_experiment_tag(request: HttpRequest, params: Params, caller: Caller) -> dict:
    experiment = experiment_or_404(params.str("experiment_id", required=True), caller.user)
    tags = services.checked_tags([{"key": params.raw("key"), "value": params.raw("value")}], "experiment tag")
    for key, value in tags.items():
        services.experiment_tag_set(experiment=experiment, key=key, value=value, by=caller.user)
    return {}


def delete_experiment_tag(request: HttpRequest, params: Params, caller: Caller) -> dict:
    experiment = experiment_or_404(params.str("experiment_id", required=True), caller.user)
    services.experiment_tag_set(experiment=experiment, key=params.str("key", required=True), value=None, by=caller.user)
    return {}


# --- Runs -----------------------------------------------------------------------------------------------------------


def _run_status(params: Params) -> str | None:
    value = params.raw("status")
    if value is None or value == "":
        return None
    text = str(value).upper()
    text = RUN_STATUS_NUMBERS.get(text, text)
    if text not in wire.RUN_STATUS_FROM_MLFLOW:
        raise invalid(f"Run status must be one of {', '.join(RUN_STATUS_NUMBERS.values())} (got {value!r}).")
    return wire.RUN_STATUS_FROM_MLFLOW[text]


def create_run(request: HttpRequest, params: Params, caller: Caller) -> dict:
    experiment = experiment_or_404(params.str("experiment_id") or "0", caller.user)
    if experiment.deleted_at is not None:
        raise invalid(f"The experiment {experiment.pk} must be in the 'active' state; it is deleted.")
    tags = services.checked_tags(params.objects("tags"), "run tag")
    run_name = params.str("run_name", max_length=256)
    if run_name:
        tags[wire.RUN_NAME_TAG] = run_name
    columns, plain = wire.split_run_tags(tags)
    start = params.int("start_time", minimum=0)
    with transaction.atomic():
        run = tracking.run_create(
            experiment=experiment,
            name=columns.pop("name", ""),
            by=caller.user,
            start_time=ms_to_datetime(start, "start_time") if start is not None else None,
            code=columns,
            tags=plain,
        )
    return {"run": wire.run_json(run_or_404(run.pk, caller.user, details=True))}


def update_run(request: HttpRequest, params: Params, caller: Caller) -> dict:
    run = writable_run(params, caller.user)
    status = _run_status(params)
    end = params.int("end_time", minimum=0)
    name = params.str("run_name", max_length=256)
    with transaction.atomic():
        if name:
            tracking.run_rename(run=run, name=name, by=caller.user)
        if status is not None or end is not None:
            tracking.run_finish(
                run=run,
                by=caller.user,
                status=status or run.status,
                end_time=ms_to_datetime(end, "end_time") if end is not None else None,
            )
    return {"run_info": wire.run_info_json(run)}


def _set_deleted(params: Params, caller: Caller, deleted: bool) -> dict:
    run = run_or_404(run_id_param(params), caller.user)
    tracking.run_set_deleted(run=run, deleted=deleted, by=caller.user)
    return {}


def delete_run(request: HttpRequest, params: Params, caller: Caller) -> dict:
    return _set_deleted(params, caller, True)


def restore_run(request: HttpRequest, params: Params, caller: Caller) -> dict:
    return _set_deleted(params, caller, False)


def get_run(request: HttpRequest, params: Params, caller: Caller) -> dict:
    return {"run": wire.run_json(run_or_404(run_id_param(params), caller.user, details=True))}


def search_runs(request: HttpRequest, params: Params, caller: Caller) -> dict:
    ids = experiment_ids(params.strings("experiment_ids"))
    queryset = _by_lifecycle(runs_for_output().readable_by(caller.user), _view_type(params, "run_view_type"))
    if ids:
        queryset = queryset.filter(experiment_id__in=ids)
    queryset = search.search_runs(queryset, params.str("filter"), params.strings("order_by"))
    rows, token = page(queryset, params, default=SEARCH_RUNS_DEFAULT, maximum=SEARCH_RUNS_MAX)
    body = {"runs": [wire.run_json(run) for run in rows]}
    if token:
        body["next_page_token"] = token
    return body


# --- Logging --------------------------------------------------------------------------------------------------------


def _metric(item: dict, where: str) -> services.MetricIn:
    """One metric; `where` prefixes the field names in messages (`metrics[3].`, or nothing for log-metric)."""
    key = to_str(item.get("key"), f"{where}key", required=True)
    raw = item.get("value")
    if raw is None:
        raise missing_value(f"{where}value")
    try:
        value = float_from_json(raw)
    except (ValueError, OverflowError) as exc:
        raise invalid(f"Metric {key!r}: {exc}") from None
    timestamp = item.get("timestamp")
    if timestamp is None or timestamp == "":
        raise missing_value(f"{where}timestamp")
    return services.MetricIn(
        tracking.Point(
            key, value, to_int(item.get("step") or 0, f"{where}step"), to_int(timestamp, f"{where}timestamp")
        ),
        model_id=to_str(item.get("model_id"), f"{where}model_id", max_length=34),
        dataset_name=to_str(item.get("dataset_name"), f"{where}dataset_name", max_length=256),
        dataset_digest=to_str(item.get("dataset_digest"), f"{where}dataset_digest", max_length=128),
    )


def _metrics(items: list[dict], batch: bool = True) -> tuple[list[tracking.Point], list[services.MetricIn]]:
    """(plain run points, metrics that name a logged model). The common shape, a float with integer step and
    timestamp, takes a short path: a batch holds a thousand of them."""
    points, model_metrics = [], []
    point = tracking.Point
    for index, item in enumerate(items):
        key, value, step, timestamp = item.get("key"), item.get("value"), item.get("step", 0), item.get("timestamp")
        if (
            type(key) is str
            and key
            and (type(value) is float or (type(value) is int and -(2**53) <= value <= 2**53))
            and type(step) is int
            and type(timestamp) is int
            and not item.get("model_id")
        ):
            points.append(point(key, float(value), step, timestamp))
            continue
        metric = _metric(item, f"metrics[{index}]." if batch else "")
        if metric.model_id:
            model_metrics.append(metric)
        else:
            points.append(metric.point)
    return points, model_metrics


def _params(items: list[dict], batch: bool = True) -> dict[str, str]:
    params: dict[str, str] = {}
    for index, item in enumerate(items):
        where = f"params[{index}]." if batch else ""
        key = to_str(item.get("key"), f"{where}key", required=True)
        value = to_str(item.get("value"), f"{where}value")
        if key in params and params[key] != value:
            raise invalid(f"Duplicate param key {key!r} with different values in one batch.")
        params[key] = value
    return params


def log_metric(request: HttpRequest, params: Params, caller: Caller) -> dict:
    run = writable_run(params, caller.user)
    points, model_metrics = _metrics([params.data], batch=False)
    services.metrics_log(run=run, by=caller.user, points=points, model_metrics=model_metrics)
    return {}


def log_param(request: HttpRequest, params: Params, caller: Caller) -> dict:
    run = writable_run(params, caller.user)
    tracking.params_log(run=run, by=caller.user, params=_params([params.data], batch=False))
    return {}


def set_tag(request: HttpRequest, params: Params, caller: Caller) -> dict:
    run = writable_run(params, caller.user)
    tags = services.checked_tags([{"key": params.raw("key"), "value": params.raw("value")}], "run tag")
    services.run_tags_apply(run=run, by=caller.user, tags=tags)
    return {}


def delete_tag(request: HttpRequest, params: Params, caller: Caller) -> dict:
    run = writable_run(params, caller.user)
    services.run_tag_delete(run=run, by=caller.user, key=params.str("key", required=True))
    return {}


def log_batch(request: HttpRequest, params: Params, caller: Caller) -> dict:
    metrics, param_items, tag_items = params.objects("metrics"), params.objects("params"), params.objects("tags")
    if len(metrics) > MAX_METRICS_PER_BATCH:
        raise invalid(f"A batch holds at most {MAX_METRICS_PER_BATCH} metrics (got {len(metrics)}).")
    if len(param_items) > MAX_PARAMS_PER_BATCH:
        raise invalid(f"A batch holds at most {MAX_PARAMS_PER_BATCH} params (got {len(param_items)}).")
    if len(tag_items) > MAX_TAGS_PER_BATCH:
        raise invalid(f"A batch holds at most {MAX_TAGS_PER_BATCH} tags (got {len(tag_items)}).")
    run = writable_run(params, caller.user)
    points, model_metrics = _metrics(metrics)
    services.log_batch(
        run=run,
        by=caller.user,
        points=points,
        model_metrics=model_metrics,
        params=_params(param_items),
        tags=services.checked_tags(tag_items, "run tag"),
    )
    return {}


def log_inputs(request: HttpRequest, params: Params, caller: Caller) -> dict:
    run = writable_run(params, caller.user)
    datasets = []
    for item in params.objects("datasets"):
        data = item.get("dataset")
        if not isinstance(data, dict):
            raise invalid("Every dataset input needs a dataset.")
        tags = services.checked_tags(item.get("tags") or [], "dataset input tag")
        context = tags.get(wire.CONTEXT_TAG) or "training"
        logged_tags = [{"key": key, "value": value} for key, value in tags.items()]
        if len(context) > 64:
            raise invalid(f"A dataset context is at most 64 characters (got {len(context)}).")
        fields = {
            "name": to_str(data.get("name"), "dataset name", max_length=256, required=True),
            "digest": to_str(data.get("digest"), "dataset digest", max_length=128, required=True),
        }
        for key in ("source_type", "source", "schema", "profile"):
            data[key] = to_str(data.get(key), f"dataset {key}")
        translated = wire.dataset_from_json(data)
        if len(translated["source_uri"]) > 2048:
            translated["source_uri"] = ""
        translated["source_type"] = translated["source_type"][:64]
        datasets.append(({**fields, **translated}, context, logged_tags))
    models = [to_str(m.get("model_id"), "model_id", required=True) for m in params.objects("models")]
    with transaction.atomic():
        if datasets:
            services.datasets_log(run=run, by=caller.user, datasets=datasets)
        if models:
            services.model_links_add(run=run, by=caller.user, model_ids=models, direction="input")
    return {}


def log_outputs(request: HttpRequest, params: Params, caller: Caller) -> dict:
    run = writable_run(params, caller.user)
    items = params.objects("models")
    model_ids = [to_str(m.get("model_id"), "model_id", required=True) for m in items]
    steps = [to_int(m.get("step") or 0, "step") for m in items]
    services.model_links_add(run=run, by=caller.user, model_ids=model_ids, direction="output", steps=steps)
    return {}


def log_model(request: HttpRequest, params: Params, caller: Caller) -> dict:
    """MLflow 2's record of a model logged under a run: appended to the run's `mlflow.log-model.history` tag."""
    run = writable_run(params, caller.user)
    try:
        model = json.loads(params.str("model_json", required=True))
    except ValueError:
        raise invalid("model_json is not valid JSON.") from None
    with transaction.atomic():
        tags = type(run).objects.select_for_update().values_list("tags", flat=True).get(pk=run.pk)
        try:
            history = json.loads(tags.get("mlflow.log-model.history") or "[]")
        except ValueError:
            history = []
        history = [*(history if isinstance(history, list) else []), model]
        tracking.run_tags_set(run=run, by=caller.user, tags={"mlflow.log-model.history": json.dumps(history)})
    return {}


def get_metric_history(request: HttpRequest, params: Params, caller: Caller) -> dict | HttpResponse:
    """One page of a metric's history, in (step, timestamp) order.

    Pages are read by keyset (the token says where the next page starts), so the thousandth page of a long history
    costs what the first does; rows skip the ORM's per-value conversion, since a page holds up to 100,000 points.
    """
    run = run_or_404(run_id_param(params), caller.user)
    key = params.str("metric_key", required=True)
    series = MetricSeries.objects.filter(run=run, key=key).only("id").first()
    if series is None:
        return {"metrics": []}
    limit = params.int("max_results", default=HISTORY_PAGE, minimum=1, maximum=HISTORY_MAX_PAGE)
    start = decode_cursor(params.str("page_token"), length=3)
    if start is not None and start[2] < 0:
        raise invalid("The page token is not one this server issued; pass back next_page_token unchanged.")
    rows, following = MetricPoint.objects.page_from(series.pk, start, limit)
    token = encode_cursor(list(following)) if following is not None else None
    return HttpResponse(wire.metric_history_json(key, rows, token), content_type="application/json")
