"""The Python client moving large files straight to and from the bucket (S3 on moto) when the registry offers it."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from registry_client import Registry, transfer
from registry_client.progress import Progress

from registry.audit.models import AuditEvent
from registry.catalog.models import ArtifactFile

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.s3]

MiB = 1024 * 1024


@pytest.fixture
def direct(settings, s3_artifacts):
    settings.ARTIFACTS_S3_PRESIGNED_DOWNLOADS = True
    settings.ARTIFACTS_S3_MULTIPART_UPLOADS = True
    return s3_artifacts


@pytest.fixture
def big(tmp_path):
    data = os.urandom(11 * MiB + 5)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(data)
    (tmp_path / "model" / "MLmodel").write_text("flavors: {}\n")
    return tmp_path / "model", data


def test_files_above_the_threshold_go_in_parts_with_the_progress_bar(
    live_server, write_token, direct, big, tmp_path, monkeypatch
):
    folder, data = big
    stream = io.StringIO()
    monkeypatch.setattr(
        "registry_client.run.Progress", lambda total, label, enabled: Progress(total, label, stream=stream)
    )
    registry = Registry(live_server.url, write_token, progress=True, multipart_threshold=5 * MiB)
    with registry.start_run(experiment="direct") as run:
        stored = run.log_artifact(folder, artifact_path="model")
        run.register_model("direct-model")
    sizes = {a["path"]: a["size"] for a in stored}
    assert sizes == {"model/weights.bin": len(data), "model/MLmodel": 12}
    row = ArtifactFile.objects.get(run__isnull=False, path="model/weights.bin")
    assert row.sha256 == hashlib.sha256(data).hexdigest()
    directs = [e.to_value for e in AuditEvent.objects.filter(action="artifact_stored") if e.data.get("direct")]
    assert directs == ["model/weights.bin"]  # the small file was streamed through the registry
    assert "100%" in stream.getvalue() and "11.0 MB" in stream.getvalue()

    # Pulling follows the registry's redirects to the bucket; each file is checked against its sha256.
    pulled = registry.pull("direct-model/1", tmp_path / "pulled")
    assert (pulled / "weights.bin").read_bytes() == data


def test_a_registry_without_direct_uploads_gets_the_file_streamed(live_server, write_token, s3_artifacts, big):
    folder, data = big
    registry = Registry(live_server.url, write_token, progress=False, multipart_threshold=5 * MiB)
    with registry.start_run(experiment="streamed") as run:
        run.log_artifact(folder / "weights.bin")
        run.log_artifact(folder / "weights.bin", artifact_path="again")
    assert registry.http.direct_uploads_off is True  # asked once, then remembered
    assert ArtifactFile.objects.get(path="again/weights.bin").sha256 == hashlib.sha256(data).hexdigest()
    assert not any(e.data.get("direct") for e in AuditEvent.objects.filter(action="artifact_stored"))


def test_a_refused_part_aborts_the_upload(live_server, write_token, direct, big, monkeypatch):
    folder, _ = big
    registry = Registry(live_server.url, write_token, progress=False, multipart_threshold=5 * MiB, retries=0)

    def broken(http, bucket, url, *args):
        raise transfer.RegistryError(403, "part_upload_failed", "The bucket refused a part")

    monkeypatch.setattr(transfer, "_put_part", broken)
    with registry.start_run(experiment="broken") as run, pytest.raises(transfer.RegistryError, match="refused"):
        run.log_artifact(folder / "weights.bin")
    assert direct.list_multipart_uploads(Bucket=direct.bucket).get("Uploads", []) == []
    assert not ArtifactFile.objects.filter(path="weights.bin").exists()
