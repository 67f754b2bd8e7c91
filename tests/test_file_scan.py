"""File safety scan: real malicious and benign model files uploaded through the catalog get the right verdict, on
local disk and on S3 (moto_server), on SQLite and PostgreSQL; versions roll them up; the Production gate, the API,
MLflow's answers, webhooks, the audit log and rescans follow. The scanner itself is tested at the end, without
Django.
"""

from __future__ import annotations

import gzip
import io
import ipaddress
import json
import pickle
import zipfile

import numpy as np
import pytest
from django.core.management import call_command
from django.test import Client

from registry.accounts.models import ApiToken
from registry.audit.models import AuditEvent, OutboxEvent, Webhook
from registry.catalog import services as catalog
from registry.catalog.models import Stage
from registry.governance import services as governance
from registry.governance.errors import GatesFailed
from registry.lib import filescan
from registry.lib.errors import Forbidden, NotFound
from registry.scanning import services as scanning
from registry.scanning.models import FileScan
from tests import scan_files as files
from tests.builders import artifact_store, run_create, version_create
from tests.factories import RegisteredModelFactory, UserFactory
from tests.governance.helpers import person

pytestmark = pytest.mark.django_db

MALICIOUS = {
    "pickle calling os.system": ("model.pkl", files.malicious_pickle, "posix.system"),
    "joblib wrapping it after an array": ("model.joblib", files.malicious_joblib, "posix.system"),
    "PyTorch zip with a malicious data.pkl": (
        "model.pt",
        lambda: files.torch_zip(files.malicious_pickle()),
        "data.pkl",
    ),
    "Keras 3 .keras with a Lambda layer": ("model.keras", lambda: files.keras_zip(True), "Lambda"),
    "Keras 2 .h5 with a Lambda layer": ("model.h5", lambda: files.keras_h5(True), "Lambda"),
    "NumPy object array holding it": ("arrays.npy", lambda: files.npy(np.array([1, files.Exploit()])), "posix.system"),
}
BENIGN = {
    "the demo's scikit-learn pickle": ("model.pkl", files.demo_pickle),
    "a joblib scikit-learn model": ("model.joblib", files.benign_joblib),
    "safetensors": ("model.safetensors", files.safetensors),
    "ONNX": ("model.onnx", files.onnx),
    "a PyTorch state dict": ("model.pt", lambda: files.torch_zip(files.benign_torch_state_dict_pickle())),
    "a Keras 3 model without Lambda": ("model.keras", lambda: files.keras_zip(False)),
    "a NumPy array": ("arrays.npy", lambda: files.npy(np.arange(10.0))),
    "MLmodel": ("MLmodel", lambda: b"flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"),
}


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def storage(request):
    if request.param == "s3":
        request.getfixturevalue("s3_artifacts")
    return request.param


@pytest.fixture
def owner():
    return person("olive")


@pytest.fixture
def root():
    return person("root", superuser=True)


def register(owner, name: str, content: dict[str, bytes]):
    """Upload `content` ({path: bytes}) into a run's model/ folder and register it as the next version of `name`."""
    run = run_create(user=owner)
    for path, data in content.items():
        artifact_store(owner=run, path=f"model/{path}", stream=io.BytesIO(data), by=owner)
    model = RegisteredModelFactory(name=name, owner=owner) if not _exists(name) else _model(name)
    return version_create(model=model, run=run, artifact_path="model", by=owner)


def _exists(name):
    from registry.catalog.models import RegisteredModel

    return RegisteredModel.objects.filter(name=name).exists()


def _model(name):
    from registry.catalog.models import RegisteredModel

    return RegisteredModel.objects.get(name=name)


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_files_are_unsafe_with_what_they_do(storage, owner, case):
    path, build, finding = MALICIOUS[case]
    version = register(owner, "m", {path: build(), "MLmodel": b"flavors: {}\n"})
    scan = scanning.version_scan(version)
    assert scan.verdict == "unsafe"
    bad = {f.path: f for f in scan.files}[path]
    assert bad.verdict == "unsafe" and any(finding in text for text in bad.findings), bad
    assert {f.path: f.verdict for f in scan.files}["MLmodel"] == "safe"
    assert bad.scanner_version == filescan.SCANNER_VERSION


@pytest.mark.parametrize("case", sorted(BENIGN))
def test_benign_files_are_safe(storage, owner, case):
    path, build = BENIGN[case]
    version = register(owner, "m", {path: build()})
    scan = scanning.version_scan(version)
    assert scan.verdict == "safe", scan
    assert scan.files[0].format


