"""Artifact upload (raw streamed body), listing, ranged streaming download and deletion."""

from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.urls import get_script_prefix
from django.utils.http import RFC3986_SUBDELIMS
from ninja import Router, Status

from registry.api.errors import ApiError, get_or_404
from registry.api.schemas import (
    ArtifactOut,
    ArtifactPath,
    ArtifactPrefix,
    MultipartAbortIn,
    MultipartCompleteIn,
    MultipartStartIn,
    MultipartStartOut,
    errors,
)
from registry.catalog import artifact_files, downloads, transfers
from registry.catalog.access import version_for
from registry.catalog.models import ArtifactFile, ModelVersion
from registry.lib.paths import normalise_artifact_path
from registry.tracking.access import run_for

router = Router(tags=["artifacts"])
ERRORS = errors(411, 416)


def artifact_out(artifact: ArtifactFile, url: str) -> dict:
    return {
        "path": artifact.path,
        "size": artifact.size,
        "sha256": artifact.sha256,
        "content_type": artifact.content_type,
        "created_at": artifact.created_at,
        "url": url,
    }


def run_artifact_url(run_id: str, path: str) -> str:
    return _url(f"{get_script_prefix()}api/v1/runs/{run_id}/artifacts/{path}")


def version_artifact_url(version: ModelVersion, path: str) -> str:
    return _url(f"{get_script_prefix()}api/v1/models/{version.model.name}/versions/{version.version}/artifacts/{path}")


def _url(text: str) -> str:
    # What reverse() gives for these two routes (tests/api/test_artifacts.py compares them), without its ~50 µs a
    # URL: every listed, registered or resolved file carries one.
    return quote(text, safe=RFC3986_SUBDELIMS + "/~:@")


def _prefix_filter(queryset, prefix: str):
    if not prefix:
        return queryset
    prefix = normalise_artifact_path(prefix, allow_empty=True)
    return queryset.filter(Q(path__startswith=prefix + "/") | Q(path=prefix))


def stream_artifact(request: HttpRequest, artifact: ArtifactFile) -> HttpResponse:
    """The file's bytes (registry.catalog.downloads); honours a single `Range: bytes=a-b` with 206, else 200."""
    try:
        return downloads.download(request, artifact)
    except downloads.RangeNotSatisfiable as exc:
        raise ApiError(416, exc.message, headers={"Content-Range": exc.content_range}) from None


def _run_file_or_404(run, path: str) -> ArtifactFile:
    path = normalise_artifact_path(path)
    artifact = get_or_404(ArtifactFile, f"Run {run.pk} has no file {path!r}.", run=run, path=path)
    artifact.run = run  # with the access already read for it
    return artifact


# --- Run artifacts --------------------------------------------------------------------------------------------------


@router.put(
    "/runs/{run_id}/artifacts/{path:path}",
    response={201: ArtifactOut, **ERRORS},
    summary="Upload one file to a run, streaming the raw request body",
    description="Send the file's bytes as the body (any content type). The sha256 is computed while streaming; "
    "uploading to an existing path replaces that file. `curl -T model.pkl -H 'Authorization: Bearer …' "
    "…/api/v1/runs/<id>/artifacts/model/model.pkl`",
)
def upload_run_artifact(request: HttpRequest, run_id: str, path: ArtifactPath):
    run = run_for(request.user, run_id, write=True)
    length = request.headers.get("Content-Length")
    if not length or not length.isdigit():
        raise ApiError(411, "Send a Content-Length header with the upload.", code="length_required")
    limit = settings.ARTIFACT_MAX_UPLOAD_BYTES
    if int(length) > limit:
        raise ApiError(413, f"The file is {int(length)} bytes; the limit is {limit} bytes (ARTIFACT_MAX_UPLOAD_BYTES).")
    artifact = artifact_files.artifact_store(owner=run, path=path, stream=request, by=request.user, limit=limit)
    return Status(201, artifact_out(artifact, run_artifact_url(run.pk, artifact.path)))


@router.post(
    "/runs/{run_id}/multipart-uploads",
    response={201: MultipartStartOut, **ERRORS},
    summary="Start a multipart upload straight to the bucket (S3 storage, ARTIFACTS_S3_MULTIPART_UPLOADS)",
    description="Answers presigned URLs: PUT each part's bytes to its URL (no Authorization header), keep the ETag "
    "header S3 answers, then call `…/multipart-uploads/complete`. 409 `direct_transfers_off` when the registry "
    "cannot take direct uploads: send the file with `PUT /runs/{id}/artifacts/{path}` instead.",
)
def start_multipart_upload(request: HttpRequest, run_id: str, body: MultipartStartIn):
    run = run_for(request.user, run_id, write=True)
    upload = transfers.multipart_start(
        owner=run, path=body.path, user=request.user, size=body.size, part_size=body.part_size
    )
    return Status(201, upload.__dict__)


