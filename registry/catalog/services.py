"""Workflows across catalog models: creating models and versions, aliases, stage changes and artifacts."""

from __future__ import annotations

import functools
import hashlib
import logging
import mimetypes
import secrets
from collections.abc import Mapping
from typing import BinaryIO

from django.core.exceptions import ValidationError
from django.core.files.base import File
from django.core.files.storage import storages
from django.db import IntegrityError, transaction
from django.utils import timezone
from storages.utils import clean_name

from registry import rawsql
from registry.catalog.models import (
    ArtifactFile,
    ChangeKind,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    Stage,
)
from registry.governance import audit
from registry.governance.models import AuditAction, WebhookEventType
from registry.lib.names import NameError_, check_alias, check_model_name
from registry.lib.paths import PathError, normalise_artifact_path
from registry.tracking.models import Run

logger = logging.getLogger(__name__)


class CatalogError(ValueError):
    """Input the catalog refuses; the message says what to fix."""


class AlreadyExists(CatalogError):
    pass


def artifact_storage():
    return storages["artifacts"]


def model_create(*, name: str, owner=None, description: str = "", tags: Mapping[str, str] | None = None):
    try:
        check_model_name(name)
    except NameError_ as exc:
        raise CatalogError(str(exc)) from None
    try:
        with transaction.atomic():
            return RegisteredModel.objects.create(
                name=name, owner=owner, description=description, tags=dict(tags or {})
            )
    except IntegrityError:
        raise AlreadyExists(f"A model named {name!r} already exists.") from None


def version_create(
    *,
    model: RegisteredModel,
    run: Run | None = None,
    artifact_path: str | None = None,
    source: str = "",
    created_by=None,
    description: str = "",
    tags: Mapping[str, str] | None = None,
) -> ModelVersion:
    """Register the next version of `model`.

    Numbers come from incrementing `RegisteredModel.last_version` under the row lock that the UPDATE takes, in the
    same transaction as the insert: concurrent registrations queue on that row, and a failed one rolls its number
    back, so numbers have neither gaps nor duplicates.

    With `run` and `artifact_path`, the run's files under that path become the version's files (same blobs); the
    returned version's `created_files` lists the ArtifactFile rows made for it (empty without a path), so callers can
    answer without reading them back.
    """
    prefix = None
    if artifact_path is not None:
        if run is None:
            raise CatalogError("An artifact path needs the run it belongs to.")
        try:
            prefix = normalise_artifact_path(artifact_path, allow_empty=True)
        except PathError as exc:
            raise CatalogError(str(exc)) from None
        source = source or f"runs:/{run.pk}/{prefix}".rstrip("/")

    connection = rawsql.connection_for(ModelVersion, write=True)
    with transaction.atomic(using=connection.alias):
        now = timezone.now()
        number = _next_version_number(connection, model, now)
        version = rawsql.insert(
            ModelVersion(
                model=model,
                version=number,
                run=run,
                source=source,
                created_by=created_by,
                description=description,
                tags=dict(tags or {}),
                created_at=now,
                updated_at=now,
            )
        )
        version.created_files = _copy_run_files(connection, run, prefix, version) if prefix is not None else []
        audit.record(AuditAction.VERSION_CREATED, model=model, version=version, actor=created_by, to_value=source)
        audit.emit(WebhookEventType.VERSION_CREATED, model=model, payload=audit.version_payload(version))
    model.last_version = number
    model.updated_at = now
    return version


def _next_version_number(connection, model: RegisteredModel, now) -> int:
    """Increment the model's `last_version` and return it; the UPDATE holds the row lock until the transaction
    ends, so concurrent registrations queue here. One statement, written by hand: registration is a hot path."""
    last = rawsql.column(RegisteredModel, "last_version")
    row = rawsql.fetchone(
        connection,
        f"UPDATE {rawsql.table(RegisteredModel)} SET {last} = {last} + 1,"
        f" {rawsql.column(RegisteredModel, 'updated_at')} = %s WHERE {rawsql.quote('id')} = %s RETURNING {last}",
        [rawsql.adapt(RegisteredModel, "updated_at", now, connection), model.pk],
    )
    if row is None:
        raise CatalogError(f"Model {model.name!r} no longer exists.")
    return row[0]


@functools.cache
def _run_file_columns() -> rawsql.Columns:
    return rawsql.Columns(ArtifactFile, "path", "storage_key", "size", "sha256", "content_type")


