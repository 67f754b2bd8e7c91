"""The official MLflow client against our MLflow-compatible API, and optionally against `mlflow server` itself.

    .venv/bin/python benchmarks/mlflow_compare.py                    # our server, full size (a few minutes)
    .venv/bin/python benchmarks/mlflow_compare.py --quick            # a smoke run
    .venv/bin/python benchmarks/mlflow_compare.py --against-mlflow   # also MLflow's own server, side by side
    .venv/bin/python benchmarks/mlflow_compare.py --against-mlflow --postgres postgres://postgres@127.0.0.1:5432
                                                                     # both on scratch databases of one PostgreSQL

Our server is gunicorn on a scratch SQLite database (benchmarks/_server.py), or with --postgres on a scratch database
created on that PostgreSQL server. With --against-mlflow, `mlflow server` (this venv's when it can serve, else the
full `mlflow` package of the client's version installed into a throwaway venv under /tmp) is started on loopback
with as many worker processes as ours, its backend store a scratch SQLite file or, with --postgres, a second scratch
database on the same PostgreSQL server (`postgresql+psycopg://`), and `--artifacts-destination` a local folder.
Both are driven by the same code in this process, through `MlflowClient`.

Two kinds of figures: "client" ones go through MlflowClient exactly as training code does, so they include the
client's own cost (protobuf and JSON encoding, about as much as our server's work for a log_batch); "server" ones
send pre-encoded requests, which measures the servers alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"  # a "View run ... at" line per finished run otherwise
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "600"

import mlflow  # noqa: E402
import requests  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import database_kind, free_port, registry_server, scratch_postgres  # noqa: E402

logging.getLogger("mlflow").setLevel(logging.WARNING)  # one INFO line per registered version otherwise
MLFLOW_VENV = Path(tempfile.gettempdir()) / "mlflow-bench-venv"
TS = 1_700_000_000_000


@dataclass(frozen=True)
class Sizes:
    runs: int
    params: int
    metrics: int
    steps: int
    long_steps: int
    versions: int
    lookups: int
    searches: int
    artifact_mb: int
    writers: int
    writer_batches: int
    raw_batches: int

    @classmethod
    def full(cls) -> Sizes:
        return cls(200, 20, 10, 100, 100_000, 500, 500, 20, 200, 8, 20, 100)

    @classmethod
    def quick(cls) -> Sizes:
        return cls(20, 20, 10, 100, 10_000, 50, 50, 5, 20, 4, 3, 20)


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    token: str | None

    def activate(self) -> None:
        """Point the MLflow client (which reads its credentials from the environment) at this server."""
        if self.token:
            os.environ["MLFLOW_TRACKING_TOKEN"] = self.token
        else:
            os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
        mlflow.set_tracking_uri(self.url)
        mlflow.set_registry_uri(self.url)

    def client(self) -> MlflowClient:
        self.activate()
        return MlflowClient(tracking_uri=self.url, registry_uri=self.url)

    def session(self) -> requests.Session:
        session = requests.Session()
        if self.token:
            session.headers["Authorization"] = f"Bearer {self.token}"
        return session


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def batch_metrics(sizes: Sizes, offset: int = 0) -> list[Metric]:
    return [
        Metric(f"metric_{k}", (k + 1) / (step + 1), TS + step, step + offset)
        for k in range(sizes.metrics)
        for step in range(sizes.steps)
    ]


# --- Workloads ------------------------------------------------------------------------------------------------------


def ingest_runs(target: Target, sizes: Sizes) -> dict:
    client = target.client()
    experiment_id = client.create_experiment(f"bench-{time.time_ns()}")
    metrics = batch_metrics(sizes)
    run_ids = []
    start = time.perf_counter()
    for i in range(sizes.runs):
        run_id = client.create_run(experiment_id, run_name=f"run-{i}").info.run_id
        params = [Param(f"param_{p}", str((p * i) % 7)) for p in range(sizes.params)]
        client.log_batch(run_id, metrics=metrics, params=params)
        client.set_terminated(run_id)
        run_ids.append(run_id)
    elapsed = time.perf_counter() - start
    points = sizes.runs * len(metrics)
    return {
        "experiment_id": experiment_id,
        "run_ids": run_ids,
        f"client ingest: {sizes.runs} runs x {sizes.params} params x {sizes.metrics}x{sizes.steps} (points/s)": (
            points / elapsed
        ),
        "client ingest (runs/s)": sizes.runs / elapsed,
    }


def long_metric(target: Target, sizes: Sizes, experiment_id: str) -> dict:
    client = target.client()
    run_id = client.create_run(experiment_id, run_name="long").info.run_id
    points = [Metric("loss", 1.0 / (i + 1), TS + i, i) for i in range(sizes.long_steps)]
    elapsed, _ = timed(client.log_batch, run_id, metrics=points)  # the client sends it 1,000 points at a time
    fetches = []
    for _ in range(3):
        seconds, history = timed(client.get_metric_history, run_id, "loss")
        assert len(history) == sizes.long_steps, len(history)
        fetches.append(seconds)
    # The servers alone: the pages as bytes, counted and followed without parsing them (decoding 100,000 points of
    # JSON costs the client about 0.1 s whichever server sent them); then the same with the client's json decode.
    session = target.session()
    raw = [_fetch_history(session, target.url, run_id, sizes.long_steps, parse=False) for _ in range(3)]
    parsed = [_fetch_history(session, target.url, run_id, sizes.long_steps, parse=True) for _ in range(3)]
    return {
        f"client ingest: one metric of {sizes.long_steps:,} steps (points/s)": sizes.long_steps / elapsed,
        f"client history fetch: {sizes.long_steps:,} points (s, median of 3)": statistics.median(fetches),
        f"server history fetch: {sizes.long_steps:,} points in pages of 25,000 (s)": statistics.median(raw),
        "server history fetch, pages decoded with json (s)": statistics.median(parsed),
    }


_TOKEN = re.compile(rb'"next_page_token":\s*"([^"]+)"')


def _fetch_history(session: requests.Session, url: str, run_id: str, expected: int, *, parse: bool) -> float:
    start = time.perf_counter()
    token, fetched = None, 0
    while True:
        params = {"run_id": run_id, "metric_key": "loss", "max_results": 25_000}
        if token:
            params["page_token"] = token
        response = session.get(f"{url}/api/2.0/mlflow/metrics/get-history", params=params, timeout=600)
        response.raise_for_status()
        if parse:
            body = response.json()
            fetched += len(body.get("metrics", []))
            token = body.get("next_page_token")
        else:
            content = response.content
            fetched += content.count(b'"step":')
            found = _TOKEN.search(content, max(0, len(content) - 4096))
            token = found.group(1).decode() if found else None
        if not token:
            break
    assert fetched == expected, fetched
    return time.perf_counter() - start


def raw_ingest(target: Target, sizes: Sizes, experiment_id: str) -> dict:
    """Pre-encoded log-batch requests of 1,000 metric points: the server's cost alone."""
    session = target.session()
    api = f"{target.url}/api/2.0/mlflow"
    run_ids = []
    for i in range(sizes.raw_batches):
        response = session.post(f"{api}/runs/create", json={"experiment_id": experiment_id, "run_name": f"raw-{i}"})
        response.raise_for_status()
        run_ids.append(response.json()["run"]["info"]["run_id"])
    metrics = [
        {"key": f"metric_{k}", "value": (k + 1) / (s + 1), "timestamp": TS + s, "step": s}
        for k in range(10)
        for s in range(100)
    ]
    bodies = [json.dumps({"run_id": run_id, "metrics": metrics}).encode() for run_id in run_ids]
    headers = {"Content-Type": "application/json"}
    start = time.perf_counter()
    for body in bodies:
        session.post(f"{api}/runs/log-batch", data=body, headers=headers, timeout=600).raise_for_status()
    elapsed = time.perf_counter() - start
    return {"server ingest: log-batch of 1,000 points (points/s)": len(bodies) * 1000 / elapsed}


