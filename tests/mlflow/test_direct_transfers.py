"""The official MLflow client moving artifact bytes straight between itself and S3 (moto): multipart uploads through
`mlflow-artifacts/mpu/create|complete|abort`, presigned (multipart) downloads, and download redirects."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from registry.audit.models import AuditEvent
from registry.catalog.models import ArtifactFile
from tests.mlflow.conftest import Rest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.s3]

MiB = 1024 * 1024


@pytest.fixture
def direct(settings, s3_artifacts, monkeypatch):
    settings.ARTIFACTS_S3_PRESIGNED_DOWNLOADS = True
    settings.ARTIFACTS_S3_MULTIPART_UPLOADS = True
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(5 * MiB))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MiB))
    monkeypatch.setenv("MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE", str(5 * MiB))
    return s3_artifacts


@pytest.fixture
def run_id(client) -> str:
    return client.create_run(client.create_experiment("direct")).info.run_id


def test_the_mlflow_client_uploads_parts_to_the_bucket_and_downloads_from_it(client, run_id, direct, tmp_path):
    data = os.urandom(12 * MiB + 7)
    (tmp_path / "weights.bin").write_bytes(data)
    client.log_artifact(run_id, str(tmp_path / "weights.bin"), artifact_path="model")

    row = ArtifactFile.objects.get(run_id=run_id, path="model/weights.bin")
    assert (row.size, row.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert direct.get_object(Bucket=direct.bucket, Key=row.storage_key)["Body"].read() == data
    assert AuditEvent.objects.get(action="artifact_stored").data["direct"] is True  # not through the proxy PUT
    assert direct.list_multipart_uploads(Bucket=direct.bucket).get("Uploads", []) == []

    # server-info offers multipart downloads: the client asks for a presigned URL and fetches ranges from S3.
    local = client.download_artifacts(run_id, "model/weights.bin", str(tmp_path / "back"))
    assert Path(local).read_bytes() == data


def test_small_files_still_go_through_the_proxy(client, run_id, direct, tmp_path):
    (tmp_path / "notes.txt").write_text("small")
    client.log_artifact(run_id, str(tmp_path / "notes.txt"))
    assert "direct" not in AuditEvent.objects.get(action="artifact_stored").data


def test_a_plain_download_follows_the_redirect(client, run_id, direct, tmp_path, monkeypatch, rest):
    (tmp_path / "a.txt").write_text("redirected")
    client.log_artifact(run_id, str(tmp_path / "a.txt"))
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "false")
    local = client.download_artifacts(run_id, "a.txt", str(tmp_path / "back"))
    assert Path(local).read_text() == "redirected"
    answer = rest("GET", f"/api/2.0/mlflow-artifacts/artifacts/runs/{run_id}/artifacts/a.txt", allow_redirects=False)
    assert answer.status_code == 302 and "Signature=" in answer.headers["Location"]


def test_server_info_and_mpu_when_direct_transfers_are_off(client, run_id, rest, s3_artifacts, tmp_path, monkeypatch):
    info = rest("GET", "/api/3.0/mlflow/server-info").json()
    assert (info["multipart_uploads_enabled"], info["multipart_downloads_enabled"]) == (False, False)
    # MLflow's own server answers 501 NOT_IMPLEMENTED with this message, which its client looks for (so not `rest`,
    # which holds every answer to "never a 5xx").
    answer = rest.session.post(
        f"{rest.base_url}/api/2.0/mlflow-artifacts/mpu/create/runs/{run_id}/artifacts",
        json={"path": "/tmp/x.bin", "num_parts": 2},
        headers={"Authorization": f"Bearer {rest.token}"},
        timeout=30,
    )
    assert (answer.status_code, answer.json()["error_code"]) == (501, "NOT_IMPLEMENTED")
    assert answer.json()["message"].startswith("Multipart upload is not supported")
    # so a client told to try multipart falls back to the proxy and still succeeds
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", "1")
    (tmp_path / "x.bin").write_bytes(b"x" * 1000)
    client.log_artifact(run_id, str(tmp_path / "x.bin"))
    assert ArtifactFile.objects.get(run_id=run_id, path="x.bin").size == 1000


def test_mpu_calls_are_checked_like_uploads(run_id, direct, rest, mlflow_env, as_token):
    base = f"/api/2.0/mlflow-artifacts/mpu/create/runs/{run_id}/artifacts"
    assert rest("POST", base, json={"num_parts": 1}).status_code == 400  # no path
    assert rest("POST", base, json={"path": "w.bin", "num_parts": 0}).status_code == 400
    forged = {"path": "w.bin", "upload_id": "forged", "parts": [{"part_number": 1, "etag": "e"}]}
    assert rest("POST", base.replace("create", "complete"), json=forged).status_code == 400
    assert rest("GET", base).status_code == 405
    stranger = Rest(mlflow_env, None)
    assert stranger("POST", base, json={"path": "w.bin", "num_parts": 1}).status_code == 401
    created = rest("POST", base, json={"path": "/home/me/w.bin", "num_parts": 2}).json()
    assert len(created["credentials"]) == 2 and created["credentials"][0]["headers"] == {}
    aborted = rest(
        "POST", base.replace("create", "abort"), json={"path": "/home/me/w.bin", "upload_id": created["upload_id"]}
    )
    assert aborted.status_code == 200
    assert direct.list_multipart_uploads(Bucket=direct.bucket).get("Uploads", []) == []
