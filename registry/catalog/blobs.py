"""Finding and freeing artifact blobs that no row points at (`manage.py artifacts_gc`).

An upload streams into a blob of its own (a fresh key, see `services.artifact_key`) and the `ArtifactFile` row that
names it is written afterwards: until that row commits, nothing in the registry can reach the blob, and if the worker
dies first (killed, out of memory, a lost connection to the database) the blob is left behind with no row. On S3 a
large upload is a multipart upload, whose parts take space but are no object until it completes; a worker killed
half-way leaves an *incomplete* multipart upload.

The collector frees both kinds once they are older than a threshold (an hour by default): a blob still being written
is fresh (its file's modification time moves with every write; a multipart upload's newest part is recent), so it is
never taken, and every candidate is checked against the rows just before it goes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from registry.catalog.models import ArtifactFile

logger = logging.getLogger(__name__)

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
    backend = _S3Blobs(storage) if getattr(storage, "bucket", None) is not None else _LocalBlobs(storage)
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
