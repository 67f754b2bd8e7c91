"""Sign-in throttling (django-axes, on as in production): wrong passwords on the dashboard login and HTTP basic auth
on the MLflow API lock out that (username, address) after LOGIN_FAILURE_LIMIT tries; a burst of wrong API tokens
locks out the address. The lockout answers 429 (JSON in each API's own shape, a page in the browser), is logged, and
an administrator lifts it."""

from __future__ import annotations

import base64
import logging

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from registry.accounts.models import ApiToken
from registry.mlflow_compat.auth import basic_cache
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LIMIT = 10
PASSWORD = "correct horse battery staple"


@pytest.fixture
def alice():
    user = UserFactory(username="alice")
    user.set_password(PASSWORD)
    user.save()
    basic_cache.entries.clear()
    return user


def test_defaults_are_ten_failures_and_fifteen_minutes():
    assert settings.AXES_ENABLED
    assert settings.AXES_FAILURE_LIMIT == LIMIT
    assert settings.AXES_COOLOFF_TIME.total_seconds() == 15 * 60


def login(client: Client, password: str, username: str = "alice"):
    return client.post("/login/", {"username": username, "password": password})


def test_dashboard_login_locks_the_username_from_that_address_with_a_clear_page(alice, caplog):
    client = Client()
    for _ in range(LIMIT - 1):
        response = login(client, "wrong")
        assert response.status_code == 200 and b"Please enter a correct username" in response.content
    with caplog.at_level(logging.WARNING, logger="registry.accounts.throttle"):
        locked = login(client, "wrong")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed sign-in attempts" in page and "15 minutes" in page
    assert "ask an administrator" in page
    assert locked["Retry-After"] == "900"
    assert "Content-Security-Policy" in locked
    assert any("locked out: alice from 127.0.0.1" in r.getMessage() for r in caplog.records)

    # The right password is refused too while locked; nobody is signed in.
    right = login(client, PASSWORD)
    assert right.status_code == 429
    assert client.get("/models/").status_code == 302

    # Keyed by username and address: another user here, and alice from elsewhere, still sign in.
    bob = UserFactory(username="bob")
    bob.set_password(PASSWORD)
    bob.save()
    assert login(Client(), PASSWORD, username="bob").status_code == 302
    assert (
        Client(REMOTE_ADDR="10.1.2.3").post("/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    )

    # An administrator lifts it.
    call_command("axes_reset_username", "alice")
    assert login(client, PASSWORD).status_code == 302


def test_a_success_clears_earlier_failures(alice):
    client = Client()
    for _ in range(LIMIT - 1):
        login(client, "wrong")
    assert login(client, PASSWORD).status_code == 302
    client.logout()
    for _ in range(LIMIT - 1):
        assert login(client, "wrong").status_code == 200


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


MLFLOW_URL = "/api/2.0/mlflow/experiments/search"


def test_mlflow_basic_auth_locks_out_with_429_in_mlflow_shape(alice, client):
    for _ in range(LIMIT - 1):
        response = client.get(MLFLOW_URL, HTTP_AUTHORIZATION=basic("alice", "wrong"))
        assert response.status_code == 401 and response.json()["error_code"] == "UNAUTHENTICATED"
    locked = client.get(MLFLOW_URL, HTTP_AUTHORIZATION=basic("alice", "wrong"))
    assert locked.status_code == 429
    body = locked.json()
    assert body["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert "Too many failed sign-in attempts" in body["message"] and "15 minutes" in body["message"]
    assert locked["Retry-After"] == "900"
    assert client.get(MLFLOW_URL, HTTP_AUTHORIZATION=basic("alice", PASSWORD)).status_code == 429
    call_command("axes_reset_ip", "127.0.0.1")
    assert client.get(MLFLOW_URL, HTTP_AUTHORIZATION=basic("alice", PASSWORD)).status_code == 200


def test_a_burst_of_wrong_bearer_tokens_locks_out_the_address(alice, client, caplog):
    for attempt in range(LIMIT - 1):
        # Spread over both APIs and over made-up tokens: they count together, per address.
        if attempt % 2:
            response = client.get("/api/v1/models", HTTP_AUTHORIZATION=f"Bearer mrt_guess{attempt}")
        else:
            response = client.get(MLFLOW_URL, HTTP_AUTHORIZATION=f"Bearer mrt_guess{attempt}")
        assert response.status_code == 401
    with caplog.at_level(logging.WARNING, logger="registry.accounts.throttle"):
        locked = client.get("/api/v1/models", HTTP_AUTHORIZATION="Bearer mrt_guess-last")
    assert locked.status_code == 429
    assert locked.json()["error"] == "too_many_attempts"
    assert "Too many failed sign-in attempts" in locked.json()["message"]
    assert any("(API token) from 127.0.0.1" in r.getMessage() for r in caplog.records)
    again = client.get(MLFLOW_URL, HTTP_AUTHORIZATION="Bearer mrt_another")
    assert again.status_code == 429 and again.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"

    # Another address is not affected; a valid token keeps working (it costs no extra query, and 256 random bits
    # are not guessed by a burst).
    assert Client(REMOTE_ADDR="10.9.9.9").get("/api/v1/models", HTTP_AUTHORIZATION="Bearer mrt_x").status_code == 401
    _, raw = ApiToken.issue(user=alice, name="job")
    assert client.get("/api/v1/models", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200

    call_command("axes_reset")
    assert client.get("/api/v1/models", HTTP_AUTHORIZATION="Bearer mrt_again").status_code == 401


def test_an_administrator_sees_and_deletes_lockouts_in_the_admin(alice, superuser):
    for _ in range(LIMIT):
        login(Client(), "wrong")
    admin = Client()
    admin.force_login(superuser)
    listing = admin.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and b"alice" in listing.content


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_one_locked(alice, settings):
    settings.LOGIN_THROTTLE_PROXY_COUNT = 1
    for _ in range(LIMIT):
        Client(HTTP_X_FORWARDED_FOR="203.0.113.7").post("/login/", {"username": "alice", "password": "wrong"})
    assert (
        Client(HTTP_X_FORWARDED_FOR="203.0.113.7")
        .post("/login/", {"username": "alice", "password": PASSWORD})
        .status_code
        == 429
    )
    # A client that prepends a forged address is still judged by what the proxy saw.
    ok = Client(HTTP_X_FORWARDED_FOR="203.0.113.7, 198.51.100.1")
    assert ok.post("/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
