"""No orphaned bytes: a worker killed in the middle of an upload leaves no row and nothing visible, and
`manage.py artifacts_gc` frees what it wrote, on local disk and on S3 (moto_server), without touching blobs that rows
reference or uploads still in flight."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from registry.catalog.models import ArtifactFile
from tests.builders import admin, artifact_store
from tests.factories import RunFactory

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


def gc(*args: str) -> str:
    out = StringIO()
    call_command("artifacts_gc", *args, stdout=out)
    return out.getvalue()


class Local:
    def __init__(self, root: Path):
        self.root = root

    def blob_bytes(self) -> dict[str, int]:
        if not self.root.exists():
            return {}
        return {p.relative_to(self.root).as_posix(): p.stat().st_size for p in self.root.rglob("*") if p.is_file()}

    def partial_written(self) -> bool:
        return any(size > 0 for size in self.blob_bytes().values())


class S3:
    def __init__(self, client):
        self.client = client

    def blob_bytes(self) -> dict[str, int]:
        response = self.client.list_objects_v2(Bucket=self.client.bucket)
        sizes = {item["Key"]: item["Size"] for item in response.get("Contents", [])}
        for upload in self.client.list_multipart_uploads(Bucket=self.client.bucket).get("Uploads", []):
            parts = self.client.list_parts(Bucket=self.client.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            sizes[f"incomplete:{upload['Key']}"] = sum(p["Size"] for p in parts.get("Parts", []))
        return sizes

    def partial_written(self) -> bool:
        return any(key.startswith("incomplete:") and size > 0 for key, size in self.blob_bytes().items())


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def storage(request, artifact_storage_in_tmp):
    if request.param == "local":
        return Local(artifact_storage_in_tmp)
    return S3(request.getfixturevalue("s3_artifacts"))


def start_worker(run, path: str, send: int) -> subprocess.Popen:
    db = connection.settings_dict
    config = {
        "database": {key: db[key] for key in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT")},
        "artifacts": settings.STORAGES["artifacts"],
        "run": run.pk,
        "user": admin().pk,
        "path": path,
        "send": send,
    }
    env = {**os.environ, "DB_CONN_MAX_AGE": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.artifact_worker", json.dumps(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def settled_blob_bytes(storage, quiet: float = 0.5, timeout: float = 30) -> dict:
    """The storage's blobs once no size has changed for `quiet` seconds: a part that the killed worker had sent
    whole can still be landing in S3 (moto stores it after the sender is gone)."""
    deadline = time.monotonic() + timeout
    last = storage.blob_bytes()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = storage.blob_bytes()
        if now == last:
            return now
        last = now
    raise AssertionError("the storage kept changing after the worker died")


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_upload_leaves_no_row_and_gc_frees_the_partial_blob(storage):
    run = RunFactory()
    kept = artifact_store(owner=run, path="kept.txt", stream=io.BytesIO(b"kept"))
    # 20 MB: past boto3's 8 MB multipart threshold, so S3 holds uploaded parts when the worker dies.
    worker = start_worker(run, "model.bin", send=20 * MB)
    try:
        assert worker.stdout.readline().startswith("sent "), "the worker did not reach the stall"
        wait_for(storage.partial_written, "the partial upload to reach the storage")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL

    # Nothing visible: no row, so no listing, download or resolve can reach the bytes.
    assert list(ArtifactFile.objects.filter(run=run).values_list("path", flat=True)) == ["kept.txt"]
    before = settled_blob_bytes(storage)
    orphan_bytes = sum(size for key, size in before.items() if key != kept.storage_key)
    assert orphan_bytes >= MB

    # Younger than the hour: the default run and a dry run leave it (it could be an upload in flight).
    assert "Freed 0 blobs, 0 bytes" in gc()
    dry = gc("--dry-run", "--older-than", "0")
    assert f"Would free 1 blob, {orphan_bytes} bytes" in dry
    assert storage.blob_bytes() == before

    freed = gc("--older-than", "0")
    assert f"Freed 1 blob, {orphan_bytes} bytes" in freed
    assert storage.blob_bytes() == {kept.storage_key: 4}
    assert gc("--older-than", "0").startswith("Freed 0 blobs")


@pytest.mark.django_db
def test_gc_keeps_referenced_blobs_whatever_their_age_and_frees_a_replaced_files_leftover(storage):
    run = RunFactory()
    first = artifact_store(owner=run, path="a.txt", stream=io.BytesIO(b"one"))
    second = artifact_store(owner=run, path="b.txt", stream=io.BytesIO(b"two"))
    # A blob no row names (as when a worker dies between writing the blob and committing its row).
    from registry.catalog.blobs import artifact_storage

    stray = artifact_storage().save(f"runs/{run.pk}/0123456789ab/c.txt", io.BytesIO(b"three"))
    out = gc("--older-than", "0")
    assert f"{stray}  5 bytes" in out
    assert "Freed 1 blob, 5 bytes" in out
    assert set(storage.blob_bytes()) == {first.storage_key, second.storage_key}


@pytest.mark.django_db
def test_gc_leaves_a_fresh_unreferenced_blob_alone_by_default(artifact_storage_in_tmp):
    from registry.catalog.blobs import artifact_storage

    fresh = artifact_storage().save("runs/1/0123456789ab/upload.bin", io.BytesIO(b"in flight"))
    old = artifact_storage().save("runs/1/ba9876543210/old.bin", io.BytesIO(b"abandoned"))
    two_hours_ago = time.time() - 7200
    os.utime(artifact_storage_in_tmp / old, (two_hours_ago, two_hours_ago))
    out = gc()
    assert "Freed 1 blob, 9 bytes" in out and old in out
    assert (artifact_storage_in_tmp / fresh).exists()
    assert not (artifact_storage_in_tmp / old).parent.exists(), "the emptied token folder goes too"


def test_older_than_must_be_a_duration():
    with pytest.raises(CommandError, match="--older-than"):
        gc("--older-than", "soon")
