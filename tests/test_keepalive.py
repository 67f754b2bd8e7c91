"""Under gunicorn, a request refused before its body was read leaves its connection usable for the next request.

gunicorn reads at most 64 KB of an unread body after answering; past that it closes the connection its answer has
just announced as keep-alive, and the client's next request on it fails. registry.middleware.DrainUnreadBody reads
the rest first. Only a real gunicorn shows this (Django's test client has no connections), so the test starts one on
loopback; the requests below need no database (refused before any query), so it runs unmigrated.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BIG = b'{"payload": "' + b"x" * 300_000 + b'"}'  # well past gunicorn's 64 KB


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    var = tmp_path_factory.mktemp("keepalive")
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SECRET_KEY": "keepalive-test-secret-key",
        "REGISTRY_HTTPS": "false",
        "REGISTRY_VAR_DIR": str(var),
        "DATABASE_URL": f"sqlite:///{var}/empty.sqlite3",
        "STATICFILES_BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage",
        "LOG_LEVEL": "ERROR",
    }
    command = [str(BIN / "gunicorn"), "registry.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    process = subprocess.Popen(command + ["--threads", "2"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or its worker still booting
                time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/api/2.0/mlflow/experiments/create", 401),  # MLflow's API without a token
        ("POST", "/api/2.0/mlflow/no/such/endpoint", 404),
        ("PUT", "/api/2.0/mlflow-artifacts/artifacts/runs/abc/artifacts/model.pkl", 401),
        ("PUT", "/api/v1/runs/abc/artifacts/model.pkl", 401),  # the JSON API's streamed upload without a token
        ("POST", "/no/such/page/", 404),  # the dashboard
    ],
)
def test_the_connection_survives_a_refused_body(server, method, path, status):
    """One connection (http.client never reconnects behind the caller's back): refused, then asked again."""
    connection = http.client.HTTPConnection(urlsplit(server).netloc, timeout=30)
    try:
        for _ in range(3):
            connection.request(method, path, body=BIG, headers={"Content-Type": "application/json"})
            refused = connection.getresponse()
            refused.read()
            assert refused.status == status and refused.getheader("Connection") == "keep-alive"
            time.sleep(0.1)  # gunicorn closes right after answering, when it does
            connection.request("GET", "/healthz")
            answer = connection.getresponse()
            assert answer.status == 200 and answer.read() == b'{"status": "ok"}'
    finally:
        connection.close()


def test_a_client_trickling_its_body_gets_its_answer_at_once(server):
    """The body is read after the answer went out: a slow sender waits for nobody, and other connections are served."""
    host, port = urlsplit(server).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as slow:
        slow.sendall(b"POST /no/such/page/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10)
        started = time.monotonic()
        answer = slow.recv(65536)
        assert answer.startswith(b"HTTP/1.1 404 ") and time.monotonic() - started < 2
        assert requests.get(server + "/healthz", timeout=5).status_code == 200
