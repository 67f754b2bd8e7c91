"""MLflow's model registry against ours: log_model and load_model, versions, tags, aliases, stages under governance."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
import requests
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

from registry.accounts.models import ApiToken
from registry.audit.models import AuditAction, AuditEvent
from registry.catalog import services as catalog
from registry.catalog.models import ArtifactFile, ModelAlias, ModelVersion, RegisteredModel, Stage
from registry.governance import services as governance
from registry.governance.models import StageChange, StagePolicy
from registry.governance.models import StageTransitionRequest as TransitionRequest
from registry.mlflow_compat.models import LoggedModel, RunModelLink
from registry.tracking.models import MetricPoint
from tests.factories import UserFactory
from tests.mlflow.conftest import error_code

pytestmark = pytest.mark.django_db(transaction=True)

X = np.array([[0.0, 1.0], [1.0, 0.5], [2.0, 0.1], [3.0, 2.0], [4.0, 0.0], [5.0, 1.5]])
Y = np.array([0, 0, 0, 1, 1, 1])


def test_log_model_register_and_load_by_alias_and_version(client, rest):
    model = LogisticRegression().fit(X, Y)
    mlflow.set_experiment("credit")
    with mlflow.start_run() as active:
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="credit-scorer")
    run_id = active.info.run_id

    logged = LoggedModel.objects.get(pk=info.model_id)
    assert logged.run_id == run_id and logged.name == "model" and logged.status == LoggedModel.Status.READY
    assert RunModelLink.objects.filter(run_id=run_id, logged_model=logged, direction="output").exists()
    # The model's files are ordinary artifacts of its run, under models/<model id>/.
    run_files = set(ArtifactFile.objects.filter(run_id=run_id).values_list("path", flat=True))
    assert f"models/{logged.pk}/MLmodel" in run_files
    # Re-sent metrics that name the model did not grow the run's history.
    assert MetricPoint.objects.filter(series__run_id=run_id, series__key="loss").count() == 3

    version = ModelVersion.objects.select_related("model").get(model__name="credit-scorer", version=1)
    assert version.run_id == run_id
    assert version.source == f"runs:/{run_id}/models/{logged.pk}"
    version_files = set(ArtifactFile.objects.filter(version=version).values_list("path", flat=True))
    assert "MLmodel" in version_files and len(version_files) == len([p for p in run_files if logged.pk in p])
    assert AuditEvent.objects.filter(
        action=AuditAction.VERSION_CREATED, model_id=version.model_id, version_number=version.version
    ).exists()

    fetched = client.get_model_version("credit-scorer", "1")
    assert fetched.run_id == run_id and fetched.status == "READY"
    # The 3.17 client does not read model_id back into its entity; the wire carries it.
    raw = rest.api("GET", "model-versions/get", params={"name": "credit-scorer", "version": "1"}).json()
    assert raw["model_version"]["model_id"] == logged.pk
    assert client.get_model_version_download_uri("credit-scorer", "1") == (
        f"mlflow-artifacts:/models/{version.model_id}/versions/1/artifacts"
    )

    client.set_registered_model_alias("credit-scorer", "candidate", "1")
    assert ModelAlias.objects.get(model=version.model, alias="candidate").version == version
    by_alias = mlflow.sklearn.load_model("models:/credit-scorer@candidate")
    by_number = mlflow.sklearn.load_model("models:/credit-scorer/1")
    by_logged_model = mlflow.sklearn.load_model(f"models:/{logged.pk}")
    expected = model.predict_proba(X)
    for loaded in (by_alias, by_number, by_logged_model):
        np.testing.assert_array_equal(loaded.predict_proba(X), expected)


@pytest.fixture
def run_with_model_files(client, tmp_path):
    """A run holding a `model/` folder, to register versions from without serialising a real model."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "weights.bin").write_bytes(b"\x00" * 64)
    run = client.create_run(client.create_experiment("registry"))
    client.log_artifacts(run.info.run_id, str(folder), "model")
    client.log_metric(run.info.run_id, "f1", 0.9)
    return run.info.run_id


