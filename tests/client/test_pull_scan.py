"""`registry pull` refuses a version whose file safety scan found an unsafe file, unless told to allow it."""

from __future__ import annotations

import pytest
from registry_client import RegistryError
from registry_client.cli import main

from tests import scan_files


def register(registry, tmp_path, name: str, model_bytes: bytes) -> int:
    folder = tmp_path / f"{name}-src"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(model_bytes)
    (folder / "MLmodel").write_text("flavors: {}\n")
    with registry.start_run(experiment="scan") as run:
        run.log_artifact(folder, artifact_path="model")
        return run.register_model(name, artifact_path="model")["version"]


def test_pull_refuses_an_unsafe_version_and_downloads_nothing(registry, tmp_path):
    register(registry, tmp_path, "hostile", scan_files.malicious_pickle())
    dest = tmp_path / "dest"
    with pytest.raises(RegistryError) as refused:
        registry.pull("hostile/1", dest)
    assert refused.value.code == "unsafe"
    assert "posix.system" in str(refused.value) and "model.pkl" in str(refused.value)
    assert not dest.exists()
    pulled = registry.pull("hostile/1", dest, allow_unsafe=True)
    assert (pulled / "model.pkl").read_bytes() == scan_files.malicious_pickle()


def test_pull_of_a_safe_version_is_unchanged(registry, tmp_path):
    register(registry, tmp_path, "demo", scan_files.demo_pickle())
    assert registry.resolve("demo@latest")["scan"]["verdict"] == "safe"
    assert (registry.pull("demo/1", tmp_path / "dest") / "model.pkl").exists()


def test_the_cli_refuses_unless_allow_unsafe(registry, live_server, write_token, tmp_path, capsys):
    register(registry, tmp_path, "hostile", scan_files.malicious_pickle())
    common = ["--url", live_server.url, "--token", write_token, "pull", "hostile/1", "-o", str(tmp_path / "out")]
    assert main(common) == 1
    err = capsys.readouterr().err
    assert "unsafe" in err and "--allow-unsafe" in err and "posix.system" in err
    assert not (tmp_path / "out").exists()
    assert main([*common, "--allow-unsafe"]) == 0
    assert (tmp_path / "out" / "model.pkl").exists()
