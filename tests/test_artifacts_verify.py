"""`manage.py artifacts_verify`: every file row's blob is in the store with its size (and sha256 with --checksums),
on local disk and on S3 (moto_server); a damaged blob is reported with every run and version that uses it."""

from __future__ import annotations

import io
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from registry.catalog.blobs import artifact_storage
from registry.catalog.models import ArtifactFile
from tests.builders import artifact_store, model_create, run_create, version_create

pytestmark = pytest.mark.django_db


def verify(*args: str) -> str:
    out = StringIO()
    call_command("artifacts_verify", *args, stdout=out)
    return out.getvalue()


def verify_failing(*args: str) -> tuple[str, str]:
    out = StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("artifacts_verify", *args, stdout=out)
    return out.getvalue(), str(refused.value)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request, artifact_storage_in_tmp):
    if request.param == "s3":
        request.getfixturevalue("s3_artifacts")
    return artifact_storage()


@pytest.fixture
def registered(store, owner):
    """A run with two files, the model/ folder registered as fraud v1 (its file shares the run's blob)."""
    run = run_create(name="fraud-training", user=owner)
    artifact_store(owner=run, path="model/model.pkl", stream=io.BytesIO(b"weights" * 100))
    artifact_store(owner=run, path="notes.txt", stream=io.BytesIO(b"hello"))
    version_create(model=model_create(name="fraud", owner=owner), run=run, artifact_path="model", created_by=owner)
    return run


def replace_blob(store, key: str, data: bytes) -> None:
    store.delete(key)
    store.save(key, io.BytesIO(data))
    assert store.exists(key)


def test_a_whole_store_passes(registered):
    assert verify("--checksums").endswith(
        "Checked 2 blobs (705 bytes, sizes and checksums) named by 3 file rows: all there.\n"
    )


def test_a_missing_blob_is_listed_with_every_row_that_uses_it(store, registered):
    key = ArtifactFile.objects.get(run=registered, path="model/model.pkl").storage_key
    store.delete(key)
    out, error = verify_failing()
    assert out.splitlines()[:3] == [
        f"missing: {key} (not in the artifact store)",
        f"  run {registered.pk}: model/model.pkl",
        "  fraud v1: model.pkl",
    ]
    assert "Checked 2 blobs (5 bytes, sizes) named by 3 file rows: 1 damaged" in error


def test_other_bytes_of_another_size_are_caught_without_reading_them(store, registered):
    key = ArtifactFile.objects.get(run=registered, path="notes.txt").storage_key
    replace_blob(store, key, b"hello, world")
    out, _ = verify_failing()
    assert out.splitlines()[0] == f"wrong size: {key} (12 bytes stored, 5 recorded)"


def test_other_bytes_of_the_same_size_need_checksums(store, registered):
    key = ArtifactFile.objects.get(run=registered, path="notes.txt").storage_key
    replace_blob(store, key, b"HELLO")
    assert verify().endswith("all there.\n")  # sizes alone cannot see it
    out, error = verify_failing("--checksums")
    assert out.splitlines()[0].startswith(f"wrong checksum: {key} (sha256 ")
    assert "1 damaged" in error


def test_an_empty_registry_passes(store):
    assert verify().endswith("Checked 0 blobs (0 bytes, sizes) named by 0 file rows: all there.\n")
