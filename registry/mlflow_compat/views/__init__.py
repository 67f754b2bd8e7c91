"""The MLflow REST API: a route table, one dispatching view, and the artifact proxy.

    MLFLOW_TRACKING_URI=https://registry.example.com  MLFLOW_TRACKING_TOKEN=mrt_...  python train.py

Each route names its handler and whether it writes; the dispatcher authenticates the caller, refuses writes to
read-only tokens, reads the parameters (query string for GET, a JSON object of at most 1 MB otherwise), and turns
every refusal into MLflow's error JSON with MLflow's status code. Only a genuine bug is a 500.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, UnreadablePostError
from django.views.decorators.csrf import csrf_exempt

from registry.catalog import transfers
from registry.mlflow_compat.auth import Caller, authenticate_caller, require_write
from registry.mlflow_compat.errors import (
    ENDPOINT_NOT_FOUND,
    INTERNAL_ERROR,
    MlflowError,
    error_response,
    invalid,
    json_response,
    translate,
)
from registry.mlflow_compat.inputs import Params
from registry.mlflow_compat.views import artifacts, logged_models, permissions, registry, tracking, webhooks

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern
    handler: Callable
    writes: bool


def _routes(*rows: tuple[str, str, Callable, bool]) -> list[Route]:
    return [Route(method, re.compile(f"^{path}$"), handler, writes) for method, path, handler, writes in rows]


READ, WRITE = False, True
_MODEL_ID = r"(?P<model_id>m-[0-9a-f]{32})"
_WEBHOOK_ID = r"(?P<webhook_id>[^/]+)"

ROUTES = _routes(
    # Experiments
    ("GET", "experiments/get-by-name", tracking.get_experiment_by_name, READ),
    ("POST", "experiments/create", tracking.create_experiment, WRITE),
    ("POST", "experiments/search", tracking.search_experiments, READ),
    ("GET", "experiments/search", tracking.search_experiments, READ),
    ("GET", "experiments/get", tracking.get_experiment, READ),
    ("POST", "experiments/delete", tracking.delete_experiment, WRITE),
    ("POST", "experiments/restore", tracking.restore_experiment, WRITE),
    ("POST", "experiments/update", tracking.update_experiment, WRITE),
    ("POST", "experiments/set-experiment-tag", tracking.set_experiment_tag, WRITE),
    ("POST", "experiments/delete-experiment-tag", tracking.delete_experiment_tag, WRITE),
    # Runs
    ("POST", "runs/create", tracking.create_run, WRITE),
    ("POST", "runs/update", tracking.update_run, WRITE),
    ("POST", "runs/delete", tracking.delete_run, WRITE),
    ("POST", "runs/restore", tracking.restore_run, WRITE),
    ("GET", "runs/get", tracking.get_run, READ),
    ("POST", "runs/search", tracking.search_runs, READ),
    ("POST", "runs/log-metric", tracking.log_metric, WRITE),
    ("POST", "runs/log-parameter", tracking.log_param, WRITE),
    ("POST", "runs/set-tag", tracking.set_tag, WRITE),
    ("POST", "runs/delete-tag", tracking.delete_tag, WRITE),
    ("POST", "runs/log-batch", tracking.log_batch, WRITE),
    ("POST", "runs/log-inputs", tracking.log_inputs, WRITE),
    ("POST", "runs/outputs", tracking.log_outputs, WRITE),
    ("POST", "runs/log-model", tracking.log_model, WRITE),
    ("GET", "metrics/get-history", tracking.get_metric_history, READ),
    ("GET", "artifacts/list", artifacts.list_run_artifacts, READ),
    # Logged models (MLflow 3)
    ("POST", "logged-models", logged_models.create_logged_model, WRITE),
    ("POST", "logged-models/search", logged_models.search_logged_models, READ),
    ("GET", f"logged-models/{_MODEL_ID}", logged_models.get_logged_model, READ),
    ("PATCH", f"logged-models/{_MODEL_ID}", logged_models.finalize_logged_model, WRITE),
    ("DELETE", f"logged-models/{_MODEL_ID}", logged_models.delete_logged_model, WRITE),
    ("PATCH", f"logged-models/{_MODEL_ID}/tags", logged_models.set_logged_model_tags, WRITE),
    ("DELETE", f"logged-models/{_MODEL_ID}/tags/(?P<tag_key>.+)", logged_models.delete_logged_model_tag, WRITE),
    ("POST", f"logged-models/{_MODEL_ID}/params", logged_models.log_logged_model_params, WRITE),
    # Registered models
    ("POST", "registered-models/create", registry.create_registered_model, WRITE),
    ("POST", "registered-models/rename", registry.rename_registered_model, WRITE),
    ("PATCH", "registered-models/update", registry.update_registered_model, WRITE),
    ("DELETE", "registered-models/delete", registry.delete_registered_model, WRITE),
    ("GET", "registered-models/get", registry.get_registered_model, READ),
    ("GET", "registered-models/search", registry.search_registered_models, READ),
    ("POST", "registered-models/get-latest-versions", registry.get_latest_versions, READ),
    ("GET", "registered-models/get-latest-versions", registry.get_latest_versions, READ),
    ("POST", "registered-models/set-tag", registry.set_registered_model_tag, WRITE),
    ("DELETE", "registered-models/delete-tag", registry.delete_registered_model_tag, WRITE),
    ("POST", "registered-models/alias", registry.set_registered_model_alias, WRITE),
    ("DELETE", "registered-models/alias", registry.delete_registered_model_alias, WRITE),
    ("GET", "registered-models/alias", registry.get_model_version_by_alias, READ),
    # Model versions
    ("POST", "model-versions/create", registry.create_model_version, WRITE),
    ("PATCH", "model-versions/update", registry.update_model_version, WRITE),
    ("POST", "model-versions/transition-stage", registry.transition_model_version_stage, WRITE),
    ("DELETE", "model-versions/delete", registry.delete_model_version, WRITE),
    ("GET", "model-versions/get", registry.get_model_version, READ),
    ("GET", "model-versions/search", registry.search_model_versions, READ),
    ("GET", "model-versions/get-download-uri", registry.get_model_version_download_uri, READ),
    ("POST", "model-versions/set-tag", registry.set_model_version_tag, WRITE),
    ("DELETE", "model-versions/delete-tag", registry.delete_model_version_tag, WRITE),
    # Webhooks (MLflow 3), mapped onto the registry's
    ("POST", "webhooks", webhooks.create_webhook, WRITE),
    ("GET", "webhooks", webhooks.list_webhooks, READ),
    ("GET", f"webhooks/{_WEBHOOK_ID}", webhooks.get_webhook, READ),
    ("PATCH", f"webhooks/{_WEBHOOK_ID}", webhooks.update_webhook, WRITE),
    ("DELETE", f"webhooks/{_WEBHOOK_ID}", webhooks.delete_webhook, WRITE),
    ("POST", f"webhooks/{_WEBHOOK_ID}/test", webhooks.send_test_webhook, WRITE),
    # MLflow's auth API: users and per-resource permissions
    ("POST", "users/create", permissions.create_user, WRITE),
    ("GET", "users/get", permissions.get_user, READ),
    ("GET", "users/current", permissions.current_user, READ),
    ("GET", "users/list", permissions.list_users, READ),
    ("PATCH", "users/update-password", permissions.update_user_password, WRITE),
    ("PATCH", "users/update-admin", permissions.update_user_admin, WRITE),
    ("DELETE", "users/delete", permissions.delete_user, WRITE),
    ("POST", "experiments/permissions/create", permissions.create_experiment_permission, WRITE),
    ("GET", "experiments/permissions/get", permissions.get_experiment_permission, READ),
    ("PATCH", "experiments/permissions/update", permissions.update_experiment_permission, WRITE),
    ("DELETE", "experiments/permissions/delete", permissions.delete_experiment_permission, WRITE),
    ("POST", "registered-models/permissions/create", permissions.create_registered_model_permission, WRITE),
    ("GET", "registered-models/permissions/get", permissions.get_registered_model_permission, READ),
    ("PATCH", "registered-models/permissions/update", permissions.update_registered_model_permission, WRITE),
    ("DELETE", "registered-models/permissions/delete", permissions.delete_registered_model_permission, WRITE),
)

# /api/3.0/mlflow/...: MLflow 3's unified permission routes (the 2.0 ones above serve older clients).
ROUTES_V3 = _routes(
    ("POST", "users/permissions/grant", permissions.grant_user_permission, WRITE),
    ("POST", "users/permissions/revoke", permissions.revoke_user_permission, WRITE),
    ("GET", "users/permissions/get", permissions.get_user_permission, READ),
)


ARTIFACT_HANDLERS = {
    "GET": artifacts.download_artifact,
    "PUT": artifacts.upload_artifact,
    "DELETE": artifacts.delete_artifact,
}


def match(endpoint: str, method: str, routes: list[Route] = ROUTES, prefix: str = "2.0") -> tuple[Route, dict]:
    allowed = []
    for route in routes:
        found = route.pattern.match(endpoint)
        if found is None:
            continue
        if route.method == method:
            return route, found.groupdict()
        allowed.append(route.method)
    if allowed:
        raise MlflowError(
            ENDPOINT_NOT_FOUND,
            f"{method} is not allowed on /api/{prefix}/mlflow/{endpoint}; use {', '.join(sorted(set(allowed)))}.",
            status=405,
            headers={"Allow": ", ".join(sorted(set(allowed)))},
        )
    raise MlflowError(ENDPOINT_NOT_FOUND, f"No MLflow endpoint at /api/{prefix}/mlflow/{endpoint}.")


def _answer(request: HttpRequest, work: Callable[[], HttpResponse]) -> HttpResponse:
    """Run `work`, turning every refusal into MLflow's error JSON; only an unexpected exception is a 500."""
    try:
        return work()
    except RequestDataTooBig:
        return error_response(invalid("The request body is too large."))
    except UnreadablePostError:
        return error_response(invalid("The request body could not be read."))
    except Exception as exc:  # noqa: BLE001 - every answer must be MLflow's JSON, whatever went wrong
        error = translate(exc)
        if error is None:
            logger.exception("MLflow API error on %s %s", request.method, request.path)
            error = MlflowError(INTERNAL_ERROR, "Internal error; the server log has the details.")
        return error_response(error)


