"""Who may call the MLflow API: API tokens (MLFLOW_TRACKING_TOKEN), basic auth against Django users
(MLFLOW_TRACKING_USERNAME / _PASSWORD); read-only tokens read, anonymous callers and browser sessions get nothing."""

from __future__ import annotations

from datetime import timedelta

import mlflow
import pytest
from django.test import Client
from django.utils import timezone
from mlflow.exceptions import MlflowException

from registry.accounts import services as accounts
from registry.accounts.models import ApiToken
from registry.mlflow_compat.auth import basic_cache
from registry.tracking.models import Experiment, Run
from tests.builders import grant
from tests.factories import UserFactory
from tests.mlflow.conftest import error_code

pytestmark = pytest.mark.django_db(transaction=True)


def test_anonymous_calls_are_401_unauthenticated(client, rest, as_token):
    as_token(None)
    with pytest.raises(MlflowException) as refused:
        client.search_experiments()
    assert error_code(refused) == "UNAUTHENTICATED"
    response = rest.api("GET", "experiments/get-by-name", params={"experiment_name": "x"}, token=None)
    assert response.status_code == 401 and response.json()["error_code"] == "UNAUTHENTICATED"
    assert "MLFLOW_TRACKING_TOKEN" in response.json()["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert rest("GET", "/api/2.0/mlflow-artifacts/artifacts", params={"path": "runs"}, token=None).status_code == 401


@pytest.mark.parametrize(
    "header",
    ["Bearer mrt_not-a-real-token", "Bearer ", "Token abc", "Basic !!!notbase64", "Basic Zm9v", "Basic OnB3"],
)
def test_bad_credentials_are_401(rest, header):
    response = rest.api("POST", "experiments/search", json={}, token=None, headers={"Authorization": header})
    assert response.status_code == 401 and response.json()["error_code"] == "UNAUTHENTICATED"


def test_revoked_and_expired_tokens_are_refused(client, trainer, as_token):
    token, raw = ApiToken.issue(user=trainer, name="old")
    as_token(raw)
    client.search_experiments()
    accounts.token_revoke(token=token, by=trainer)
    with pytest.raises(MlflowException) as revoked:
        client.search_experiments()
    assert error_code(revoked) == "UNAUTHENTICATED"
    _, expired = ApiToken.issue(user=trainer, name="expired", expires_at=timezone.now() - timedelta(minutes=1))
    as_token(expired)
    with pytest.raises(MlflowException) as late:
        client.search_experiments()
    assert error_code(late) == "UNAUTHENTICATED"


def test_read_only_token_reads_but_cannot_write(client, trainer, as_token):
    experiment_id = client.create_experiment("shared")
    run_id = client.create_run(experiment_id).info.run_id
    as_token(ApiToken.issue(user=trainer, name="reader", scope=ApiToken.Scope.READ)[1])
    assert client.get_experiment(experiment_id).name == "shared"
    assert len(client.search_runs([experiment_id])) == 1  # a POST, but a read
    for write in (
        lambda: client.create_experiment("nope"),
        lambda: client.log_metric(run_id, "m", 1.0),
        lambda: client.set_tag(run_id, "k", "v"),
        lambda: client.create_registered_model("nope"),
    ):
        with pytest.raises(MlflowException) as refused:
            write()
        assert error_code(refused) == "PERMISSION_DENIED"
        assert "read-only" in refused.value.message
    assert not Experiment.objects.filter(name="nope").exists()


def test_basic_auth_with_django_users(mlflow_env, monkeypatch, trainer):
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "trainer")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw-for-tests-1")
    basic_cache.entries.clear()
    with mlflow.start_run() as active:
        mlflow.log_metric("m", 1.0)
    assert Run.objects.get(pk=active.info.run_id).user == trainer

    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
    with pytest.raises(MlflowException) as refused:
        mlflow.MlflowClient().get_run(active.info.run_id)
    assert error_code(refused) == "UNAUTHENTICATED"

    # A changed password ends a remembered login at once.
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw-for-tests-1")
    mlflow.MlflowClient().get_run(active.info.run_id)
    trainer.set_password("a-new-password-42")
    trainer.save()
    with pytest.raises(MlflowException) as stale:
        mlflow.MlflowClient().get_run(active.info.run_id)
    assert error_code(stale) == "UNAUTHENTICATED"

    trainer.set_password("pw-for-tests-1")
    trainer.is_active = False
    trainer.save()
    with pytest.raises(MlflowException) as inactive:
        mlflow.MlflowClient().get_run(active.info.run_id)
    assert error_code(inactive) == "UNAUTHENTICATED"


def test_a_browser_session_is_not_enough(mlflow_env, trainer):
    """The endpoints are CSRF-exempt, so a session cookie must never authenticate them."""
    browser = Client()
    browser.force_login(trainer)
    response = browser.post("/api/2.0/mlflow/experiments/create", {"name": "csrf"}, content_type="application/json")
    assert response.status_code == 401
    assert not Experiment.objects.filter(name="csrf").exists()
    form = browser.post("/api/2.0/mlflow/experiments/create", {"name": "csrf"})
    assert form.status_code == 415  # a drive-by form post is not even read


def test_runs_of_other_users_are_read_only_to_them(client, trainer, as_token):
    run_id = client.create_run(client.create_experiment("mine")).info.run_id
    as_token(ApiToken.issue(user=UserFactory(username="colleague"), name="c")[1])
    assert client.get_run(run_id).info.user_id == "trainer"
    with pytest.raises(MlflowException) as refused:
        client.log_param(run_id, "p", "1")
    assert error_code(refused) == "PERMISSION_DENIED"
    with pytest.raises(MlflowException):
        client.delete_run(run_id)
    assert Run.objects.get(pk=run_id).deleted_at is None
    ops = UserFactory(username="ops", is_staff=True)
    as_token(ApiToken.issue(user=ops, name="s")[1])
    with pytest.raises(MlflowException):
        client.log_param(run_id, "p", "1")  # being staff is not enough
    grant(Experiment.objects.get(name="mine"), ops, "MANAGE")
    client.log_param(run_id, "p", "1")  # managing the experiment is


def test_deleting_a_model_needs_its_owner(client, as_token):
    client.create_registered_model("owned")
    as_token(ApiToken.issue(user=UserFactory(username="colleague"), name="c")[1])
    with pytest.raises(MlflowException) as refused:
        client.delete_registered_model("owned")
    assert error_code(refused) == "PERMISSION_DENIED"
