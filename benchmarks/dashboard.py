"""Dashboard server time on a large generated registry (SQLite, the embedded default).

    .venv/bin/python benchmarks/dashboard.py [--quick] [--keep DIR]

Generates 1,000 models, 100,000 versions, 10,000 runs and 5 million metric points (--quick: a tenth), then times the
list, model, version and compare pages in-process with Django's test client (server time, no network) and prints the
p50/p95 and the HTML size beside the targets from the dashboard issue.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(var_dir: str) -> None:
    os.environ.update(
        SECRET_KEY="benchmark-secret-key",
        REGISTRY_HTTPS="false",
        REGISTRY_VAR_DIR=var_dir,
        STATICFILES_BACKEND="django.contrib.staticfiles.storage.StaticFilesStorage",
        DJANGO_SETTINGS_MODULE="registry.settings",
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()


# A version's lineage columns: empty for versions registered from a run's files here.
LINEAGE_COLUMNS = "external_location, external_run_id, logged_model_id"
LINEAGE_VALUES = "'', '', ''"


def generate(models: int, versions_per_model: int, runs: int, points: int, long_steps: int) -> None:
    """Insert rows with executemany: the ORM would spend minutes building 5 million objects."""
    from django.db import connection, transaction
    from django.utils import timezone

    rng = random.Random(7)
    now = timezone.now()
    start = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "INSERT INTO tracking_experiment (name, description, tags, created_at, updated_at) "
            "VALUES ('bench', '', '{}', %s, %s)",
            [now, now],
        )
        experiment_id = cur.lastrowid
        run_ids = [f"{i:032x}" for i in range(1, runs + 1)]
        cur.executemany(
            "INSERT INTO tracking_run (id, experiment_id, name, status, start_time, git_remote, git_commit, git_branch,"
            " entry_point, python_version, platform, packages, image, tags) VALUES (%s, %s, %s, 'finished', %s, '',"
            " %s, 'main', 'train.py', '3.11.7', 'Linux', %s, '', '{}')",
            [
                (
                    rid,
                    experiment_id,
                    f"run-{i}",
                    now,
                    f"{i:040x}",
                    json.dumps({"numpy": f"2.1.{i % 3}", "scikit-learn": "1.5.2"}),
                )
                for i, rid in enumerate(run_ids)
            ],
        )
        cur.executemany(
            "INSERT INTO tracking_param (run_id, key, value) VALUES (%s, %s, %s)",
            [(rid, key, str(rng.choice([1, 2, 4, 8]))) for rid in run_ids for key in ("depth", "lr", "layers", "seed")],
        )
        keys = ("loss", "accuracy", "f1")
        long_runs = run_ids[:4]
        remaining = points - len(long_runs) * len(keys) * long_steps
        per_series = max(2, remaining // ((runs - len(long_runs)) * len(keys)))
        series_rows = []
        for rid in run_ids:
            steps = long_steps if rid in long_runs else per_series
            for key in keys:
                last = rng.random()
                series_rows.append((rid, key, last, steps - 1, 0, 0.0, 1.0, steps))
        cur.executemany(
            "INSERT INTO tracking_metricseries (run_id, key, last_value, last_step, last_timestamp, min_value,"
            " max_value, count) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            series_rows,
        )
        cur.execute("SELECT id, run_id, count FROM tracking_metricseries")
        total = 0
        batch = []
        for series_id, _rid, count in cur.fetchall():
            for step in range(count):
                batch.append((series_id, step, 1_700_000_000_000 + step, 1.0 / (step + 1) + rng.random() * 0.01))
            if len(batch) >= 200_000:
                connection.cursor().executemany(
                    "INSERT INTO tracking_metricpoint (series_id, step, timestamp, value) VALUES (%s, %s, %s, %s)",
                    batch,
                )
                total += len(batch)
                batch = []
        if batch:
            connection.cursor().executemany(
                "INSERT INTO tracking_metricpoint (series_id, step, timestamp, value) VALUES (%s, %s, %s, %s)", batch
            )
            total += len(batch)
        cur.executemany(
            "INSERT INTO catalog_registeredmodel (name, description, tags, last_version, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (
                    f"model-{m:04d}",
                    f"Model number {m}, **benchmark**.",
                    json.dumps({"team": f"t{m % 7}"}),
                    versions_per_model,
                    now,
                    now,
                )
                for m in range(models)
            ],
        )
        cur.execute("SELECT id FROM catalog_registeredmodel ORDER BY id")
        model_ids = [row[0] for row in cur.fetchall()]
        stages = ["None", "None", "None", "Staging", "Archived"]
        version_rows = []
        for index, model_id in enumerate(model_ids):
            for v in range(1, versions_per_model + 1):
                stage = "Production" if v == versions_per_model - 1 else rng.choice(stages)
                # The first model's newest versions point at the runs with long histories.
                if index == 0 and v > versions_per_model - 4:
                    rid = long_runs[versions_per_model - v]
                else:
                    rid = run_ids[(index * versions_per_model + v) % runs]
                version_rows.append((model_id, v, rid, f"runs:/{rid}/model", "ready", "", stage, "", "{}", now, now))
        cur.executemany(
            "INSERT INTO catalog_modelversion (model_id, version, run_id, source, status, status_message, stage,"
            f" description, tags, created_at, updated_at, {LINEAGE_COLUMNS})"
            f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, {LINEAGE_VALUES})",
            version_rows,
        )
        add_deep_model(cur, run_ids, rng, now)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    print(
        f"generated {models:,} models, {len(version_rows):,} versions, {runs:,} runs, {total:,} metric points "
        f"in {time.perf_counter() - start:.0f} s"
    )


DEEP_VERSIONS = 100_000


def add_deep_model(cur, run_ids: list[str], rng: random.Random, now) -> None:
    """One model with 100,000 versions of its own, for the deep pages of its versions table."""
    cur.execute(
        "INSERT INTO catalog_registeredmodel (name, description, tags, last_version, created_at, updated_at)"
        " VALUES ('deep', 'A model with a long history.', '{}', %s, %s, %s)",
        [DEEP_VERSIONS, now, now],
    )
    cur.execute("SELECT id FROM catalog_registeredmodel WHERE name = 'deep'")
    model_id = cur.fetchone()[0]
    stages = ["None", "None", "None", "Staging", "Archived"]
    cur.executemany(
        "INSERT INTO catalog_modelversion (model_id, version, run_id, source, status, status_message, stage,"
        f" description, tags, created_at, updated_at, {LINEAGE_COLUMNS})"
        f" VALUES (%s, %s, %s, '', 'ready', '', %s, '', '{{}}', %s, %s, {LINEAGE_VALUES})",
        [(model_id, v, run_ids[v % len(run_ids)], rng.choice(stages), now, now) for v in range(1, DEEP_VERSIONS + 1)],
    )


def _deep_token(version: int) -> str:
    """The cursor the Next link of the page ending at `version` carries (newest-first order)."""
    from registry.keyset import Key, encode_token

    class Row:
        pass

    Row.version = version
    return encode_token([Key("version", True)], Row)


def timed(client, url: str, repeat: int) -> tuple[list[float], int]:
    client.get(url)  # warm caches and templates
    timings = []
    size = 0
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(url)
        timings.append(time.perf_counter() - start)
        assert response.status_code == 200, (url, response.status_code)
        size = len(response.content)
    return timings, size


def report(name: str, timings: list[float], size: int, target_ms: int, target_kb: int | None = None) -> None:
    p50 = statistics.median(timings) * 1000
    p95 = sorted(timings)[max(0, int(len(timings) * 0.95) - 1)] * 1000
    size_note = f"{size / 1024:7.0f} KB" + (f" (target <= {target_kb} KB)" if target_kb else "")
    print(f"{name:<44} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms (target <= {target_ms} ms)  {size_note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the data, for a smoke run")
    parser.add_argument("--keep", help="reuse or keep the generated registry in this folder")
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    var_dir = args.keep or tempfile.mkdtemp(prefix="registry-dashboard-bench-")
    fresh = not (Path(var_dir) / "registry.sqlite3").exists()
    setup_django(var_dir)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if fresh:
        if args.quick:
            generate(models=100, versions_per_model=100, runs=1_000, points=500_000, long_steps=100_000)
        else:
            generate(models=1_000, versions_per_model=100, runs=10_000, points=5_000_000, long_steps=100_000)

    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_superuser": True})
    client = Client()
    client.force_login(user)
    n = args.repeat
    report("/models/", *timed(client, "/models/", n), 100)
    report("/models/?q=model-09&sort=-updated", *timed(client, "/models/?q=model-09&sort=-updated", n), 100)
    report("/models/model-0050/", *timed(client, "/models/model-0050/", n), 100)
    report("/models/model-0050/?sort=-accuracy", *timed(client, "/models/model-0050/?sort=-accuracy", n), 100)
    report("/models/model-0050/?stage=Archived", *timed(client, "/models/model-0050/?stage=Archived", n), 100)
    report("/models/deep/ (100,000 versions, first page)", *timed(client, "/models/deep/", n), 100)
    report("/models/deep/?last=1 (last page)", *timed(client, "/models/deep/?last=1", n), 100)
    deep = f"/models/deep/?after={_deep_token(51)}"
    report("/models/deep/?after=… (page 3,999 of 4,000)", *timed(client, deep, n), 100)
    report("/models/deep/?stage=Archived&last=1", *timed(client, "/models/deep/?stage=Archived&last=1", n), 100)
    report("/models/deep/?sort=-accuracy&last=1", *timed(client, "/models/deep/?sort=-accuracy&last=1", n), 100)
    report("/experiments/2/?last=1 (last page of runs)", *timed(client, "/experiments/2/?last=1", n), 100)
    report("/experiments/2/?order=-f1&last=1", *timed(client, "/experiments/2/?order=-f1&last=1", n), 100)
    report("/models/model-0050/versions/42/", *timed(client, "/models/model-0050/versions/42/", n), 100)
    report("/experiments/2/?order=-f1 (sorted runs)", *timed(client, "/experiments/2/?order=-f1", n), 100)
    report(
        "/compare/ 4 builds (short histories)",
        *timed(client, "/compare/?versions=" + ",".join(f"model-0050:{v}" for v in (10, 20, 30, 40)), n),
        100,
    )
    report("/models/model-0000/versions/100/ (100k steps)", *timed(client, "/models/model-0000/versions/100/", n), 250)
    report(
        "/compare/ 4 builds x 100,000-step histories",
        *timed(client, "/compare/?versions=" + ",".join(f"model-0000:{v}" for v in (97, 98, 99, 100)), n),
        250,
        500,
    )
    print(f"(registry kept in {var_dir})" if args.keep else "")


if __name__ == "__main__":
    main()