@csrf_exempt
@login_not_required
def api(request: HttpRequest, endpoint: str, version: str = "2.0") -> HttpResponse:
    def work() -> HttpResponse:
        if version == "3.0":
            route, kwargs = match(endpoint, request.method, ROUTES_V3, "3.0")
        else:
            route, kwargs = match(endpoint, request.method)
        caller = authenticate_caller(request)
        if route.writes:
            require_write(caller)
        request.user = caller.user
        params = Params.from_request(request)
        result = route.handler(request, params, caller, **kwargs)
        return result if isinstance(result, HttpResponse) else json_response(result)

    return _answer(request, work)


@csrf_exempt
@login_not_required
def artifact_proxy(request: HttpRequest, path: str = "") -> HttpResponse:
    def work() -> HttpResponse:
        caller: Caller = authenticate_caller(request)
        request.user = caller.user
        if not path and request.method == "GET":
            return artifacts.list_artifacts(request, caller)
        handler = ARTIFACT_HANDLERS.get(request.method) if path else None
        if handler is None:
            allowed = "GET" if not path else ", ".join(ARTIFACT_HANDLERS)
            raise MlflowError(
                ENDPOINT_NOT_FOUND,
                f"{request.method} is not allowed here; use {allowed}.",
                status=405,
                headers={"Allow": allowed},
            )
        return handler(request, caller, path)

    return _answer(request, work)


