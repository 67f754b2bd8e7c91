"""The `registry` command, driven through `registry_client.cli.main` against the live server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from registry_client.cli import main

from registry.catalog.models import ModelVersion
from tests.builders import version_stage_set
from tests.conftest import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def columns(line: str) -> list[str]:
    return re.split(r" {2,}", line.strip())


@pytest.fixture
def cli(live_server, write_token, capsys):
    """Run `registry ARGS...` against the live server; return (exit status, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        status = main(["--url", live_server.url, "--token", write_token, *args])
        out, err = capsys.readouterr()
        return status, out, err

    return run


@pytest.fixture
def model_dir(tmp_path) -> Path:
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "model.pkl").write_bytes(bytes(range(256)) * 1000)
    (root / "sub" / "meta.json").write_text(json.dumps({"classes": 3}))
    return root


def log_run(cli, *args: str) -> str:
    status, out, err = cli("log", "--experiment", "cli", *args)
    assert status == 0, err
    return out.strip()


def test_log_creates_a_finished_run_with_everything_given(cli, registry, tmp_path, model_dir):
    csv = tmp_path / "train.csv"
    csv.write_text("x,y\n1,a\n2,b\n")
    run_id = log_run(
        cli,
        "--name",
        "from-shell",
        "--param",
        "lr=0.1",
        "--param",
        "note=a=b",
        "--metric",
        "loss=0.5@3",
        "--metric",
        "acc=nan",
        "--tag",
        "source=cli",
        "--artifact",
        str(model_dir),
        "--artifact-path",
        "model",
        "--dataset",
        str(csv),
        "--dataset-context",
        "evaluation",
    )
    info = registry.get_run(run_id)
    assert info["status"] == "finished" and info["name"] == "from-shell"
    assert info["params"] == {"lr": "0.1", "note": "a=b"}
    assert info["tags"] == {"source": "cli"}
    assert (info["metrics"]["loss"]["value"], info["metrics"]["loss"]["step"]) == (0.5, 3)
    assert info["metrics"]["acc"]["value"] == "NaN"
    assert [(i["name"], i["context"]) for i in info["inputs"]] == [("train", "evaluation")]
    artifacts = registry.http.get(f"/runs/{run_id}/artifacts")
    assert [a["path"] for a in artifacts] == ["model/model.pkl", "model/sub/meta.json"]


def test_push_register_then_pull_gives_back_the_files(cli, registry, model_dir, tmp_path):
    run_id = log_run(cli)
    status, out, _ = cli("push", run_id, str(model_dir), "--artifact-path", "model")
    assert status == 0 and out.split() == ["model/model.pkl", "model/sub/meta.json"]

    status, out, _ = cli("register", "iris", "--run", run_id, "--artifact-path", "model")
    assert (status, out) == (0, "1\n")
    registry.set_alias("iris", "candidate", 1)

    status, out, _ = cli("pull", "iris@candidate", "-o", str(tmp_path / "deploy"))
    assert (status, out) == (0, f"{tmp_path / 'deploy'}\n")
    assert tree(tmp_path / "deploy") == tree(model_dir)


def test_models_table_shows_name_first_and_the_production_version(cli, registry, model_dir):
    run_id = log_run(cli, "--artifact", str(model_dir))
    for _ in range(3):
        registry.register_model("fraud", run_id=run_id, artifact_path="model")
    registry.register_model("churn", run_id=run_id, artifact_path="model")
    version_stage_set(version=ModelVersion.objects.get(model__name="fraud", version=2), stage="Production")
    version_stage_set(version=ModelVersion.objects.get(model__name="fraud", version=3), stage="Staging")
    registry.set_alias("fraud", "candidate", 2)

    status, out, _ = cli("models")
    lines = out.splitlines()
    assert status == 0
    assert columns(lines[0]) == ["NAME", "LATEST", "PRODUCTION", "STAGING", "ALIASES", "UPDATED"]
    assert [columns(line)[:5] for line in lines[1:]] == [
        ["churn", "1", "-", "-", "-"],
        ["fraud", "3", "2", "3", "candidate=2"],
    ]


def test_versions_table_lists_stage_aliases_run_and_metrics(cli, registry, model_dir):
    first = log_run(cli, "--metric", "auc=0.81", "--metric", "f1=0.7", "--artifact", str(model_dir))
    second = log_run(cli, "--metric", "auc=0.93", "--metric", "f1=0.6", "--artifact", str(model_dir))
    for run_id in (first, second):
        registry.register_model("fraud", run_id=run_id, artifact_path="model")
    registry.set_alias("fraud", "challenger", 2)

    status, out, _ = cli("versions", "fraud", "--order-by", "metrics.f1 DESC")
    lines = out.splitlines()
    assert status == 0
    assert columns(lines[0]) == ["VERSION", "STAGE", "ALIASES", "RUN", "CREATED", "f1", "auc"]
    assert [columns(line)[:4] + columns(line)[-2:] for line in lines[1:]] == [
        ["1", "None", "-", first[:12], "0.7", "0.81"],
        ["2", "None", "challenger", second[:12], "0.6", "0.93"],
    ]

    status, out, _ = cli("versions", "fraud", "--filter", "metrics.auc > 0.9")
    assert [columns(line)[0] for line in out.splitlines()[1:]] == ["2"]


def test_server_errors_are_one_line_without_traceback(cli):
    status, out, err = cli("pull", "missing@production", "-o", "unused")
    assert (status, out) == (1, "")
    assert err == "registry: error: 404 not_found: No model named 'missing'.\n"


def test_a_missing_local_file_is_an_error_and_logs_nothing(cli, registry, tmp_path):
    status, _, err = cli("log", "--experiment", "cli", "--artifact", str(tmp_path / "nope.pkl"))
    assert status == 1 and err.startswith("registry: error: No such file or directory") and err.count("\n") == 1
    assert registry.search_runs(experiment="") == []


def test_a_read_only_token_is_refused_with_the_servers_message(live_server, read_token, capsys):
    status = main(["--url", live_server.url, "--token", read_token, "log", "--experiment", "cli"])
    err = capsys.readouterr().err
    assert status == 1
    assert err == "registry: error: 403 forbidden: This token is read-only; create a write token to change data.\n"


def test_url_and_token_come_from_the_environment(live_server, write_token, monkeypatch, capsys):
    monkeypatch.setenv("REGISTRY_URL", live_server.url)
    monkeypatch.setenv("REGISTRY_TOKEN", write_token)
    assert main(["models"]) == 0
    assert capsys.readouterr().err == "No models.\n"


@pytest.mark.django_db(transaction=False)
def test_an_unreachable_server_is_a_one_line_error(no_sleep, capsys):
    status = main(["--url", f"http://127.0.0.1:{free_port()}", "models"])
    err = capsys.readouterr().err
    assert status == 1 and err.startswith("registry: error: connection_failed: Cannot reach the registry")
    assert err.count("\n") == 1


@pytest.mark.django_db(transaction=False)
def test_bad_arguments_are_usage_errors(monkeypatch, capsys):
    monkeypatch.delenv("REGISTRY_URL", raising=False)
    with pytest.raises(SystemExit) as no_url:
        main(["models"])
    with pytest.raises(SystemExit) as bad_metric:
        main(["--url", "http://127.0.0.1:9", "log", "--experiment", "e", "--metric", "loss"])
    assert no_url.value.code == bad_metric.value.code == 2
    err = capsys.readouterr().err
    assert "set REGISTRY_URL or pass --url" in err and "expected KEY=VALUE" in err
