"""The official MLflow client against the registry on pytest-django's live server.

Every test gets a user with a write token, MLflow pointed at the live server with that token, and the client's
retries off (it retries 5xx answers for minutes; a test must fail fast instead).
"""

from __future__ import annotations

import os

# Before MLflow is imported: no telemetry from the test run, ever.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"

import mlflow  # noqa: E402
import pytest  # noqa: E402
import requests  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from registry.accounts.models import ApiToken  # noqa: E402
from tests.factories import UserFactory  # noqa: E402

MLFLOW_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


@pytest.fixture
def trainer(transactional_db):
    return UserFactory(username="trainer")


@pytest.fixture
def trainer_token(trainer) -> str:
    return ApiToken.issue(user=trainer, name="mlflow")[1]


@pytest.fixture
def mlflow_env(live_server, trainer_token, monkeypatch):
    """MLflow's environment for the live server: tracking URI, token, no retries. Yields the base URL."""
    for name, value in MLFLOW_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server.url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", trainer_token)
    for name in (
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_REGISTRY_URI",
        "MLFLOW_EXPERIMENT_ID",
        "MLFLOW_EXPERIMENT_NAME",
    ):
        monkeypatch.delenv(name, raising=False)
    mlflow.set_tracking_uri(live_server.url)
    mlflow.set_registry_uri(live_server.url)
    yield live_server.url
    while mlflow.active_run() is not None:
        mlflow.end_run()
    # set_experiment writes these straight into os.environ; the next test must not inherit them.
    for name in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        os.environ.pop(name, None)
    mlflow.tracking.fluent._active_experiment_id = None
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


@pytest.fixture
def client(mlflow_env) -> MlflowClient:
    return MlflowClient(tracking_uri=mlflow_env, registry_uri=mlflow_env)


@pytest.fixture
def as_token(monkeypatch):
    """Switch the token MLflow sends (None: send none)."""

    def use(token: str | None) -> None:
        if token is None:
            monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
        else:
            monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)

    return use


def check_mlflow_answer(response) -> None:
    """What every answer of the MLflow API must satisfy: never a 5xx, and every error is MLflow's JSON shape."""
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    if response.status_code >= 400:
        assert response.headers["Content-Type"].startswith("application/json"), response.text[:500]
        body = response.json()
        assert isinstance(body.get("error_code"), str) and body["error_code"], body
        assert isinstance(body.get("message"), str) and body["message"].strip(), body


class Rest:
    """Raw HTTP against the live server, as a client other than MLflow's would send it."""

    def __init__(self, base_url: str, token: str | None):
        self.base_url = base_url
        self.token = token
        self.session = requests.Session()

    def __call__(self, method: str, path: str, *, token: str | None | object = ..., **kwargs) -> requests.Response:
        token = self.token if token is ... else token
        headers = dict(kwargs.pop("headers", None) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        response = self.session.request(method, url, headers=headers, timeout=60, **kwargs)
        check_mlflow_answer(response)
        return response

    def api(self, method: str, endpoint: str, **kwargs) -> requests.Response:
        return self(method, f"/api/2.0/mlflow/{endpoint}", **kwargs)


@pytest.fixture
def rest(mlflow_env, trainer_token) -> Rest:
    return Rest(mlflow_env, trainer_token)


def error_code(exc_info) -> str:
    """The MLflow error code of a raised MlflowException."""
    return exc_info.value.error_code
