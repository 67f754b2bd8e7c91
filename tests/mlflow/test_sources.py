"""Version sources through the official client: files the registry stores, copies of versions, and external
references recorded as text (never read), kept out of Production by the default policy's gate."""

from __future__ import annotations

import pytest
from django.test import Client
from mlflow.exceptions import MlflowException

from registry.accounts.models import ApiToken
from registry.audit.models import AuditAction, AuditEvent
from registry.catalog.models import ArtifactFile, ModelVersion, RegisteredModel, Stage
from registry.governance import gates
from registry.governance import services as governance
from registry.governance.errors import GatesFailed
from registry.governance.models import GateKind, PolicyGate, StagePolicy
from registry.mlflow_compat.models import LoggedModel
from tests.factories import UserFactory
from tests.mlflow.conftest import error_code
from tests.mlflow.test_registry import run_with_model_files  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    "source",
    [
        "s3://bucket/models/scorer",
        "gs://bucket/model",
        "dbfs:/databricks/mlflow/1/model",
        "runs:/run_id/model",
        "mlflow-artifacts:/models",
        "mlflow-artifacts://other-host:9000/models/artifact/..../",
        "https://evil.example.com/api/2.0/mlflow-artifacts/artifacts/runs/abc/artifacts/model",
        "artifacts:/runs/abc/artifacts",
    ],
)
def test_other_sources_are_external_references_recorded_as_text(client, rest, source):
    client.create_registered_model("scorer")
    created = client.create_model_version("scorer", source, run_id="run_id_1")
    assert (created.source, created.run_id) == (source, "run_id_1")

    version = ModelVersion.objects.get(model__name="scorer", version=1)
    assert version.is_external and version.external_location == source
    assert version.run_id is None and version.external_run_id == "run_id_1"
    assert not ArtifactFile.objects.exists()
    fetched = client.get_model_version("scorer", "1")
    assert (fetched.source, fetched.run_id) == (source, "run_id_1")
    assert client.search_model_versions("run_id = 'run_id_1'")[0].version == "1"
    # The client is handed the location back as text; this server never resolves it.
    assert client.get_model_version_download_uri("scorer", "1") == source

    path = f"models/{version.model_id}/versions/1/artifacts/MLmodel"
    download = rest("GET", f"/api/2.0/mlflow-artifacts/artifacts/{path}")
    assert download.status_code == 404
    assert source in download.json()["message"] and "external reference" in download.json()["message"]
    event = AuditEvent.objects.get(action=AuditAction.VERSION_CREATED)
    assert event.data == {"external_location": source}


def test_the_version_page_and_the_api_say_files_are_not_stored_here(client, trainer, trainer_token, live_server):
    client.create_registered_model("scorer")
    client.create_model_version("scorer", "s3://bucket/models/scorer")
    browser = Client()
    browser.force_login(trainer)
    page = browser.get("/models/scorer/versions/1/")
    assert page.status_code == 200
    assert "Files not stored here" in page.content.decode() and "s3://bucket/models/scorer" in page.content.decode()
    missing = browser.get(
        "/api/v1/models/scorer/versions/1/artifacts/MLmodel", headers={"Authorization": f"Bearer {trainer_token}"}
    )
    assert missing.status_code == 404 and "s3://bucket/models/scorer" in missing.content.decode()


def test_runs_named_by_a_version_need_not_exist_but_a_known_one_is_linked(client, run_with_model_files):  # noqa: F811
    client.create_registered_model("scorer")
    client.create_model_version("scorer", "s3://bucket/model", run_id=run_with_model_files)
    linked = ModelVersion.objects.get(version=1)
    assert linked.run_id == run_with_model_files and linked.external_run_id == ""
    assert client.get_model_version("scorer", "1").run_id == run_with_model_files


