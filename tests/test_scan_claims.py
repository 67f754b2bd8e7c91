"""Several scanners at once (scan workers on several machines, an upload's own thread): each pending file is claimed
by exactly one of them, with a lease that a scanner which died loses."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from registry.audit.models import AuditEvent
from registry.catalog.models import ArtifactFile
from registry.scanning import services as scanning
from registry.scanning.models import FileScan, Verdict
from tests import scan_files as files
from tests.builders import artifact_store, run_create
from tests.concurrency import at_once


def _pending_uploads(settings, count: int) -> list[str]:
    """`count` uploads too large to be scanned during the upload: pending, for the scan workers."""
    settings.SCAN_SYNC_MAX_BYTES = 10
    run = run_create()
    stored = [
        artifact_store(owner=run, path=f"model/part-{i}.pkl", stream=io.BytesIO(files.malicious_pickle()))
        for i in range(count)
    ]
    keys = [a.storage_key for a in stored]
    assert set(FileScan.objects.filter(storage_key__in=keys).values_list("verdict", flat=True)) == {Verdict.PENDING}
    return keys


@pytest.mark.django_db
def test_a_pending_file_is_claimed_once_until_its_lease_runs_out(settings):
    (key,) = _pending_uploads(settings, 1)
    assert scanning.claim(key) is True
    assert scanning.claim(key) is False  # another scanner: not while the lease runs
    assert scanning.scan_pending() == 0 and FileScan.objects.get(storage_key=key).verdict == Verdict.PENDING

    # The scanner holding it died: once the lease has run out, the next scanner takes the file.
    FileScan.objects.filter(storage_key=key).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert scanning.scan_pending() == 1
    scan = FileScan.objects.get(storage_key=key)
    assert scan.verdict == Verdict.UNSAFE and scan.claimed_until is None
    assert scanning.claim(key) is False  # scanned: nothing to claim


@pytest.mark.django_db
def test_queueing_again_frees_the_claim(settings):
    (key,) = _pending_uploads(settings, 1)
    assert scanning.claim(key)
    # A rescan queues it again (a new generation: the scan in flight will not save its verdict).
    assert scanning.queue_files(ArtifactFile.objects.filter(storage_key=key), after_commit=False) == [key]
    assert FileScan.objects.get(storage_key=key).claimed_until is None
    assert scanning.scan_pending() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_scan_workers_scan_each_file_exactly_once(settings):
    keys = _pending_uploads(settings, 12)
    counts = at_once(scanning.scan_pending, 2)

    assert sum(counts) == len(keys)
    assert set(FileScan.objects.filter(storage_key__in=keys).values_list("verdict", flat=True)) == {Verdict.UNSAFE}
    # One verdict recorded per file, not one per worker that looked at it.
    assert AuditEvent.objects.filter(action="file_scanned").count() == len(keys)
