"""The Python client end to end against the live server: runs, metrics, datasets, artifacts, versions, pulls, errors."""

from __future__ import annotations

import hashlib
import http.server
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from registry_client import Registry, RegistryError, environment, profiling, transfer

from registry.catalog.models import ArtifactFile, ModelVersion
from registry.tracking.models import Run
from tests.conftest import free_port

pytestmark = pytest.mark.django_db(transaction=True)

CSV = "sepal_length,sepal_width,species\n5.1,3.5,setosa\n4.9,3.0,setosa\n6.3,,virginica\n"


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` by its relative POSIX path, with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def model_dir(tmp_path) -> Path:
    root = tmp_path / "out" / "model"
    (root / "config").mkdir(parents=True)
    (root / "model.pkl").write_bytes(os.urandom(300_000))
    (root / "config" / "params.json").write_text(json.dumps({"max_depth": 6}))
    (root / "EMPTY").write_bytes(b"")
    return root


@pytest.fixture
def csv_path(tmp_path) -> Path:
    path = tmp_path / "iris.csv"
    path.write_text(CSV)
    return path


# --- A whole run ----------------------------------------------------------------------------------------------------


def test_full_run_registers_a_version_that_pulls_identically_by_alias_and_number(
    registry, model_dir, csv_path, tmp_path
):
    features = np.arange(12, dtype=float).reshape(4, 3)
    with registry.start_run(experiment="fraud-detection", name="xgb", tags={"team": "risk"}) as run:
        run.log_params({"learning_rate": 0.1, "max_depth": 6, "optimizer": "adam"})
        run.log_param("seed", np.int64(42))
        for step in range(1000):
            run.log_metric("loss", 1 / (step + 1), step=step)
        for step, value in enumerate([math.nan, math.inf, -math.inf]):
            run.log_metric("odd", value, step=step)
        run.log_metrics({"auc": 0.91, "f1": 0.8}, step=999)
        from_csv = run.log_dataset(csv_path, name="iris-train")
        from_numpy = run.log_dataset(features, name="features", context="evaluation")
        stored = run.log_artifact(model_dir, artifact_path="model")
        version = run.register_model("fraud-detector", artifact_path="model", description="First try.")
    alias = registry.set_alias("fraud-detector", "candidate", version["version"])

    info = registry.get_run(run.id)
    assert info["status"] == "finished" and info["end_time"] is not None
    assert (info["experiment"], info["name"], info["tags"]) == ("fraud-detection", "xgb", {"team": "risk"})
    assert info["params"] == {"learning_rate": "0.1", "max_depth": "6", "optimizer": "adam", "seed": "42"}
    assert info["metrics"]["loss"]["count"] == 1000
    assert info["metrics"]["loss"]["value"] == pytest.approx(1 / 1000)
    assert info["metrics"]["auc"]["value"] == 0.91
    odd = registry.http.get(f"/runs/{run.id}/metrics/history", {"key": "odd"})
    assert odd["values"] == ["NaN", "Infinity", "-Infinity"]

    assert from_csv["digest"] == profiling.profile_csv(csv_path).digest
    assert from_csv["source_type"] == "csv" and from_csv["source_uri"] == csv_path.resolve().as_uri()
    assert from_csv["profile"]["num_rows"] == 3
    assert from_numpy["digest"] == profiling.profile_array(features).digest
    inputs = {(i["name"], i["context"]) for i in info["inputs"]}
    assert inputs == {("iris-train", "training"), ("features", "evaluation")}

    assert [a["path"] for a in stored] == ["model/EMPTY", "model/config/params.json", "model/model.pkl"]
    assert version["version"] == 1 and version["run_id"] == run.id
    assert sorted(a["path"] for a in version["artifacts"]) == ["EMPTY", "config/params.json", "model.pkl"]
    assert alias == {"alias": "candidate", "version": 1}

    by_alias = registry.pull("fraud-detector@candidate", tmp_path / "by-alias")
    by_number = registry.pull("fraud-detector/1", tmp_path / "by-number")
    assert by_alias == tmp_path / "by-alias"
    assert tree(by_alias) == tree(by_number) == tree(model_dir)
    assert not list(by_alias.rglob("*.part"))


def test_run_records_environment_entry_point_and_image(registry, monkeypatch):
    monkeypatch.setenv("REGISTRY_IMAGE", "ghcr.io/acme/train@sha256:0123abcd")
    with registry.start_run(experiment="env") as run:
        pass
    info = registry.get_run(run.id)
    assert info["environment"]["python_version"] == platform.python_version()
    assert info["environment"]["platform"] == platform.platform()
    assert info["environment"]["packages"]["requests"] == __import__("requests").__version__
    assert info["code"]["entry_point"] == sys.argv[0]
    assert info["image"] == "ghcr.io/acme/train@sha256:0123abcd"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_state_is_captured_without_credentials(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo, check=True)

    git("init", "-q", "-b", "main")
    (repo / "train.py").write_text("print('hi')\n")
    git("add", "train.py")
    git("commit", "-q", "-m", "first")
    git("remote", "add", "origin", "https://bot:ghp_secret@github.com/acme/train.git")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    monkeypatch.chdir(repo)

    clean = environment.code()
    (repo / "train.py").write_text("print('changed')\n")
    dirty = environment.code()

    assert clean["git_commit"] == commit and clean["git_branch"] == "main"
    assert clean["git_remote"] == "https://github.com/acme/train.git"
    assert (clean["git_dirty"], dirty["git_dirty"]) == (False, True)


def test_git_fields_are_empty_outside_a_repository_or_without_git(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    outside = environment.code()
    monkeypatch.setenv("PATH", str(tmp_path / "no-binaries-here"))
    without_git = environment.code()
    for state in (outside, without_git):
        assert (state["git_remote"], state["git_commit"], state["git_branch"], state["git_dirty"]) == ("", "", "", None)


def test_an_exception_in_the_block_marks_the_run_failed_after_flushing(registry):
    with pytest.raises(RuntimeError, match="diverged"), registry.start_run(experiment="failures") as run:
        run.log_metric("loss", 0.5, step=1)
        raise RuntimeError("diverged")
    info = registry.get_run(run.id)
    assert info["status"] == "failed" and info["end_time"] is not None
    assert info["metrics"]["loss"]["count"] == 1


def test_ctrl_c_in_the_block_marks_the_run_killed(registry):
    with pytest.raises(KeyboardInterrupt), registry.start_run(experiment="failures") as run:
        raise KeyboardInterrupt
    assert registry.get_run(run.id)["status"] == "killed"


def test_metrics_refused_at_the_end_raise_and_mark_the_run_failed(registry):
    with pytest.raises(RegistryError) as caught, registry.start_run(experiment="failures") as run:
        run.log_metric("x" * 300, 1.0)
    assert caught.value.status == 422
    assert registry.get_run(run.id)["status"] == "failed"
    assert run._points == []  # the refused batch is not sent again


def test_metrics_go_in_batches_of_ten_thousand(registry, monkeypatch):
    sizes = []
    with registry.start_run(experiment="batches") as run:
        send = run._batch
        monkeypatch.setattr(run, "_batch", lambda **payload: sizes.append(len(payload["metrics"])) or send(**payload))
        for step in range(25_000):
            run.log_metric("loss", step / 25_000, step=step)
    assert sizes == [10_000, 10_000, 5_000]
    assert registry.get_run(run.id)["metrics"]["loss"]["count"] == 25_000


def test_uploads_stream_in_blocks_and_versions_keep_the_run_files(registry, tmp_path, monkeypatch):
    big = tmp_path / "weights.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    reads = []
    original = transfer._UploadBody.read

    def spy(self, size=-1):
        chunk = original(self, size)
        reads.append(len(chunk))
        return chunk

    monkeypatch.setattr(transfer._UploadBody, "read", spy)
    with registry.start_run(experiment="uploads") as run:
        [artifact] = run.log_artifact(big, artifact_path="model")
    assert artifact["path"] == "model/weights.bin"
    assert artifact["sha256"] == hashlib.sha256(big.read_bytes()).hexdigest()
    assert sum(reads) == big.stat().st_size and max(reads) <= 1024 * 1024


def test_a_directory_without_artifact_path_keeps_its_name_and_a_file_goes_to_the_root(registry, model_dir):
    with registry.start_run(experiment="uploads") as run:
        in_dir = run.log_artifact(model_dir)
        single = run.log_artifact(model_dir / "model.pkl")
    assert [a["path"] for a in in_dir] == ["model/EMPTY", "model/config/params.json", "model/model.pkl"]
    assert [a["path"] for a in single] == ["model.pkl"]


def test_a_corrupted_download_is_refused_and_leaves_no_file(registry, model_dir, tmp_path, artifact_storage_in_tmp):
    with registry.start_run(experiment="corruption") as run:
        run.log_artifact(model_dir, artifact_path="model")
        run.register_model("corrupted", artifact_path="model")
    blob = ArtifactFile.objects.get(version__model__name="corrupted", path="model.pkl").storage_key
    data = bytearray((artifact_storage_in_tmp / blob).read_bytes())
    data[1000] ^= 0xFF
    (artifact_storage_in_tmp / blob).write_bytes(bytes(data))

    with pytest.raises(RegistryError) as caught:
        registry.pull("corrupted/1", tmp_path / "dest")
    assert caught.value.code == "checksum_mismatch" and "model.pkl" in str(caught.value)
    assert not (tmp_path / "dest" / "model.pkl").exists()
    assert not list((tmp_path / "dest").rglob("*.part"))


def test_pull_draws_progress_when_asked(registry, model_dir, tmp_path, capsys):
    with registry.start_run(experiment="progress") as run:
        run.log_artifact(model_dir, artifact_path="model")
        run.register_model("shown", artifact_path="model")
    registry.pull("shown@latest", tmp_path / "dest", progress=True)
    err = capsys.readouterr().err
    assert "Pulling shown/1" in err and "100%" in err


def test_registering_twice_reuses_the_model_and_numbers_versions(registry, model_dir):
    with registry.start_run(experiment="versions") as run:
        run.log_artifact(model_dir, artifact_path="model")
        first = run.register_model("twice")
        second = run.register_model("twice", tags={"note": "again"})
    assert (first["version"], second["version"]) == (1, 2)
    assert second["tags"] == {"note": "again"}
    assert [v["version"] for v in registry.versions("twice")] == [2, 1]
    assert [m["name"] for m in registry.models()] == ["twice"]
    assert registry.resolve("twice@latest")["version"] == 2


def test_search_runs_filters_and_orders(registry):
    for rate in (0.1, 0.2, 0.3):
        with registry.start_run(experiment="search", name=f"lr-{rate}") as run:
            run.log_param("lr", rate)
            run.log_metric("auc", rate * 3)
    found = registry.search_runs(experiment="search", filter="metrics.auc > 0.5", order_by="metrics.auc DESC")
    assert [r["name"] for r in found] == ["lr-0.3", "lr-0.2"]
    assert len(registry.search_runs(experiment="search", max_results=1)) == 1


# --- Errors ---------------------------------------------------------------------------------------------------------


def test_client_errors_carry_the_servers_code_and_message(registry):
    with pytest.raises(RegistryError) as missing:
        registry.resolve("nope@production")
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    assert missing.value.message == "No model named 'nope'."
    assert str(missing.value) == "404 not_found: No model named 'nope'."

    with registry.start_run(experiment="errors") as run:
        run.log_param("lr", 0.1)
        with pytest.raises(RegistryError) as conflict:
            run.log_param("lr", 0.2)
    assert (conflict.value.status, conflict.value.code) == (409, "param_conflict")

    with pytest.raises(RegistryError) as invalid:
        registry.set_alias("nope", "champion", 0)
    assert invalid.value.status == 422 and invalid.value.details[0]["field"] == "version"


def test_a_read_only_token_reads_but_cannot_write(registry, reader):
    with registry.start_run(experiment="shared") as run:
        pass
    assert reader.get_run(run.id)["id"] == run.id
    with pytest.raises(RegistryError) as caught:
        reader.start_run(experiment="shared")
    assert (caught.value.status, caught.value.code) == (403, "forbidden")
    assert "read-only" in caught.value.message
    assert Run.objects.count() == 1


def test_no_token_is_a_401(live_server):
    with pytest.raises(RegistryError) as caught:
        Registry(live_server.url, None).models()
    assert caught.value.status == 401 and "Authorization: Bearer" in caught.value.message


# --- Retries (a scripted server, no Django) -------------------------------------------------------------------------


class Scripted(http.server.BaseHTTPRequestHandler):
    """Answers each request with the next (status, body) of the server's script."""

    def do_GET(self):
        status, body = self.server.script.pop(0)
        self.server.seen.append(self.path)
        self.server.authorization.append(self.headers.get("Authorization"))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    server.script, server.seen, server.authorization = [], [], []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)  # shutdown() waits a poll
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.django_db(transaction=False)
def test_gateway_errors_are_retried_with_backoff(scripted, no_sleep):
    busy = {"error": "unavailable", "message": "Try again.", "details": []}
    scripted.script = [(503, busy), (502, busy), (200, {"items": [{"name": "iris"}], "next_offset": None})]
    registry = Registry(f"http://127.0.0.1:{scripted.server_port}", "t", retries=3)
    assert registry.models() == [{"name": "iris"}]
    assert len(scripted.seen) == 3 and len(no_sleep) == 2 and no_sleep[0] < no_sleep[1]


@pytest.mark.django_db(transaction=False)
def test_client_errors_are_never_retried(scripted, no_sleep):
    scripted.script = [(404, {"error": "not_found", "message": "No model named 'x'.", "details": []})]
    registry = Registry(f"http://127.0.0.1:{scripted.server_port}/api/v1/", "t", retries=3)
    with pytest.raises(RegistryError, match="No model named 'x'"):
        registry.resolve("x/1")
    assert len(scripted.seen) == 1 and no_sleep == []


@pytest.mark.django_db(transaction=False)
def test_connection_errors_are_retried_then_reported(no_sleep):
    registry = Registry(f"http://127.0.0.1:{free_port()}", "t", retries=2)
    with pytest.raises(RegistryError) as caught:
        registry.models()
    assert caught.value.status is None and caught.value.code == "connection_failed"
    assert len(no_sleep) == 2


@pytest.mark.django_db(transaction=False)
def test_proxy_variables_are_honoured_and_no_proxy_bypasses_them(scripted, monkeypatch):
    page = {"items": [], "next_offset": None}
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{scripted.server_port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    scripted.script = [(200, page)]
    assert Registry("http://registry.invalid", "t").models() == []
    assert scripted.seen[0].startswith("http://registry.invalid/api/v1/models?")  # asked through the proxy

    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    scripted.script = [(200, page)]
    assert Registry(f"http://127.0.0.1:{scripted.server_port}", "t", retries=0).models() == []
    assert scripted.seen[1].startswith("/api/v1/models?")


@pytest.mark.django_db(transaction=False)
def test_a_netrc_entry_for_the_host_does_not_replace_the_token(scripted, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    scripted.script = [(200, {"items": [], "next_offset": None})]
    Registry(f"http://127.0.0.1:{scripted.server_port}", "the-token").models()
    assert scripted.authorization == ["Bearer the-token"]


@pytest.mark.django_db(transaction=False)
def test_a_mangled_token_is_refused_before_anything_is_sent():
    with pytest.raises(ValueError, match="white space") as caught:
        Registry("http://127.0.0.1:9", "reg_abc\nsecret-part")
    assert "secret-part" not in str(caught.value)


@pytest.mark.django_db(transaction=False)
def test_artifact_paths_that_leave_the_destination_are_refused(tmp_path):
    assert transfer.safe_target(tmp_path, "model/a.pkl") == tmp_path / "model" / "a.pkl"
    for bad in ("../etc/passwd", "/etc/passwd", "model/../../x", ""):
        with pytest.raises(RegistryError):
            transfer.safe_target(tmp_path, bad)


# --- S3 -------------------------------------------------------------------------------------------------------------


@pytest.mark.s3
def test_artifacts_round_trip_through_s3(registry, s3_artifacts, model_dir, tmp_path):
    with registry.start_run(experiment="s3") as run:
        run.log_artifact(model_dir, artifact_path="model")
        version = run.register_model("on-s3")
    objects = s3_artifacts.list_objects_v2(Bucket=s3_artifacts.bucket)["Contents"]
    assert sorted(o["Size"] for o in objects) == sorted(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())
    assert ModelVersion.objects.get(model__name="on-s3").version == version["version"]
    pulled = registry.pull("on-s3/1", tmp_path / "pulled")
    assert tree(pulled) == tree(model_dir)


# --- Packaging ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=False)
def test_the_client_never_imports_django():
    code = (
        "import registry_client, registry_client.cli, sys; assert not any(m.startswith('django') for m in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr
