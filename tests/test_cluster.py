"""Two app servers and two webhook workers on one PostgreSQL database and one S3 endpoint, on loopback.

The test starts two gunicorn servers (2 workers × 4 threads each) and two `deliver_webhooks --loop` workers as
separate processes against the test database and a moto_server bucket, then shows what running past one machine
needs: version numbers gapless and unique under concurrent registrations through both servers; an artifact uploaded
through one server downloaded byte-identical through the other; two approvals of one request racing on the two
servers making one decision; every webhook event delivered exactly once per subscription while both workers compete
(row locks that skip locked rows); a session from one server valid on the other; and no per-process cache (the
MLflow basic-auth cache, permissions, chart previews) answering stale after a write on the other server.

PostgreSQL only: SQLite is one file on one machine, which is what this topology leaves behind.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from django.contrib.auth import get_user_model
from django.db import connection

from registry.accounts.models import ApiToken
from registry.audit.models import DeliveryStatus, OutboxEvent, Webhook, WebhookDelivery
from registry.catalog.models import ModelVersion, RegisteredModel, Stage
from registry.governance import services as governance
from registry.governance.models import RequestStatus, StageChange, StageTransitionRequest
from tests.builders import model_create, run_create
from tests.conftest import free_port
from tests.governance.helpers import PRODUCTION_APPROVERS, REQUESTERS, group

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ON_POSTGRES = connection.vendor == "postgresql"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.s3,
    pytest.mark.skipif(
        not ON_POSTGRES,
        reason="the cluster test needs PostgreSQL (several servers share one database server); "
        "it runs in `make test-postgres`",
    ),
]

PASSWORD = "cluster-Pass-4821"
REGISTRATIONS = 40


# --- The processes --------------------------------------------------------------------------------------------------


def _database_url() -> str:
    db = connection.settings_dict  # the test database, which the servers must share with this process
    auth = quote(db["USER"] or "", safe="") + (f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _wait_for(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited at start: {process.stdout.read()}")
        try:
            if requests.get(f"{url}/readyz", timeout=10).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} was not ready within {seconds} s")


class Receiver(http.server.ThreadingHTTPServer):
    """A webhook target on loopback: counts each (subscription path, delivery id) it is sent."""

    daemon_threads = True

    def __init__(self):
        self.lock = threading.Lock()
        self.received: Counter = Counter()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(0.02)  # a target that takes a moment, so both workers have deliveries to claim
                with receiver.lock:
                    receiver.received[(self.path, int(self.headers["X-Registry-Delivery"]))] += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def cluster(moto_endpoint, tmp_path):
    """Two app servers (A, B) and two webhook workers; yields (A's URL, B's URL, the workers, the receiver)."""
    import boto3

    bucket = f"cluster-{os.getpid()}-{int(time.time())}"
    boto3.client(
        "s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    ).create_bucket(Bucket=bucket)
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONUNBUFFERED": "1",
        "SECRET_KEY": "cluster-test-secret-key-shared-by-every-server",
        "DATABASE_URL": _database_url(),
        "DB_CONN_MAX_AGE": "60",
        "REGISTRY_HTTPS": "false",
        "REGISTRY_VAR_DIR": str(tmp_path / "var"),
        "STATICFILES_BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage",
        "ARTIFACTS_S3_BUCKET": bucket,
        "AWS_S3_ENDPOINT_URL": moto_endpoint,
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",
        "LOG_LEVEL": "WARNING",
        "REGISTRY_METRICS": "true",
    }
    processes = []
    urls = []
    try:
        for _ in range(2):
            port = free_port()
            command = [str(BIN / "gunicorn"), "registry.wsgi", "--bind", f"127.0.0.1:{port}"]
            # --preload: Django loads once per server and forks, which halves the start on a busy machine.
            command += ["--workers", "2", "--threads", "4", "--preload"]
            # Each server's workers pool their metrics in a folder of its own (Prometheus multiprocess mode).
            server_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"metrics-{port}")}
            processes.append(
                subprocess.Popen(
                    command, cwd=ROOT, env=server_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        workers = [
            subprocess.Popen(
                [sys.executable, "manage.py", "deliver_webhooks", "--loop", "--interval", "0.2", "--limit", "10"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]
        processes += workers
        for url, process in zip(urls, processes, strict=False):
            _wait_for(url, process)
        yield urls[0], urls[1], workers, receiver
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        receiver.shutdown()


# --- The people -----------------------------------------------------------------------------------------------------


def _user(username: str, *groups: str, password: str | None = None):
    user = get_user_model().objects.create_user(username, password=password)  # None: no hashing time spent
    for name in groups:
        user.groups.add(group(name))
    return user


@pytest.fixture
def people(settings):
    # The servers check passwords with the production hasher; the suite's fast one is not in their settings.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    people = {
        "rita": _user("rita", REQUESTERS),
        "paula": _user("paula", PRODUCTION_APPROVERS),
        "pete": _user("pete", PRODUCTION_APPROVERS),
        "alice": _user("alice", password=PASSWORD),
    }
    tokens = {name: ApiToken.issue(user=user, name="cluster")[1] for name, user in people.items()}
    return people, tokens


def api(base: str, token: str):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return lambda method, path, **kw: session.request(method, f"{base}/api/v1{path}", timeout=60, **kw)


# --- The test -------------------------------------------------------------------------------------------------------


def test_two_app_servers_and_two_workers_on_one_database_and_one_bucket(cluster, people):
    a, b, workers, receiver = cluster
    users, tokens = people
    rita_a, rita_b = api(a, tokens["rita"]), api(b, tokens["rita"])
    for path in ("/hook/one", "/hook/two"):
        Webhook.objects.create(
            name=path, url=receiver.url + path, events=["version.created", "transition.approved"], secret="s3cret"
        )
    model_create(name="shared", owner=users["rita"])

    # Concurrent registrations of one model through both servers: numbers 1..N, each once.
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda i: (rita_a if i % 2 else rita_b)("POST", "/models/shared/versions", json={}),
                range(REGISTRATIONS),
            )
        )
    assert [r.status_code for r in answers] == [201] * REGISTRATIONS, [r.text for r in answers if r.status_code != 201]
    numbers = sorted(r.json()["version"] for r in answers)
    assert numbers == list(range(1, REGISTRATIONS + 1))
    assert RegisteredModel.objects.get(name="shared").last_version == REGISTRATIONS
    # Each server's /metrics adds up its two workers: together they count every registration once.
    counted = 0
    for server in (a, b):
        text = requests.get(f"{server}/metrics", timeout=30).text
        found = re.search(
            r'registry_http_request_duration_seconds_count\{method="POST",route="[^"]*/versions",status="2xx"\} (\S+)',
            text,
        )
        counted += float(found.group(1)) if found else 0
    assert counted == REGISTRATIONS

    # An artifact uploaded through A, downloaded through B byte for byte (both read the one bucket).
    run = run_create(name="trainer", user=users["rita"])
    payload = os.urandom(3 * 1024 * 1024 + 17)
    put = rita_a("PUT", f"/runs/{run.pk}/artifacts/model/weights.bin", data=payload)
    assert put.status_code in (200, 201), put.text
    got = rita_b("GET", f"/runs/{run.pk}/artifacts/model/weights.bin")
    assert got.status_code == 200 and hashlib.sha256(got.content).digest() == hashlib.sha256(payload).digest()

    # Two approvals of one request racing on the two servers: one decision, one stage change, one webhook event.
    requests_made = [
        governance.transition_request(
            version=ModelVersion.objects.get(model__name="shared", version=n), to_stage=Stage.STAGING, by=users["rita"]
        )
        for n in (1, 2, 3)
    ]
    paula_a, pete_b = api(a, tokens["paula"]), api(b, tokens["pete"])
    for made in requests_made:
        barrier = threading.Barrier(2)

        def approve(call, made=made, barrier=barrier):
            barrier.wait(timeout=10)
            return call("POST", f"/transition-requests/{made.pk}/approve", json={"comment": "ok"})

        with ThreadPoolExecutor(2) as pool:
            outcomes = sorted(r.status_code for r in pool.map(approve, (paula_a, pete_b)))
        assert outcomes == [200, 409], outcomes
        assert StageTransitionRequest.objects.get(pk=made.pk).status == RequestStatus.APPROVED
        assert StageChange.objects.filter(version_id=made.version_id, to_stage=Stage.STAGING).count() == 1

    # Every webhook event delivered exactly once per subscription, with both workers taking deliveries.
    events = set(OutboxEvent.objects.filter(type__in=["version.created", "transition.approved"]).values_list("pk"))
    assert len(events) == REGISTRATIONS + len(requests_made)
    deadline = time.monotonic() + 30
    while WebhookDelivery.objects.exclude(status=DeliveryStatus.SUCCEEDED).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not WebhookDelivery.objects.exclude(status=DeliveryStatus.SUCCEEDED).exists()
    deliveries = {
        pk: (url.removeprefix(receiver.url), event)
        for pk, url, event in WebhookDelivery.objects.values_list("pk", "webhook__url", "event_id")
    }
    with receiver.lock:
        received = Counter(deliveries[pk] for (_path, pk) in receiver.received.elements())
        assert all(path == deliveries[pk][0] for path, pk in receiver.received)
    assert set(received) == {(path, pk) for path in ("/hook/one", "/hook/two") for (pk,) in events}
    assert set(received.values()) == {1}, "an event reached a subscription twice"
    for worker in workers:
        worker.terminate()
    sent = [sum(int(n) for n in re.findall(r"Sent (\d+) webhook", w.communicate(timeout=15)[0])) for w in workers]
    assert sum(sent) == 2 * len(events) and all(sent), f"deliveries per worker: {sent}"

    # A session opened on A is valid on B (sessions live in the database; one SECRET_KEY signs the cookies).
    browser = requests.Session()
    browser.get(f"{a}/login/", timeout=30)
    signed_in = browser.post(
        f"{a}/login/",
        data={"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        headers={"Referer": f"{a}/login/"},
        allow_redirects=False,
        timeout=30,
    )
    assert signed_in.status_code == 302, signed_in.text
    on_b = browser.get(f"{b}/models/", allow_redirects=False, timeout=30)
    assert on_b.status_code == 200 and "shared" in on_b.text

    # Per-process caches never answer stale: permissions changed on A are B's next answer.
    RegisteredModel.objects.filter(name="shared").update(default_level=0)  # private: only grants let others in
    alice_b = api(b, tokens["alice"])
    assert alice_b("GET", "/models/shared").status_code == 404
    granted = rita_a("PUT", "/models/shared/access/users/alice", json={"level": "READ"})
    assert granted.status_code == 200, granted.text
    assert alice_b("GET", "/models/shared").status_code == 200
    assert rita_a("DELETE", "/models/shared/access/users/alice").status_code == 204
    assert alice_b("GET", "/models/shared").status_code == 404

    # Chart previews (downsampled histories kept per series): points logged through A show on B's next page.
    def logged(first: int, count: int) -> None:
        points = [{"key": "loss", "value": 1 / (s + 1), "step": s} for s in range(first, first + count)]
        assert rita_a("POST", f"/runs/{run.pk}/log-batch", json={"metrics": points}).status_code == 200

    def last_charted_step() -> int:
        page = browser.get(f"{b}/runs/{run.pk}/", timeout=30).text
        figure = re.search(r'<script id="metric-chart-0" type="application/json">(.*?)</script>', page, re.S)
        return max(json.loads(figure.group(1))["data"][0]["x"])

    logged(0, 3000)
    assert last_charted_step() == 2999  # the preview is made and cached on B's first view
    logged(3000, 1000)
    assert last_charted_step() == 3999

    # The MLflow API's basic-auth cache on B: a password changed through A is refused on B at once.
    old, new = ("alice", PASSWORD), ("alice", PASSWORD + "-new")
    current = f"{b}/api/2.0/mlflow/users/current"
    assert requests.get(current, auth=old, timeout=30).status_code == 200  # now cached on B
    changed = requests.patch(
        f"{a}/api/2.0/mlflow/users/update-password",
        json={"username": "alice", "password": new[1], "current_password": old[1]},
        auth=old,
        timeout=30,
    )
    assert changed.status_code == 200, changed.text
    assert requests.get(current, auth=old, timeout=30).status_code == 401
    assert requests.get(current, auth=new, timeout=30).status_code == 200
    # ...and so is the session alice opened on A before: it was signed with the old password's hash.
    assert browser.get(f"{b}/models/", allow_redirects=False, timeout=30).status_code == 302
