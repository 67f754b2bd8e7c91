"""Fixtures shared by every test module: personas, isolated artifact storage, S3 through moto_server, a browser."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "test-artifacts"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(autouse=True)
def artifact_storage_in_tmp(settings, tmp_path):
    """Every test writes artifacts to its own folder, never to var/; static files come from the finders (tests do
    not run collectstatic, so there is no manifest)."""
    storages = dict(settings.STORAGES)
    storages["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    settings.STORAGES = storages
    # ...nor read what `make run`'s collectstatic left in staticfiles/: WhiteNoise would scan its thousand files for
    # every test client (it doubled the suite's time after a `make run`). Tests see what a fresh clone has.
    settings.STATIC_ROOT = str(tmp_path / "staticfiles")
    # Tests create many users; a fast hasher keeps that from dominating the run.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Large files wait for scan_pending() (as `manage.py scan_worker` runs it) instead of a thread of the test run.
    settings.SCAN_BACKGROUND = "worker"
    if storages["artifacts"]["BACKEND"].endswith("FileSystemStorage"):
        storages["artifacts"] = {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "artifacts"), "allow_overwrite": True},
        }
        settings.STORAGES = storages
    return tmp_path / "artifacts"


# --- Personas -------------------------------------------------------------------------------------------------------


@pytest.fixture
def owner(db):
    return UserFactory(username="owner")


@pytest.fixture
def member(db):
    return UserFactory(username="member")


@pytest.fixture
def outsider(db):
    return UserFactory(username="outsider")


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


# --- S3 through a real moto_server on loopback ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint():
    """Start `moto_server` on a free loopback port for the session; yield its URL."""
    port = free_port()
    executable = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    proc = subprocess.Popen(
        [executable, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("moto_server exited at start") from None
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("moto_server did not start within 30 s")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3_artifacts(settings, moto_endpoint):
    """Point the `artifacts` storage at a fresh bucket on the moto server. Yields the boto3 client."""
    import uuid

    import boto3

    bucket = f"artifacts-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=bucket)
    storages = dict(settings.STORAGES)
    storages["artifacts"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": moto_endpoint,
            "region_name": "us-east-1",
            "access_key": "testing",
            "secret_key": "testing",
            "default_acl": None,
            "file_overwrite": True,
        },
    }
    settings.STORAGES = storages
    client.bucket = bucket
    return client


# --- An OpenID Connect provider on loopback (the npm package oidc-provider, tests/oidc_provider.mjs) ----------------

OIDC_CLIENT_ID, OIDC_CLIENT_SECRET = "registry", "registry-test-secret"


class OidcProvider:
    def __init__(self, issuer: str, accounts_file: Path):
        self.issuer = issuer
        self.accounts_file = accounts_file

    def set_accounts(self, accounts: dict) -> None:
        self.accounts_file.write_text(json.dumps(accounts))


@pytest.fixture
def oidc_provider(live_server, settings, tmp_path):
    """oidc-provider on a free loopback port, with the registry configured for it from its discovery document."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "oidc-provider").exists():
        pytest.fail("node and node_modules/oidc-provider are needed: run `npm ci` (make install-test does).")
    port = free_port()
    accounts = tmp_path / "accounts.json"
    accounts.write_text("{}")
    env = {
        "PATH": "/usr/bin:/bin",
        "OIDC_TEST_PORT": str(port),
        "OIDC_TEST_CLIENT_ID": OIDC_CLIENT_ID,
        "OIDC_TEST_CLIENT_SECRET": OIDC_CLIENT_SECRET,
        "OIDC_TEST_REDIRECT_URI": f"{live_server.url}/oidc/callback/",
        "OIDC_TEST_ACCOUNTS_FILE": str(accounts),
    }
    proc = subprocess.Popen(
        [node, str(ROOT / "tests" / "oidc_provider.mjs")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("ready "), f"oidc-provider did not start: {line!r}"
        issuer = line.split()[1]
        import requests

        discovery = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
        settings.SSO_ENABLED = True
        settings.OIDC_RP_CLIENT_ID = OIDC_CLIENT_ID
        settings.OIDC_RP_CLIENT_SECRET = OIDC_CLIENT_SECRET
        settings.OIDC_OP_AUTHORIZATION_ENDPOINT = discovery["authorization_endpoint"]
        settings.OIDC_OP_TOKEN_ENDPOINT = discovery["token_endpoint"]
        settings.OIDC_OP_USER_ENDPOINT = discovery["userinfo_endpoint"]
        settings.OIDC_OP_JWKS_ENDPOINT = discovery["jwks_uri"]
        settings.OIDC_PROVIDER_NAME = "Acme ID"
        yield OidcProvider(issuer, accounts)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- Browser --------------------------------------------------------------------------------------------------------

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(executable).exists():
        pytest.fail(f"Chromium is not installed at {executable}: run `make chromium` (apt-get install chromium).")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report


@pytest.fixture
def page(request, browser):
    """A fresh browser page; its console errors are collected in `page.console_errors`; screenshot on failure."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    # axe-core from the npm package (never a CDN), present in every page before its own scripts; an init script is
    # not subject to the page's Content-Security-Policy.
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` (make install-test does).")
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda msg: page.console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def pytest_collection_modifyitems(config, items):
    """Browser tests need a real server thread; Playwright's sync API needs async-unsafe DB access allowed."""
    for item in items:
        if "browser" in item.keywords:
            os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
