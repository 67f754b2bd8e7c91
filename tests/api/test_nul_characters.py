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


def test_nul_in_a_stored_text_is_refused_or_kept_never_a_500(api):
    """SQLite can store it; PostgreSQL refuses it, which the API reports as bad input."""
    response = api.post("/models", {"name": "nul-description", "description": "a\x00b"})
    if response.status_code != 201:
        assert_error(response, 400, contains="cannot be stored")
