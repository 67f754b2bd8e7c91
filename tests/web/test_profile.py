"""The profile page: create an API token (shown once), list and revoke tokens."""

from __future__ import annotations

import pytest
from django.urls import reverse

from registry.accounts.models import ApiToken, hash_token

pytestmark = pytest.mark.django_db


def test_anonymous_is_sent_to_login(client):
    response = client.get(reverse("profile"))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_create_token_shows_it_once_and_stores_only_its_hash(client, owner):
    client.force_login(owner)
    response = client.post(reverse("profile"), {"name": "CI pipeline", "scope": "read"})
    assert response.status_code == 200
    raw = response.context["new_token"]
    assert raw.startswith("mrt_")
    assert raw in response.content.decode()
    token = ApiToken.objects.get(user=owner)
    assert token.name == "CI pipeline" and token.scope == "read"
    assert token.token_hash == hash_token(raw) and raw not in (token.token_hash, token.prefix)
    # Shown once: the next visit lists the token but not its value.
    again = client.get(reverse("profile")).content.decode()
    assert "CI pipeline" in again and raw not in again


def test_bad_form_is_an_error_on_the_page_and_creates_nothing(client, owner):
    client.force_login(owner)
    response = client.post(reverse("profile"), {"name": "  ", "scope": "admin"})
    assert response.status_code == 400
    assert "form-error" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_revoke_own_token(client, owner):
    token, raw = ApiToken.issue(user=owner, name="old")
    client.force_login(owner)
    response = client.post(reverse("revoke_token", args=[token.pk]))
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert ApiToken.authenticate(raw) is None


def test_outsider_cannot_see_or_revoke_someone_elses_token(client, owner, outsider):
    token, _ = ApiToken.issue(user=owner, name="owner-ci")
    client.force_login(outsider)
    assert "owner-ci" not in client.get(reverse("profile")).content.decode()
    assert client.post(reverse("revoke_token", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_profile_query_count_is_constant(client, owner, django_assert_num_queries):
    client.force_login(owner)
    for n in range(50):
        ApiToken.issue(user=owner, name=f"t{n}")
    # session, user, tokens
    with django_assert_num_queries(3):
        client.get(reverse("profile"))
