"""Bytes that skip the app server on S3: presigned download redirects and multipart uploads straight to the bucket,
completed (hashed, recorded, audited) through the API."""

from __future__ import annotations

import hashlib
import os
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from registry.audit.models import AuditEvent
from registry.catalog.models import ArtifactFile
from registry.scanning.models import FileScan
from tests import scan_files
from tests.api.conftest import AS_DEFAULT, assert_error
from tests.api.test_artifacts import S3Blobs

pytestmark = [pytest.mark.django_db, pytest.mark.s3]

MiB = 1024 * 1024


@pytest.fixture
def direct(settings, s3_artifacts):
    settings.ARTIFACTS_S3_PRESIGNED_DOWNLOADS = True
    settings.ARTIFACTS_S3_MULTIPART_UPLOADS = True
    return s3_artifacts


def start(api, run_id, path="model/weights.bin", size=12 * MiB, token=AS_DEFAULT, **extra):
    return api.post(f"/runs/{run_id}/multipart-uploads", {"path": path, "size": size, **extra}, token=token)


def put_parts(upload: dict, data: bytes) -> list[dict]:
    """What a client does between start and complete: PUT each slice to its URL, keep S3's ETags."""
    parts = []
    size = upload["part_size"]
    for part in upload["parts"]:
        number = part["part_number"]
        chunk = data[(number - 1) * size : number * size]
        response = requests.put(part["url"], data=chunk, timeout=30)
        assert response.status_code == 200, response.text
        parts.append({"part_number": number, "etag": response.headers["ETag"]})
    return parts


def test_a_multipart_upload_lands_in_the_bucket_and_is_recorded_with_its_real_hash(api, run_id, direct, user):
    data = os.urandom(12 * MiB + 123)
    response = start(api, run_id, size=len(data), part_size=5 * MiB)
    assert response.status_code == 201, response.content
    upload = response.json()
    assert upload["part_size"] == 5 * MiB and [p["part_number"] for p in upload["parts"]] == [1, 2, 3]
    assert upload["expires_in"] > 0
    assert not ArtifactFile.objects.exists()  # nothing recorded until completed

    parts = put_parts(upload, data)
    sha256 = hashlib.sha256(data).hexdigest()
    done = api.post(
        f"/runs/{run_id}/multipart-uploads/complete",
        {"path": "model/weights.bin", "upload_id": upload["upload_id"], "parts": parts, "sha256": sha256},
    )
    assert done.status_code == 201, done.content
    assert (done.json()["size"], done.json()["sha256"]) == (len(data), sha256)
    row = ArtifactFile.objects.get(run_id=run_id, path="model/weights.bin")
    assert (row.size, row.sha256) == (len(data), sha256)
    assert direct.get_object(Bucket=direct.bucket, Key=row.storage_key)["Body"].read() == data
    event = AuditEvent.objects.get(action="artifact_stored")
    assert (event.actor_id, event.to_value, event.data["direct"]) == (user.pk, "model/weights.bin", True)


def test_a_file_uploaded_in_parts_is_scanned_like_a_streamed_one(api, run_id, direct):
    data = scan_files.malicious_pickle()
    upload = start(api, run_id, path="model/model.pkl", size=len(data)).json()
    body = {"path": "model/model.pkl", "upload_id": upload["upload_id"], "parts": put_parts(upload, data)}
    assert api.post(f"/runs/{run_id}/multipart-uploads/complete", body).status_code == 201
    row = ArtifactFile.objects.get(run_id=run_id, path="model/model.pkl")
    verdict = FileScan.objects.get(storage_key=row.storage_key)
    assert verdict.verdict == "unsafe" and "os.system" in verdict.findings[0]
    assert AuditEvent.objects.get(action="artifact_stored").data["scan"] == "unsafe"