def _copy_run_files(connection, run: Run, prefix: str, version: ModelVersion) -> list[ArtifactFile]:
    """Give the version the run's files under `prefix` (same blobs), relative to the prefix.

    Locked: a concurrent re-upload of one of these files waits for this copy to commit, so its "delete the old blob
    if nothing uses it" check sees the version's rows (and the reverse order copies the new blob). On SQLite the
    IMMEDIATE transaction already holds the write lock.
    """
    columns = _run_file_columns()
    path = rawsql.column(ArtifactFile, "path")
    where, params = f"f.{rawsql.column(ArtifactFile, 'run')} = %s", [run.pk]
    if prefix:
        # A prefix match without LIKE, whose '%' and '_' would need escaping, and without ranges, which
        # PostgreSQL's collations would reorder.
        where += f" AND (f.{path} = %s OR SUBSTR(f.{path}, 1, %s) = %s)"
        params += [prefix, len(prefix) + 1, prefix + "/"]
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    rows = rawsql.fetchall(
        connection, f"SELECT {columns.select('f')} FROM {rawsql.table(ArtifactFile)} f WHERE {where}{lock}", params
    )
    if not rows:
        raise CatalogError(f"Run {run.pk} has no artifacts under {prefix or 'its root'!r}.")
    copies = []
    for path, storage_key, size, sha256, content_type in sorted(columns.values(row, connection) for row in rows):
        relative = path[len(prefix) :].lstrip("/") if prefix else path
        copies.append(
            rawsql.insert(
                ArtifactFile(
                    version=version,
                    path=relative or path.rsplit("/", 1)[-1],
                    storage_key=storage_key,
                    size=size,
                    sha256=sha256,
                    content_type=content_type,
                )
            )
        )
    return copies


def alias_set(*, model: RegisteredModel, alias: str, version: ModelVersion, by=None) -> ModelAlias:
    """Point `alias` at `version`, creating it or moving it from another version."""
    try:
        check_alias(alias)
    except NameError_ as exc:
        raise CatalogError(str(exc)) from None
    if version.model_id != model.pk:
        raise CatalogError(f"Version {version.version} does not belong to model {model.name!r}.")
    with transaction.atomic():
        previous = (
            ModelAlias.objects.select_for_update()
            .filter(model=model, alias=alias)
            .values_list("version__version", flat=True)
            .first()
        )
        obj, _ = ModelAlias.objects.update_or_create(
            model=model,
            alias=alias,
            defaults={"version": version, "updated_at": timezone.now(), "updated_by": by},
        )
        if previous != version.version:
            audit.record(
                AuditAction.ALIAS_SET,
                model=model,
                version=version,
                actor=by,
                from_value=previous or "",
                to_value=version.version,
                data={"alias": alias},
            )
            audit.emit(
                WebhookEventType.ALIAS_CHANGED,
                model=model,
                payload={"model": model.name, "alias": alias, "from_version": previous, "to_version": version.version},
            )
    return obj


def alias_delete(*, model: RegisteredModel, alias: str, by=None) -> bool:
    with transaction.atomic():
        existing = ModelAlias.objects.select_for_update().select_related("version").filter(model=model, alias=alias)
        found = existing.first()
        if found is None:
            return False
        found.delete()
        audit.record(
            AuditAction.ALIAS_DELETED,
            model=model,
            version=found.version,
            actor=by,
            from_value=found.version.version,
            data={"alias": alias},
        )
        audit.emit(
            WebhookEventType.ALIAS_CHANGED,
            model=model,
            payload={"model": model.name, "alias": alias, "from_version": found.version.version, "to_version": None},
        )
    return True


def version_stage_set(
    *,
    version: ModelVersion,
    stage: str,
    by=None,
    comment: str = "",
    kind: str = ChangeKind.DIRECT,
    archive_existing: bool = False,
    request=None,
) -> ModelVersion:
    """Move `version` to `stage` now, recording the change (and any archived holders) in the stage history.

    Whether the caller may do this (approval policies) is decided by the governance layer before calling.
    """
    target = Stage.parse(stage)
    with transaction.atomic():
        locked = ModelVersion.objects.select_related("model").select_for_update(of=("self",)).get(pk=version.pk)
        if locked.stage == target:
            return locked
        now = timezone.now()
        if archive_existing and target in (Stage.STAGING, Stage.PRODUCTION):
            holders = list(
                ModelVersion.objects.select_related("model")
                .select_for_update(of=("self",))
                .filter(model_id=locked.model_id, stage=target)
                .exclude(pk=locked.pk)
            )
            for holder in holders:
                _record_stage(
                    holder,
                    Stage.ARCHIVED,
                    by=by,
                    at=now,
                    kind=ChangeKind.ARCHIVE_EXISTING,
                    request=request,
                    comment=f"Archived when version {locked.version} entered {target}.",
                )
        _record_stage(locked, target, by=by, at=now, kind=kind, request=request, comment=comment)
        RegisteredModel.objects.filter(pk=locked.model_id).update(updated_at=now)
    return locked


def _record_stage(version: ModelVersion, stage: str, *, by, at, kind: str, request, comment: str) -> None:
    """Change the stage, append it to the stage history and the audit log, and queue the webhook event."""
    previous = version.stage
    change = version.record_stage_change(stage, by=by, at=at, kind=kind, request=request, comment=comment)
    model = version.model
    audit.record(
        AuditAction.STAGE_CHANGED,
        model=model,
        version=version,
        actor=by,
        from_value=previous,
        to_value=stage,
        comment=comment,
        request=request,
        data={"kind": kind, "stage_change_id": change.pk},
    )
    audit.emit(
        WebhookEventType.STAGE_CHANGED,
        model=model,
        payload={**audit.version_payload(version), "from_stage": previous, "to_stage": stage, "kind": kind},
    )


