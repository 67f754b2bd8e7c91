"""Artifact blobs: the bytes behind `ArtifactFile` rows, in the `artifacts` storage (a folder or an S3 bucket).

Here a blob gets its key, is written while it is hashed, read back (whole or a byte range), and freed once no row
names it. The rows themselves, and who may write them, belong to registry.catalog.services, which calls these.

An upload streams into a blob of its own (a fresh key, `artifact_key`) and the `ArtifactFile` row that names it is
written afterwards: until that row commits, nothing in the registry can reach the blob, and if the worker dies first
(killed, out of memory, a lost connection to the database) the blob is left behind with no row. On S3 a large upload
is a multipart upload, whose parts take space but are no object until it completes; a worker killed half-way leaves
an *incomplete* multipart upload.

The collector (`collect_garbage`, `manage.py artifacts_gc`) frees both kinds once they are older than a threshold (an
hour by default): a blob still being written is fresh (its file's modification time moves with every write; a
multipart upload's newest part is recent), so it is never taken, and every candidate is checked against the rows
just before it goes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from django.core.files.base import File
from django.core.files.storage import storages
from django.db import transaction
from storages.utils import clean_name

from registry.catalog.errors import ArtifactTooLarge
from registry.catalog.models import ArtifactFile, ModelVersion
from registry.lib.readahead import ReadAhead
from registry.tracking.models import Run

logger = logging.getLogger(__name__)


def artifact_storage():
    """The `artifacts` storage of settings.STORAGES: a folder, or an S3 bucket through django-storages."""
    return storages["artifacts"]


class HashingReader:
    """Wraps a binary stream, hashing and counting what is read, refusing to read past `limit` bytes.

    The storage reads from it chunk by chunk, so an upload is hashed while it streams and never held whole. A thread
    receives and hashes the next chunks while the storage writes the last ones (registry.lib.readahead): on this
    VM's disk that took a 200 MB upload from about 260 to about 400 MB/s. Close it (or use it in `with`) so the
    thread stops whatever happened.
    """

    def __init__(self, stream: BinaryIO, limit: int | None):
        self.limit = limit
        self.size = 0
        self.hash = hashlib.sha256()
        self._ahead = ReadAhead(stream, chunk_size=UploadFile.DEFAULT_CHUNK_SIZE, on_chunk=self._count)

    closed = False

    def __enter__(self) -> HashingReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self._ahead.close()

    def _count(self, chunk: bytes) -> None:
        # In the read-ahead thread, in stream order.
        self.size += len(chunk)
        if self.limit is not None and self.size > self.limit:
            raise ArtifactTooLarge(f"The artifact is larger than the {self.limit}-byte limit.")
        self.hash.update(chunk)

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True

    def read(self, n: int = -1) -> bytes:
        return self._ahead.read(n if n is not None and n >= 0 else UploadFile.DEFAULT_CHUNK_SIZE)


class UploadFile(File):
    # The file system storage copies File.chunks(), 64 KB at a time by default: each chunk costs a pass through
    # gunicorn's and Django's Python body readers, which at 64 KB is most of an upload's server time.
    DEFAULT_CHUNK_SIZE = 1024 * 1024


def artifact_key(owner: Run | ModelVersion, path: str) -> str:
    """A fresh blob name for a file of `owner`. Each upload gets its own blob, so a failed or partial upload never
    damages the file it was meant to replace; the replaced blob is deleted once the new row is committed.

    The blob is pending until its row commits: the row is the only way to reach it. A worker killed in between leaves
    a blob (or an incomplete S3 multipart upload) that no row names; `manage.py artifacts_gc` frees those once they
    are an hour old (`collect_garbage` below)."""
    token = secrets.token_hex(6)
    name = _blob_name(path)
    if isinstance(owner, Run):
        return f"runs/{owner.pk}/{token}/{name}"
    return f"models/{owner.model_id}/versions/{owner.version}/{token}/{name}"


# File systems refuse names past 255 bytes and S3 keys past 1,024: a path that could break either is stored under a
# digest of itself (the row keeps the path; the key only has to be unique and stable).
_SEGMENT_BYTES_MAX = 200
_KEY_PATH_BYTES_MAX = 700


def _blob_name(path: str) -> str:
    encoded = path.encode()
    if len(encoded) <= _KEY_PATH_BYTES_MAX and all(len(part) <= _SEGMENT_BYTES_MAX for part in encoded.split(b"/")):
        return path
    return "long-path-" + hashlib.sha256(encoded).hexdigest()


def chunks(storage_key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
    """The bytes of a stored blob, in chunks. The blob is opened before this returns: FileNotFoundError then when the
    store has no such blob, on a folder as on S3, rather than partway through."""
    storage = artifact_storage()
    if getattr(storage, "bucket", None) is None:
        return _file_chunks(storage.open(storage_key, "rb"), None, chunk_size)
    return _s3_chunks(_s3_body(storage, storage_key), chunk_size)


def _s3_body(storage, storage_key: str, **get_args):
    """The streaming body of a bucket's object (GetObject with `get_args`, e.g. a Range); FileNotFoundError when
    the bucket has no such key."""
    from botocore.exceptions import ClientError

    key = storage._normalize_name(clean_name(storage_key))  # django-storages' own key mapping
    try:
        return storage.bucket.Object(key).get(**get_args)["Body"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            raise FileNotFoundError(storage_key) from None
        raise


def _s3_chunks(body, chunk_size: int) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(chunk_size)
    finally:
        body.close()


def _file_chunks(handle, length: int | None, chunk_size: int) -> Iterator[bytes]:
    """Up to `length` bytes (all with None) from the handle's position, closing it at the end or when abandoned."""
    with handle:
        remaining = length
        while remaining is None or remaining > 0:
            chunk = handle.read(chunk_size if remaining is None else min(chunk_size, remaining))
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk


