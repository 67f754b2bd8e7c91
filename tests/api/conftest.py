"""Personas with API tokens, and an `api` helper that calls /api/v1 with a Bearer header and checks every answer.

Every response the helper sees is checked: never a 500, and every error is JSON shaped as
{"error": CODE, "message": "...", "details": [...]}.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from registry.accounts import services as accounts
from registry.accounts.models import ApiToken
from tests.factories import UserFactory

API = "/api/v1"
AS_DEFAULT = object()  # `token=` not given: call with the helper's own token
ERROR_KEYS = {"error", "message", "details"}


def assert_error(response, status: int | None = None, *, code: str | None = None, contains: str | None = None) -> dict:
    """`response` is an API error: the expected status (never a 500) and the JSON error shape. Returns the body."""
    assert response.status_code < 500, _describe(response)
    assert response.status_code >= 400, _describe(response)
    if status is not None:
        assert response.status_code == status, _describe(response)
    assert response["Content-Type"].startswith("application/json"), _describe(response)
    body = json.loads(response.content)
    assert set(body) == ERROR_KEYS, body
    assert isinstance(body["error"], str) and body["error"], body
    assert isinstance(body["message"], str) and body["message"].strip(), body
    assert isinstance(body["details"], list), body
    if code is not None:
        assert body["error"] == code, body
    if contains is not None:
        assert contains.lower() in body["message"].lower(), body
    return body


def _describe(response) -> str:
    content = b"" if getattr(response, "streaming", False) else response.content[:500]
    return f"{response.status_code} {response.get('Content-Type')}: {content!r}"


def strict_json(response) -> Any:
    """The body parsed as standard JSON: a bare NaN or Infinity (which Python's json would accept) fails the test."""

    def refuse(constant: str):
        raise AssertionError(f"The response holds a bare {constant}, which is not JSON.")

    return json.loads(response.content, parse_constant=refuse)


def check_response(response) -> None:
    """What every API answer must satisfy, whatever the test asserts next."""
    assert response.status_code != 500, _describe(response)
    if response.status_code >= 400:
        assert_error(response)
    elif response.status_code == 204:
        assert response.content == b"", _describe(response)
    elif response.get("Content-Type", "").startswith("application/json") and not getattr(response, "streaming", 0):
        strict_json(response)


class Api:
    """Calls the API as one token's holder: `api.get("/runs")`, `api.post("/models", {...}, token=other)`.

    Paths are relative to /api/v1 unless they start with /api/. JSON bodies are encoded here; `body=` sends raw bytes
    with `content_type=`. Pass `token=None` for an anonymous call.
    """

    def __init__(self, client: Client, token: str | None):
        self.client = client
        self.token = token

    def url(self, path: str) -> str:
        return path if path.startswith("/api/") else API + path

    def headers(self, token: str | None, extra: dict | None) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(extra or {})
        return headers

    def request(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        *,
        token: str | None | object = AS_DEFAULT,
        body: bytes | str | None = None,
        content_type: str = "application/json",
        headers: dict | None = None,
        query: dict | None = None,
        environ: dict | None = None,
    ):
        token = self.token if token is AS_DEFAULT else token
        kwargs: dict[str, Any] = {"headers": self.headers(token, headers), **(environ or {})}
        if query is not None:
            kwargs["query_params"] = query
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            if body is None and json_body is not None:
                body = json.dumps(json_body)
            if body is not None:
                kwargs["data"] = body
                kwargs["content_type"] = content_type
        response = getattr(self.client, method.lower())(self.url(path), **kwargs)
        check_response(response)
        return response

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json_body: Any = None, **kwargs):
        return self.request("POST", path, json_body, **kwargs)

    def patch(self, path: str, json_body: Any = None, **kwargs):
        return self.request("PATCH", path, json_body, **kwargs)

    def put(self, path: str, json_body: Any = None, **kwargs):
        return self.request("PUT", path, json_body, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.request("DELETE", path, **kwargs)

    def upload(self, run_id: str, path: str, data: bytes, **kwargs):
        """PUT raw bytes to a run's artifact path (the URL path is sent as given, not re-encoded)."""
        if not data:
            # The test client sends no Content-Length for an empty body; curl and requests send 0.
            kwargs["environ"] = {"CONTENT_LENGTH": "0", **kwargs.get("environ", {})}
        return self.request(
            "PUT", f"/runs/{run_id}/artifacts/{path}", body=data, content_type="application/octet-stream", **kwargs
        )


# --- Personas and their tokens --------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Personas get passwords from their factory; PBKDF2's million rounds per user would dominate the run time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def user(db):
    """The one who writes: owns the runs and models the tests create."""
    return UserFactory(username="writer")


@pytest.fixture
def write_token(user) -> str:
    return ApiToken.issue(user=user, name="training job")[1]


@pytest.fixture
def read_token(user) -> str:
    return ApiToken.issue(user=user, name="dashboard reader", scope=ApiToken.Scope.READ)[1]


@pytest.fixture
def revoked_token(user) -> str:
    token, raw = ApiToken.issue(user=user, name="leaked")
    accounts.token_revoke(token=token, by=user)
    return raw


@pytest.fixture
def expired_token(user) -> str:
    return ApiToken.issue(user=user, name="old", expires_at=timezone.now() - timedelta(minutes=1))[1]


@pytest.fixture
def other_user(db):
    """Another team member with write rights of their own, but not on `user`'s runs and models."""
    return UserFactory(username="colleague")


@pytest.fixture
def other_token(other_user) -> str:
    return ApiToken.issue(user=other_user, name="colleague's job")[1]


@pytest.fixture
def staff_user(db):
    return UserFactory(username="operator", is_staff=True)


@pytest.fixture
def staff_token(staff_user) -> str:
    return ApiToken.issue(user=staff_user, name="ops")[1]


@pytest.fixture
def api(client, write_token) -> Api:
    return Api(client, write_token)


# --- Common objects -------------------------------------------------------------------------------------------------


@pytest.fixture
def run_id(api) -> str:
    """A run created through the API by `user`."""
    response = api.post("/runs", {"experiment": "api-tests", "name": "baseline"})
    assert response.status_code == 201, response.content
    return response.json()["id"]
