"""gunicorn.conf.py, shared by `make run`, the Docker image and the benchmarks: what each worker does at start."""

from __future__ import annotations

import gc
import importlib.util
from pathlib import Path

from registry import checkpoints


def load_conf():
    path = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"
    spec = importlib.util.spec_from_file_location("gunicorn_conf", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_worker_freezes_startup_objects_and_starts_the_checkpoint_thread(monkeypatch):
    calls = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(checkpoints, "start", lambda: calls.append("checkpoints"))
    conf = load_conf()
    conf.post_worker_init(worker=None)
    assert calls == ["freeze", "checkpoints"]
    assert conf.worker_tmp_dir in ("/dev/shm", None)


def test_metrics_folder_starts_empty_and_dead_workers_are_marked(monkeypatch, tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"stale")
    (folder / "keep.txt").write_text("not ours")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    conf = load_conf()  # gunicorn reads the file once, in the master, before the app is loaded
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]
    (folder / "gauge_livesum_77.db").write_bytes(b"")
    conf.child_exit(server=None, worker=type("Worker", (), {"pid": 77})())
    assert not (folder / "gauge_livesum_77.db").exists()  # prometheus_client drops a dead worker's live gauges
