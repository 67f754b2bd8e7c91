"""Artifact bytes that skip the app servers when artifacts live on S3: presigned download URLs, and multipart
uploads whose parts go from the client straight to the bucket.

Only the S3 mechanics live here. Every check is the catalog's: a download URL is made for a file the caller has
already loaded through the permission helpers; a multipart upload starts only for someone who may write the owner's
files; completing one hands the assembled blob to `artifact_files.artifact_register_uploaded`, which hashes it,
records the row and its audit event exactly as a streamed upload is recorded.

An upload is stateless on the server: the id given to the client is a signed token naming the S3 upload, the blob's
key, the owner, the path and the user, so any app server can complete or abort it. Parts of an upload that nobody
completes or aborts stay in the bucket until its lifecycle rule (AbortIncompleteMultipartUpload) removes them.
"""

from __future__ import annotations

import math
import mimetypes
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.utils.http import content_disposition_header
from storages.utils import clean_name

from registry.catalog import artifact_files, blobs
from registry.catalog.errors import ArtifactTooLarge, CatalogError
from registry.catalog.models import ArtifactFile, ModelVersion
from registry.lib.errors import Conflict, Forbidden, NotFound
from registry.lib.paths import PathError, normalise_artifact_path
from registry.tracking.models import Run

MIN_PART = 5 * 1024**2  # S3's smallest part (all but the last)
MAX_PART = 5 * 1024**3
MAX_PARTS = 10_000
DEFAULT_PART = 64 * 1024**2
_SALT = "registry.catalog.transfers.multipart"


class DirectTransfersOff(Conflict):
    """The storage is not S3, or direct transfers are not switched on."""

    code = "direct_transfers_off"


def _s3():
    """(storage, boto3 client) when artifacts live on S3, else (None, None)."""
    storage = blobs.artifact_storage()
    if getattr(storage, "bucket", None) is None:
        return None, None
    return storage, storage.connection.meta.client


# Assembling the parts: real S3 answers within seconds (keeping the connection alive meanwhile), an emulator such as
# moto can take minutes for gigabytes. One attempt: a retry after a timeout would find the upload already gone.
COMPLETE_TIMEOUT = 900


def _assembling_client(storage):
    """A client for CompleteMultipartUpload: the storage's own settings, a longer read timeout, no retries."""
    from botocore.config import Config

    config = storage.client_config.merge(Config(read_timeout=COMPLETE_TIMEOUT, retries={"max_attempts": 1}))
    return storage._create_session().client(
        "s3",
        region_name=storage.region_name,
        use_ssl=storage.use_ssl,
        endpoint_url=storage.endpoint_url,
        config=config,
        verify=storage.verify,
    )


def _signing_client(storage, client):
    """The client that signs URLs for clients: the storage's own, or, when clients reach the bucket at another
    address than the app servers (ARTIFACTS_S3_PUBLIC_ENDPOINT_URL, e.g. MinIO behind its public name), one for that
    address: the host is part of the signature. Signing is local, so this never calls the bucket."""
    public = settings.ARTIFACTS_S3_PUBLIC_ENDPOINT_URL
    if not public or public == storage.endpoint_url:
        return client
    return storage._create_session().client(
        "s3",
        region_name=storage.region_name,
        use_ssl=storage.use_ssl,
        endpoint_url=public,
        config=storage.client_config,
        verify=storage.verify,
    )


def _bucket_key(storage, storage_key: str) -> str:
    return storage._normalize_name(clean_name(storage_key))  # django-storages' own mapping (its `location` prefix)


# --- Downloads ------------------------------------------------------------------------------------------------------


def presigned_downloads_on() -> bool:
    return settings.ARTIFACTS_S3_PRESIGNED_DOWNLOADS and _s3()[0] is not None


def download_url(artifact: ArtifactFile) -> str | None:
    """A URL that serves the file straight from the bucket for ARTIFACTS_S3_PRESIGNED_EXPIRY seconds, as an
    attachment with the file's name and type; None when presigned downloads are off. The caller has checked that the
    user may read the file."""
    if not settings.ARTIFACTS_S3_PRESIGNED_DOWNLOADS:
        return None
    storage, client = _s3()
    if storage is None:
        return None
    return _signing_client(storage, client).generate_presigned_url(
        "get_object",
        Params={
            "Bucket": storage.bucket_name,
            "Key": _bucket_key(storage, artifact.storage_key),
            "ResponseContentDisposition": content_disposition_header(True, artifact.filename),
            "ResponseContentType": artifact.content_type or "application/octet-stream",
        },
        ExpiresIn=settings.ARTIFACTS_S3_PRESIGNED_EXPIRY,
    )