def test_the_default_policy_keeps_external_versions_out_of_production(client, superuser, run_with_model_files):  # noqa: F811
    client.create_registered_model("scorer")
    client.create_model_version("scorer", "s3://bucket/model")
    client.create_model_version("scorer", f"runs:/{run_with_model_files}/model")
    external, stored = ModelVersion.objects.order_by("version")
    with pytest.raises(GatesFailed) as failed:
        governance.stage_change_direct(version=external, to_stage="Production", by=superuser)
    assert failed.value.details == [
        {
            "gate": "files stored in the registry",
            "message": "no files stored here; the source 's3://bucket/model' is an external reference",
        }
    ]
    governance.stage_change_direct(version=stored, to_stage="Production", by=superuser)
    assert ModelVersion.objects.get(pk=stored.pk).stage == Stage.PRODUCTION
    # Staging has no such gate, and a policy without the gate lets external versions through.
    governance.stage_change_direct(version=external, to_stage="Staging", by=superuser)
    policy = StagePolicy.objects.create(model=external.model, approval_required_for=["Production"])
    governance.stage_change_direct(version=external, to_stage="Production", by=superuser)
    assert ModelVersion.objects.get(pk=external.pk).stage == Stage.PRODUCTION
    PolicyGate.objects.create(policy=policy, stage="Production", kind=GateKind.STORED_FILES)
    assert not gates.evaluate_gates(external, "Production")[0].passed


def test_copy_model_version_copies_files_and_lineage(client, run_with_model_files):  # noqa: F811
    client.create_registered_model("scorer")
    original = client.create_model_version(
        "scorer", f"runs:/{run_with_model_files}/model", description="first", tags={"team": "risk"}
    )
    client.set_registered_model_alias("scorer", "candidate", "1")
    copied = client.copy_model_version("models:/scorer@candidate", "scorer-prod")
    assert (copied.name, copied.version, copied.run_id) == ("scorer-prod", "1", run_with_model_files)
    fetched = client.get_model_version("scorer-prod", "1")
    assert fetched.source == "models:/scorer/1" and fetched.description == "first"
    assert fetched.tags["team"] == "risk"
    assert fetched.tags["registry.scan"] == "unknown"  # the copy carries its files' scan, as every version does

    first = ModelVersion.objects.get(model__name="scorer", version=1)
    copy = ModelVersion.objects.get(model__name="scorer-prod", version=1)
    assert copy.run_id == first.run_id and not copy.is_external
    assert sorted(copy.artifacts.values_list("path", "storage_key")) == sorted(
        first.artifacts.values_list("path", "storage_key")
    )
    event = AuditEvent.objects.get(action=AuditAction.VERSION_CREATED, model_name="scorer-prod")
    assert event.data == {"copied_from": "scorer/1", "files": 2}
    assert original.source == f"runs:/{run_with_model_files}/model"


def test_a_copy_of_an_external_version_points_where_the_original_does(client):
    client.create_registered_model("scorer")
    client.create_model_version("scorer", "runs:/run_id/model", "run_id_1", description="dummy")
    copied = client.copy_model_version("models:/scorer/1", "scorer")
    assert copied.version == "2"
    fetched = client.get_model_version("scorer", "2")
    assert (fetched.source, fetched.run_id, fetched.description) == ("models:/scorer/1", "run_id_1", "dummy")
    assert client.get_model_version_download_uri("scorer", "2") == "runs:/run_id/model"


def test_copy_needs_read_on_the_original(client, as_token):
    client.create_registered_model("secret")
    client.create_model_version("secret", "s3://bucket/model")
    RegisteredModel.objects.filter(name="secret").update(default_level=0)
    as_token(ApiToken.issue(user=UserFactory(username="outsider"), name="o")[1])
    client.create_registered_model("mine")
    with pytest.raises(MlflowException) as refused:
        client.create_model_version("mine", "models:/secret/1")
    assert error_code(refused) == "RESOURCE_DOES_NOT_EXIST"
    assert ModelVersion.objects.count() == 1


def test_a_logged_model_without_a_run_registers_as_an_external_reference(client, rest):
    experiment_id = client.create_experiment("loose")
    logged = client.create_logged_model(experiment_id=experiment_id)
    client.create_registered_model("model")
    for source in (logged.artifact_location, logged.model_uri):
        client.create_model_version(name="model", source=source, model_id=logged.model_id)
    got = rest.api("GET", "model-versions/get", params={"name": "model", "version": "1"}).json()["model_version"]
    assert got["model_id"] == logged.model_id  # (the 3.17 client drops model_id when it reads a version)
    assert ModelVersion.objects.get(version=2).is_external
    tags = LoggedModel.objects.get(pk=logged.model_id).tags
    assert tags["mlflow.modelVersions"] == '[{"name": "model", "version": 1}, {"name": "model", "version": 2}]'
    with pytest.raises(MlflowException) as local:
        client.create_model_version(name="model", source="file:///path/to/model", model_id=logged.model_id)
    assert error_code(local) == "INVALID_PARAMETER_VALUE"
