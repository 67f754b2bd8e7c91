"""MLflow's artifact proxy (`/api/2.0/mlflow-artifacts/artifacts/...`) over our artifact storage.

The path after `artifacts/` names an owner and a file:

    runs/<run id>/artifacts/<path>                         a run's files (read and write)
    models/<model id>/versions/<number>/artifacts/<path>   a registered version's files (read only)
    logged-models/<id>/artifacts/<path>                    a logged model without a run (holds no files)

Every path is checked by registry.lib.paths (the rule /api/v1 applies) before anything is looked up: absolute
paths, empty, `.` and `..` segments, schemes and drive letters, backslashes and their percent-encoded forms are refused
with a 400, never cleaned (`runs/<id>/artifacts//tmp/x` is not `tmp/x`).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest, HttpResponse

from registry.accounts.access import level_of
from registry.catalog import artifact_files, downloads, transfers
from registry.catalog.models import ArtifactFile, ModelVersion
from registry.lib.access import Level
from registry.lib.paths import PathError, check_artifact_path
from registry.mlflow_compat.auth import Caller, require_write
from registry.mlflow_compat.errors import (
    INVALID_PARAMETER_VALUE,
    NOT_IMPLEMENTED,
    MlflowError,
    invalid,
    json_response,
    not_found,
)
from registry.mlflow_compat.inputs import Params
from registry.mlflow_compat.models import LoggedModel
from registry.mlflow_compat.views.common import is_row_id, run_or_404, version_or_404
from registry.mlflow_compat.wire import run_artifact_uri
from registry.tracking.models import Run


def _checked(path: str, *, folder: bool) -> str:
    try:
        return check_artifact_path(path, folder=folder)
    except PathError as exc:
        raise invalid(str(exc)) from None


# The owner part of a proxy path; what follows it is the path inside the owner, checked as /api/v1 checks it.
_OWNER = re.compile(
    r"^(runs/[^/]*/artifacts|models/[^/]*/versions/[^/]*/artifacts|logged-models/[^/]*/artifacts)(?:/(.*))?$",
    re.DOTALL,
)


def locate(path: str, user, *, folder: bool = False) -> tuple[Run | ModelVersion | None, str]:
    """(owner, path inside the owner) for a proxy path, if `user` may read the owner; the owner is None for a
    run-less logged model. The path inside the owner obeys registry.lib.paths exactly as on /api/v1 (the same
    answer, word for word, for `runs/<id>/artifacts//tmp/x` here and `/api/v1/runs/<id>/artifacts//tmp/x` there);
    anything else is checked whole, so hostile shapes answer 400 before "not found"."""
    match = _OWNER.match(path)
    if match is None:
        _checked(path, folder=True)
        raise not_found(f"No artifacts at {path!r}; paths start with runs/<run id>/artifacts/.")
    head, relative = match.group(1), match.group(2) or ""
    _checked(head, folder=False)
    relative = _checked(relative, folder=folder or not relative)
    return _owner(head.split("/"), path, user), relative


def _owner(parts: list[str], path: str, user) -> Run | ModelVersion | None:
    if parts[0] == "runs":
        return run_or_404(parts[1], user)
    if parts[0] == "models":
        if not (is_row_id(parts[1]) and is_row_id(parts[3])):
            raise not_found(f"No model version at {path!r}.")
        version = (
            ModelVersion.objects.select_related("model").filter(model_id=int(parts[1]), version=int(parts[3])).first()
        )
        if version is None or level_of(version.model, user) < Level.READ:
            raise not_found(f"No model version at {path!r}.")
        return version
    logged = LoggedModel.objects.select_related("experiment").filter(pk=parts[1]).first()
    if logged is None or level_of(logged.experiment, user) < Level.READ:
        raise not_found(f"Logged model with ID '{parts[1]}' not found.")
    return None


def _files(owner: Run | ModelVersion | None):
    if owner is None:
        return ArtifactFile.objects.none()
    if isinstance(owner, Run):
        return ArtifactFile.objects.filter(run=owner)
    return ArtifactFile.objects.filter(version=owner)


def list_artifacts(request: HttpRequest, caller: Caller) -> HttpResponse:
    path = request.GET.get("path", "")
    if not path:
        return json_response({})
    owner, folder = locate(path, caller.user, folder=True)
    files = _files(owner)
    if folder:
        files = files.filter(Q(path__startswith=folder + "/") | Q(path=folder))
    children: dict[str, tuple[bool, int | None]] = {}
    for file_path, size in files.order_by("path").values_list("path", "size"):
        if file_path == folder:
            return json_response({})  # a file, not a folder: MLflow lists nothing
        relative = file_path[len(folder) + 1 :] if folder else file_path
        head, sep, _ = relative.partition("/")
        children[head] = (True, None) if sep else (False, size)
    files_json = [
        {"path": name, "is_dir": True} if is_dir else {"path": name, "is_dir": False, "file_size": size}
        for name, (is_dir, size) in sorted(children.items())
    ]
    return json_response({"files": files_json} if files_json else {})  # as protobuf JSON: no empty lists


def _artifact_or_404(path: str, user) -> ArtifactFile:
    owner, relative = locate(path, user)
    return _artifact_of(owner, relative, path)


def _artifact_of(owner: Run | ModelVersion | None, relative: str, path: str) -> ArtifactFile:
    artifact = _files(owner).filter(path=relative).first() if relative else None
    if artifact is None:
        if isinstance(owner, ModelVersion) and owner.is_external:
            raise not_found(external_version_message(owner))
        raise not_found(f"No artifact at {path!r}.")
    return artifact


def download_artifact(request: HttpRequest, caller: Caller, path: str) -> HttpResponse:
    owner, relative = locate(path, caller.user)
    return _send(request, owner, relative, path)


def _send(request: HttpRequest, owner: Run | ModelVersion | None, relative: str, path: str) -> HttpResponse:
    """The file, or the Range asked for (as MLflow's server, which sends files with werkzeug's ranges). On S3 with
    presigned downloads a redirect: the MLflow client (requests) follows it, dropping the Authorization header."""
    artifact = _artifact_of(owner, relative, path)
    try:
        return downloads.download(request, artifact)
    except downloads.RangeNotSatisfiable as exc:
        headers = {"Content-Range": exc.content_range}
        raise MlflowError(INVALID_PARAMETER_VALUE, exc.message, status=416, headers=headers) from None


def external_version_message(version: ModelVersion) -> str:
    return (
        f"Version {version.version} of {version.model.name!r} has no files stored in this registry: its source "
        f"{version.external_location!r} is an external reference, recorded as text and never fetched by this server."
    )


def _writable_run(caller: Caller, owner) -> Run:
    require_write(caller)
    if not isinstance(owner, Run):
        raise invalid(
            "Only a run's artifacts can be written here: a version's files come from the run it was registered "
            "from, and a logged model's files live with its source run (log the model inside a run)."
        )
    if owner.deleted_at is not None:
        raise invalid(f"The run {owner.pk} must be in the 'active' state; it is deleted.")
    return owner


def upload_artifact(request: HttpRequest, caller: Caller, path: str) -> HttpResponse:
    owner, relative = locate(path, caller.user)
    run = _writable_run(caller, owner)
    if not relative:
        raise invalid("The upload needs a file path after runs/<run id>/artifacts/.")
    length = request.headers.get("Content-Length", "")
    if not (length.isascii() and length.isdigit() and len(length) <= 19):
        raise invalid("Send a Content-Length header with the upload.")
    limit = settings.ARTIFACT_MAX_UPLOAD_BYTES
    if int(length) > limit:
        raise invalid(f"The file is {int(length):,} bytes; the limit is {limit:,} (ARTIFACT_MAX_UPLOAD_BYTES).")
    artifact_files.artifact_store(owner=run, path=relative, stream=request, by=caller.user, limit=limit)
    return json_response({})


def delete_artifact(request: HttpRequest, caller: Caller, path: str) -> HttpResponse:
    owner, relative = locate(path, caller.user)
    run = _writable_run(caller, owner)
    files = ArtifactFile.objects.filter(run=run)
    if relative:
        files = files.filter(Q(path__startswith=relative + "/") | Q(path=relative))
    for artifact in files:
        artifact.run = run  # the run whose writer was checked, not a fresh copy to check again
        artifact_files.artifact_delete(artifact=artifact, by=caller.user)
    return json_response({})


# --- Direct transfers (S3): MLflow's presigned download and multipart upload endpoints ------------------------------

# The MLflow client falls back to the proxy when a refusal starts with this sentence (mlflow.exceptions).
MULTIPART_UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"
MULTIPART_DOWNLOAD_UNSUPPORTED = "Multipart download is not supported for the current artifact repository"


def presigned_download(request: HttpRequest, caller: Caller, path: str) -> HttpResponse:
    """`GET /mlflow-artifacts/presigned/<path>`: where to fetch the file from the bucket, and its size (the client
    then fetches ranges in parallel)."""
    artifact = _artifact_or_404(path, caller.user)
    url = transfers.download_url(artifact)
    if url is None:
        raise MlflowError(NOT_IMPLEMENTED, MULTIPART_DOWNLOAD_UNSUPPORTED, status=501)
    return json_response({"url": url, "headers": {}, "file_size": artifact.size})


def _mpu_target(request: HttpRequest, caller: Caller, path: str) -> tuple[Run, str, Params]:
    """The run and file an `mpu/...` call is about: the URL names the folder, the body's `path` the client's local
    file, whose base name is the file's name (as MLflow's S3 repository does)."""
    owner, folder = locate(path, caller.user, folder=True)
    run = _writable_run(caller, owner)
    body = Params.from_request(request)
    local = body.str("path", required=True)
    name = local.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return run, _checked(f"{folder}/{name}" if folder else name, folder=False), body


def multipart_create(request: HttpRequest, caller: Caller, path: str) -> HttpResponse:
    run, relative, body = _mpu_target(request, caller, path)  # who may write there first, then what is on
    if not transfers.multipart_uploads_on():
        raise MlflowError(NOT_IMPLEMENTED, MULTIPART_UNSUPPORTED, status=501)
    num_parts = body.int("num_parts", default=1, minimum=1, maximum=transfers.MAX_PARTS)
    upload = transfers.multipart_start(owner=run, path=relative, user=caller.user, num_parts=num_parts)
    credentials = [{"url": p["url"], "part_number": p["part_number"], "headers": {}} for p in upload.parts]
    return json_response({"upload_id": upload.upload_id, "credentials": credentials})


def multipart_complete(request: HttpRequest, caller: Caller, path: str) -> HttpResponse:
    run, relative, body = _mpu_target(request, caller, path)
    parts = body.raw("parts")
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        raise invalid("Missing value for required parameter 'parts'.")
    transfers.multipart_complete(
        owner=run,
        path=relative,
        upload_id=body.str("upload_id", required=True),
        parts=[{"part_number": p.get("part_number"), "etag": p.get("etag")} for p in parts],
        by=caller.user,
    )
    return json_response({})


def multipart_abort(request: HttpRequest, caller: Caller, path: str) -> HttpResponse:
    run, relative, body = _mpu_target(request, caller, path)
    upload_id = body.str("upload_id", required=True)
    transfers.multipart_abort(owner=run, path=relative, upload_id=upload_id, user=caller.user)
    return json_response({})


# --- MLflow's run-scoped artifact routes: /api/2.0/mlflow/artifacts/list, /get-artifact, /model-versions/get-artifact


def _safe_path(path: str) -> str:
    """MLflow's validate_path_is_safe, in its words: any `..`, absolute or drive path is 'Invalid path'."""
    try:
        return check_artifact_path(path, folder=True)
    except PathError:
        raise invalid("Invalid path") from None


