"""Writes of a run's or a version's files: storing streamed bytes, recording a blob uploaded straight to S3, deleting.
Each checks that `by` may write the owner's files (a run: its writer; a version: EDIT on its model), scans the file,
writes its row and records the audit event in one transaction. The bytes themselves (keys, hashing, reads,
freeing) are registry.catalog.blobs'.
"""

from __future__ import annotations

import hashlib
import mimetypes
from typing import BinaryIO

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from registry.audit import services as audit
from registry.audit.models import AuditAction
from registry.catalog import blobs, version_signature
from registry.catalog.access import require
from registry.catalog.errors import ArtifactTooLarge, CatalogError, ChecksumMismatch, InvalidPath
from registry.catalog.models import ArtifactFile, ModelVersion
from registry.lib.access import Level
from registry.lib.paths import PathError, normalise_artifact_path
from registry.scanning import services as scanning
from registry.tracking import access as tracking_access
from registry.tracking.models import Run


def require_file_writer(owner: Run | ModelVersion, user) -> None:
    """Refuse (Forbidden/NotFound) unless `user` may write `owner`'s files; also the check before a direct upload
    starts."""
    if isinstance(owner, Run):
        tracking_access.require_run_write(owner, user)
    else:
        require(owner.model, user, Level.EDIT)


def artifact_store(
    *, owner: Run | ModelVersion, path: str, stream: BinaryIO, by, limit: int | None = None
) -> ArtifactFile:
    """Stream `stream` into the artifacts storage under `owner` (a run: its writer; a version: EDIT on its model),
    computing size and sha256 on the way.

    Storing a path that already exists replaces that file.
    """
    require_file_writer(owner, by)
    try:
        path = normalise_artifact_path(path)
    except PathError as exc:
        raise InvalidPath(str(exc)) from None
    storage = blobs.artifact_storage()
    key = blobs.artifact_key(owner, path)
    with blobs.HashingReader(stream, limit) as reader:
        try:
            stored_key = storage.save(key, blobs.UploadFile(reader, name=path.rsplit("/", 1)[-1]))
        except BaseException:
            blobs.delete_quietly(key)
            raise
    return _record_blob(owner=owner, path=path, key=stored_key, size=reader.size, sha256=reader.hash.hexdigest(), by=by)


def artifact_register_uploaded(
    *,
    owner: Run | ModelVersion,
    path: str,
    key: str,
    by,
    sha256: str | None = None,
    limit: int | None = None,
) -> ArtifactFile:
    """Record a blob that reached the storage without passing through this process (an S3 multipart upload to
    presigned part URLs) as `owner`'s file at `path`, exactly as `artifact_store` records a streamed one.

    The blob is read back once to learn its size and sha256, so the row holds what is really stored whatever the
    client claims; a declared `sha256` that differs, or a size past `limit`, deletes the blob and is refused.
    """
    require_file_writer(owner, by)
    try:
        path = normalise_artifact_path(path)
    except PathError as exc:
        raise CatalogError(str(exc)) from None
    prefix = f"runs/{owner.pk}/" if isinstance(owner, Run) else f"models/{owner.model_id}/versions/{owner.version}/"
    # The key came from `blobs.artifact_key(owner, …)` through a signed upload id: no other owner's blob gets in.
    if not key.startswith(prefix) or ".." in key.split("/"):
        raise CatalogError(f"The blob {key!r} was not uploaded for this owner.")
    digest, size = hashlib.sha256(), 0
    try:
        for chunk in blobs.chunks(key):
            size += len(chunk)
            if limit is not None and size > limit:
                raise ArtifactTooLarge(f"The artifact is larger than the {limit}-byte limit.")
            digest.update(chunk)
    except FileNotFoundError:
        raise CatalogError(f"Nothing was uploaded for {path!r}; upload its parts first.") from None
    except BaseException:
        blobs.delete_quietly(key)
        raise
    computed = digest.hexdigest()
    if sha256 is not None and sha256.strip().lower() != computed:
        blobs.delete_quietly(key)
        raise ChecksumMismatch(
            f"The uploaded bytes of {path!r} have sha256 {computed}, not the declared {sha256}; upload it again."
        )
    return _record_blob(owner=owner, path=path, key=key, size=size, sha256=computed, by=by, direct=True)


def _record_blob(
    *, owner: Run | ModelVersion, path: str, key: str, size: int, sha256: str, by, **audit_data
) -> ArtifactFile:
    """Make a stored blob `owner`'s file at `path`: scan it (small files now, large ones in the background), write
    the row that is its only pointer, free the blob it replaces, and record the upload with its verdict, in one
    transaction. A version's MLmodel also gives the version its signature unless one was set explicitly."""
    scan = scanning.scan_upload(key, path, size)  # None when large: scanned in the background
    fields = {
        "storage_key": key,
        "size": size,
        "sha256": sha256,
        "content_type": mimetypes.guess_type(path)[0] or "application/octet-stream",
        "created_at": timezone.now(),
    }
    owner_field = "run" if isinstance(owner, Run) else "version"
    try:
        with transaction.atomic():
            previous = (
                ArtifactFile.objects.select_for_update()
                .filter(**{owner_field: owner, "path": path})
                .values_list("storage_key", flat=True)
                .first()
            )
            artifact, _ = ArtifactFile.objects.update_or_create(**{owner_field: owner, "path": path}, defaults=fields)
            if previous and previous != key:
                blobs.delete_when_unused(previous)
            _record_file(
                AuditAction.ARTIFACT_STORED,
                owner,
                by,
                path,
                size=size,
                sha256=sha256,
                **audit_data,
                scan=scan.verdict if scan else "pending",
            )
            scanning.file_stored(artifact, scan)
            if isinstance(owner, ModelVersion):
                version_signature.file_stored(owner, path, by)
    except (IntegrityError, ValidationError) as exc:
        blobs.delete_quietly(key)
        raise CatalogError(f"Could not record artifact {path!r}: {exc}") from None
    return artifact


def artifact_delete(*, artifact: ArtifactFile, by) -> None:
    """Delete the file's row (its run's writer, or EDIT on its version's model); its blob goes too once no other row
    (a version sharing it) points at it."""
    owner = artifact.owner
    require_file_writer(owner, by)
    with transaction.atomic():
        artifact.delete()
        blobs.delete_when_unused(artifact.storage_key)
        _record_file(AuditAction.ARTIFACT_DELETED, owner, by, artifact.path, size=artifact.size, sha256=artifact.sha256)


def _record_file(action: str, owner: Run | ModelVersion, by, path: str, **data) -> None:
    where = {"run": owner} if isinstance(owner, Run) else {"version": owner}
    audit.record(action, actor=by, to_value=path, data=data, **where)
