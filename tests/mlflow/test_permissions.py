"""MLflow's auth client (`mlflow.server.get_app_client("basic-auth", ...)`) against the registry's users and grants."""

from __future__ import annotations

import pytest
import requests
from mlflow.exceptions import MlflowException, RestException
from mlflow.server import get_app_client

from registry.accounts.models import ApiToken
from registry.catalog import services as catalog
from registry.catalog.models import ModelGrant, RegisteredModel
from registry.tracking.models import ExperimentGrant
from tests.factories import UserFactory
from tests.mlflow.conftest import error_code


@pytest.fixture
def admin_client(mlflow_env, as_token):
    admin = UserFactory(username="admin", is_superuser=True, is_staff=True)
    as_token(ApiToken.issue(user=admin, name="admin")[1])
    return get_app_client("basic-auth", tracking_uri=mlflow_env)


def test_users_are_created_looked_up_promoted_and_deleted(admin_client, mlflow_env):
    user = admin_client.create_user("newbie", "a-Long-password-1")
    assert (user.username, user.is_admin) == ("newbie", False)
    assert admin_client.get_user("newbie").id == user.id
    admin_client.update_user_admin("newbie", True)
    assert admin_client.get_user("newbie").is_admin is True
    admin_client.update_user_password("newbie", "another-Long-password-2")
    # The new user signs in with the new password (basic auth, as MLFLOW_TRACKING_USERNAME/PASSWORD do).
    current = requests.get(f"{mlflow_env}/api/2.0/mlflow/users/current", auth=("newbie", "another-Long-password-2"))
    assert current.json()["user"]["username"] == "newbie"
    admin_client.delete_user("newbie")
    with pytest.raises(RestException) as missing:
        admin_client.get_user("newbie")
    assert error_code(missing) == "RESOURCE_DOES_NOT_EXIST"


def test_grants_through_the_unified_api(client, mlflow_env):
    client.create_registered_model("scorer")  # owned by the trainer
    experiment_id = client.create_experiment("exp")
    reader = UserFactory(username="reader")
    owner_client = get_app_client("basic-auth", tracking_uri=mlflow_env)
    owner_client.grant_user_permission("reader", "registered_model", "scorer", "EDIT")
    owner_client.grant_user_permission("reader", "experiment", experiment_id, "READ")
    assert ModelGrant.objects.get(user=reader).level == 2 and ExperimentGrant.objects.get(user=reader).level == 1
    checked = owner_client.get_user_permission("reader", "registered_model", "scorer")
    assert (checked.allowed, checked.permission) == (True, "EDIT")
    owner_client.revoke_user_permission("reader", "registered_model", "scorer")
    checked = owner_client.get_user_permission("reader", "registered_model", "scorer")
    assert (checked.allowed, checked.permission) == (False, "READ")  # the registry's default for everyone
    with pytest.raises(RestException) as denied:
        owner_client.grant_user_permission("reader", "registered_model", "scorer", "NO_PERMISSIONS")
    assert error_code(denied) == "INVALID_PARAMETER_VALUE"


def test_only_managers_grant_and_only_admins_manage_users(client, as_token, mlflow_env):
    client.create_registered_model("scorer")
    UserFactory(username="other")
    intruder = UserFactory(username="intruder")
    as_token(ApiToken.issue(user=intruder, name="i")[1])
    intruding = get_app_client("basic-auth", tracking_uri=mlflow_env)
    with pytest.raises(RestException) as refused:
        intruding.grant_user_permission("intruder", "registered_model", "scorer", "MANAGE")
    assert error_code(refused) == "PERMISSION_DENIED"
    with pytest.raises(RestException) as refused:
        intruding.create_user("sneaky", "a-Long-password-1")
    assert error_code(refused) == "PERMISSION_DENIED"
    assert not ModelGrant.objects.exists()


def test_mlflow_2_per_resource_permission_routes(client, trainer, mlflow_env, trainer_token):
    client.create_registered_model("scorer")
    UserFactory(username="reader")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {trainer_token}"
    base = f"{mlflow_env}/api/2.0/mlflow/registered-models/permissions"
    created = session.post(f"{base}/create", json={"name": "scorer", "username": "reader", "permission": "READ"})
    assert created.json()["registered_model_permission"]["permission"] == "READ"
    session.patch(f"{base}/update", json={"name": "scorer", "username": "reader", "permission": "EDIT"})
    got = session.get(f"{base}/get", params={"name": "scorer", "username": "reader"}).json()
    assert got["registered_model_permission"]["permission"] == "EDIT"
    assert session.delete(f"{base}/delete", json={"name": "scorer", "username": "reader"}).status_code == 200
    assert session.get(f"{base}/get", params={"name": "scorer", "username": "reader"}).status_code == 404


def test_a_protected_alias_through_mlflow_opens_a_request(client, trainer):
    client.create_registered_model("scorer")
    catalog.version_create(model=RegisteredModel.objects.get(name="scorer"), by=trainer)
    with pytest.raises(MlflowException) as refused:
        client.set_registered_model_alias("scorer", "champion", "1")
    assert error_code(refused) == "PERMISSION_DENIED"
    assert "needs approval" in str(refused.value) and "Transition request #" in str(refused.value)