def test_the_hash_is_the_servers_not_the_clients(api, run_id, direct):
    data = os.urandom(6 * MiB)
    upload = start(api, run_id, size=len(data)).json()
    parts = put_parts(upload, data)
    body = {"path": "model/weights.bin", "upload_id": upload["upload_id"], "parts": parts, "sha256": "0" * 64}
    refused = api.post(f"/runs/{run_id}/multipart-uploads/complete", body)
    assert_error(refused, 422, code="checksum_mismatch", contains=hashlib.sha256(data).hexdigest())
    assert not ArtifactFile.objects.exists()
    assert S3Blobs(direct).keys() == set()  # the assembled blob is deleted


def test_without_a_declared_hash_the_server_computes_it(api, run_id, direct):
    data = os.urandom(MiB)
    upload = start(api, run_id, size=len(data)).json()
    assert len(upload["parts"]) == 1
    parts = put_parts(upload, data)
    body = {"path": "model/weights.bin", "upload_id": upload["upload_id"], "parts": parts}
    done = api.post(f"/runs/{run_id}/multipart-uploads/complete", body)
    assert done.json()["sha256"] == hashlib.sha256(data).hexdigest()


def test_abort_drops_the_parts(api, run_id, direct):
    upload = start(api, run_id).json()
    requests.put(upload["parts"][0]["url"], data=b"x" * (5 * MiB), timeout=30)
    body = {"path": "model/weights.bin", "upload_id": upload["upload_id"]}
    assert api.post(f"/runs/{run_id}/multipart-uploads/abort", body).status_code == 204
    assert direct.list_multipart_uploads(Bucket=direct.bucket).get("Uploads", []) == []
    assert api.post(f"/runs/{run_id}/multipart-uploads/abort", body).status_code == 204  # again: still fine
    assert not ArtifactFile.objects.exists()
    # (Completing an aborted upload is S3's NoSuchUpload, a 404 here; moto answers it with a 500, so not tested.)


def test_an_upload_id_is_bound_to_its_file_and_user(api, run_id, direct, other_token, user, other_user):
    upload = start(api, run_id).json()
    body = {"path": "model/other.bin", "upload_id": upload["upload_id"], "parts": [{"part_number": 1, "etag": "e"}]}
    assert_error(api.post(f"/runs/{run_id}/multipart-uploads/complete", body), 400, contains="another file")
    forged = {**body, "path": "model/weights.bin", "upload_id": upload["upload_id"][:-3] + "abc"}
    assert_error(api.post(f"/runs/{run_id}/multipart-uploads/complete", forged), 400, contains="not one this registry")
    # Someone else may not even reach the run's uploads (they may read it, not write it).
    theirs = api.post(
        f"/runs/{run_id}/multipart-uploads/abort", {**body, "path": "model/weights.bin"}, token=other_token
    )
    assert_error(theirs, 403)


def test_bad_plans_are_refused_before_anything_starts(api, run_id, direct, settings):
    settings.ARTIFACT_MAX_UPLOAD_BYTES = 10 * MiB
    assert_error(start(api, run_id, size=11 * MiB), 413)
    assert_error(start(api, run_id, size=0), 400, contains="size")
    assert_error(start(api, run_id, path="../etc/passwd"), 400)
    assert direct.list_multipart_uploads(Bucket=direct.bucket).get("Uploads", []) == []


def test_the_part_size_stays_within_s3s_limits(api, run_id, direct):
    upload = start(api, run_id, size=12 * MiB, part_size=1024).json()
    assert upload["part_size"] == 5 * MiB and len(upload["parts"]) == 3


def test_multipart_is_refused_when_off_so_clients_stream_instead(api, run_id, s3_artifacts, settings):
    settings.ARTIFACTS_S3_MULTIPART_UPLOADS = False
    assert_error(start(api, run_id), 409, code="direct_transfers_off")


def test_multipart_needs_s3(api, run_id, settings):
    settings.ARTIFACTS_S3_MULTIPART_UPLOADS = True
    assert_error(start(api, run_id), 409, code="direct_transfers_off", contains="S3")


def test_a_read_only_token_cannot_start_an_upload(api, run_id, direct, read_token):
    assert_error(start(api, run_id, token=read_token), 403)


# --- Downloads ------------------------------------------------------------------------------------------------------