def delete_when_unused(storage_key: str) -> None:
    """Delete the blob once the current transaction commits, unless a row (a version sharing it) still names it."""

    def delete() -> None:
        if not ArtifactFile.objects.filter(storage_key=storage_key).exists():
            delete_quietly(storage_key)

    transaction.on_commit(delete)


def delete_quietly(storage_key: str) -> None:
    """Delete the blob now; a failure is logged, not raised."""
    try:
        artifact_storage().delete(storage_key)
    except Exception:  # noqa: BLE001 - a leftover blob is harmless; failing the request over it is not
        logger.warning("Could not delete artifact blob %s", storage_key, exc_info=True)


def artifact_read(
    artifact: ArtifactFile, start: int = 0, end: int | None = None, chunk_size: int = 1024 * 1024
) -> Iterator[bytes]:
    """The bytes of `artifact` from `start` to `end` inclusive, in chunks, without loading it whole.

    On S3 this asks for the byte range and streams the body; on a folder it seeks and reads. The blob is opened
    before this returns: FileNotFoundError then when the store has lost it, before any byte is answered.
    """
    end = artifact.size - 1 if end is None else end
    if artifact.size == 0 or end < start:
        return iter(())
    storage = artifact_storage()
    if getattr(storage, "bucket", None) is not None:
        return _s3_chunks(_s3_body(storage, artifact.storage_key, Range=f"bytes={start}-{end}"), chunk_size)
    handle = storage.open(artifact.storage_key, "rb")
    handle.seek(start)
    return _file_chunks(handle, end - start + 1, chunk_size)


def artifact_open(artifact: ArtifactFile):
    return artifact_storage().open(artifact.storage_key, "rb")


# --- Blobs no row names (`manage.py artifacts_gc`) -----------------------------------------------------------------

DEFAULT_MIN_AGE = timedelta(hours=1)
BATCH = 500


@dataclass(frozen=True, slots=True)
class Blob:
    name: str  # the storage name, as `ArtifactFile.storage_key` holds it
    size: int
    modified: datetime


