"""The client against the real server: pytest-django's live_server, a user with a write token and one read-only."""

from __future__ import annotations

import pytest
from registry_client import Registry

from registry.accounts.models import ApiToken
from tests.factories import UserFactory


@pytest.fixture
def trainer(transactional_db):
    return UserFactory(username="trainer")


@pytest.fixture
def write_token(trainer) -> str:
    return ApiToken.issue(user=trainer, name="training box", scope="write")[1]


@pytest.fixture
def read_token(trainer) -> str:
    return ApiToken.issue(user=trainer, name="dashboard", scope="read")[1]


@pytest.fixture
def registry(live_server, write_token) -> Registry:
    return Registry(live_server.url, write_token, timeout=30, progress=False)


@pytest.fixture
def reader(live_server, read_token) -> Registry:
    return Registry(live_server.url, read_token, progress=False)


@pytest.fixture
def no_sleep(monkeypatch):
    """Retries back off without waiting; the delays asked for are recorded."""
    delays: list[float] = []
    monkeypatch.setattr("registry_client.http.time.sleep", delays.append)
    monkeypatch.setattr("registry_client.transfer.time.sleep", delays.append)
    return delays