# --- Multipart uploads ----------------------------------------------------------------------------------------------


def multipart_uploads_on() -> bool:
    return settings.ARTIFACTS_S3_MULTIPART_UPLOADS and _s3()[0] is not None


@dataclass
class Upload:
    upload_id: str  # the signed token the client sends back
    path: str
    part_size: int
    parts: list[dict]  # [{"part_number": 1, "url": ...}, ...]
    expires_in: int


def _owner_label(owner: Run | ModelVersion) -> str:
    return f"run:{owner.pk}" if isinstance(owner, Run) else f"version:{owner.pk}"


def _checked_path(path: str) -> str:
    try:
        return normalise_artifact_path(path)
    except PathError as exc:
        raise CatalogError(str(exc)) from None


def part_plan(size: int, part_size: int | None = None, num_parts: int | None = None) -> tuple[int, int]:
    """(part size, number of parts) for `size` bytes: the requested part size (or count) within S3's limits."""
    if num_parts is not None:
        if not 1 <= num_parts <= MAX_PARTS:
            raise CatalogError(f"num_parts must be between 1 and {MAX_PARTS}, got {num_parts}.")
        return part_size or 0, num_parts
    part = max(part_size or DEFAULT_PART, MIN_PART, math.ceil(size / MAX_PARTS))
    if part > MAX_PART:
        raise CatalogError(f"A part may be at most {MAX_PART} bytes; {size} bytes cannot be uploaded.")
    return part, max(1, math.ceil(size / part))


def multipart_start(
    *,
    owner: Run | ModelVersion,
    path: str,
    user,
    size: int | None = None,
    part_size: int | None = None,
    num_parts: int | None = None,
) -> Upload:
    """Start a multipart upload of `owner`'s file at `path` into a fresh blob; answer presigned URLs for its parts.

    Either `size` (the server picks the part size, `part_size` if given and within S3's limits) or `num_parts` (the
    MLflow client splits the file itself) is needed.
    """
    artifact_files.require_file_writer(owner, user)
    if not settings.ARTIFACTS_S3_MULTIPART_UPLOADS:
        raise DirectTransfersOff("Multipart uploads are off on this registry (ARTIFACTS_S3_MULTIPART_UPLOADS).")
    storage, client = _s3()
    if storage is None:
        raise DirectTransfersOff("Multipart uploads need artifacts stored on S3 (ARTIFACTS_S3_BUCKET).")
    path = _checked_path(path)
    limit = settings.ARTIFACT_MAX_UPLOAD_BYTES
    if size is not None:
        if size < 1:
            raise CatalogError("A multipart upload needs the file's size in bytes (at least 1).")
        if size > limit:
            raise ArtifactTooLarge(f"The file is {size} bytes; the limit is {limit} bytes (ARTIFACT_MAX_UPLOAD_BYTES).")
    elif num_parts is None:
        raise CatalogError("Send the file's size (or the number of parts).")
    part_size, count = part_plan(size or 0, part_size, num_parts)
    key = blobs.artifact_key(owner, path)
    bucket_key = _bucket_key(storage, key)
    upload = client.create_multipart_upload(
        Bucket=storage.bucket_name,
        Key=bucket_key,
        ContentType=mimetypes.guess_type(path)[0] or "application/octet-stream",
    )
    expiry = settings.ARTIFACTS_S3_UPLOAD_EXPIRY
    signer = _signing_client(storage, client)
    urls = [
        {
            "part_number": number,
            "url": signer.generate_presigned_url(
                "upload_part",
                Params={
                    "Bucket": storage.bucket_name,
                    "Key": bucket_key,
                    "UploadId": upload["UploadId"],
                    "PartNumber": number,
                },
                ExpiresIn=expiry,
            ),
        }
        for number in range(1, count + 1)
    ]
    token = signing.dumps(
        {"u": upload["UploadId"], "k": key, "o": _owner_label(owner), "p": path, "by": user.pk},
        salt=_SALT,
        compress=True,
    )
    return Upload(upload_id=token, path=path, part_size=part_size, parts=urls, expires_in=expiry)


