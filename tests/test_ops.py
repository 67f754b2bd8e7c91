"""What operators and load balancers use: /healthz, /readyz, /metrics, request ids and JSON logs."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.db.migrations import Migration
from django.utils import timezone

from registry.audit.models import DeliveryStatus, OutboxEvent, Webhook, WebhookDelivery
from registry.lib.logs import JsonFormatter, RequestIdFilter, request_id_from
from registry.scanning.models import FileScan, Verdict
from registry.tracking.services import Point
from registry.web.views import health
from tests.builders import metrics_log, run_create

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_a_login_or_the_database(client, monkeypatch):
    monkeypatch.setattr(health, "_check_database", lambda: 1 / 0)  # not consulted: liveness is the process alone
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response["Cache-Control"].startswith("max-age=0")


def test_readyz_is_ready_when_database_migrations_and_storage_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "storage": "ok"},
        "failed": [],
    }


def test_readyz_on_s3_asks_the_bucket(client, s3_artifacts):
    assert client.get("/readyz").json()["checks"]["storage"] == "ok"
    s3_artifacts.delete_bucket(Bucket=s3_artifacts.bucket)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["failed"] == ["storage"]


def test_readyz_names_an_unreachable_database(client, monkeypatch, caplog):
    def down():
        raise OperationalError("connection refused")

    monkeypatch.setitem(health.CHECKS, "database", down)
    response = client.get("/readyz", HTTP_X_REQUEST_ID="lb-probe-1")
    body = response.json()
    assert response.status_code == 503 and body["status"] == "unready"
    assert body["failed"] == ["database", "migrations"]
    assert body["checks"]["migrations"] == "not checked: the database is unreachable"
    assert "connection refused" not in json.dumps(body)  # details go to the log, not to anonymous callers
    assert any("connection refused" in r.exc_text and r.request_id == "lb-probe-1" for r in caplog.records)


def test_readyz_names_unapplied_migrations(client, monkeypatch):
    monkeypatch.setattr(health, "_migrations_applied", False)

    class Behind:
        def __init__(self, connection):
            self.loader = type("Loader", (), {"graph": type("Graph", (), {"leaf_nodes": lambda self: []})()})()

        def migration_plan(self, targets):
            return [(Migration("0099_future", "catalog"), False)]

    monkeypatch.setattr(health, "MigrationExecutor", Behind)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["failed"] == ["migrations"]
    assert "catalog.0099_future" in response.json()["checks"]["migrations"]


def test_readyz_names_an_unwritable_artifact_folder(client, settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    storages = dict(settings.STORAGES)
    storages["artifacts"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(blocker / "artifacts")},
    }
    settings.STORAGES = storages
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["failed"] == ["storage"]


def webhook_with_delivery(status: str) -> None:
    hook = Webhook.objects.create(name="ci", url="https://ci.example.com/hook", events=["version.created"], secret="s")
    event = OutboxEvent.objects.create(type="version.created", payload={})
    WebhookDelivery.objects.create(webhook=hook, event=event, status=status)


def test_metrics_are_off_unless_configured(client):
    assert client.get("/metrics").status_code == 404


def test_metrics_show_latency_by_route_ingest_and_the_webhook_queue(client, settings, owner):
    settings.REGISTRY_METRICS = True
    client.get("/healthz")
    client.get("/models/no-such-model/")
    metrics_log(run=run_create(), points=[Point("loss", 0.5, step) for step in range(7)])
    webhook_with_delivery(status=DeliveryStatus.FAILED)
    webhook_with_delivery(status=DeliveryStatus.PENDING)

    response = client.get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert re.search(
        r'registry_http_request_duration_seconds_count\{method="GET",route="healthz",status="2xx"\} \d', text
    )
    assert 'route="models/<model:name>/"' in text  # the pattern, never the path
    assert "no-such-model" not in text
    assert re.search(r"^registry_ingest_points_total \d+", text, re.M)
    assert "registry_webhook_queue_depth 1.0" in text
    assert 'registry_webhook_deliveries{status="failed"} 1.0' in text


def test_metrics_show_the_scan_backlog(client, settings):
    settings.REGISTRY_METRICS = True
    waiting = timezone.now() - timedelta(minutes=5)
    FileScan.objects.create(storage_key="blobs/a", path="a.pkl", verdict=Verdict.PENDING, queued_at=waiting)
    FileScan.objects.create(storage_key="blobs/b", path="b.pkl", verdict=Verdict.PENDING)
    FileScan.objects.create(storage_key="blobs/c", path="c.pkl", verdict=Verdict.UNSAFE)

    text = client.get("/metrics").content.decode()
    assert "registry_scan_backlog 2.0" in text
    oldest = float(re.search(r"^registry_scan_oldest_pending_seconds (\S+)", text, re.M).group(1))
    assert 299 <= oldest < 400
    assert 'registry_scan_files{verdict="unsafe"} 1.0' in text
    assert 'registry_scan_files{verdict="safe"} 0.0' in text


def test_metrics_token_when_set(client, settings):
    settings.REGISTRY_METRICS = True
    settings.REGISTRY_METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200


def test_every_response_carries_a_request_id(client):
    generated = client.get("/healthz")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc-123.def")["X-Request-ID"] == "abc-123.def"
    forged = client.get("/healthz", HTTP_X_REQUEST_ID='x" injected=1')["X-Request-ID"]
    assert forged != 'x" injected=1' and re.fullmatch(r"[0-9a-f]{32}", forged)
    assert client.get("/api/v1/models")["X-Request-ID"]  # the APIs too (here a 401)


def test_request_ids_are_kept_only_when_plausible():
    assert request_id_from("f" * 128) == "f" * 128
    assert request_id_from("f" * 129) != "f" * 129
    assert request_id_from("") and request_id_from(None)


def test_json_log_lines_carry_the_request_id_and_extras():
    record = logging.LogRecord("registry.x", logging.WARNING, __file__, 1, "stored %s", ("v3",), None)
    record.model = "fraud"
    RequestIdFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "stored v3" and line["level"] == "WARNING" and line["model"] == "fraud"
    assert line["request_id"] == "-"  # written outside any request
