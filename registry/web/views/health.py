"""What load balancers and operators ask of an app server: alive, ready to serve, and its Prometheus metrics."""

from __future__ import annotations

import hmac
import logging
import os

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.files.storage import storages
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from registry.audit.models import WebhookDelivery
from registry.scanning.models import FileScan

logger = logging.getLogger(__name__)


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Alive: the process answers. Nothing else is checked, so a database outage does not make an orchestrator
    restart every app server; /readyz tells whether this one should get traffic."""
    return JsonResponse({"status": "ok"})


_migrations_applied = False  # once true it stays true for this process: migrations are never unapplied under it


def _check_database() -> str | None:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
    return None


def _check_migrations() -> str | None:
    global _migrations_applied
    if _migrations_applied:
        return None
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan[:5])
        return f"{len(plan)} migration(s) not applied (run `manage.py migrate`): {names}"
    _migrations_applied = True
    return None


def _check_storage() -> str | None:
    storage = storages["artifacts"]
    bucket = getattr(storage, "bucket_name", None)
    if bucket:
        storage.connection.meta.client.head_bucket(Bucket=bucket)
        return None
    location = getattr(storage, "location", None)
    if location:
        try:
            os.makedirs(location, exist_ok=True)  # as the storage itself does on its first upload
        except OSError:
            return "The artifact folder cannot be created."
        if not os.access(location, os.W_OK):
            return "The artifact folder is not writable."
    return None


CHECKS = {"database": _check_database, "migrations": _check_migrations, "storage": _check_storage}


@login_not_required
@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready: the database answers, every migration is applied, the artifact store answers. 200, or 503 naming what
    failed (details go to the log under this request's id, not to an unauthenticated caller)."""
    checks: dict[str, str] = {}
    for name, check in CHECKS.items():
        if name == "migrations" and checks.get("database") != "ok":
            checks[name] = "not checked: the database is unreachable"
            continue
        try:
            problem = check()
        except Exception:  # noqa: BLE001 - any failure of a dependency means "not ready", never a 500
            logger.exception("Readiness check %r failed", name)
            problem = "unreachable (see the server log)"
        checks[name] = problem or "ok"
    failed = [name for name, outcome in checks.items() if outcome != "ok"]
    body = {"status": "unready" if failed else "ready", "checks": checks, "failed": failed}
    return JsonResponse(body, status=503 if failed else 200)


def _metrics_allowed(request: HttpRequest) -> bool:
    token = settings.REGISTRY_METRICS_TOKEN
    if not token:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@login_not_required
@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition: request latency by route and ingested points (this server's workers, added up in
    multiprocess mode), plus the webhook queue and the scan backlog read from the database. Off (404) unless
    REGISTRY_METRICS is on; with REGISTRY_METRICS_TOKEN set, the scraper must send it as a bearer token."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily

    if not settings.REGISTRY_METRICS:
        raise Http404("Metrics are off; set REGISTRY_METRICS=true.")
    if not _metrics_allowed(request):
        return HttpResponse("A bearer token is needed for /metrics.\n", status=401, content_type="text/plain")

    if settings.PROMETHEUS_MULTIPROC_DIR:
        from prometheus_client import multiprocess

        process_registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(process_registry)
    else:
        process_registry = REGISTRY

    due, by_status = WebhookDelivery.objects.queue_figures()
    queue = GaugeMetricFamily(
        "registry_webhook_queue_depth", "Webhook deliveries due now and not yet taken by a worker."
    )
    queue.add_metric([], due)
    deliveries = GaugeMetricFamily(
        "registry_webhook_deliveries", "Webhook deliveries by status (failed: gave up).", labels=["status"]
    )
    for status, count in by_status.items():
        deliveries.add_metric([status], count)

    pending, waited, by_verdict = FileScan.objects.backlog_figures()
    backlog = GaugeMetricFamily("registry_scan_backlog", "Stored files waiting for their safety scan.")
    backlog.add_metric([], pending)
    oldest = GaugeMetricFamily(
        "registry_scan_oldest_pending_seconds", "How long the file that has waited longest for its scan has waited."
    )
    oldest.add_metric([], waited)
    verdicts = GaugeMetricFamily("registry_scan_files", "Scanned files by verdict.", labels=["verdict"])
    for verdict, count in by_verdict.items():
        verdicts.add_metric([verdict], count)

    class Queue:
        def collect(self):
            yield from (queue, deliveries, backlog, oldest, verdicts)

    database_registry = CollectorRegistry()
    database_registry.register(Queue())
    body = generate_latest(process_registry) + generate_latest(database_registry)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


@login_not_required
@require_GET
def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """Browsers ask for /favicon.ico on every page that names no icon (the admin's, the API docs): the site's icon."""
    return HttpResponseRedirect(static("registry/favicon.svg"))