@dataclass(frozen=True, slots=True)
class PartialUpload:
    """An S3 multipart upload that was started and never completed or aborted."""

    name: str
    upload_id: str
    size: int
    modified: datetime


@dataclass
class GcReport:
    blobs: list[Blob] = field(default_factory=list)
    partial_uploads: list[PartialUpload] = field(default_factory=list)
    dry_run: bool = False

    @property
    def count(self) -> int:
        return len(self.blobs) + len(self.partial_uploads)

    @property
    def bytes(self) -> int:
        return sum(b.size for b in self.blobs) + sum(u.size for u in self.partial_uploads)


def collect_garbage(storage, *, min_age: timedelta = DEFAULT_MIN_AGE, dry_run: bool = False) -> GcReport:
    """Delete the blobs of `storage` that no `ArtifactFile` references and that were last written more than `min_age`
    ago, and abort S3 multipart uploads idle for as long. Returns what was (or, with `dry_run`, would be) freed."""
    cutoff = datetime.now(UTC) - min_age
    report = GcReport(dry_run=dry_run)
    backend = _listing(storage)
    old = (blob for blob in backend.blobs() if blob.modified <= cutoff)
    for batch in _batches(old, BATCH):
        # The re-check: rows are read after the listing, so a row committed meanwhile keeps its blob.
        referenced = set(
            ArtifactFile.objects.filter(storage_key__in=[b.name for b in batch]).values_list("storage_key", flat=True)
        )
        for blob in batch:
            if blob.name in referenced:
                continue
            if not dry_run:
                backend.delete(blob)
            report.blobs.append(blob)
    for upload in backend.partial_uploads():
        if upload.modified <= cutoff:
            if not dry_run:
                backend.abort(upload)
            report.partial_uploads.append(upload)
    if not dry_run:
        backend.finish()
    if report.count and not dry_run:
        logger.info("artifacts_gc freed %d blobs, %d bytes", report.count, report.bytes)
    return report


def _batches(items, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _listing(storage) -> _LocalBlobs | _S3Blobs:
    return _S3Blobs(storage) if getattr(storage, "bucket", None) is not None else _LocalBlobs(storage)


class _LocalBlobs:
    def __init__(self, storage):
        self.root = Path(storage.location)
        self.emptied: set[Path] = set()

    def blobs(self) -> Iterator[Blob]:
        if not self.root.is_dir():
            return
        for directory, _dirs, files in os.walk(self.root):
            for filename in files:
                path = Path(directory, filename)
                try:
                    stat = path.lstat()
                except FileNotFoundError:
                    continue  # deleted meanwhile (a replaced file's blob)
                if not path.is_file() or path.is_symlink():
                    continue
                name = path.relative_to(self.root).as_posix()
                yield Blob(name, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))

    def delete(self, blob: Blob) -> None:
        path = self.root / blob.name
        try:
            path.unlink()
        except FileNotFoundError:
            return
        self.emptied.add(path.parent)

    def partial_uploads(self) -> Iterator[PartialUpload]:
        return iter(())

    def abort(self, upload: PartialUpload) -> None:  # pragma: no cover - local disk has none
        raise NotImplementedError

    def finish(self) -> None:
        """Remove the folders left empty by the deletions (each upload's token folder, then its parents)."""
        for directory in sorted(self.emptied, key=lambda p: len(p.parts), reverse=True):
            while directory != self.root and self.root in directory.parents:
                try:
                    directory.rmdir()
                except OSError:
                    break  # not empty (or gone): a concurrent upload may be using it
                directory = directory.parent


