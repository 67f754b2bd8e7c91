"""Start the registry under gunicorn on a scratch database for a benchmark, and stop it afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict, *args: str, root: Path = ROOT) -> str:
    result = subprocess.run(
        [sys.executable, str(root / "manage.py"), *args], env=env, cwd=root, capture_output=True, text=True, check=True
    )
    return result.stdout


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (gunicorn master plus workers), in KiB."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def database_kind(url: str | None) -> str:
    return "PostgreSQL" if url and url.startswith(("postgres://", "postgresql://")) else "SQLite"


@contextmanager
def scratch_postgres(server_url: str, name: str, *, synchronous_commit: bool = True):
    """A fresh, empty database `name` on the PostgreSQL server at `server_url` (e.g. postgres://postgres@127.0.0.1),
    dropped afterwards; yields its URL. With synchronous_commit off, a commit returns before its WAL reaches the
    disk (a crash may lose the last moments of commits, never consistency): figures not bound by the disk's fsync."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(server_url)
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
        if not synchronous_commit:
            conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def registry_server(
    *,
    workers: int = 2,
    threads: int = 4,
    database_url: str | None = None,
    var_dir: str | None = None,
    root: Path = ROOT,
):
    """Yield (base_url, token, env, server_pid) for a fresh registry with one user and a write token; `root` is the
    checkout whose code serves (another one gives a baseline to compare with)."""
    tmp = var_dir or tempfile.mkdtemp(prefix="registry-bench-")
    env = {
        **os.environ,
        "SECRET_KEY": "benchmark-secret-key",
        "REGISTRY_HTTPS": "false",
        "DEBUG": "false",
        "REGISTRY_VAR_DIR": tmp,
        "STATICFILES_BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage",
        "LOG_LEVEL": "WARNING",
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    manage(env, "migrate", "--noinput", "-v", "0", root=root)
    manage(
        env,
        "shell",
        "-c",
        "from django.contrib.auth.models import User; User.objects.get_or_create(username='bench')",
        root=root,
    )
    token = manage(env, "createtoken", "bench", "--name", "benchmark", root=root).strip().splitlines()[-1]
    port = free_port()
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "gunicorn"),
            "registry.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(url + "/healthz", timeout=5).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        else:
            raise RuntimeError("the server did not start")
        yield url, token, env, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=20)