@router.post(
    "/runs/{run_id}/multipart-uploads/complete",
    response={201: ArtifactOut, **ERRORS},
    summary="Finish a multipart upload: assemble the parts, hash the file, record it",
    description="The server reads the assembled file back to compute its sha256 (checked against `sha256` when "
    "sent: 422 `checksum_mismatch` deletes it), then records it as a PUT upload is recorded.",
)
def complete_multipart_upload(request: HttpRequest, run_id: str, body: MultipartCompleteIn):
    run = run_for(request.user, run_id, write=True)
    artifact = transfers.multipart_complete(
        owner=run,
        path=body.path,
        upload_id=body.upload_id,
        parts=[part.dict() for part in body.parts],
        by=request.user,
        sha256=body.sha256,
    )
    return Status(201, artifact_out(artifact, run_artifact_url(run.pk, artifact.path)))


@router.post(
    "/runs/{run_id}/multipart-uploads/abort",
    response={204: None, **ERRORS},
    summary="Abandon a multipart upload (S3 drops its parts)",
)
def abort_multipart_upload(request: HttpRequest, run_id: str, body: MultipartAbortIn):
    run = run_for(request.user, run_id, write=True)
    transfers.multipart_abort(owner=run, path=body.path, upload_id=body.upload_id, user=request.user)
    return Status(204, None)


@router.get("/runs/{run_id}/artifacts", response={200: list[ArtifactOut], **ERRORS}, summary="List a run's files")
def list_run_artifacts(request: HttpRequest, run_id: str, prefix: ArtifactPrefix = ""):
    run = run_for(request.user, run_id)
    artifacts = _prefix_filter(ArtifactFile.objects.filter(run=run), prefix).order_by("path")
    return [artifact_out(a, run_artifact_url(run.pk, a.path)) for a in artifacts]


@router.get(
    "/runs/{run_id}/artifacts/{path:path}",
    response={200: None, 206: None, **ERRORS},
    url_name="download_run_artifact",
    summary="Download a run's file (HTTP Range supported)",
)
def download_run_artifact(request: HttpRequest, run_id: str, path: ArtifactPath):
    run = run_for(request.user, run_id)
    artifact = _run_file_or_404(run, path)
    return stream_artifact(request, artifact)


@router.delete("/runs/{run_id}/artifacts/{path:path}", response={204: None, **ERRORS}, summary="Delete a run's file")
def delete_run_artifact(request: HttpRequest, run_id: str, path: ArtifactPath):
    run = run_for(request.user, run_id, write=True)
    artifact = _run_file_or_404(run, path)
    artifact_files.artifact_delete(artifact=artifact, by=request.user)
    return Status(204, None)


# --- Version artifacts ----------------------------------------------------------------------------------------------


@router.get(
    "/models/{name}/versions/{version}/artifacts",
    response={200: list[ArtifactOut], **ERRORS},
    summary="List a version's files",
)
def list_version_artifacts(request: HttpRequest, name: str, version: int, prefix: ArtifactPrefix = ""):
    model_version = version_for(request.user, name, version)
    artifacts = _prefix_filter(ArtifactFile.objects.filter(version=model_version), prefix).order_by("path")
    return [artifact_out(a, version_artifact_url(model_version, a.path)) for a in artifacts]


@router.get(
    "/models/{name}/versions/{version}/artifacts/{path:path}",
    response={200: None, 206: None, **ERRORS},
    url_name="download_version_artifact",
    summary="Download a version's file (HTTP Range supported)",
)
def download_version_artifact(request: HttpRequest, name: str, version: int, path: ArtifactPath):
    model_version = version_for(request.user, name, version)
    path = normalise_artifact_path(path)
    missing = f"{model_version} has no file {path!r}."
    if model_version.is_external:
        missing = (
            f"{model_version} has no files stored in this registry: its source {model_version.external_location!r} "
            "is an external reference, recorded as text and never fetched by this server."
        )
    artifact = get_or_404(ArtifactFile, missing, version=model_version, path=path)
    return stream_artifact(request, artifact)
