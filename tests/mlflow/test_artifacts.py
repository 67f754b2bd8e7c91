"""MLflow's artifact proxy over our artifact storage: uploads, listings, downloads, deletes and hostile paths."""

from __future__ import annotations

import hashlib
import http.client
import json
from pathlib import Path
from urllib.parse import urlsplit

import mlflow
import pytest
import requests
from django.test import Client
from mlflow.exceptions import MlflowException

from registry.accounts.models import ApiToken
from registry.catalog.blobs import artifact_storage
from registry.catalog.models import ArtifactFile
from tests.factories import UserFactory
from tests.mlflow.conftest import check_mlflow_answer

pytestmark = pytest.mark.django_db(transaction=True)

PROXY = "/api/2.0/mlflow-artifacts/artifacts"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def run_id(client) -> str:
    return client.create_run(client.create_experiment("files")).info.run_id


def test_log_list_and_download_artifacts(client, run_id, tmp_path, trainer_token):
    (tmp_path / "notes.txt").write_text("hello")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "config.json").write_text('{"a": 1}')
    (tree / "sub" / "weights.bin").write_bytes(bytes(range(256)) * 40)
    client.log_artifact(run_id, str(tmp_path / "notes.txt"))
    client.log_artifacts(run_id, str(tree), "bundle")
    client.log_text(run_id, "plain text", "texts/readme.md")

    rows = {a.path: a for a in ArtifactFile.objects.filter(run_id=run_id)}
    assert set(rows) == {"notes.txt", "bundle/config.json", "bundle/sub/weights.bin", "texts/readme.md"}
    assert rows["bundle/sub/weights.bin"].sha256 == sha256(bytes(range(256)) * 40)
    assert rows["bundle/sub/weights.bin"].size == 10_240
    assert rows["bundle/config.json"].content_type == "application/json"

    top = client.list_artifacts(run_id)
    assert [(f.path, f.is_dir) for f in top] == [("bundle", True), ("notes.txt", False), ("texts", True)]
    assert [(f.path, f.file_size) for f in client.list_artifacts(run_id, "bundle/sub")] == [
        ("bundle/sub/weights.bin", 10_240)
    ]
    assert client.list_artifacts(run_id, "notes.txt") == []

    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="bundle", dst_path=str(tmp_path / "dl"))
    assert (tmp_path / "dl" / "bundle" / "sub" / "weights.bin").read_bytes() == bytes(range(256)) * 40
    assert local.endswith("bundle")
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/texts/readme.md") == "plain text"
    # The same files through our own API.
    ours = Client().get(f"/api/v1/runs/{run_id}/artifacts", headers={"Authorization": f"Bearer {trainer_token}"})
    assert {a["path"] for a in ours.json()} == set(rows)


def test_overwrite_and_delete_through_the_proxy(client, rest, run_id, tmp_path):
    file = tmp_path / "model.pkl"
    file.write_bytes(b"v1")
    client.log_artifact(run_id, str(file))
    file.write_bytes(b"version two")
    client.log_artifact(run_id, str(file))
    assert ArtifactFile.objects.get(run_id=run_id, path="model.pkl").sha256 == sha256(b"version two")
    assert rest("GET", f"{PROXY}/runs/{run_id}/artifacts/model.pkl").content == b"version two"
    rest("DELETE", f"{PROXY}/runs/{run_id}/artifacts/model.pkl")
    assert not ArtifactFile.objects.filter(run_id=run_id).exists()
    assert rest("GET", f"{PROXY}/runs/{run_id}/artifacts/model.pkl").status_code == 404


def test_a_large_upload_streams_with_its_checksum(client, run_id, tmp_path):
    data = bytes(range(256)) * (5 * 4096)  # 5 MiB
    (tmp_path / "big.bin").write_bytes(data)
    client.log_artifact(run_id, str(tmp_path / "big.bin"), "blobs")
    row = ArtifactFile.objects.get(run_id=run_id, path="blobs/big.bin")
    assert (row.size, row.sha256) == (len(data), sha256(data))
    local = client.download_artifacts(run_id, "blobs/big.bin", str(tmp_path / "back"))
    assert Path(local).read_bytes() == data