def test_registered_model_crud_tags_and_search(client):
    client.create_registered_model("alpha", tags={"team": "risk"}, description="First")
    client.create_registered_model("beta")
    with pytest.raises(MlflowException) as exists:
        client.create_registered_model("alpha")
    assert error_code(exists) == "RESOURCE_ALREADY_EXISTS"

    assert RegisteredModel.objects.get(name="alpha").tags == {"team": "risk"}
    fetched = client.get_registered_model("alpha")
    assert (fetched.description, fetched.tags) == ("First", {"team": "risk"})
    client.update_registered_model("alpha", description="Updated")
    client.set_registered_model_tag("alpha", "tier", "gold")
    client.delete_registered_model_tag("alpha", "team")
    assert RegisteredModel.objects.get(name="alpha").tags == {"tier": "gold"}
    assert RegisteredModel.objects.get(name="alpha").description == "Updated"

    assert [m.name for m in client.search_registered_models()] == ["alpha", "beta"]
    assert [m.name for m in client.search_registered_models("name LIKE 'al%'")] == ["alpha"]
    assert [m.name for m in client.search_registered_models("tags.tier = 'gold'")] == ["alpha"]
    assert [m.name for m in client.search_registered_models(order_by=["name DESC"])] == ["beta", "alpha"]
    page = client.search_registered_models(max_results=1)
    assert [m.name for m in page] == ["alpha"] and page.token
    assert [m.name for m in client.search_registered_models(max_results=1, page_token=page.token)] == ["beta"]

    client.rename_registered_model("beta", "gamma")
    assert RegisteredModel.objects.filter(name="gamma").exists()
    with pytest.raises(MlflowException) as taken:
        client.rename_registered_model("gamma", "alpha")
    assert error_code(taken) == "RESOURCE_ALREADY_EXISTS"
    client.delete_registered_model("gamma")
    assert not RegisteredModel.objects.filter(name="gamma").exists()
    with pytest.raises(MlflowException) as missing:
        client.get_registered_model("gamma")
    assert error_code(missing) == "RESOURCE_DOES_NOT_EXIST"


def test_versions_tags_aliases_and_latest(client, run_with_model_files):
    run_id = run_with_model_files
    client.create_registered_model("scorer")
    first = client.create_model_version("scorer", f"runs:/{run_id}/model", run_id=run_id, tags={"k": "v"})
    second = client.create_model_version("scorer", f"mlflow-artifacts:/runs/{run_id}/artifacts/model")
    assert (first.version, second.version) == ("1", "2")
    stored = ModelVersion.objects.get(model__name="scorer", version=2)
    assert stored.run_id == run_id and stored.source == f"runs:/{run_id}/model"
    assert set(ArtifactFile.objects.filter(version=stored).values_list("path", flat=True)) == {"MLmodel", "weights.bin"}

    client.update_model_version("scorer", "1", description="the first")
    client.set_model_version_tag("scorer", "1", "validated", "yes")
    client.delete_model_version_tag("scorer", "1", "k")
    assert ModelVersion.objects.get(model__name="scorer", version=1).tags == {"validated": "yes"}
    fetched = client.get_model_version("scorer", "1")
    assert fetched.description == "the first"
    # As MLflow's server: no status message is sent, so the client reads None (not "").
    assert fetched.status_message is None

    client.set_registered_model_alias("scorer", "candidate", "2")
    client.set_registered_model_alias("scorer", "challenger", "1")
    assert client.get_model_version_by_alias("scorer", "candidate").version == "2"
    assert client.get_registered_model("scorer").aliases == {"candidate": "2", "challenger": "1"}
    client.delete_registered_model_alias("scorer", "challenger")
    with pytest.raises(MlflowException) as gone:
        client.get_model_version_by_alias("scorer", "challenger")
    assert error_code(gone) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as reserved:
        client.set_registered_model_alias("scorer", "latest", "1")
    assert error_code(reserved) == "INVALID_PARAMETER_VALUE"

    assert [v.version for v in client.get_latest_versions("scorer")] == ["2"]
    # As MLflow: the most recently changed first (version 1's tags changed after version 2 was registered).
    assert [v.version for v in client.search_model_versions("name = 'scorer'")] == ["1", "2"]
    assert [v.version for v in client.search_model_versions(f"run_id = '{run_id}' AND tags.validated = 'yes'")] == ["1"]
    assert [v.version for v in client.search_model_versions("name='scorer'", order_by=["version_number ASC"])] == [
        "1",
        "2",
    ]
    client.delete_model_version("scorer", "1")
    assert list(ModelVersion.objects.filter(model__name="scorer").values_list("version", flat=True)) == [2]
    # Version files shared blobs with the run; the run keeps its own.
    assert ArtifactFile.objects.filter(run_id=run_id).count() == 2