def searches(target: Target, sizes: Sizes, experiment_id: str) -> dict:
    client = target.client()
    queries = {
        "search_runs: metric AND param filter, order by metric (s)": lambda: client.search_runs(
            [experiment_id],
            "metrics.metric_3 > 0.5 AND params.param_1 = '1'",
            order_by=["metrics.metric_0 DESC"],
            max_results=100,
        ),
        "search_runs: all runs of the experiment (s)": lambda: client.search_runs([experiment_id], max_results=1000),
        "search_experiments by name (s)": lambda: client.search_experiments(filter_string="name LIKE 'bench-%'"),
    }
    figures = {}
    for name, query in queries.items():
        timings = [timed(query)[0] for _ in range(sizes.searches)]
        figures[name] = statistics.median(timings)
    return figures


def versions_and_aliases(target: Target, sizes: Sizes, experiment_id: str, workdir: Path) -> dict:
    client = target.client()
    folder = workdir / "model"
    folder.mkdir(exist_ok=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "model.bin").write_bytes(os.urandom(4096))
    run_id = client.create_run(experiment_id, run_name="to-register").info.run_id
    client.log_artifacts(run_id, str(folder), "model")
    name = f"bench-model-{time.time_ns()}"
    client.create_registered_model(name)
    start = time.perf_counter()
    for _ in range(sizes.versions):
        client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    elapsed = time.perf_counter() - start
    middle = str(max(1, sizes.versions // 2))
    client.set_registered_model_alias(name, "candidate", middle)
    start = time.perf_counter()
    for _ in range(sizes.lookups):
        assert client.get_model_version_by_alias(name, "candidate").version == middle
    lookups = time.perf_counter() - start
    search_time, found = timed(client.search_model_versions, f"name = '{name}'")
    assert len(found) == sizes.versions, len(found)
    return {
        f"register {sizes.versions} versions (versions/s)": sizes.versions / elapsed,
        "alias lookup: get_model_version_by_alias (ms)": lookups / sizes.lookups * 1000,
        f"search_model_versions over {sizes.versions} versions (s)": search_time,
    }


def big_artifact(target: Target, sizes: Sizes, experiment_id: str, workdir: Path) -> dict:
    client = target.client()
    path = workdir / "big.bin"
    chunk = os.urandom(1024 * 1024)
    with open(path, "wb") as handle:
        for _ in range(sizes.artifact_mb):
            handle.write(chunk)
    run_id = client.create_run(experiment_id, run_name="artifact").info.run_id
    up, _ = timed(client.log_artifact, run_id, str(path))
    down_dir = workdir / "down"
    down, local = timed(client.download_artifacts, run_id, "big.bin", str(down_dir))
    assert os.path.getsize(local) == path.stat().st_size
    shutil.rmtree(down_dir, ignore_errors=True)
    path.unlink()
    return {
        f"upload a {sizes.artifact_mb} MB artifact (MB/s)": sizes.artifact_mb / up,
        f"download a {sizes.artifact_mb} MB artifact (MB/s)": sizes.artifact_mb / down,
    }


def _writer(args: tuple) -> int:
    target, sizes, experiment_id, index = args
    client = target.client()
    run_id = client.create_run(experiment_id, run_name=f"writer-{index}").info.run_id
    for batch in range(sizes.writer_batches):
        client.log_batch(run_id, metrics=batch_metrics(sizes, offset=batch * sizes.steps))
    return sizes.writer_batches * sizes.metrics * sizes.steps


def concurrent_writers(target: Target, sizes: Sizes, experiment_id: str) -> dict:
    jobs = [(target, sizes, experiment_id, i) for i in range(sizes.writers)]
    with ProcessPoolExecutor(max_workers=sizes.writers) as pool:
        list(pool.map(_noop, range(sizes.writers)))  # start the processes before the clock
        start = time.perf_counter()
        points = sum(pool.map(_writer, jobs))
        elapsed = time.perf_counter() - start
    return {f"{sizes.writers} concurrent writers, log_batch (points/s)": points / elapsed}


def _noop(_: int) -> None:
    return None


def run_all(target: Target, sizes: Sizes) -> dict:
    figures: dict = {}
    workdir = Path(tempfile.mkdtemp(prefix="mlflow-compare-"))
    try:
        print(f"[{target.name}] ingesting runs...", flush=True)
        ingest = ingest_runs(target, sizes)
        experiment_id = ingest.pop("experiment_id")
        ingest.pop("run_ids")
        figures.update(ingest)
        print(f"[{target.name}] pre-encoded batches...", flush=True)
        figures.update(raw_ingest(target, sizes, experiment_id))
        print(f"[{target.name}] long metric...", flush=True)
        figures.update(long_metric(target, sizes, experiment_id))
        print(f"[{target.name}] searches...", flush=True)
        figures.update(searches(target, sizes, experiment_id))
        print(f"[{target.name}] versions and aliases...", flush=True)
        figures.update(versions_and_aliases(target, sizes, experiment_id, workdir))
        print(f"[{target.name}] artifact...", flush=True)
        figures.update(big_artifact(target, sizes, experiment_id, workdir))
        print(f"[{target.name}] concurrent writers...", flush=True)
        figures.update(concurrent_writers(target, sizes, experiment_id))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


# --- MLflow's own server --------------------------------------------------------------------------------------------


def mlflow_executable() -> Path | None:
    """`mlflow` of this venv when its server imports (mlflow-skinny serves with uvicorn here), else one from a
    throwaway venv under /tmp, installed on first use (same version as our client)."""
    ours = Path(sys.executable).parent / "mlflow"
    probe = [sys.executable, "-c", "import mlflow.server.fastapi_app, uvicorn, psycopg"]
    if ours.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return ours
    executable = MLFLOW_VENV / "bin" / "mlflow"
    if executable.exists():
        return executable
    print(f"Installing mlflow=={mlflow.__version__} into {MLFLOW_VENV} (once)...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
        subprocess.run(
            [str(MLFLOW_VENV / "bin" / "pip"), "install", "-q", f"mlflow=={mlflow.__version__}"],
            check=True,
            timeout=1800,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"Could not install MLflow's server ({exc}); comparing nothing.", flush=True)
        return None
    return executable if executable.exists() else None


@contextmanager
def mlflow_server(executable: Path, workers: int, backend_store_uri: str | None = None):
    workdir = Path(tempfile.mkdtemp(prefix="mlflow-server-"))
    backend_store_uri = backend_store_uri or f"sqlite:///{workdir / 'mlflow.db'}"
    port = free_port()
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [
            str(executable),
            "server",
            "--backend-store-uri",
            backend_store_uri,
            "--artifacts-destination",
            str(workdir / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited; see {workdir / 'server.log'}")
            time.sleep(0.5)
        else:
            raise RuntimeError("mlflow server did not start within 180 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


# --- Report ---------------------------------------------------------------------------------------------------------


def higher_is_better(name: str) -> bool:
    return "/s)" in name


def report(ours: dict, theirs: dict | None, database: str = "SQLite") -> None:
    width = max(len(name) for name in ours) + 2
    if theirs is None:
        print(f"\n{'figure':<{width}} {'ours':>14}")
        for name, value in ours.items():
            print(f"{name:<{width}} {value:>14,.3f}")
        return
    print(f"\n{'figure':<{width}} {'ours':>14} {'mlflow server':>14} {'ours vs mlflow':>15}")
    for name, value in ours.items():
        other = theirs.get(name)
        if other is None:
            continue
        ratio = value / other if higher_is_better(name) else other / value
        print(f"{name:<{width}} {value:>14,.3f} {other:>14,.3f} {ratio:>14,.1f}x")
    times = 10 if database == "PostgreSQL" else 20
    print(f"\nBoth on {database}. Target: ours >= {times}x MLflow's server on ingest rate and history fetch.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--against-mlflow", action="store_true", help="also run against `mlflow server`")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes, both servers (default 2)")
    parser.add_argument("--database-url", help="our server's database (default: a scratch SQLite file)")
    parser.add_argument(
        "--postgres",
        metavar="SERVER_URL",
        help="both servers on scratch databases created (and dropped) on this PostgreSQL server, "
        "e.g. postgres://postgres@127.0.0.1:5432",
    )
    parser.add_argument(
        "--async-commit",
        action="store_true",
        help="with --postgres: synchronous_commit=off on the scratch database(s), so commits do not wait for fsync",
    )
    args = parser.parse_args()
    if args.postgres:
        with (
            scratch_postgres(
                args.postgres, "registry_bench_ours", synchronous_commit=not args.async_commit
            ) as ours_url,
            scratch_postgres(
                args.postgres, "registry_bench_mlflow", synchronous_commit=not args.async_commit
            ) as mlflow_url,
        ):
            args.database_url = ours_url
            compare(args, mlflow_url.replace("postgres://", "postgresql+psycopg://", 1))
    else:
        compare(args, None)


def compare(args, mlflow_store: str | None) -> None:
    sizes = Sizes.quick() if args.quick else Sizes.full()
    print(f"Sizes: {sizes}\nCPUs: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}", flush=True)

    var_dir = tempfile.mkdtemp(prefix="registry-bench-mlflow-")
    try:
        with registry_server(workers=args.workers, threads=4, database_url=args.database_url, var_dir=var_dir) as (
            url,
            token,
            _,
            _,
        ):
            ours = run_all(Target("ours", url, token), sizes)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)
    theirs = None
    if args.against_mlflow:
        executable = mlflow_executable()
        if executable is not None:
            with mlflow_server(executable, args.workers, mlflow_store) as url:
                theirs = run_all(Target("mlflow", url, None), sizes)
    report(ours, theirs, database_kind(args.database_url))


if __name__ == "__main__":
    main()