def _unsigned(owner: Run | ModelVersion, path: str, upload_id: str, user) -> dict:
    try:
        data = signing.loads(upload_id, salt=_SALT, max_age=settings.ARTIFACTS_S3_UPLOAD_EXPIRY + 3600)
    except signing.SignatureExpired:
        raise NotFound("This upload has expired; start a new one.") from None
    except signing.BadSignature:
        raise CatalogError("upload_id is not one this registry gave out; start the upload again.") from None
    if data.get("o") != _owner_label(owner) or data.get("p") != path:
        raise CatalogError(f"upload_id belongs to another file than {path!r}.")
    if data.get("by") != user.pk:
        raise Forbidden("Only the user who started an upload may complete or abort it.")
    return data


def _client_error_code(exc) -> str:
    return exc.response.get("Error", {}).get("Code", "") if hasattr(exc, "response") else ""


def multipart_complete(
    *,
    owner: Run | ModelVersion,
    path: str,
    upload_id: str,
    parts: list[dict],
    by,
    sha256: str | None = None,
) -> ArtifactFile:
    """Assemble the uploaded parts into the blob and record it through `artifact_files.artifact_register_uploaded`
    (which reads it back to hash it, checks `sha256` when given, and writes the row and its audit event).

    `parts` are `{"part_number": n, "etag": "..."}` as S3 answered each part's PUT.
    """
    from botocore.exceptions import ClientError

    artifact_files.require_file_writer(owner, by)
    storage, _ = _s3()
    if storage is None:
        raise DirectTransfersOff("Multipart uploads need artifacts stored on S3 (ARTIFACTS_S3_BUCKET).")
    path = _checked_path(path)
    data = _unsigned(owner, path, upload_id, by)
    checked = []
    for part in parts or []:
        number, etag = part.get("part_number"), part.get("etag")
        if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= MAX_PARTS:
            raise CatalogError(f"part_number must be an integer from 1 to {MAX_PARTS}, got {number!r}.")
        if not isinstance(etag, str) or not etag:
            raise CatalogError(f"Part {number} needs the ETag S3 answered when it was uploaded.")
        checked.append({"PartNumber": number, "ETag": etag})
    if not checked:
        raise CatalogError("List the uploaded parts (part_number and etag of each).")
    checked.sort(key=lambda p: p["PartNumber"])
    if len({p["PartNumber"] for p in checked}) != len(checked):
        raise CatalogError("Each part number may be listed once.")
    try:
        _assembling_client(storage).complete_multipart_upload(
            Bucket=storage.bucket_name,
            Key=_bucket_key(storage, data["k"]),
            UploadId=data["u"],
            MultipartUpload={"Parts": checked},
        )
    except ClientError as exc:
        code = _client_error_code(exc)
        if code == "NoSuchUpload":
            raise NotFound("This upload no longer exists (completed, aborted or expired); start a new one.") from None
        if code in {"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "MalformedXML", "InvalidRequest"}:
            message = exc.response.get("Error", {}).get("Message", code)
            raise CatalogError(f"S3 refused to assemble the parts: {message}") from None
        raise
    return artifact_files.artifact_register_uploaded(
        owner=owner, path=path, key=data["k"], by=by, sha256=sha256, limit=settings.ARTIFACT_MAX_UPLOAD_BYTES
    )


def multipart_abort(*, owner: Run | ModelVersion, path: str, upload_id: str, user) -> None:
    """Abandon an upload: S3 drops its parts. Aborting one that is already gone is not an error."""
    from botocore.exceptions import ClientError

    artifact_files.require_file_writer(owner, user)
    storage, client = _s3()
    if storage is None:
        raise DirectTransfersOff("Multipart uploads need artifacts stored on S3 (ARTIFACTS_S3_BUCKET).")
    data = _unsigned(owner, _checked_path(path), upload_id, user)
    try:
        client.abort_multipart_upload(
            Bucket=storage.bucket_name, Key=_bucket_key(storage, data["k"]), UploadId=data["u"]
        )
    except ClientError as exc:
        if _client_error_code(exc) != "NoSuchUpload":
            raise
