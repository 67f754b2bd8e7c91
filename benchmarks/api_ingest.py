"""Ingestion and retrieval through the JSON API, against gunicorn on SQLite (the embedded default) or PostgreSQL.

    .venv/bin/python benchmarks/api_ingest.py [--quick]
    .venv/bin/python benchmarks/api_ingest.py --postgres postgres://postgres@127.0.0.1:5432   # a scratch database

Requests go through the Python client's transport (`registry_client.http.Http`: requests underneath, bearer token,
JSON in and out), the code a training job or CI pipeline runs, with retries off so that every error shows.
Prints one line per figure with the target from the ingestion issue beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import threading
import time
from pathlib import Path

from registry_client.http import Http

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import database_kind, registry_server, rss_kib, scratch_postgres  # noqa: E402

OCTETS = {"Content-Type": "application/octet-stream"}


def line(name: str, value: float, unit: str, target: str) -> None:
    digits = 3 if unit == "s" else 1
    print(f"{name:<52} {value:>12,.{digits}f} {unit:<10} (target {target})")


def session(url: str, token: str) -> Http:
    return Http(url, token, retries=0, timeout=600)


def new_run(s: Http, name: str) -> str:
    return s.post("/runs", {"experiment": "bench", "name": name})["id"]


def bench_batch_runs(s: Http, runs: int) -> None:
    points = 0
    start = time.perf_counter()
    for i in range(runs):
        run_id = new_run(s, f"run-{i}")
        metrics = [
            {"key": f"metric_{k}", "value": (k + 1) / (step + 1), "step": step}
            for k in range(10)
            for step in range(100)
        ]
        params = {f"param_{p}": str(p * i) for p in range(20)}
        s.post(f"/runs/{run_id}/log-batch", {"metrics": metrics, "params": params})
        points += len(metrics)
    elapsed = time.perf_counter() - start
    line(f"batch ingest: {runs} runs x 20 params x 10 metrics x 100", points / elapsed, "points/s", ">= 50,000")


def bench_long_metric(s: Http, steps: int) -> str:
    run_id = new_run(s, "long")
    start = time.perf_counter()
    for offset in range(0, steps, 10_000):
        batch = [{"key": "loss", "value": 1.0 / (i + 1), "step": i} for i in range(offset, min(offset + 10_000, steps))]
        s.post(f"/runs/{run_id}/log-batch", {"metrics": batch})
    elapsed = time.perf_counter() - start
    line(f"ingest one metric of {steps:,} steps", steps / elapsed, "points/s", ">= 50,000")
    return run_id


def bench_history(s: Http, run_id: str, steps: int) -> None:
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        history = s.get(f"/runs/{run_id}/metrics/history", {"key": "loss", "limit": steps})
        assert len(history["steps"]) == steps
        timings.append(time.perf_counter() - start)
    line(f"fetch a {steps:,}-point history (median of 5)", statistics.median(timings), "s", "<= 0.3 s")


def in_threads(work, count: int) -> float:
    """Run work(0) ... work(count - 1) in as many threads at once; the seconds until all have finished."""
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def bench_floor(s: Http) -> None:
    """The cost of any request here (client, gunicorn, Django, no database): this VM's speed swings by a third
    from minute to minute (other tenants, or the minutes after heavy work), and this shows which kind a run had."""
    timings = []
    for _ in range(300):
        start = time.perf_counter()
        s.request("GET", s.url + "/healthz")
        timings.append(time.perf_counter() - start)
    median = statistics.median(timings) * 1000
    print(f"{'round trip of GET /healthz (median of 300)':<52} {median:>12,.1f} {'ms':<10} (no target; 1.2 when quiet)")


def bench_versions(s: Http, url: str, token: str, count: int, clients: int) -> None:
    run_id = new_run(s, "to-register")
    s.request("PUT", f"/runs/{run_id}/artifacts/model/model.bin", headers=OCTETS, body=lambda: b"x" * 1024)
    s.post("/models", {"name": "bench-model"})
    body = {"run_id": run_id, "artifact_path": "model"}
    start = time.perf_counter()
    numbers = [s.post("/models/bench-model/versions", body)["version"] for _ in range(count)]
    elapsed = time.perf_counter() - start
    line(f"register {count} versions, one after another", count / elapsed, "versions/s", ">= 300")

    # CI pipelines register concurrently: the same number of versions of the same model from several clients,
    # all queueing on that model's version counter.
    sessions = [session(url, token) for _ in range(clients)]
    per_client: list[list[int]] = [[] for _ in range(clients)]

    def work(index: int) -> None:
        for _ in range(count // clients):
            per_client[index].append(sessions[index].post("/models/bench-model/versions", body)["version"])

    elapsed = in_threads(work, clients)
    concurrent = sorted(n for numbers_of_one in per_client for n in numbers_of_one)
    assert concurrent == list(range(count + 1, count + 1 + len(concurrent))), "numbers with gaps or duplicates"
    assert numbers == list(range(1, count + 1))
    line(
        f"register {len(concurrent)} versions from {clients} concurrent clients",
        len(concurrent) / elapsed,
        "versions/s",
        ">= 300",
    )

    s.put("/models/bench-model/aliases/candidate", {"version": count // 2})
    timings = []
    for _ in range(300):
        start = time.perf_counter()
        s.get("/resolve", {"ref": "bench-model@candidate"})
        timings.append(time.perf_counter() - start)
    line("resolve name@alias (median of 300)", statistics.median(timings) * 1000, "ms", "<= 5 ms")


def bench_artifact(s: Http, pid: int, megabytes: int) -> None:
    run_id = new_run(s, "artifact")
    chunk = os.urandom(1024 * 1024)
    digest = hashlib.sha256()
    for _ in range(megabytes):
        digest.update(chunk)

    class Body:
        """Streams `megabytes` MB without holding them; its length makes requests send Content-Length."""

        def __init__(self):
            self.left = megabytes * len(chunk)

        def __len__(self):
            return self.left

        def read(self, n=-1):
            if self.left <= 0:
                return b""
            self.left -= len(chunk)
            return chunk

    rss_before = rss_kib(pid)
    peak = [rss_before]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    size = megabytes * 1024 * 1024
    start = time.perf_counter()
    r = s.request("PUT", f"/runs/{run_id}/artifacts/big.bin", headers=OCTETS, body=Body)
    up = time.perf_counter() - start
    assert r.json()["sha256"] == digest.hexdigest()
    start = time.perf_counter()
    received = 0
    with s.request("GET", f"/runs/{run_id}/artifacts/big.bin", stream=True) as r:
        for part in r.iter_content(1024 * 1024):
            received += len(part)
    down = time.perf_counter() - start
    stop.set()
    sampler.join()
    assert received == size
    line(f"upload a {megabytes} MB artifact", megabytes / up, "MB/s", ">= 350 MB/s")
    line(f"download a {megabytes} MB artifact", megabytes / down, "MB/s", ">= 400 MB/s")
    line("server memory growth during upload+download", (peak[0] - rss_before) / 1024, "MB", "<= 64 MB")


def bench_concurrent(url, token: str, writers: int, batches: int) -> None:
    errors: list[str] = []
    counts = [0] * writers

    def work(index: int) -> None:
        s = session(url, token)
        try:
            run_id = new_run(s, f"writer-{index}")
            for b in range(batches):
                metrics = [
                    {"key": f"m{k}", "value": float(b), "step": b * 1000 + i} for k in range(5) for i in range(200)
                ]
                s.post(f"/runs/{run_id}/log-batch", {"metrics": metrics})
                counts[index] += len(metrics)
        except Exception as exc:  # noqa: BLE001 - a benchmark reports failures, it does not stop on them
            errors.append(repr(exc))

    elapsed = in_threads(work, writers)
    line(f"{writers} concurrent writers", sum(counts) / elapsed, "points/s", ">= 40,000")
    print(f"{'  errors among concurrent writers':<52} {len(errors):>12} {'':<10} (target 0)")
    for error in errors[:5]:
        print("   ", error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument(
        "--postgres",
        metavar="SERVER_URL",
        help="run on a scratch database created (and dropped) on this PostgreSQL server, "
        "e.g. postgres://postgres@127.0.0.1:5432; default: a scratch SQLite file",
    )
    parser.add_argument(
        "--async-commit",
        action="store_true",
        help="with --postgres: synchronous_commit=off on the scratch database(s), so commits do not wait for fsync",
    )
    args = parser.parse_args()
    if args.postgres:
        with scratch_postgres(
            args.postgres, "registry_bench_ingest", synchronous_commit=not args.async_commit
        ) as database_url:
            run(args, database_url)
    else:
        run(args, None)


def run(args, database_url: str | None) -> None:
    runs, steps, versions, megabytes, batches = (20, 20_000, 50, 20, 5) if args.quick else (200, 100_000, 500, 200, 20)
    with registry_server(database_url=database_url) as (url, token, _env, pid):
        s = session(url, token)
        commit = " (synchronous_commit off)" if getattr(args, "async_commit", False) and database_url else ""
        print(f"server: gunicorn, 2 workers x 4 threads, {database_kind(database_url)}{commit}, {url}")
        bench_floor(s)
        bench_batch_runs(s, runs)
        run_id = bench_long_metric(s, steps)
        bench_history(s, run_id, steps)
        bench_versions(s, url, token, versions, clients=4)
        bench_artifact(s, pid, megabytes)
        bench_concurrent(url, token, 8, batches)


if __name__ == "__main__":
    main()
