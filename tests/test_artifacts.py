"""Artifacts: bytes stored through the `artifacts` storage come back identical, on local disk and on S3 (moto_server).

Every behaviour runs against both backends through the `blobs` fixture; S3 cases carry the `s3` mark. Each upload
gets a blob of its own (`runs/<run>/<token>/<path>`); a replaced blob is deleted after commit once nothing uses it,
so tests that replace files run the on-commit callbacks.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path

import pytest

from registry.catalog.blobs import artifact_key, artifact_open, artifact_storage
from registry.catalog.errors import ArtifactTooLarge, CatalogError, ChecksumMismatch
from registry.catalog.models import ArtifactFile
from tests.builders import admin, artifact_store, version_create
from tests.factories import RegisteredModelFactory, RunFactory

pytestmark = pytest.mark.django_db


class LocalBlobs:
    """Reads what the filesystem storage really holds, under the per-test folder."""

    def __init__(self, root: Path):
        self.root = root

    def keys(self) -> set[str]:
        if not self.root.exists():
            return set()
        return {p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()}

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()


class S3Blobs:
    """Reads what the bucket really holds, through the fixture's own boto3 client."""

    def __init__(self, client):
        self.client = client

    def keys(self) -> set[str]:
        response = self.client.list_objects_v2(Bucket=self.client.bucket)
        return {item["Key"] for item in response.get("Contents", [])}

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.client.bucket, Key=key)["Body"].read()


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def blobs(request, artifact_storage_in_tmp):
    if request.param == "local":
        return LocalBlobs(artifact_storage_in_tmp)
    return S3Blobs(request.getfixturevalue("s3_artifacts"))


@pytest.fixture
def run():
    return RunFactory()


def store(owner, path: str, data: bytes, **kwargs) -> ArtifactFile:
    return artifact_store(owner=owner, path=path, stream=io.BytesIO(data), **kwargs)


def run_key(run, path: str) -> re.Pattern:
    return re.compile(rf"runs/{run.pk}/[0-9a-f]+/{re.escape(path)}")


def read_back(artifact: ArtifactFile) -> bytes:
    with artifact_open(artifact) as handle:
        return handle.read()


def test_stored_bytes_read_back_identical_with_size_and_sha256(blobs, run):
    data = os.urandom(300_000) + b"\x00\xff" * 10
    artifact = store(run, "model/model.pkl", data)

    assert read_back(artifact) == data
    assert artifact.size == len(data)
    assert artifact.sha256 == hashlib.sha256(data).hexdigest()
    assert run_key(run, "model/model.pkl").fullmatch(artifact.storage_key)
    # The row read fresh from the database says the same.
    row = ArtifactFile.objects.get(run=run, path="model/model.pkl")
    assert (row.size, row.sha256, row.storage_key) == (artifact.size, artifact.sha256, artifact.storage_key)
    # And the blob is really where the storage says it is.
    assert blobs.keys() == {artifact.storage_key}
    assert blobs.read(artifact.storage_key) == data


