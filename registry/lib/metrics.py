"""The Prometheus metrics the registry's processes count (prometheus_client; no Django here).

With several gunicorn workers, set PROMETHEUS_MULTIPROC_DIR to an empty folder shared by the workers of one server
(a tmpfs): prometheus_client then keeps each worker's values in files there and /metrics adds them up, so a scrape
sees the whole server whichever worker answers. gunicorn.conf.py clears the folder at start and marks dead workers.
Without it each process counts alone (fine for runserver, tests and one-worker servers).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUEST_LATENCY = Histogram(
    "registry_http_request_duration_seconds",
    "Server time of HTTP requests, by URL route (the pattern, not the path), method and status class.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

INGEST_POINTS = Counter(
    "registry_ingest_points",
    "Metric points stored by logging calls (JSON API, MLflow API, dashboard imports).",
)


ARTIFACTS_MISSING = Counter(
    "registry_artifact_blobs_missing",
    "Downloads refused because the artifact store no longer holds the file's blob (alert on any; "
    "`manage.py artifacts_verify` lists every such file).",
)