def list_run_artifacts(request: HttpRequest, params: Params, caller: Caller) -> dict:
    """ListArtifacts of MLflow's tracking API: a run's files and folders directly under `path`, named from the run's
    root."""
    run = run_or_404(params.str("run_id") or params.str("run_uuid"), caller.user)
    folder = _safe_path(params.str("path"))
    files = ArtifactFile.objects.filter(run=run)
    if folder:
        files = files.filter(path__startswith=folder + "/")
    children: dict[str, tuple[bool, int | None]] = {}
    for file_path, size in files.order_by("path").values_list("path", "size"):
        relative = file_path[len(folder) + 1 :] if folder else file_path
        head, sep, _ = relative.partition("/")
        name = f"{folder}/{head}" if folder else head
        children[name] = (True, None) if sep else (False, size)
    body: dict = {"root_uri": run_artifact_uri(run.pk)}
    listed = [
        {"path": name, "is_dir": True} if is_dir else {"path": name, "is_dir": False, "file_size": size}
        for name, (is_dir, size) in sorted(children.items())
    ]
    if listed:
        body["files"] = listed
    return body


def get_run_artifact(request: HttpRequest, caller: Caller) -> HttpResponse:
    """/get-artifact?run_id=&path=: one file of a run."""
    path = _safe_path(request.GET.get("path", ""))
    run = run_or_404(request.GET.get("run_id") or request.GET.get("run_uuid") or "", caller.user)
    return _send(request, run, path, path)


def get_version_artifact(request: HttpRequest, caller: Caller) -> HttpResponse:
    """/model-versions/get-artifact?name=&version=&path=: one file of a registered version."""
    path = _safe_path(request.GET.get("path", ""))
    version = version_or_404(request.GET.get("name", ""), request.GET.get("version", ""), caller.user)
    return _send(request, version, path, path)