class _HashingReader:
    """Wraps a binary stream, hashing and counting what is read, refusing to read past `limit` bytes.

    The storage reads from it chunk by chunk, so an upload is hashed while it streams and never held whole.
    """

    def __init__(self, stream: BinaryIO, limit: int | None):
        self.stream = stream
        self.limit = limit
        self.size = 0
        self.hash = hashlib.sha256()

    closed = False

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True

    def read(self, n: int = -1) -> bytes:
        chunk = self.stream.read(n if n is not None and n >= 0 else 1024 * 1024)
        if chunk:
            self.size += len(chunk)
            if self.limit is not None and self.size > self.limit:
                raise ArtifactTooLarge(f"The artifact is larger than the {self.limit}-byte limit.")
            self.hash.update(chunk)
        return chunk


class _UploadFile(File):
    # The file system storage copies File.chunks(), 64 KB at a time by default: each chunk costs a pass through
    # gunicorn's and Django's Python body readers, which at 64 KB is most of an upload's server time.
    DEFAULT_CHUNK_SIZE = 1024 * 1024


class ArtifactTooLarge(CatalogError):
    pass


def artifact_key(owner: Run | ModelVersion, path: str) -> str:
    """A fresh blob name for a file of `owner`. Each upload gets its own blob, so a failed or partial upload never
    damages the file it was meant to replace; the replaced blob is deleted once the new row is committed."""
    token = secrets.token_hex(6)
    if isinstance(owner, Run):
        return f"runs/{owner.pk}/{token}/{path}"
    return f"models/{owner.model_id}/versions/{owner.version}/{token}/{path}"


def artifact_store(*, owner: Run | ModelVersion, path: str, stream: BinaryIO, limit: int | None = None) -> ArtifactFile:
    """Stream `stream` into the artifacts storage under `owner`, computing size and sha256 on the way.

    Storing a path that already exists replaces that file.
    """
    try:
        path = normalise_artifact_path(path)
    except PathError as exc:
        raise CatalogError(str(exc)) from None
    reader = _HashingReader(stream, limit)
    storage = artifact_storage()
    key = artifact_key(owner, path)
    try:
        stored_key = storage.save(key, _UploadFile(reader, name=path.rsplit("/", 1)[-1]))
    except BaseException:
        _delete_blob_quietly(key)
        raise
    fields = {
        "storage_key": stored_key,
        "size": reader.size,
        "sha256": reader.hash.hexdigest(),
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
            if previous and previous != stored_key:
                _delete_blob_when_unused(previous)
    except (IntegrityError, ValidationError) as exc:
        _delete_blob_quietly(stored_key)
        raise CatalogError(f"Could not record artifact {path!r}: {exc}") from None
    return artifact


def artifact_delete(artifact: ArtifactFile) -> None:
    """Delete the file's row; its blob goes too once no other row (a version sharing it) points at it."""
    with transaction.atomic():
        artifact.delete()
        _delete_blob_when_unused(artifact.storage_key)


def _delete_blob_when_unused(storage_key: str) -> None:
    def delete() -> None:
        if not ArtifactFile.objects.filter(storage_key=storage_key).exists():
            _delete_blob_quietly(storage_key)

    transaction.on_commit(delete)


def _delete_blob_quietly(storage_key: str) -> None:
    try:
        artifact_storage().delete(storage_key)
    except Exception:  # noqa: BLE001 - a leftover blob is harmless; failing the request over it is not
        logger.warning("Could not delete artifact blob %s", storage_key, exc_info=True)


def artifact_read(artifact: ArtifactFile, start: int = 0, end: int | None = None, chunk_size: int = 1024 * 1024):
    """Yield the bytes of `artifact` from `start` to `end` inclusive, in chunks, without loading it whole.

    On S3 this asks for the byte range and streams the body; on a filesystem it seeks and reads.
    """
    end = artifact.size - 1 if end is None else end
    if artifact.size == 0 or end < start:
        return
    storage = artifact_storage()
    bucket = getattr(storage, "bucket", None)
    if bucket is not None:
        key = storage._normalize_name(clean_name(artifact.storage_key))  # django-storages' own key mapping
        body = bucket.Object(key).get(Range=f"bytes={start}-{end}")["Body"]
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()
        return
    with storage.open(artifact.storage_key, "rb") as handle:
        handle.seek(start)
        remaining = end - start + 1
        while remaining > 0:
            chunk = handle.read(min(chunk_size, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk


def artifact_open(artifact: ArtifactFile):
    return artifact_storage().open(artifact.storage_key, "rb")