def test_empty_file(blobs, run):
    artifact = store(run, "empty.txt", b"")
    assert (artifact.size, artifact.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert read_back(artifact) == b""
    assert blobs.keys() == {artifact.storage_key}


def test_paths_are_refused_not_cleaned_and_content_type_guessed(blobs, run):
    with pytest.raises(CatalogError, match="empty or '.' segments"):
        store(run, "./reports//summary.json", b"{}")  # one rule on every route: refused, never silently rewritten
    assert blobs.keys() == set()
    artifact = store(run, "reports/summary.json", b"{}")
    assert artifact.path == "reports/summary.json"
    assert artifact.content_type == "application/json"
    assert blobs.keys() == {artifact.storage_key}
    assert run_key(run, "reports/summary.json").fullmatch(artifact.storage_key)
    assert store(run, "weights.unknownext", b"x").content_type == "application/octet-stream"


@pytest.mark.parametrize("path", ["../other-run/model.pkl", "/etc/passwd", "a\\b", "%2e%2e/x"])
def test_hostile_path_is_refused_before_anything_is_stored(blobs, run, path):
    with pytest.raises(CatalogError):
        store(run, path, b"data")
    assert blobs.keys() == set()
    assert not ArtifactFile.objects.exists()


def test_version_artifacts_live_under_the_version(blobs):
    version = version_create(model=RegisteredModelFactory())
    artifact = store(version, "model.onnx", b"onnx")
    assert artifact.version == version and artifact.run is None
    assert artifact.storage_key.startswith(f"models/{version.model_id}/versions/{version.version}/")
    assert artifact.storage_key.endswith("/model.onnx")
    assert blobs.read(artifact.storage_key) == b"onnx"


def test_large_file_round_trips(blobs, run):
    # Past the in-memory spool (8 MiB) and past boto3's multipart threshold (8 MB).
    data = os.urandom(9 * 1024 * 1024 + 7)
    artifact = store(run, "weights.bin", data)
    assert (artifact.size, artifact.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert read_back(artifact) == data
    assert blobs.read(artifact.storage_key) == data


def test_size_limit(blobs, run):
    fits = store(run, "fits.bin", b"x" * 10, limit=10)
    assert fits.size == 10
    with pytest.raises(ArtifactTooLarge, match="10-byte limit"):
        store(run, "too-big.bin", b"x" * (3 * 1024 * 1024), limit=10)
    assert not ArtifactFile.objects.filter(path="too-big.bin").exists()
    # No partial blob is left behind.
    assert blobs.keys() == {fits.storage_key}


def test_refused_oversized_replacement_keeps_the_stored_file(blobs, run, django_capture_on_commit_callbacks):
    original = store(run, "model.pkl", b"good model")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ArtifactTooLarge):
        store(run, "model.pkl", b"y" * (3 * 1024 * 1024), limit=1024 * 1024)
    row = ArtifactFile.objects.get(run=run, path="model.pkl")
    assert (row.size, row.sha256, row.storage_key) == (original.size, original.sha256, original.storage_key)
    assert read_back(row) == b"good model"
    assert blobs.keys() == {row.storage_key}
    assert blobs.read(row.storage_key) == b"good model"


def test_storing_the_same_path_twice_replaces_it(blobs, run, django_capture_on_commit_callbacks):
    first = store(run, "model/model.pkl", b"first version of the bytes")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = store(run, "model/model.pkl", b"second")

    assert second.pk == first.pk
    assert callbacks, "the replaced blob's clean-up was not scheduled"
    assert ArtifactFile.objects.filter(run=run).count() == 1
    row = ArtifactFile.objects.get(run=run)
    assert (row.size, row.sha256) == (6, hashlib.sha256(b"second").hexdigest())
    assert read_back(row) == b"second"
    # The old blob is gone once nothing refers to it.
    assert blobs.keys() == {row.storage_key}
    assert blobs.read(row.storage_key) == b"second"


def test_version_from_run_copies_only_files_under_the_prefix(blobs, run):
    files = {
        "model/model.pkl": b"pickle",
        "model/MLmodel": b"flavors: {}",
        "model/env/requirements.txt": b"scikit-learn==1.5.2\n",
        "model_card.md": b"# not part of the model",  # shares the prefix's letters, not its folder
        "modelx/other.bin": b"other",
        "metrics.json": b"{}",
    }
    originals = {path: store(run, path, data) for path, data in files.items()}
    keys_before = blobs.keys()

    version = version_create(model=RegisteredModelFactory(), run=run, artifact_path="model")

    copied = {a.path: a for a in ArtifactFile.objects.filter(version=version)}
    assert set(copied) == {"model.pkl", "MLmodel", "env/requirements.txt"}
    for relative, artifact in copied.items():
        original = originals[f"model/{relative}"]
        assert (artifact.storage_key, artifact.size, artifact.sha256) == (
            original.storage_key,
            original.size,
            original.sha256,
        )
        assert read_back(artifact) == files[f"model/{relative}"]
    assert version.source == f"runs:/{run.pk}/model"
    # The run keeps its own rows, and registering wrote no new blobs.
    assert ArtifactFile.objects.filter(run=run).count() == len(files)
    assert blobs.keys() == keys_before


def test_version_from_a_single_file(blobs, run):
    store(run, "model/model.pkl", b"pickle")
    version = version_create(model=RegisteredModelFactory(), run=run, artifact_path="model/model.pkl")
    [artifact] = ArtifactFile.objects.filter(version=version)
    assert artifact.path == "model.pkl"
    assert read_back(artifact) == b"pickle"


def test_version_from_the_whole_run(blobs, run):
    store(run, "a.txt", b"a")
    store(run, "dir/b.txt", b"b")
    version = version_create(model=RegisteredModelFactory(), run=run, artifact_path="")
    assert set(ArtifactFile.objects.filter(version=version).values_list("path", flat=True)) == {"a.txt", "dir/b.txt"}
    assert version.source == f"runs:/{run.pk}"


def test_a_copied_version_shares_every_file_of_the_original(blobs, run):
    """version_copy gives the new version the original's rows, one statement whatever their number: same paths, same
    blobs, nothing new stored; the original keeps its own rows."""
    from registry.audit.models import AuditEvent
    from registry.catalog.services import version_copy

    files = {f"model/{'sub/' * (i % 3)}part-{i:02}.bin": bytes([i]) * (i + 1) for i in range(12)}
    for path, data in files.items():
        store(run, path, data)
    original = version_create(model=RegisteredModelFactory(), run=run, artifact_path="model")
    target = RegisteredModelFactory()
    keys_before = blobs.keys()

    copy = version_copy(version=original, model=target, by=admin())

    assert [f.path for f in copy.created_files] == sorted(path.removeprefix("model/") for path in files)
    originals = {f.path: f for f in ArtifactFile.objects.filter(version=original)}
    stored = {f.path: f for f in ArtifactFile.objects.filter(version=copy)}
    assert stored.keys() == originals.keys() and len(stored) == 12
    for path, artifact in stored.items():
        assert (artifact.storage_key, artifact.size, artifact.sha256, artifact.content_type, artifact.run_id) == (
            originals[path].storage_key,
            originals[path].size,
            originals[path].sha256,
            originals[path].content_type,
            None,
        )
        assert read_back(artifact) == files[f"model/{path}"]
    assert blobs.keys() == keys_before
    [event] = AuditEvent.objects.filter(model_id=target.pk, version_number=copy.version)
    assert event.data == {"copied_from": f"{original.model.name}/1", "files": 12}


def test_replacing_a_run_file_leaves_registered_versions_unchanged(blobs, run, django_capture_on_commit_callbacks):
    """A version shares its run's blobs; re-logging the run's file must neither overwrite nor delete them."""
    store(run, "model/model.pkl", b"registered bytes")
    version = version_create(model=RegisteredModelFactory(), run=run, artifact_path="model")
    with django_capture_on_commit_callbacks(execute=True):
        replaced = store(run, "model/model.pkl", b"retrained later")

    [artifact] = ArtifactFile.objects.filter(version=version)
    assert artifact.sha256 == hashlib.sha256(b"registered bytes").hexdigest()
    assert read_back(artifact) == b"registered bytes"
    assert read_back(replaced) == b"retrained later"
    assert blobs.keys() == {artifact.storage_key, replaced.storage_key}


# --- Blobs uploaded around the app server (S3 multipart), recorded by artifact_register_uploaded --------------------


def test_a_blob_uploaded_directly_is_recorded_with_the_hash_of_what_is_stored(run, blobs):
    from registry.catalog.artifact_files import artifact_register_uploaded
    from tests.builders import admin

    data = os.urandom(70_000)
    key = artifact_storage().save(artifact_key(run, "m/w.bin"), io.BytesIO(data))
    row = artifact_register_uploaded(owner=run, path="m/w.bin", key=key, by=admin())
    assert (row.size, row.sha256, row.storage_key) == (len(data), hashlib.sha256(data).hexdigest(), key)
    with artifact_open(row) as handle:
        assert handle.read() == data


def test_registering_a_blob_checks_owner_hash_limit_and_presence(run, blobs):
    from registry.catalog.artifact_files import artifact_register_uploaded
    from tests.builders import admin

    other = RunFactory()
    storage = artifact_storage()
    theirs = storage.save(artifact_key(other, "w.bin"), io.BytesIO(b"theirs"))
    with pytest.raises(CatalogError, match="not uploaded for this owner"):
        artifact_register_uploaded(owner=run, path="w.bin", key=theirs, by=admin())
    with pytest.raises(CatalogError, match="Nothing was uploaded"):
        artifact_register_uploaded(owner=run, path="w.bin", key=artifact_key(run, "w.bin"), by=admin())
    mine = storage.save(artifact_key(run, "w.bin"), io.BytesIO(b"mine"))
    with pytest.raises(ChecksumMismatch):
        artifact_register_uploaded(owner=run, path="w.bin", key=mine, by=admin(), sha256="0" * 64)
    assert not storage.exists(mine)
    big = storage.save(artifact_key(run, "w.bin"), io.BytesIO(b"x" * 100))
    with pytest.raises(ArtifactTooLarge):
        artifact_register_uploaded(owner=run, path="w.bin", key=big, by=admin(), limit=99)
    assert not storage.exists(big) and not ArtifactFile.objects.exists()
    assert storage.exists(theirs)  # someone else's blob is never touched