def _not_allowed(request: HttpRequest, allowed: str) -> MlflowError:
    message = f"{request.method} is not allowed here; use {allowed}."
    return MlflowError(ENDPOINT_NOT_FOUND, message, status=405, headers={"Allow": allowed})


MULTIPART_HANDLERS = {
    "create": artifacts.multipart_create,
    "complete": artifacts.multipart_complete,
    "abort": artifacts.multipart_abort,
}


@csrf_exempt
@login_not_required
def multipart(request: HttpRequest, action: str, path: str) -> HttpResponse:
    """`POST /api/2.0/mlflow-artifacts/mpu/create|complete|abort/<run folder>`, which the MLflow client calls with
    MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD=true or when server-info offers multipart uploads."""

    def work() -> HttpResponse:
        caller: Caller = authenticate_caller(request)
        request.user = caller.user
        if request.method != "POST":
            raise _not_allowed(request, "POST")
        return MULTIPART_HANDLERS[action](request, caller, path)

    return _answer(request, work)


@csrf_exempt
@login_not_required
def presigned_download(request: HttpRequest, path: str) -> HttpResponse:
    def work() -> HttpResponse:
        caller: Caller = authenticate_caller(request)
        request.user = caller.user
        if request.method != "GET":
            raise _not_allowed(request, "GET")
        return artifacts.presigned_download(request, caller, path)

    return _answer(request, work)


@csrf_exempt
@login_not_required
def run_artifact(request: HttpRequest) -> HttpResponse:
    """MLflow's /get-artifact (run files) and /model-versions/get-artifact (version files), as its server serves
    them next to the API: authenticated like the API, paths checked before anything is looked up."""

    def work() -> HttpResponse:
        if request.method != "GET":
            raise MlflowError(ENDPOINT_NOT_FOUND, "Use GET.", status=405, headers={"Allow": "GET"})
        caller = authenticate_caller(request)
        request.user = caller.user
        if request.path.rstrip("/").endswith("model-versions/get-artifact"):
            return artifacts.get_version_artifact(request, caller)
        return artifacts.get_run_artifact(request, caller)

    return _answer(request, work)


@csrf_exempt
@login_not_required
def server_info(request: HttpRequest) -> HttpResponse:
    """What the MLflow client probes before artifact transfers: multipart uploads and presigned (multipart)
    downloads when artifacts live on S3 and they are switched on; no workspaces."""
    return json_response(
        {
            "store_type": "SqlStore",
            "workspaces_enabled": False,
            "multipart_uploads_enabled": transfers.multipart_uploads_on(),
            "multipart_downloads_enabled": transfers.presigned_downloads_on(),
        }
    )


@csrf_exempt
@login_not_required
def unknown(request: HttpRequest, path: str = "") -> HttpResponse:
    return error_response(MlflowError(ENDPOINT_NOT_FOUND, f"No MLflow endpoint at {request.path}."))
