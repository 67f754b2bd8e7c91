"""Artifact files over HTTP: streamed upload, listing, ranged download and deletion, on local disk and on S3."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import quote

import pytest
from django.test.client import FakePayload
from prometheus_client import REGISTRY

from registry.catalog.blobs import artifact_storage
from registry.catalog.models import ArtifactFile
from registry.tracking.models import Run
from tests.api.conftest import Api, assert_error
from tests.builders import grant

pytestmark = pytest.mark.django_db

DATA = os.urandom(300_000)


class LocalBlobs:
    def __init__(self, root: Path):
        self.root = root

    def keys(self) -> set[str]:
        if not self.root.exists():
            return set()
        return {p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()}


class S3Blobs:
    def __init__(self, client):
        self.client = client

    def keys(self) -> set[str]:
        response = self.client.list_objects_v2(Bucket=self.client.bucket)
        return {item["Key"] for item in response.get("Contents", [])}


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def blobs(request, artifact_storage_in_tmp):
    if request.param == "local":
        return LocalBlobs(artifact_storage_in_tmp)
    return S3Blobs(request.getfixturevalue("s3_artifacts"))


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run the callbacks a request registers for after its commit (blob clean-up), as a real request would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def missing_count() -> float:
    return REGISTRY.get_sample_value("registry_artifact_blobs_missing_total") or 0.0


def download(api, run_id: str, path: str, **kwargs):
    return api.get(f"/runs/{run_id}/artifacts/{path}", **kwargs)


# --- Upload, list, download, delete ---------------------------------------------------------------------------------


def test_upload_list_download_delete(api, run_id, blobs, on_commit):
    response = api.upload(run_id, "model/model.pkl", DATA)
    assert response.status_code == 201
    uploaded = response.json()
    assert uploaded["path"] == "model/model.pkl"
    assert uploaded["size"] == len(DATA)
    assert uploaded["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert uploaded["url"] == f"/api/v1/runs/{run_id}/artifacts/model/model.pkl"
    api.upload(run_id, "metrics.json", b'{"f1": 0.9}')
    assert len(blobs.keys()) == 2

    listed = api.get(f"/runs/{run_id}/artifacts").json()
    assert [(a["path"], a["size"]) for a in listed] == [("metrics.json", 11), ("model/model.pkl", len(DATA))]
    assert listed[0]["content_type"] == "application/json"
    assert [a["path"] for a in api.get(f"/runs/{run_id}/artifacts", query={"prefix": "model"}).json()] == [
        "model/model.pkl"
    ]
    assert api.get(f"/runs/{run_id}/artifacts", query={"prefix": "mod"}).json() == []

    fetched = download(api, run_id, "model/model.pkl")
    assert fetched.status_code == 200
    assert body_of(fetched) == DATA
    assert fetched["Content-Length"] == str(len(DATA))
    assert fetched["X-Checksum-Sha256"] == uploaded["sha256"]
    assert fetched["ETag"] == f'"{uploaded["sha256"]}"'
    assert fetched["Accept-Ranges"] == "bytes"
    assert 'filename="model.pkl"' in fetched["Content-Disposition"]

    with on_commit():
        assert api.delete(f"/runs/{run_id}/artifacts/model/model.pkl").status_code == 204
    assert_error(download(api, run_id, "model/model.pkl"), 404)
    assert [a["path"] for a in api.get(f"/runs/{run_id}/artifacts").json()] == ["metrics.json"]
    assert len(blobs.keys()) == 1
    assert_error(api.delete(f"/runs/{run_id}/artifacts/model/model.pkl"), 404)


def test_empty_file(api, run_id, blobs):
    uploaded = api.upload(run_id, "empty.txt", b"").json()
    assert (uploaded["size"], uploaded["sha256"]) == (0, hashlib.sha256(b"").hexdigest())
    assert body_of(download(api, run_id, "empty.txt")) == b""


def test_odd_paths_are_refused_not_cleaned(api, run_id, blobs):
    """One rule on every route (registry.lib.paths): `./reports//summary.txt` is not quietly stored as another path."""
    response = api.upload(run_id, "./reports//summary.txt", b"ok")
    assert_error(response, 400, code="invalid_path")
    assert "'.' segments" in response.json()["message"]
    assert not ArtifactFile.objects.exists() and blobs.keys() == set()
    assert api.upload(run_id, "reports/summary.txt", b"ok").json()["path"] == "reports/summary.txt"
    assert_error(download(api, run_id, "reports//./summary.txt"), 400, code="invalid_path")


def test_unknown_run_or_file_is_404(api, run_id, blobs):
    assert_error(api.upload("0" * 32, "a.txt", b"x"), 404)
    assert_error(download(api, run_id, "nope.txt"), 404)
    assert_error(api.get("/runs/" + "0" * 32 + "/artifacts"), 404)
    assert blobs.keys() == set()


# --- Ranges ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=1000-1999", 1000, 1999),
        ("bytes=299990-", 299_990, 299_999),
        ("bytes=-25", 299_975, 299_999),
        ("bytes=299000-999999999", 299_000, 299_999),
        ("bytes=-999999999", 0, 299_999),
        ("bytes=5-5", 5, 5),
    ],
)
def test_range_requests(api, run_id, blobs, header, start, end):
    api.upload(run_id, "model.bin", DATA)
    response = download(api, run_id, "model.bin", headers={"Range": header})
    assert response.status_code == 206
    assert body_of(response) == DATA[start : end + 1]
    assert response["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert response["Content-Length"] == str(end - start + 1)


def test_if_range_resumes_only_the_same_file(api, run_id, blobs):
    """A client resuming a download names the version it holds part of (its ETag, the sha256); another one gets the
    whole file again (200), not a piece of a different file."""
    uploaded = api.upload(run_id, "model.bin", DATA).json()
    same = download(api, run_id, "model.bin", headers={"Range": "bytes=100-", "If-Range": f'"{uploaded["sha256"]}"'})
    assert same.status_code == 206 and body_of(same) == DATA[100:]
    other = download(api, run_id, "model.bin", headers={"Range": "bytes=100-", "If-Range": '"0000"'})
    assert other.status_code == 200 and body_of(other) == DATA


@pytest.mark.parametrize("header", ["bytes=300000-", "bytes=300000-300010", "bytes=10-5", "bytes=-0"])
def test_unsatisfiable_range_is_416(api, run_id, blobs, header):
    api.upload(run_id, "model.bin", DATA)
    response = download(api, run_id, "model.bin", headers={"Range": header})
    assert_error(response, 416)
    assert response["Content-Range"] == f"bytes */{len(DATA)}"


@pytest.mark.parametrize("header", ["bytes=a-b", "bytes=-", "bytes=0-1,5-6", "items=0-1"])
def test_unreadable_range_is_a_json_416(api, run_id, blobs, header):
    api.upload(run_id, "model.bin", DATA)
    assert_error(download(api, run_id, "model.bin", headers={"Range": header}), 416)


def test_a_range_on_an_empty_file_is_416(api, run_id, blobs):
    api.upload(run_id, "empty.bin", b"")
    assert_error(download(api, run_id, "empty.bin", headers={"Range": "bytes=0-"}), 416)


@pytest.mark.parametrize("headers", [{}, {"Range": "bytes=0-9"}], ids=["whole", "range"])
def test_a_file_whose_blob_is_gone_is_a_404_that_says_so(api, run_id, blobs, headers, caplog):
    """Found before the answer starts: a 404 naming the file, not a 200 whose body breaks off (nor a 500)."""
    api.upload(run_id, "model/model.pkl", DATA)
    artifact_storage().delete(ArtifactFile.objects.get(run_id=run_id).storage_key)
    missing_before = missing_count()
    response = download(api, run_id, "model/model.pkl", headers=headers)
    error = assert_error(response, 404, code="artifact_missing")
    assert "'model/model.pkl' are missing from the artifact store" in error["message"]
    assert "no blob" in caplog.text  # the operators hear of it: the registry lost bytes it promised to keep
    assert missing_count() == missing_before + 1  # and the metrics they alert on count it


def test_a_blob_damaged_to_another_size_is_sent_as_it_is_not_promised_at_the_recorded_size(
    api, run_id, artifact_storage_in_tmp
):
    """A Content-Length larger than what follows would leave the client waiting for bytes that never come."""
    api.upload(run_id, "model.bin", DATA)
    row = ArtifactFile.objects.get(run_id=run_id)
    (artifact_storage_in_tmp / row.storage_key).write_bytes(DATA[:1000])
    response = download(api, run_id, "model.bin")
    assert response.status_code == 200 and response["Content-Length"] == "1000"
    assert body_of(response) == DATA[:1000] and response["X-Checksum-Sha256"] == row.sha256  # what the client checks


@pytest.mark.parametrize("headers", [{}, {"Range": "bytes=1-3"}], ids=["whole", "range"])
def test_names_that_need_quoting_reach_the_client_intact(api, run_id, blobs, headers):
    name = 'résumé "final".txt'
    api.upload(run_id, name, b"contents")
    response = download(api, run_id, quote(name), headers=headers)
    assert response.status_code in (200, 206)
    disposition = response["Content-Disposition"]
    assert (
        disposition.startswith("attachment; ") and "filename*=utf-8''r%C3%A9sum%C3%A9%20%22final%22.txt" in disposition
    )


# --- Replacing and failing ------------------------------------------------------------------------------------------


def test_reupload_replaces_the_file(api, run_id, blobs, on_commit):
    api.upload(run_id, "model.bin", b"first version")
    with on_commit():
        second = api.upload(run_id, "model.bin", b"second, longer version").json()
    assert second["sha256"] == hashlib.sha256(b"second, longer version").hexdigest()
    assert body_of(download(api, run_id, "model.bin")) == b"second, longer version"
    assert ArtifactFile.objects.filter(run_id=run_id).count() == 1
    # The replaced blob is gone; only the new one is left.
    assert blobs.keys() == {ArtifactFile.objects.get(run_id=run_id).storage_key}


def test_failed_reupload_leaves_the_previous_file_intact(api, run_id, blobs, settings, on_commit):
    settings.ARTIFACT_MAX_UPLOAD_BYTES = 100
    first = api.upload(run_id, "model.bin", b"x" * 50).json()
    keys = blobs.keys()
    with on_commit():
        assert_error(api.upload(run_id, "model.bin", b"y" * 101), 413, contains="limit")
    assert body_of(download(api, run_id, "model.bin")) == b"x" * 50
    row = ArtifactFile.objects.get(run_id=run_id)
    assert (row.size, row.sha256) == (50, first["sha256"])
    assert blobs.keys() == keys


def test_upload_at_the_limit_is_accepted(api, run_id, blobs, settings):
    settings.ARTIFACT_MAX_UPLOAD_BYTES = 100
    assert api.upload(run_id, "model.bin", b"z" * 100).status_code == 201


def test_over_the_limit_is_413_and_nothing_is_written(api, run_id, blobs, settings):
    settings.ARTIFACT_MAX_UPLOAD_BYTES = 1000
    assert_error(api.upload(run_id, "big.bin", b"b" * 1001), 413, code="payload_too_large")
    assert not ArtifactFile.objects.exists()
    assert blobs.keys() == set()


def test_missing_content_length_is_411(client, write_token, run_id, blobs):
    # Built by hand: the test client's put() always adds a Content-Length.
    response = client.request(
        REQUEST_METHOD="PUT",
        PATH_INFO=f"/api/v1/runs/{run_id}/artifacts/model.bin",
        CONTENT_TYPE="application/octet-stream",
        HTTP_AUTHORIZATION=f"Bearer {write_token}",
        **{"wsgi.input": FakePayload(b"some bytes")},
    )
    assert_error(response, 411, code="length_required")
    assert not ArtifactFile.objects.exists()
    assert blobs.keys() == set()


def test_a_non_numeric_content_length_is_411(api, run_id, blobs):
    response = api.upload(run_id, "model.bin", b"abc", headers={"Content-Length": "lots"})
    assert_error(response, 411)
    assert not ArtifactFile.objects.exists()


# --- Hostile paths --------------------------------------------------------------------------------------------------

HOSTILE = [
    "..",
    "../x",
    "a/../../b",
    "a/..",
    "%2e%2e/x",
    "%2E%2E/x",
    "%252e%252e/x",
    "%25252e%25252e/x",
    "..%2fx",
    "..%2Fx",
    "//etc/passwd",
    "/%2fetc/passwd",
    "C:/x",
    "c:x",
    "C:\\x",
    "C:%5Cx",
    "a\\b",
    "a%5Cb",
    "..\\x",
    "a%00b",
    "a%01b",
    "a%1fb",
    "a%7fb",
    "a%0ab",
    "a%0db",
    "%0a",
    "a%09b",
    "a/%2e%2e/%2e%2e/b",
    "model%2f..%2f..%2fsecret",
    # The shapes of issue 12: a leading slash (the URL reads artifacts//tmp/x), schemes, deep encoding, odd segments.
    "/tmp/x",
    "file:///tmp/x",
    "file:/tmp/x",
    "s3://bucket/x",
    "a%252Fb",
    "a%25252Fb",
    "./x",
    "a//b",
    "a/./b",
    "a%E2%80%AEb",  # U+202E RIGHT-TO-LEFT OVERRIDE
]


@pytest.mark.parametrize("path", HOSTILE)
def test_hostile_paths_are_refused_and_nothing_is_written(api, run_id, artifact_storage_in_tmp, path):
    response = api.upload(run_id, path, b"payload")
    assert_error(response)
    assert not ArtifactFile.objects.exists()
    assert LocalBlobs(artifact_storage_in_tmp).keys() == set()
    assert_error(download(api, run_id, path))
    assert_error(api.delete(f"/runs/{run_id}/artifacts/{path}"))


@pytest.mark.s3
@pytest.mark.parametrize("path", ["..", "a/../../b", "%2e%2e/x", "%252e%252e/x", "//etc/passwd", "C:\\x", "a%00b"])
def test_hostile_paths_on_s3(api, run_id, s3_artifacts, path):
    assert_error(api.upload(run_id, path, b"payload"))
    assert not ArtifactFile.objects.exists()
    assert S3Blobs(s3_artifacts).keys() == set()


def test_a_hostile_prefix_is_refused_when_listing(api, run_id):
    assert_error(api.get(f"/runs/{run_id}/artifacts", query={"prefix": "../x"}), 400, code="invalid_path")


# --- Sharing with versions and permissions --------------------------------------------------------------------------


def test_deleting_a_run_file_shared_by_a_version_keeps_the_versions_copy(api, run_id, blobs, on_commit):
    api.upload(run_id, "model/model.pkl", DATA)
    api.post("/models", {"name": "fraud"})
    version = api.post("/models/fraud/versions", {"run_id": run_id, "artifact_path": "model"}).json()
    assert [a["path"] for a in version["artifacts"]] == ["model.pkl"]

    with on_commit():
        assert api.delete(f"/runs/{run_id}/artifacts/model/model.pkl").status_code == 204

    response = api.get("/models/fraud/versions/1/artifacts/model.pkl")
    assert response.status_code == 200 and body_of(response) == DATA
    assert len(blobs.keys()) == 1


def test_only_the_runs_author_or_a_manager_may_upload_or_delete(
    client, api, run_id, other_token, staff_user, staff_token, blobs
):
    api.upload(run_id, "model.bin", b"owner's")
    other = Api(client, other_token)
    assert_error(other.upload(run_id, "model.bin", b"intruder's"), 403)
    assert_error(other.upload(run_id, "extra.bin", b"intruder's"), 403)
    assert_error(other.delete(f"/runs/{run_id}/artifacts/model.bin"), 403)
    assert body_of(download(api, run_id, "model.bin")) == b"owner's"
    assert ArtifactFile.objects.count() == 1 and len(blobs.keys()) == 1
    # Anyone who can read may download.
    assert body_of(download(other, run_id, "model.bin")) == b"owner's"

    # Being staff (an admin-site user) is not enough; managing the experiment is.
    staff = Api(client, staff_token)
    assert_error(staff.upload(run_id, "by-ops.bin", b"ops"), 403)
    grant(Run.objects.get(pk=run_id).experiment, staff_user, "MANAGE")
    assert staff.upload(run_id, "by-ops.bin", b"ops").status_code == 201
    assert staff.delete(f"/runs/{run_id}/artifacts/by-ops.bin").status_code == 204


@pytest.mark.parametrize("script_prefix", ["/", "/registry space/"])
@pytest.mark.parametrize("path", ["model.pkl", "dir/sub dir/naïve #1?.txt", "a%20b/100%", "x/(1)+[2]@:~;,=&$!'*.bin"])
def test_file_urls_are_what_reverse_gives(path, script_prefix):
    from django.urls import reverse, set_script_prefix

    from registry.api.artifacts import run_artifact_url, version_artifact_url
    from tests.factories import ModelVersionFactory

    version = ModelVersionFactory(model__name="fraud-detector_v2.1")
    set_script_prefix(script_prefix)
    try:
        assert version_artifact_url(version, path) == reverse(
            "api-1.0.0:download_version_artifact",
            kwargs={"name": version.model.name, "version": version.version, "path": path},
        )
        assert run_artifact_url("ab" * 16, path) == reverse(
            "api-1.0.0:download_run_artifact", kwargs={"run_id": "ab" * 16, "path": path}
        )
    finally:
        set_script_prefix("/")