@pytest.mark.parametrize(
    "source",
    [
        "file:///etc/passwd",
        "/etc/passwd",
        "../../etc/passwd",
        "C:/Windows/system.ini",
        "file://10.0.0.1/share/model",
        "runs:/{run}/model?version=2",
        "runs:/{run}/model#frag",
        "runs:/{run}/../../other",
        "runs:/{run}/%2e%2e/other",
        "runs://host/{run}/model",
        "mlflow-artifacts:/runs/{run}/artifacts/..%2F..%2Fx",
        "mlflow-artifacts:/runs/{run}/artifacts/model%00",
        "s3://bucket/models/../../other",
        "s3://bucket/models/%252e%252e/other",
        "s3://bucket",
        "https://evil.example.com/a/./b",
        "models://other-registry/scorer/1",
        "runs:/{run}/not-there",
    ],
)
def test_version_sources_that_could_reach_files_wrongly_are_refused(client, run_with_model_files, source):
    """Local paths (there are no local artifact folders here), relative and encoded `..` segments, NUL, query
    strings on sources the registry resolves, and a stored run's empty folder: refused, nothing stored. Every other
    source is an external reference (tests/mlflow/test_sources.py)."""
    client.create_registered_model("scorer")
    with pytest.raises(MlflowException) as refused:
        client.create_model_version("scorer", source.format(run=run_with_model_files))
    assert error_code(refused) == "INVALID_PARAMETER_VALUE"
    assert not ModelVersion.objects.exists()


def test_stage_transition_without_approval_moves_directly(client, trainer, run_with_model_files):
    trainer.user_permissions.add(Permission.objects.get(codename="request_transition"))
    client.create_registered_model("scorer")
    client.create_model_version("scorer", f"runs:/{run_with_model_files}/model")
    moved = client.transition_model_version_stage("scorer", "1", "staging")
    assert moved.current_stage == "Staging"
    version = ModelVersion.objects.get(model__name="scorer", version=1)
    assert version.stage == Stage.STAGING
    change = StageChange.objects.get(version=version)
    assert (change.from_stage, change.to_stage, change.kind, change.changed_by) == (
        "None",
        "Staging",
        "direct",
        trainer,
    )


def test_stage_transition_needing_approval_creates_a_request_and_does_not_move(client, trainer, run_with_model_files):
    """The built-in policy gates Production: MLflow gets an error naming the request and where it is decided."""
    trainer.user_permissions.add(Permission.objects.get(codename="request_transition"))
    client.create_registered_model("scorer")
    client.create_model_version("scorer", f"runs:/{run_with_model_files}/model")
    with pytest.raises(MlflowException) as pending:
        client.transition_model_version_stage("scorer", "1", "Production", archive_existing_versions=True)
    assert error_code(pending) == "PERMISSION_DENIED"
    request = TransitionRequest.objects.get()
    assert (request.status, request.to_stage, request.requested_by) == ("pending", "Production", trainer)
    assert request.archive_existing is True
    assert f"#{request.pk}" in pending.value.message and "/approvals/" in pending.value.message
    assert "has not changed" in pending.value.message
    version = ModelVersion.objects.get(model__name="scorer", version=1)
    assert version.stage == Stage.NONE and not StageChange.objects.exists()

    # Asking again does not pile up requests: the answer names the one already pending.
    with pytest.raises(MlflowException) as again:
        client.transition_model_version_stage("scorer", "1", "Production")
    assert f"#{request.pk}" in again.value.message and "already pending" in again.value.message
    assert TransitionRequest.objects.count() == 1