class _S3Blobs:
    def __init__(self, storage):
        self.bucket = storage.bucket
        self.client = storage.bucket.meta.client
        location = (storage.location or "").strip("/")
        self.prefix = f"{location}/" if location else ""

    def _name(self, key: str) -> str:
        return key[len(self.prefix) :]

    def blobs(self) -> Iterator[Blob]:
        for item in self.bucket.objects.filter(Prefix=self.prefix):
            yield Blob(self._name(item.key), item.size, item.last_modified)

    def delete(self, blob: Blob) -> None:
        self.client.delete_object(Bucket=self.bucket.name, Key=self.prefix + blob.name)

    def partial_uploads(self) -> Iterator[PartialUpload]:
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket.name, Prefix=self.prefix
        )
        for page in pages:
            for upload in page.get("Uploads", []):
                size, modified = 0, upload["Initiated"]
                parts = self.client.get_paginator("list_parts").paginate(
                    Bucket=self.bucket.name, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                for part_page in parts:
                    for part in part_page.get("Parts", []):
                        size += part["Size"]
                        modified = max(modified, part["LastModified"])
                yield PartialUpload(self._name(upload["Key"]), upload["UploadId"], size, modified)

    def abort(self, upload: PartialUpload) -> None:
        self.client.abort_multipart_upload(
            Bucket=self.bucket.name, Key=self.prefix + upload.name, UploadId=upload.upload_id
        )

    def finish(self) -> None:
        pass


# --- Rows whose blob is gone or differs (`manage.py artifacts_verify`) ----------------------------------------------

MISSING, WRONG_SIZE, WRONG_CHECKSUM = "missing", "wrong size", "wrong checksum"


@dataclass(frozen=True, slots=True)
class Damage:
    """A blob that does not hold what a file row says: gone, of another size, or (when checksums are read) other
    bytes. `files` names every row that uses it (a run's file and the versions registered from it share one)."""

    storage_key: str
    problem: str
    detail: str
    files: tuple[str, ...]


@dataclass
class VerifyReport:
    blobs: int = 0
    bytes: int = 0
    rows: int = 0
    damage: list[Damage] = field(default_factory=list)


def verify(storage, *, checksums: bool = False) -> VerifyReport:
    """Check that every file row's blob is in `storage` with the row's size, and with `checksums` the row's sha256
    (which reads every byte). The store is listed once (names and sizes held in memory, about 150 bytes a blob), then
    the rows are read in storage-key order; each blob is checked once. Rows written after the listing started are
    left for the next run: their blobs may have been written after the listing passed them."""
    started = datetime.now(UTC)
    sizes = {blob.name: blob.size for blob in _listing(storage).blobs()}
    report = VerifyReport()
    rows = (
        ArtifactFile.objects.filter(created_at__lt=started)
        .order_by("storage_key", "pk")
        .values_list("storage_key", "size", "sha256", "path", "run_id", "version__model__name", "version__version")
        .iterator(chunk_size=2000)
    )
    key, named, expected = None, [], None
    for storage_key, size, sha256, path, run_id, model_name, version in rows:
        report.rows += 1
        if storage_key != key:
            if key is not None:
                _verify_blob(report, key, expected, sizes.get(key), named, checksums)
            key, named, expected = storage_key, [], (size, sha256)
        named.append(f"run {run_id}: {path}" if run_id else f"{model_name} v{version}: {path}")
    if key is not None:
        _verify_blob(report, key, expected, sizes.get(key), named, checksums)
    return report


def _verify_blob(report: VerifyReport, key: str, expected, stored_size: int | None, named, checksums: bool) -> None:
    size, sha256 = expected
    report.blobs += 1
    files = tuple(named)
    if stored_size is None:
        report.damage.append(Damage(key, MISSING, "not in the artifact store", files))
        return
    report.bytes += stored_size
    if stored_size != size:
        detail = f"{stored_size} bytes stored, {size} recorded"
        report.damage.append(Damage(key, WRONG_SIZE, detail, files))
        return
    if checksums:
        digest = hashlib.sha256()
        try:
            for chunk in chunks(key):
                digest.update(chunk)
        except FileNotFoundError:  # deleted since the listing: its rows went with it, or it is missing now
            report.damage.append(Damage(key, MISSING, "gone while being read", files))
            return
        if digest.hexdigest() != sha256:
            detail = f"sha256 {digest.hexdigest()}, {sha256} recorded"
            report.damage.append(Damage(key, WRONG_CHECKSUM, detail, files))
