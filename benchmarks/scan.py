"""The file safety scan: how long scanning a 200 MB benign model takes, and that uploads keep their speed.

    .venv/bin/python benchmarks/scan.py [--quick]

1. In-process: the scanner (registry.lib.filescan) on a 200 MB pickle of a PyTorch-style state dict (NumPy arrays),
   the same as a joblib file, and an opcode-heavy pickle (a list of floats: one opcode per value, the slow case).
2. Through the server (gunicorn, 2 workers x 4 threads, SQLite, the default SCAN_BACKGROUND=thread): upload the
   200 MB pickle twice in a row, the second while the first is being scanned in the background, and time each
   upload, then how long until the version's verdict arrives. Files above SCAN_SYNC_MAX_BYTES (16 MB) are scanned
   after the upload has answered, so the upload figure is the same as without scanning (target >= 350 MB/s, the
   upload benchmark's).
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
from registry_client.http import Http

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import registry_server  # noqa: E402

from registry.lib import filescan  # noqa: E402

OCTETS = {"Content-Type": "application/octet-stream"}


def line(name: str, value: float, unit: str, target: str = "—") -> None:
    digits = 2 if unit in ("s", "MB/s") else 1
    print(f"{name:<60} {value:>10,.{digits}f} {unit:<6} (target {target})")


def state_dict(megabytes: int) -> dict:
    """Arrays of 4 MB each, like a model's weights."""
    rng = np.random.default_rng(0)
    count = max(1, megabytes // 4)
    return {f"layer{i}.weight": rng.standard_normal(512 * 1024).astype("float64") for i in range(count)}


def write_files(folder: Path, megabytes: int) -> dict[str, Path]:
    weights = state_dict(megabytes)
    paths = {"pickle": folder / "model.pkl", "joblib": folder / "model.joblib", "floats": folder / "floats.pkl"}
    with open(paths["pickle"], "wb") as handle:
        pickle.dump(weights, handle, protocol=4)
    joblib.dump(weights, paths["joblib"])
    values = [float(i) for i in range(2_000_000)]  # ~18 MB, one BINFLOAT opcode per value
    with open(paths["floats"], "wb") as handle:
        pickle.dump(values, handle, protocol=4)
    return paths


def bench_scanner(paths: dict[str, Path]) -> None:
    for kind, path in paths.items():
        size = path.stat().st_size / 1e6
        start = time.perf_counter()
        with open(path, "rb") as handle:
            verdict = filescan.scan(handle, path.name)
        took = time.perf_counter() - start
        assert verdict.verdict == "safe", verdict
        if kind == "floats":
            line(f"scan an opcode-heavy pickle ({size:,.0f} MB, 2M floats)", size / took, "MB/s")
        else:
            line(f"scan a {size:,.0f} MB benign {kind} (state dict of arrays)", took, "s")


class FileBody:
    """A file sent in 1 MB reads (http.client would read 8 KB at a time), with a length for Content-Length: the
    upload benchmark's way of sending (benchmarks/api_ingest.py)."""

    def __init__(self, handle, size: int):
        self.handle, self.left = handle, size

    def __len__(self):
        return self.left

    def read(self, n=-1):
        chunk = self.handle.read(1024 * 1024)
        self.left -= len(chunk)
        return chunk


def bench_baseline(path: Path, root: Path, rounds: int) -> None:
    """The same upload served by another checkout (one without the scan), for a figure taken in the same minutes."""
    size = path.stat().st_size / 1e6
    with registry_server(root=root) as (url, token, _env, _pid):
        s = Http(url, token, retries=0, timeout=600)
        print(f"baseline server: {root}")
        for attempt in range(1, rounds + 1):
            run_id = s.post("/runs", {"experiment": "scan-bench", "name": f"upload-{attempt}"})["id"]
            with open(path, "rb") as handle:
                body = FileBody(handle, path.stat().st_size)
                start = time.perf_counter()
                s.request("PUT", f"/runs/{run_id}/artifacts/model/model.pkl", headers=OCTETS, body=lambda b=body: b)
                took = time.perf_counter() - start
            line(f"baseline: upload {size:,.0f} MB pickle #{attempt} (no scan)", size / took, "MB/s", ">= 350 MB/s")


def bench_server(path: Path) -> None:
    size = path.stat().st_size / 1e6
    with registry_server() as (url, token, _env, _pid):
        s = Http(url, token, retries=0, timeout=600)
        print(f"server: gunicorn, 2 workers x 4 threads, SQLite, {url}, SCAN_BACKGROUND=thread")
        s.post("/models", {"name": "scan-bench"})
        versions = []
        for attempt in (1, 2):
            run_id = s.post("/runs", {"experiment": "scan-bench", "name": f"upload-{attempt}"})["id"]
            with open(path, "rb") as handle:
                start = time.perf_counter()
                body = FileBody(handle, path.stat().st_size)
                target = f"/runs/{run_id}/artifacts/model/model.pkl"
                s.request("PUT", target, headers=OCTETS, body=lambda body=body: body)
                took = time.perf_counter() - start
            done_at = time.perf_counter()
            version = s.post("/models/scan-bench/versions", {"run_id": run_id, "artifact_path": "model"})
            versions.append((version["version"], done_at))
            what = "while the first is scanned" if attempt == 2 else "scanning on"
            line(f"upload {size:,.0f} MB pickle #{attempt} ({what})", size / took, "MB/s", ">= 350 MB/s")
            assert version["scan"]["verdict"] == "pending", version["scan"]
        for number, done_at in versions:
            while True:
                verdict = s.get(f"/models/scan-bench/versions/{number}")["scan"]["verdict"]
                if verdict != "pending":
                    break
                time.sleep(0.05)
            assert verdict == "safe", verdict
            line(f"upload #{number}: from the upload's answer to its verdict", time.perf_counter() - done_at, "s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="40 MB instead of 200 MB")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="CHECKOUT",
        help="also time the same uploads on a server run from this checkout (e.g. one without the scan)",
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")
    megabytes = 40 if args.quick else 200
    with tempfile.TemporaryDirectory(prefix="scan-bench-") as folder:
        paths = write_files(Path(folder), megabytes)
        bench_scanner(paths)
        if args.baseline:
            bench_baseline(paths["pickle"], args.baseline.resolve(), rounds=2)
        bench_server(paths["pickle"])


if __name__ == "__main__":
    main()