def test_stage_transition_needs_approval_even_for_approvers(client, superuser, as_token, run_with_model_files):
    """MLflow cannot carry an approval decision, so a policy-gated stage always goes through a request."""
    client.create_registered_model("scorer")
    client.create_model_version("scorer", f"runs:/{run_with_model_files}/model")
    as_token(ApiToken.issue(user=superuser, name="root")[1])
    with pytest.raises(MlflowException) as pending:
        client.transition_model_version_stage("scorer", "1", "Production")
    assert error_code(pending) == "PERMISSION_DENIED" and "/approvals/" in pending.value.message
    assert TransitionRequest.objects.get().requested_by == superuser
    assert ModelVersion.objects.get(model__name="scorer", version=1).stage == Stage.NONE


def test_stage_transition_refused_without_permission(client, as_token, run_with_model_files):
    client.create_registered_model("scorer")
    client.create_model_version("scorer", f"runs:/{run_with_model_files}/model")
    as_token(ApiToken.issue(user=UserFactory(username="reader"), name="r")[1])  # READ, no role, no grant
    with pytest.raises(MlflowException) as refused:
        client.transition_model_version_stage("scorer", "1", "Staging")
    assert error_code(refused) == "PERMISSION_DENIED"
    with pytest.raises(MlflowException) as bad:
        client.transition_model_version_stage("scorer", "1", "Shipped")
    assert error_code(bad) == "INVALID_PARAMETER_VALUE"
    assert ModelVersion.objects.get(model__name="scorer", version=1).stage == Stage.NONE


def test_policy_without_approval_for_production_moves_it(client, trainer, run_with_model_files):
    trainer.user_permissions.add(Permission.objects.get(codename="request_transition"))
    StagePolicy.objects.create(approval_required_for=[])
    client.create_registered_model("scorer")
    client.create_model_version("scorer", f"runs:/{run_with_model_files}/model")
    client.create_model_version("scorer", f"runs:/{run_with_model_files}/model")
    client.transition_model_version_stage("scorer", "1", "Production")
    client.transition_model_version_stage("scorer", "2", "Production", archive_existing_versions=True)
    stages = dict(ModelVersion.objects.filter(model__name="scorer").values_list("version", "stage"))
    assert stages == {1: "Archived", 2: "Production"}
    assert [v.version for v in client.get_latest_versions("scorer", ["Production"])] == ["2"]
    with pytest.raises(MlflowException) as refused:
        client.delete_model_version("scorer", "2")
    assert error_code(refused) == "INVALID_PARAMETER_VALUE"


def test_a_logged_model_without_a_run_is_recorded_but_holds_no_files(client, rest):
    """Files of a logged model live with its source run; outside a run, the upload is refused with the reason."""
    model = LogisticRegression().fit(X, Y)
    mlflow.set_experiment("no-run")
    with pytest.raises((MlflowException, requests.HTTPError), match="inside a run"):
        mlflow.sklearn.log_model(model, name="loose", pip_requirements=["scikit-learn"])
    logged = LoggedModel.objects.get(name="loose")
    assert logged.run_id is None and logged.status == LoggedModel.Status.FAILED
    assert not ArtifactFile.objects.exists()
    listed = rest("GET", "/api/2.0/mlflow-artifacts/artifacts", params={"path": f"logged-models/{logged.pk}/artifacts"})
    assert listed.json() == {}


def test_search_registered_models_costs_the_same_queries_for_1_or_20_models(trainer, trainer_token):
    """Each model comes with its aliases and newest version per stage, in a fixed number of queries."""

    def add_models(start: int, count: int) -> None:
        for i in range(start, start + count):
            model = catalog.model_create(name=f"model-{i:02d}", by=trainer, tags={"team": "x"})
            first = catalog.version_create(model=model, by=trainer)
            catalog.version_create(model=model, by=trainer)
            governance.alias_set(model=model, alias="candidate", version=first, by=trainer)

    browser = Client(headers={"Authorization": f"Bearer {trainer_token}"})

    def search() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            response = browser.get("/api/2.0/mlflow/registered-models/search", {"filter": "tags.team = 'x'"})
        assert response.status_code == 200
        models = response.json()["registered_models"]
        assert all(m["aliases"] == [{"alias": "candidate", "version": "1"}] for m in models)
        assert all([v["version"] for v in m["latest_versions"]] == ["2"] for m in models)
        return len(models), len(queries)

    add_models(0, 1)
    search()
    one = search()
    add_models(1, 19)
    many = search()
    assert (one[0], many[0]) == (1, 20)
    assert one[1] == many[1], (one, many)