def test_downloads_redirect_to_a_short_lived_url_that_serves_the_file(api, run_id, direct, settings):
    data = os.urandom(300_000)
    api.upload(run_id, "model/m.pkl", data)
    response = api.get(f"/runs/{run_id}/artifacts/model/m.pkl")
    assert response.status_code == 302
    url = response["Location"]
    query = parse_qs(urlsplit(url).query)
    assert settings.ARTIFACTS_S3_PRESIGNED_EXPIRY == 60
    if "X-Amz-Expires" in query:  # SigV4
        assert query["X-Amz-Expires"] == ["60"]
    else:  # SigV2: an absolute time
        assert 55 <= int(query["Expires"][0]) - time.time() <= 61
    assert response["X-Checksum-Sha256"] == hashlib.sha256(data).hexdigest()
    fetched = requests.get(url, timeout=30)
    assert fetched.content == data
    assert fetched.headers["Content-Disposition"] == 'attachment; filename="m.pkl"'
    ranged = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=30)
    assert (ranged.status_code, ranged.content) == (206, data[10:20])


def test_permission_is_checked_before_any_url_is_made(api, run_id, direct, other_user, settings):
    from tests.api.conftest import Api

    api.upload(run_id, "secret.bin", b"s")
    settings.REGISTRY_DEFAULT_PERMISSION = 0  # a private registry: the colleague may not read the run
    from registry.accounts.models import ApiToken

    outsider = Api(api.client, ApiToken.issue(user=other_user, name="x")[1])
    assert_error(outsider.get(f"/runs/{run_id}/artifacts/secret.bin"), 404)
    assert_error(api.get(f"/runs/{run_id}/artifacts/secret.bin", token=None), 401)


def test_version_files_redirect_too(api, run_id, direct):
    api.upload(run_id, "model/m.pkl", b"weights")
    api.post("/models", {"name": "direct"})
    api.post("/models/direct/versions", {"run_id": run_id, "artifact_path": "model"})
    response = api.get("/models/direct/versions/1/artifacts/m.pkl")
    assert response.status_code == 302
    assert requests.get(response["Location"], timeout=30).content == b"weights"


def test_downloads_stream_when_presigning_is_off(api, run_id, s3_artifacts):
    api.upload(run_id, "m.pkl", b"weights")
    response = api.get(f"/runs/{run_id}/artifacts/m.pkl")
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"weights"


def test_dashboard_downloads_redirect_after_the_permission_check(
    api, run_id, direct, client, user, other_user, settings
):
    api.upload(run_id, "model/m.pkl", b"weights")
    client.force_login(user)
    response = client.get(f"/runs/{run_id}/artifacts/model/m.pkl")
    assert response.status_code == 302
    fetched = requests.get(response["Location"], timeout=30)
    assert fetched.content == b"weights"
    assert fetched.headers["Content-Disposition"] == 'attachment; filename="m.pkl"'
    settings.REGISTRY_DEFAULT_PERMISSION = 0
    client.force_login(other_user)
    assert client.get(f"/runs/{run_id}/artifacts/model/m.pkl").status_code == 404


def test_urls_are_signed_for_the_address_clients_use(api, run_id, direct, settings, moto_endpoint):
    public = moto_endpoint.replace("127.0.0.1", "localhost")  # the same moto, under another name
    settings.ARTIFACTS_S3_PUBLIC_ENDPOINT_URL = public
    api.upload(run_id, "m.pkl", b"weights")
    location = api.get(f"/runs/{run_id}/artifacts/m.pkl")["Location"]
    assert location.startswith(public + "/")
    assert requests.get(location, timeout=30).content == b"weights"
    data = os.urandom(MiB)
    upload = start(api, run_id, size=len(data)).json()
    assert upload["parts"][0]["url"].startswith(public + "/")
    parts = put_parts(upload, data)
    body = {"path": "model/weights.bin", "upload_id": upload["upload_id"], "parts": parts}
    assert api.post(f"/runs/{run_id}/multipart-uploads/complete", body).status_code == 201
