"""Fixtures for the dashboard's page tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def plain_static_storage(settings):
    """Pages use {% static %}; the manifest storage would need collectstatic first, which tests never run."""
    storages = dict(settings.STORAGES)
    storages["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    settings.STORAGES = storages


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Personas get hashed passwords; the production hasher is slow on purpose and these tests never log in by form."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def signed_in(client, member):
    """A client signed in as an ordinary member: every signed-in user may read every page."""
    client.force_login(member)
    return client


# Each request by a signed-in client starts with the same two queries, listed first in every count.
SESSION_QUERIES = 2  # the session row, the user row