def test_a_file_that_does_not_parse_is_unknown_with_the_reason(storage, owner):
    version = register(owner, "m", {"model.pkl": b"\x80\x04this is not a pickle", "blob.raw": bytes(range(256))})
    scan = scanning.version_scan(version)
    verdicts = {f.path: f for f in scan.files}
    assert scan.verdict == "unknown"
    assert verdicts["model.pkl"].verdict == "unknown" and "not a readable pickle" in verdicts["model.pkl"].reason
    assert verdicts["blob.raw"].verdict == "unknown" and "not a format" in verdicts["blob.raw"].reason


def test_a_scanner_crash_is_unknown_and_the_upload_succeeds(owner, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(filescan, "scan", crash)
    version = register(owner, "m", {"model.pkl": files.demo_pickle()})
    (only,) = scanning.version_scan(version).files
    assert only.verdict == "unknown" and "the scanner failed: RuntimeError: boom" in only.reason


def test_a_scan_past_its_time_limit_is_unknown(owner, settings):
    settings.SCAN_TIMEOUT_SECONDS = 0
    version = register(owner, "m", {"big.pkl": pickle.dumps(list(range(50_000)))})
    (only,) = scanning.version_scan(version).files
    assert only.verdict == "unknown" and "took longer than its 0-second limit" in only.reason


def test_large_files_are_pending_until_the_worker_scans_them(
    storage, owner, root, settings, django_capture_on_commit_callbacks
):
    settings.SCAN_SYNC_MAX_BYTES = 100
    with django_capture_on_commit_callbacks(execute=True):
        version = register(owner, "m", {"model.pkl": files.malicious_pickle() + bytes(200)})
    assert scanning.version_scan(version).verdict == "pending"
    with pytest.raises(GatesFailed) as refused:
        governance.stage_change_direct(version=version, to_stage=Stage.PRODUCTION, by=root)
    assert "still scanning model/model.pkl" in str(refused.value.details) or "pending" in str(refused.value.details)
    assert scanning.scan_pending() == 1
    assert scanning.version_scan(version).verdict == "unsafe"
    scanned = AuditEvent.objects.filter(action="file_scanned").get()
    assert scanned.actor_name == "system:scanner" and scanned.to_value == "unsafe"
    assert AuditEvent.objects.filter(action="version_unsafe", version_number=version.version).exists()


def test_the_production_gate_blocks_an_unsafe_version_and_passes_a_safe_one(owner, root):
    unsafe = register(owner, "m", {"model.pkl": files.malicious_pickle()})
    safe = register(owner, "m", {"model.pkl": files.demo_pickle()})
    with pytest.raises(GatesFailed) as refused:
        governance.stage_change_direct(version=unsafe, to_stage=Stage.PRODUCTION, by=root)
    assert "posix.system" in json.dumps(refused.value.details)
    unsafe.refresh_from_db()
    assert unsafe.stage == Stage.NONE
    governance.stage_change_direct(version=safe, to_stage=Stage.PRODUCTION, by=root)
    safe.refresh_from_db()
    assert safe.stage == Stage.PRODUCTION
    # Staging has no scan gate by default: reviewers may look at an unsafe build there.
    governance.stage_change_direct(version=unsafe, to_stage=Stage.STAGING, by=root)


def test_a_request_freezes_the_failing_scan_gate(owner):
    from tests.governance.helpers import REQUESTERS

    requester = person("rita", REQUESTERS)
    version = register(requester, "m", {"model.pkl": files.malicious_pickle()})
    request = governance.transition_request(version=version, to_stage=Stage.PRODUCTION, by=requester)
    (gate,) = [g for g in request.evidence["gates"] if "scanned" in g["gate"].lower()]
    assert gate["passed"] is False and "unsafe" in gate["detail"]


def test_a_copy_of_an_unsafe_version_is_told_unsafe_too(owner, root):
    """Copying shares the files and their verdicts: subscribers of the target model hear of the unsafe version as
    they would of a registration, and its answer carries the verdict."""
    Webhook.objects.create(name="sec", url="https://hooks.example.com/x", events=["version.unsafe"], secret="s")
    unsafe = register(owner, "m", {"model.pkl": files.malicious_pickle()})
    target = RegisteredModelFactory(name="m-copy", owner=owner)
    copy = catalog.version_copy(version=unsafe, model=target, by=root)
    assert copy.scan.verdict == "unsafe"
    told = OutboxEvent.objects.filter(type="version.unsafe").order_by("id")
    assert [(e.payload["data"]["model"], e.payload["data"]["version"]) for e in told] == [("m", 1), ("m-copy", 1)]
    assert AuditEvent.objects.filter(action="version_unsafe", model_name="m-copy", version_number=1).exists()


def test_a_webhook_fires_when_a_version_is_found_unsafe(owner, django_capture_on_commit_callbacks, settings):
    Webhook.objects.create(name="sec", url="https://hooks.example.com/x", events=["version.unsafe"], secret="s")
    version = register(owner, "m", {"model.pkl": files.malicious_pickle()})
    event = OutboxEvent.objects.get(type="version.unsafe")
    assert event.payload["data"]["version"] == version.version
    assert "posix.system" in " ".join(event.payload["data"]["findings"])
    # Found later by the background scan: fires then.
    settings.SCAN_SYNC_MAX_BYTES = 10
    later = register(owner, "m", {"model.pkl": files.malicious_pickle()})
    assert OutboxEvent.objects.filter(type="version.unsafe").count() == 1
    scanning.scan_pending()
    assert [e.payload["data"]["version"] for e in OutboxEvent.objects.filter(type="version.unsafe").order_by("id")] == [
        version.version,
        later.version,
    ]


def test_the_upload_event_keeps_the_verdict(owner):
    register(owner, "m", {"model.pkl": files.malicious_pickle()})
    stored = AuditEvent.objects.get(action="artifact_stored")
    assert stored.data["scan"] == "unsafe"


def test_the_api_and_resolve_carry_the_scan(owner):
    version = register(owner, "m", {"model.pkl": files.malicious_pickle(), "MLmodel": b"x: 1\n"})
    token = ApiToken.issue(user=owner, name="t", scope="read")[1]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    for url in (f"/api/v1/models/m/versions/{version.version}", "/api/v1/resolve?ref=m/1"):
        body = client.get(url).json()
        assert body["scan"]["verdict"] == "unsafe", body
        files_ = {f["path"]: f for f in body["scan"]["files"]}
        assert files_["model.pkl"]["findings"] and files_["MLmodel"]["verdict"] == "safe"


def test_mlflow_model_versions_carry_a_scan_tag(owner):
    register(owner, "m", {"model.pkl": files.malicious_pickle()})
    register(owner, "m", {"model.pkl": files.demo_pickle()})
    token = ApiToken.issue(user=owner, name="t", scope="read")[1]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    got = client.get("/api/2.0/mlflow/model-versions/get", {"name": "m", "version": "1"}).json()
    tags = {t["key"]: t["value"] for t in got["model_version"]["tags"]}
    assert tags["registry.scan"] == "unsafe" and "posix.system" in tags["registry.scan.detail"]
    found = client.get("/api/2.0/mlflow/model-versions/search", {"filter": "name='m'"}).json()
    verdicts = {
        v["version"]: {t["key"]: t["value"] for t in v["tags"]}["registry.scan"] for v in found["model_versions"]
    }
    assert verdicts == {"1": "unsafe", "2": "safe"}


def test_a_version_without_files_here_has_no_scan_tag_on_mlflow(owner):
    model = catalog.model_create(name="ext", by=owner)
    catalog.version_create(model=model, by=owner, external_location="s3://elsewhere/model", tags={"k": "v"})
    token = ApiToken.issue(user=owner, name="t", scope="read")[1]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    got = client.get("/api/2.0/mlflow/model-versions/get", {"name": "ext", "version": "1"}).json()
    assert got["model_version"]["tags"] == [{"key": "k", "value": "v"}]  # read back exactly as set


def test_rescan_applies_a_reviewed_allowlist_addition(owner, settings):
    version = register(owner, "m", {"model.pkl": pickle.dumps(ipaddress.IPv4Address("10.0.0.1"))})
    (only,) = scanning.version_scan(version).files
    assert only.verdict == "unsafe" and "ipaddress.IPv4Address, which is not on the allowlist" in only.findings[0]
    settings.SCAN_EXTRA_ALLOWED_GLOBALS = "ipaddress:IPv4Address"
    call_command("rescan", "--version", "m/1", stdout=io.StringIO())
    assert scanning.version_scan(version).verdict == "safe"


def test_verdicts_of_an_older_scanner_are_scanned_again(owner):
    version = register(owner, "m", {"model.pkl": files.demo_pickle()})
    FileScan.objects.update(scanner_version="0+picklescan-0.0.1")
    out = io.StringIO()
    call_command("scan_worker", stdout=out)
    assert "1 verdict(s) of an older scanner queued again" in out.getvalue()
    assert set(FileScan.objects.values_list("scanner_version", flat=True)) == {filescan.SCANNER_VERSION}
    assert scanning.version_scan(version).verdict == "safe"


def test_rescan_all_covers_files_stored_before_scanning(owner):
    version = register(owner, "m", {"model.pkl": files.malicious_pickle()})
    FileScan.objects.all().delete()
    (only,) = scanning.version_scan(version).files
    assert only.verdict == "unknown" and "rescan" in only.reason
    FileScan.objects.create(storage_key="sha256/no-file-uses-this", path="gone.pkl", size=1)
    call_command("rescan", "--all", stdout=io.StringIO())
    assert scanning.version_scan(version).verdict == "unsafe"
    assert not FileScan.objects.filter(storage_key="sha256/no-file-uses-this").exists()  # a deleted file's verdict


def test_rescan_on_demand_needs_edit_on_the_model(owner, django_capture_on_commit_callbacks):
    version = register(owner, "m", {"model.pkl": files.demo_pickle()})
    with pytest.raises((Forbidden, NotFound)):
        scanning.version_rescan(version=version, by=UserFactory(username="stranger"))
    with django_capture_on_commit_callbacks(execute=True):
        scanning.version_rescan(version=version, by=owner)
    assert scanning.version_scan(version).verdict == "safe"
    assert AuditEvent.objects.filter(action="scan_requested", actor_name="olive").exists()


def test_a_version_without_files_has_nothing_to_scan(owner, root):
    model = RegisteredModelFactory(name="empty", owner=owner)
    version = version_create(model=model, by=owner)
    assert scanning.version_scan(version).verdict == "none"
    governance.stage_change_direct(version=version, to_stage=Stage.PRODUCTION, by=root)


# --- The scanner alone (no Django) ----------------------------------------------------------------------------------


def verdict_of(data: bytes, name: str) -> filescan.Verdict:
    return filescan.scan(io.BytesIO(data), name)


def test_gzip_compressed_joblib_is_read_inside():
    assert verdict_of(gzip.compress(files.malicious_joblib()), "model.joblib.gz").verdict == "unsafe"


def test_a_name_built_from_the_memo_is_resolved_as_the_unpickler_would():
    # STACK_GLOBAL on strings fetched back from the memo: "os" and "system" written once, used later.
    payload = b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x8c\x05dummy\x94h\x00h\x01\x93\x94\x8c\x02id\x94\x85\x94R\x94."
    found = verdict_of(payload, "x.pkl")
    assert found.verdict == "unsafe" and "calls os.system" in found.findings[0]


def test_a_truncated_zip_is_unknown():
    data = files.torch_zip(files.malicious_pickle())
    assert verdict_of(data[: len(data) // 2], "model.pt").verdict in ("unknown", "unsafe")
    assert verdict_of(b"PK\x03\x04" + bytes(20), "model.pt").verdict == "unknown"


def test_python_sources_and_unknown_binaries_are_never_safe():
    assert verdict_of(b"import os\nos.system('x')\n", "loader.py").verdict == "unknown"
    assert verdict_of(bytes(range(256)) * 10, "weights.dat").verdict == "unknown"


def test_skops_types_are_checked_against_the_allowlist():
    skops_io = pytest.importorskip("skops.io")
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    assert verdict_of(skops_io.dumps(files.demo_estimator()), "model.skops").verdict == "safe"
    hostile = verdict_of(skops_io.dumps(Pipeline([("f", FunctionTransformer(print))])), "model.skops")
    assert hostile.verdict == "unsafe" and any("FunctionTransformer" in f for f in hostile.findings)


def test_a_keras_json_config_with_a_lambda_is_unsafe():
    config = json.dumps({"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", "config": {}}]}})
    assert verdict_of(config.encode(), "model.json").verdict == "unsafe"


