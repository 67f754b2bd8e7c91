"""NUL characters, which PostgreSQL text cannot hold, are refused as bad input (never a 500) on both databases."""

from __future__ import annotations

import pytest

from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/runs/ab%00cd"),
        ("POST", "/runs/ab%00cd/log-batch"),
        ("GET", "/models/a%00b"),
        ("POST", "/models/a%00b/versions"),
        ("GET", "/resolve?ref=a%00b@champion"),
        ("GET", "/runs?filter=params.a%20%3D%20%27x%00%27"),
    ],
)
def test_nul_in_the_url_is_a_400(api, method, path):
    response = api.request(method, path, body=b"{}")
    assert_error(response, 400, contains="NUL")


def test_nul_in_a_dashboard_url_is_a_400(admin_client):
    response = admin_client.get("/models/a%00b/")
    assert response.status_code == 400 and b"NUL" in response.content


@pytest.mark.parametrize(
    "path, body",
    [
        ("/models", {"name": "ok", "description": "a\x00b"}),
        ("/datasets", {"name": "d", "digest": "1", "profile": {"nested": ["x\x00"]}}),
        ("/experiments", {"name": "e", "tags": {"k\x00": "v"}}),
    ],
)
def test_nul_anywhere_in_a_json_body_is_a_400_on_both_databases(api, path, body):
    """SQLite could store it and PostgreSQL could not: refused alike on both, before any handler, as the document
    says; nothing is stored."""
    assert_error(api.post(path, body), 400, contains="NUL")


def test_an_escaped_backslash_before_u0000_is_not_a_nul(api):
    # The text holds a backslash followed by "u0000": ordinary characters.
    response = api.post("/models", {"name": "ok", "description": "C:\\u0000"})
    assert response.status_code == 201, response.content