def raw_request(base_url: str, method: str, path: str, token: str | None, body: bytes | None = None):
    """Send `path` exactly as written: no client library normalises `..` or re-encodes anything on the way."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.putrequest(method, path, skip_accept_encoding=True)
    if token:
        connection.putheader("Authorization", f"Bearer {token}")
    connection.putheader("Content-Length", str(len(body or b"")))
    connection.endheaders(body)
    response = connection.getresponse()
    status, content, headers = response.status, response.read(), dict(response.getheaders())
    connection.close()
    return status, content, headers


HOSTILE = [
    "runs/{run}/artifacts/../../../../etc/passwd",
    "runs/{run}/artifacts/a/../../secret.txt",
    "runs/{run}/artifacts/%2e%2e/%2e%2e/secret.txt",
    "runs/{run}/artifacts/%2E%2E%2F%2E%2E%2Fsecret.txt",
    "runs/{run}/artifacts/..%2fsecret.txt",
    "runs/{run}/artifacts/%252e%252e/secret.txt",
    "runs/{run}/artifacts/%25252e%25252e%25252fsecret.txt",
    "runs/{run}/artifacts/..\\..\\secret.txt",
    "runs/{run}/artifacts/..%5c..%5csecret.txt",
    "runs/{run}/artifacts/a%00.txt",
    "runs/{run}/artifacts/C:/Windows/secret.txt",
    "runs/{run}/artifacts/c:%5cWindows%5csecret.txt",
    "/etc/passwd",
    "//etc/passwd",
    "%2fetc%2fpasswd",
    "C:/Windows/secret.txt",
    "runs/../runs/{run}/artifacts/x.txt",
    "runs/{run}/../{run}/artifacts/x.txt",
    "runs/%2e%2e/{run}/artifacts/x.txt",
]


@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE"])
@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_paths_are_refused(mlflow_env, trainer_token, run_id, artifact_storage_in_tmp, method, hostile):
    path = f"{PROXY}/{hostile.format(run=run_id)}"
    status, content, _ = raw_request(mlflow_env, method, path, trainer_token, b"owned" if method == "PUT" else None)
    assert 400 <= status < 500, (status, content[:300])
    assert not ArtifactFile.objects.exists()
    storage = artifact_storage_in_tmp.parent
    assert not any(p.name in ("secret.txt", "passwd") for p in storage.rglob("*")), list(storage.rglob("*"))


# The shapes of issue 12 that the proxy used to clean (`//tmp/x` stored as `tmp/x`, `file:///tmp/x` as `file:/tmp/x`)
# while /api/v1 refused them: now one rule, one answer, the same words on both routes.
ISSUE_12_SHAPES = ["/tmp/x", "file:///tmp/x", "file:/tmp/x", "s3://bucket/x", "a%252Fb", "./x", "a//b", "a/./b", "x/"]


@pytest.mark.parametrize("shape", ISSUE_12_SHAPES)
def test_odd_paths_get_the_answer_api_v1_gives(mlflow_env, trainer_token, run_id, artifact_storage_in_tmp, shape):
    proxy = raw_request(mlflow_env, "PUT", f"{PROXY}/runs/{run_id}/artifacts/{shape}", trainer_token, b"owned")
    ours = raw_request(mlflow_env, "PUT", f"/api/v1/runs/{run_id}/artifacts/{shape}", trainer_token, b"owned")
    assert (proxy[0], ours[0]) == (400, 400), (proxy[:2], ours[:2])
    proxy_body, ours_body = json.loads(proxy[1]), json.loads(ours[1])
    assert proxy_body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert ours_body["error"] == "invalid_path"
    assert proxy_body["message"] == ours_body["message"]
    assert "artifact path" in ours_body["message"]
    assert not ArtifactFile.objects.exists()
    assert not [p for p in artifact_storage_in_tmp.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    "listed",
    [
        "runs/{run}/artifacts/../../other",
        "runs/{run}/artifacts/%2e%2e",
        "/etc",
        "runs/{run}/artifacts/..\\x",
        "C:/",
        "runs/{run}/artifacts/C:",
    ],
)
def test_hostile_listings_are_refused(rest, run_id, listed):
    response = rest("GET", PROXY, params={"path": listed.format(run=run_id)})
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_writes_need_a_run_its_owner_and_a_write_token(client, rest, run_id, tmp_path, trainer):
    put = f"{PROXY}/runs/{run_id}/artifacts/f.txt"
    _, reader = ApiToken.issue(user=trainer, name="reader", scope=ApiToken.Scope.READ)
    assert rest("PUT", put, data=b"x", token=reader).json()["error_code"] == "PERMISSION_DENIED"
    _, other = ApiToken.issue(user=UserFactory(username="someone-else"), name="other")
    response = rest("PUT", put, data=b"x", token=other)
    assert (response.status_code, response.json()["error_code"]) == (403, "PERMISSION_DENIED")
    assert rest("PUT", put, data=b"x", token=None).status_code == 401
    assert rest("PUT", f"{PROXY}/runs/{'f' * 32}/artifacts/f.txt", data=b"x").status_code == 404
    assert rest("PUT", f"{PROXY}/models/1/versions/1/artifacts/f.txt", data=b"x").status_code == 404
    assert rest("PUT", f"{PROXY}/runs/{run_id}/artifacts/", data=b"x").status_code == 400
    assert not ArtifactFile.objects.exists()

    # A streamed upload without Content-Length is refused rather than stored empty.
    response = rest("PUT", put, data=iter([b"chunk"]))
    assert response.status_code == 400 and "Content-Length" in response.json()["message"]

    client.delete_run(run_id)
    assert rest("PUT", put, data=b"x").json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert not ArtifactFile.objects.exists()


def test_version_files_are_read_only_through_the_proxy(client, rest, run_id, tmp_path):
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    client.log_artifact(run_id, str(tmp_path / "MLmodel"), "model")
    client.create_registered_model("m")
    client.create_model_version("m", f"runs:/{run_id}/model")
    uri = client.get_model_version_download_uri("m", "1")
    prefix = uri.removeprefix("mlflow-artifacts:")
    assert rest("GET", f"{PROXY}{prefix}/MLmodel").text == "flavors: {}\n"
    response = rest("PUT", f"{PROXY}{prefix}/MLmodel", data=b"tampered")
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert rest("DELETE", f"{PROXY}{prefix}/MLmodel").status_code == 400
    assert mlflow.artifacts.load_text("models:/m/1/MLmodel") == "flavors: {}\n"


def test_upload_refused_by_mlflow_client_surfaces_as_an_exception(client, tmp_path, as_token, trainer):
    run = client.create_run(client.create_experiment("ro"))
    (tmp_path / "a.txt").write_text("a")
    as_token(ApiToken.issue(user=trainer, name="reader", scope=ApiToken.Scope.READ)[1])
    with pytest.raises((MlflowException, requests.HTTPError), match="read-only"):
        client.log_artifact(run.info.run_id, str(tmp_path / "a.txt"))
    assert not ArtifactFile.objects.exists()


@pytest.mark.s3
def test_artifacts_stream_through_s3(client, run_id, tmp_path, s3_artifacts):
    data = b"s3 bytes " * 100_000
    (tmp_path / "blob.bin").write_bytes(data)
    client.log_artifact(run_id, str(tmp_path / "blob.bin"))
    row = ArtifactFile.objects.get(run_id=run_id, path="blob.bin")
    stored = s3_artifacts.get_object(Bucket=s3_artifacts.bucket, Key=row.storage_key)["Body"].read()
    assert stored == data
    local = client.download_artifacts(run_id, "blob.bin", str(tmp_path / "back"))
    assert Path(local).read_bytes() == data


def test_a_range_of_a_file_as_mlflows_server_sends_it(client, rest, run_id, tmp_path):
    (tmp_path / "weights.bin").write_bytes(bytes(range(256)) * 4)
    client.log_artifact(run_id, str(tmp_path / "weights.bin"))
    url = f"{PROXY}/runs/{run_id}/artifacts/weights.bin"
    part = rest("GET", url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == bytes(range(10, 20))
    refused = rest("GET", url, headers={"Range": "bytes=5000-"})
    assert refused.status_code == 416 and refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert refused.headers["Content-Range"] == "bytes */1024"


def test_a_file_whose_blob_is_gone_is_resource_does_not_exist(client, rest, run_id, tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"w" * 100)
    client.log_artifact(run_id, str(tmp_path / "weights.bin"))
    artifact_storage().delete(ArtifactFile.objects.get(run_id=run_id, path="weights.bin").storage_key)
    response = rest("GET", f"{PROXY}/runs/{run_id}/artifacts/weights.bin")
    assert response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert "missing from the artifact store" in response.json()["message"]
    with pytest.raises(MlflowException, match="Failed to download"):  # MLflow's client words it its own way
        client.download_artifacts(run_id, "weights.bin", str(tmp_path / "back"))


def test_answers_are_mlflow_json(rest, run_id):
    for response in (
        rest("GET", f"{PROXY}/runs/{run_id}/artifacts/missing.txt"),
        rest("GET", f"{PROXY}/nowhere/at/all"),
        rest("POST", f"{PROXY}/runs/{run_id}/artifacts/x", data=b"{}", headers={"Content-Type": "application/json"}),
    ):
        check_mlflow_answer(response)
        assert response.status_code in (404, 405)
