"""Scanning artifact files: queue a scan when a file is stored, run it (at once when small, in the background when
large), keep the verdict with the scanner's version, tell the audit log and webhooks, and roll verdicts up per
version. Rescans on demand (`version_rescan`, `manage.py rescan`) and when the scanner changes (`queue_outdated`).

The catalog calls `file_stored` inside the transaction that records an upload, so a queued scan and its file are
committed together: if the process dies before scanning, `manage.py scan_worker` finds the pending row.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from registry.audit import services as audit
from registry.audit.models import AuditAction, WebhookEventType
from registry.catalog.access import require
from registry.catalog.blobs import artifact_storage
from registry.catalog.models import ArtifactFile, ModelVersion
from registry.lib import filescan
from registry.lib.access import Level
from registry.lib.errors import Conflict
from registry.lib.scan_allowlist import parse_extra
from registry.scanning.models import FileScan, FileVerdict, Verdict, VersionScan

logger = logging.getLogger(__name__)

SCANNER_ACTOR = "system:scanner"
NOT_SCANNED = "not scanned yet (stored before scanning was on): run manage.py rescan"


def _extra_allowed() -> dict[str, frozenset[str]]:
    try:
        return parse_extra(settings.SCAN_EXTRA_ALLOWED_GLOBALS)
    except ValueError as exc:
        logger.error("SCAN_EXTRA_ALLOWED_GLOBALS ignored: %s", exc)
        return {}


# --- Queueing -------------------------------------------------------------------------------------------------------


def scan_upload(storage_key: str, path: str, size: int) -> filescan.Verdict | None:
    """Scan a blob just written, before its row is recorded, when it is small enough to scan on the request path
    (`SCAN_SYNC_MAX_BYTES`); None for a larger one, which is scanned in the background."""
    if size > settings.SCAN_SYNC_MAX_BYTES:
        return None
    return _run_scanner(storage_key, path)


def file_stored(artifact: ArtifactFile, result: filescan.Verdict | None) -> None:
    """Record the verdict `scan_upload` gave, in the transaction that records the file; without one, queue the
    scan for the background once the transaction commits."""
    if result is None:
        _queue([(artifact.storage_key, artifact.path, artifact.size)])
        return
    row, _ = FileScan.objects.update_or_create(
        storage_key=artifact.storage_key,
        defaults={"path": artifact.path, "size": artifact.size, "queued_at": timezone.now(), **_fields(result)},
    )
    if row.verdict == Verdict.UNSAFE and artifact.version_id:
        _version_found_unsafe(artifact.version, [f"{row.path}: {finding}" for finding in row.findings])


def _queue(files: Iterable[tuple[str, str, int]], *, after_commit: bool = True) -> list[str]:
    """Mark these blobs pending (a new generation: a scan already running for one of them will not be saved) and
    scan them after commit."""
    now = timezone.now()
    keys = []
    for storage_key, path, size in files:
        updated = FileScan.objects.filter(storage_key=storage_key).update(
            verdict=Verdict.PENDING,
            queued_at=now,
            generation=F("generation") + 1,
            claimed_until=None,
            path=path,
            size=size,
        )
        if not updated:
            FileScan.objects.create(storage_key=storage_key, path=path, size=size, queued_at=now)
        keys.append((storage_key, size))
    if keys and after_commit:
        transaction.on_commit(lambda: _scan_after_commit(keys))
    return [key for key, _ in keys]


def _scan_after_commit(keys: list[tuple[str, int]]) -> None:
    for storage_key, size in keys:
        if size <= settings.SCAN_SYNC_MAX_BYTES:
            try:
                scan_key(storage_key)
            except Exception:  # noqa: BLE001 - the upload has committed; the worker retries what stays pending
                logger.exception("Scanning %s failed; it stays pending for scan_worker", storage_key)
        elif settings.SCAN_BACKGROUND == "thread":
            _executor().submit(_scan_in_thread, storage_key)
        # "worker": `manage.py scan_worker --loop` picks it up.


_executor_lock = threading.Lock()
_executor_instance: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _executor_instance
    with _executor_lock:
        if _executor_instance is None:
            # One thread per process: large scans queue behind each other instead of taking every core.
            _executor_instance = ThreadPoolExecutor(max_workers=1, thread_name_prefix="file-scan")
        return _executor_instance


def _scan_in_thread(storage_key: str) -> None:
    try:
        scan_key(storage_key)
    except Exception:  # noqa: BLE001 - logged; the row stays pending for scan_worker
        logger.exception("Background scan of %s failed", storage_key)
    finally:
        connections.close_all()


# --- Scanning -------------------------------------------------------------------------------------------------------


def _open(storage_key: str):
    return artifact_storage().open(storage_key, "rb")


def _run_scanner(storage_key: str, path: str) -> filescan.Verdict:
    """The scanner's verdict on a stored blob, with `seconds` set. Never raises for what the file holds or for a
    scanner crash: those are `unknown` with the reason."""
    started = time.monotonic()
    try:
        with _open(storage_key) as handle:
            result = filescan.scan(handle, path, extra_allowed=_extra_allowed(), timeout=settings.SCAN_TIMEOUT_SECONDS)
    except FileNotFoundError:
        result = filescan.Verdict(filescan.UNKNOWN, "", reason="the stored file is missing")
    except Exception as exc:  # noqa: BLE001 - a scanner bug or a storage error is an unknown verdict, not a 500
        logger.exception("The scanner failed on %s", storage_key)
        result = filescan.Verdict(filescan.UNKNOWN, "", reason=f"the scanner failed: {type(exc).__name__}: {exc}")
    result.seconds = round(time.monotonic() - started, 4)
    return result


def _fields(result: filescan.Verdict) -> dict:
    return {
        "verdict": result.verdict,
        "format": result.format[:64],
        "findings": result.findings[:200],
        "reason": result.reason[:4000],
        "scanner": filescan.SCANNER,
        "scanner_version": filescan.SCANNER_VERSION,
        "scanned_at": timezone.now(),
        "seconds": getattr(result, "seconds", None),
    }


def claim(storage_key: str) -> bool:
    """Take a pending blob for this scanner: one conditional UPDATE, so of several scanners (scan workers on several
    machines, the upload's own thread) exactly one gets it. The claim is a lease of the scan's time limit and a
    minute: a scanner that dies mid-scan loses it, and the file is scanned by another."""
    now = timezone.now()
    lease = timedelta(seconds=settings.SCAN_TIMEOUT_SECONDS + 60)
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    taken = FileScan.objects.filter(free, storage_key=storage_key, verdict=Verdict.PENDING)
    return taken.update(claimed_until=now + lease) == 1


def scan_key(storage_key: str) -> FileScan | None:
    """Scan one queued blob now and save its verdict (unless it was queued again meanwhile), with an audit event.
    None when there is nothing to do: the blob is not pending, or another scanner holds it."""
    if not claim(storage_key):
        return None
    row = FileScan.objects.get(storage_key=storage_key)
    generation = row.generation
    fields = {**_fields(_run_scanner(storage_key, row.path)), "claimed_until": None}
    with transaction.atomic():
        if not FileScan.objects.filter(pk=row.pk, generation=generation).update(**fields):
            return None  # queued again while this scan ran: the newer scan decides
        for name, value in fields.items():
            setattr(row, name, value)
        _record_verdict(row)
    return row


def _record_verdict(row: FileScan) -> None:
    """An audit event for the verdict, on the run or version that holds the file; for every version now found
    unsafe, an audit event and the `version.unsafe` webhook."""
    files = list(
        ArtifactFile.objects.filter(storage_key=row.storage_key).select_related("version__model", "run__experiment")
    )
    data = {
        "path": row.path,
        "verdict": row.verdict,
        "format": row.format,
        "findings": row.findings[:20],
        "reason": row.reason[:500],
        "scanner_version": row.scanner_version,
    }
    holder = files[0] if files else None
    where = {}
    if holder is not None:
        where = {"version": holder.version} if holder.version_id else {"run": holder.run}
    audit.record(AuditAction.FILE_SCANNED, actor=SCANNER_ACTOR, to_value=row.verdict, data=data, **where)
    if row.verdict == Verdict.UNSAFE:
        for version in {f.version for f in files if f.version_id}:
            _version_found_unsafe(version, [f"{row.path}: {finding}" for finding in row.findings])


def _version_found_unsafe(version: ModelVersion, findings: list[str]) -> None:
    audit.record(AuditAction.VERSION_UNSAFE, actor=SCANNER_ACTOR, version=version, data={"findings": findings[:20]})
    audit.emit(
        WebhookEventType.VERSION_UNSAFE,
        model=version.model,
        payload={**audit.version_payload(version), "findings": findings[:20]},
    )


def version_registered(version: ModelVersion) -> None:
    """A version registered from a run's files (or copied from another version) shares their verdicts: if one is
    already unsafe, say so now (in the registration's transaction). One query (one per thousand files), and none
    when the version has no files. The roll-up read is left on the version as `version.scan` (what the answer to
    the registration shows, as other outputs' preloaded scans)."""
    files = getattr(version, "created_files", [])
    if not files:
        return
    scans = FileScan.objects.of_blobs(f.storage_key for f in files)
    version.scan = VersionScan.of([_file_verdict(f.path, scans.get(f.storage_key)) for f in files])
    unsafe = sorted((s for s in scans.values() if s.verdict == Verdict.UNSAFE), key=lambda s: s.pk)
    if unsafe:
        _version_found_unsafe(version, [f"{s.path}: {finding}" for s in unsafe for finding in s.findings])


def scan_pending(limit: int | None = None, *, stop: Callable[[], bool] | None = None) -> int:
    """Scan pending files that no other scanner holds, oldest first (what `scan_worker` runs; several may run at
    once). Returns how many this call scanned."""
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=timezone.now())
    keys = FileScan.objects.filter(free, verdict=Verdict.PENDING).order_by("queued_at", "id")
    keys = keys.values_list("storage_key", flat=True)
    done = 0
    for storage_key in list(keys if limit is None else keys[:limit]):
        if stop is not None and stop():
            break
        if scan_key(storage_key) is not None:
            done += 1
    return done


def queue_outdated() -> int:
    """Queue again every verdict given by another scanner version (an upgrade of our rules or of picklescan)."""
    stale = FileScan.objects.exclude(verdict=Verdict.PENDING).exclude(scanner_version=filescan.SCANNER_VERSION)
    return stale.update(
        verdict=Verdict.PENDING, queued_at=timezone.now(), generation=F("generation") + 1, claimed_until=None
    )


def queue_files(files: Iterable[ArtifactFile], *, after_commit: bool = True) -> list[str]:
    """Queue these files' blobs (each once); with `after_commit`, scan them once the queueing commits (else the
    caller or `scan_worker` runs `scan_pending`)."""
    seen: dict[str, tuple[str, str, int]] = {}
    for f in files:
        seen.setdefault(f.storage_key, (f.storage_key, f.path, f.size))
    with transaction.atomic():
        return _queue(seen.values(), after_commit=after_commit)


def verdicts_drop_unused() -> int:
    """Drop the verdicts of blobs no stored file uses any more (their files were deleted). Verdicts are a cache keyed
    by content; what was found unsafe in a version stays in the audit log. Returns how many were dropped."""
    dropped, _ = FileScan.objects.exclude(storage_key__in=ArtifactFile.objects.values("storage_key")).delete()
    return dropped


class NothingToScan(Conflict):
    """A rescan of a version without files: its state, not the request, is why (409)."""


def version_rescan(*, version: ModelVersion, by) -> list[str]:
    """Scan a version's files again (EDIT on its model), e.g. after the allowlist was extended."""
    require(version.model, by, Level.EDIT, doing="rescan versions of")
    files = list(ArtifactFile.objects.filter(version=version))
    if not files:
        raise NothingToScan(f"Version {version.version} has no files to scan.")
    with transaction.atomic():
        keys = queue_files(files)
        audit.record(AuditAction.SCAN_REQUESTED, actor=by, version=version, data={"files": len(files)})
    return keys


# --- Reading verdicts -----------------------------------------------------------------------------------------------


def _file_verdict(path: str, scan: FileScan | None) -> FileVerdict:
    if scan is None:
        return FileVerdict(path, Verdict.UNKNOWN, reason=NOT_SCANNED)
    return FileVerdict(
        path,
        scan.verdict,
        scan.format,
        list(scan.findings or []),
        scan.reason,
        scan.scanner_version,
        scan.scanned_at,
    )


def scans_for_versions(version_ids: Iterable[int]) -> dict[int, VersionScan]:
    """Each version's roll-up: two queries whatever the number of versions (one more per thousand files)."""
    ids = list(version_ids)
    rows = ArtifactFile.objects.filter(version_id__in=ids).order_by("path")
    files = list(rows.values_list("version_id", "path", "storage_key"))
    scans = FileScan.objects.of_blobs(key for _, _, key in files)
    per_version: dict[int, list[FileVerdict]] = {version_id: [] for version_id in ids}
    for version_id, path, key in files:
        per_version[version_id].append(_file_verdict(path, scans.get(key)))
    return {version_id: VersionScan.of(found) for version_id, found in per_version.items()}


def version_scan(version: ModelVersion) -> VersionScan:
    created = getattr(version, "created_files", None)
    if created is not None:
        # Just registered: its file rows are in hand, only their verdicts are read (one query, none without files).
        scans = file_scans(created)
        return VersionScan.of([scans[f.path] for f in sorted(created, key=lambda f: f.path)])
    return scans_for_versions([version.pk])[version.pk]


def file_scans(files: Iterable[ArtifactFile]) -> dict[str, FileVerdict]:
    """Verdicts of these file rows by path (a run's or a version's file list): one query per thousand files."""
    files = list(files)
    scans = FileScan.objects.of_blobs(f.storage_key for f in files)
    return {f.path: _file_verdict(f.path, scans.get(f.storage_key)) for f in files}