def test_an_npz_of_plain_arrays_is_safe():
    buffer = io.BytesIO()
    np.savez(buffer, a=np.arange(3), b=np.ones(2))
    assert verdict_of(buffer.getvalue(), "arrays.npz").verdict == "safe"
    assert zipfile.is_zipfile(io.BytesIO(buffer.getvalue()))


def test_the_allowlist_names_classes_not_packages():
    from registry.lib.scan_allowlist import ALLOWED_GLOBALS

    assert all("*" not in name for names in ALLOWED_GLOBALS.values() for name in names)
    assert "sklearn" not in ALLOWED_GLOBALS and not any(module.endswith(".*") for module in ALLOWED_GLOBALS)


@pytest.mark.django_db
def test_scans_of_blobs_are_read_a_thousand_keys_at_a_time():
    # Past the thousand keys of one statement, the next thousand go in another; every scan comes back, and a blob
    # never scanned is absent.
    FileScan.objects.bulk_create(
        FileScan(storage_key=f"runs/r/k{i:04}", path=f"k{i:04}.pkl", verdict=filescan.SAFE, findings=[f"n{i}"])
        for i in range(1001)
    )
    keys = [f"runs/r/k{i:04}" for i in range(1001)] + ["runs/r/never-scanned"]
    scans = FileScan.objects.of_blobs(keys + keys[:5])
    assert sorted(scans) == sorted(keys[:1001])
    assert scans["runs/r/k1000"].path == "k1000.pkl" and scans["runs/r/k1000"].findings == ["n1000"]
    assert FileScan.objects.of_blobs([]) == {}
