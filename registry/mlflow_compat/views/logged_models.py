"""MLflow 3's logged models: create, read, finalize, tag, search and delete.

Their files go through the artifact proxy into their source run's artifacts (`models/<model id>/`); a logged model
without a run can be recorded but holds no files here.
"""

from __future__ import annotations

from django.http import HttpRequest

from registry.lib.search import SearchError
from registry.mlflow_compat import search, services, wire
from registry.mlflow_compat.auth import Caller
from registry.mlflow_compat.errors import invalid, not_found
from registry.mlflow_compat.inputs import Params, page, to_str
from registry.mlflow_compat.models import LoggedModel
from registry.mlflow_compat.views.common import experiment_ids, experiment_or_404, logged_model_or_404, run_or_404
from registry.tracking.models import Experiment, Run

MAX_PARAMS_PER_REQUEST = 100


def _params(params: Params) -> dict[str, str]:
    items = params.objects("params")
    if len(items) > MAX_PARAMS_PER_REQUEST:
        raise invalid(f"Send at most {MAX_PARAMS_PER_REQUEST} params per request (got {len(items)}).")
    values = services.checked_tags(items, "logged model param")
    too_long = [k for k, v in values.items() if len(v) > 6000]
    if too_long:
        raise invalid(f"Param {too_long[0]!r} is longer than 6000 characters.")
    return values


def create_logged_model(request: HttpRequest, params: Params, caller: Caller) -> dict:
    run_id = params.str("source_run_id", max_length=256)
    # As MLflow, the source run need not be one this registry has: an unknown id is kept as text.
    known = bool(run_id) and Run.objects.filter(pk=run_id.lower()).exists()
    run = run_or_404(run_id, caller.user, write=True) if known else None
    experiment_id = params.str("experiment_id")
    if experiment_id:
        experiment = experiment_or_404(experiment_id, caller.user)
    elif run is not None:
        experiment = Experiment.objects.get(pk=run.experiment_id)
    else:
        raise invalid("A logged model needs an experiment_id or a source_run_id.")
    logged = services.logged_model_create(
        by=caller.user,
        experiment=experiment,
        run=run,
        name=params.str("name", max_length=256),
        model_type=params.str("model_type", max_length=256),
        tags=services.checked_tags(params.objects("tags"), "logged model tag"),
        params=_params(params),
        external_run_id="" if known else run_id,
    )
    return {"model": wire.logged_model_json(logged)}


def get_logged_model(request: HttpRequest, params: Params, caller: Caller, model_id: str) -> dict:
    logged = logged_model_or_404(model_id, caller.user, allow_deleted=params.bool("allow_deleted"))
    return {"model": wire.logged_model_json(logged)}


def finalize_logged_model(request: HttpRequest, params: Params, caller: Caller, model_id: str) -> dict:
    logged = logged_model_or_404(model_id, caller.user)
    status = str(params.raw("status", "")).upper()
    if status not in wire.LOGGED_MODEL_STATUS_FROM_MLFLOW:
        raise invalid(f"status must be one of {', '.join(wire.LOGGED_MODEL_STATUS.values())} (got {status!r}).")
    services.logged_model_finish(
        logged_model=logged, status=wire.LOGGED_MODEL_STATUS_FROM_MLFLOW[status], by=caller.user
    )
    return {"model": wire.logged_model_json(logged)}


def delete_logged_model(request: HttpRequest, params: Params, caller: Caller, model_id: str) -> dict:
    services.logged_model_delete(logged_model=logged_model_or_404(model_id, caller.user), by=caller.user)
    return {}


def set_logged_model_tags(request: HttpRequest, params: Params, caller: Caller, model_id: str) -> dict:
    logged = logged_model_or_404(model_id, caller.user)
    tags = services.checked_tags(params.objects("tags"), "logged model tag")
    services.logged_model_dict_update(logged_model=logged, by=caller.user, field="tags", values=tags)
    return {}


def delete_logged_model_tag(request: HttpRequest, params: Params, caller: Caller, model_id: str, tag_key: str) -> dict:
    logged = logged_model_or_404(model_id, caller.user)
    if tag_key not in logged.tags:
        raise not_found(f"No tag with key {tag_key!r} found for logged model {model_id}.")
    services.logged_model_dict_update(logged_model=logged, by=caller.user, field="tags", values={}, remove=(tag_key,))
    return {}


def log_logged_model_params(request: HttpRequest, params: Params, caller: Caller, model_id: str) -> dict:
    logged = logged_model_or_404(model_id, caller.user)
    services.logged_model_dict_update(logged_model=logged, by=caller.user, field="params", values=_params(params))
    return {}


def _order_texts(params: Params) -> list[str]:
    texts = []
    for item in params.objects("order_by"):
        field = to_str(item.get("field_name"), "order_by field_name", required=True)
        texts.append(f"{field} {'ASC' if item.get('ascending', True) is not False else 'DESC'}")
    return texts


def _with_dataset_metrics(queryset, datasets: list[dict]):
    """Logged models with a metric logged against one of `datasets` (name, and digest when given). Their metrics
    are a JSON list, read for the candidate models only when a search names datasets: one extra query."""
    wanted = []
    for index, item in enumerate(datasets):
        name = to_str(item.get("dataset_name"), f"datasets[{index}].dataset_name", required=True)
        wanted.append((name, to_str(item.get("dataset_digest"), f"datasets[{index}].dataset_digest")))

    def matches(metric) -> bool:
        if not isinstance(metric, dict):
            return False
        return any(
            metric.get("dataset_name") == name and (not digest or metric.get("dataset_digest") == digest)
            for name, digest in wanted
        )

    found = [pk for pk, metrics in queryset.values_list("pk", "metrics") if any(map(matches, metrics or []))]
    return queryset.filter(pk__in=found)


def search_logged_models(request: HttpRequest, params: Params, caller: Caller) -> dict:
    queryset = LoggedModel.objects.active().filter(experiment__in=Experiment.objects.readable_by(caller.user))
    ids = experiment_ids(params.strings("experiment_ids"))
    if ids:
        queryset = queryset.filter(experiment_id__in=ids)
    datasets = params.objects("datasets")
    if datasets:
        queryset = _with_dataset_metrics(queryset, datasets)
    try:
        queryset = search.filter_rows(queryset, params.str("filter"), search.LOGGED_MODEL_ATTRIBUTES)
    except SearchError as exc:
        raise invalid(f"{exc} Logged models are searched by attributes and tags.") from None
    queryset = search.order_rows(queryset, _order_texts(params), search.LOGGED_MODEL_ATTRIBUTES, ["-created_at", "pk"])
    rows, token = page(queryset, params, default=100, maximum=1000)
    body = {"models": [wire.logged_model_json(m) for m in rows]}
    if token:
        body["next_page_token"] = token
    return body
