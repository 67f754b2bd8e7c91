"""Issue 12's names through the MLflow API, driven by the official MLflow client against the live server: each shape
is INVALID_PARAMETER_VALUE with a message saying what to fix, nothing is stored, and `M1` beside `m1` is
RESOURCE_CONFLICT naming `m1` (not RESOURCE_ALREADY_EXISTS, which MLflow's fluent API reads as "use the existing
one" and then looks up `M1`, which is not there). Ordinary names (MLflow's own tests use these) still work."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from registry.catalog.models import ModelAlias, RegisteredModel
from registry.tracking.models import Experiment
from tests.mlflow.conftest import error_code

pytestmark = pytest.mark.django_db(transaction=True)

SHAPES = [
    ("..", "must not be '..'"),
    (".", "must not be '.'"),
    ("a%2Fb", "'%'"),
    ("a%252Fb", "'%'"),
    ("a\\b", "'\\\\'"),
    ("a?b", "'?'"),
    ("a#b", "'#'"),
    ("abc\u202edef", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
]


@pytest.mark.parametrize(("name", "words"), SHAPES)
def test_registered_model_names_of_issue_12_are_refused(client, name, words):
    with pytest.raises(MlflowException) as caught:
        client.create_registered_model(name)
    assert error_code(caught) == "INVALID_PARAMETER_VALUE"
    assert words in caught.value.message
    assert not RegisteredModel.objects.exists()


@pytest.mark.parametrize(("name", "words"), SHAPES)
def test_experiment_names_of_issue_12_are_refused(client, name, words):
    count = Experiment.objects.count()
    with pytest.raises(MlflowException) as caught:
        client.create_experiment(name)
    assert error_code(caught) == "INVALID_PARAMETER_VALUE"
    assert words in caught.value.message
    assert Experiment.objects.count() == count


def test_renaming_to_a_bad_name_is_refused(client):
    client.create_registered_model("fraud")
    with pytest.raises(MlflowException, match="must not be '..'"):
        client.rename_registered_model("fraud", "..")
    assert list(RegisteredModel.objects.values_list("name", flat=True)) == ["fraud"]


def test_m1_beside_m1_is_refused_naming_the_existing_one(client):
    client.create_registered_model("m1")
    with pytest.raises(MlflowException) as caught:
        client.create_registered_model("M1")
    assert error_code(caught) == "RESOURCE_CONFLICT"
    assert "'m1' already exists" in caught.value.message
    assert list(RegisteredModel.objects.values_list("name", flat=True)) == ["m1"]
    client.create_experiment("Fraud")
    with pytest.raises(MlflowException) as caught:
        client.create_experiment("fraud")
    assert error_code(caught) == "RESOURCE_CONFLICT"
    assert "'Fraud' already exists" in caught.value.message
    with pytest.raises(MlflowException) as caught:
        client.create_experiment("Fraud")
    assert error_code(caught) == "RESOURCE_ALREADY_EXISTS"  # the very name: as MLflow answers it


def test_fluent_calls_with_another_case_fail_loudly(client, tmp_path):
    """mlflow.set_experiment("fraud") beside "Fraud" used to be able to return None and log elsewhere; it raises
    with the registry's message instead. The same for registering a version under "M1" beside "m1"."""
    client.create_experiment("Fraud")
    with pytest.raises(MlflowException, match="'Fraud' already exists"):
        mlflow.set_experiment("fraud")
    client.create_registered_model("m1")
    with mlflow.start_run(experiment_id=client.get_experiment_by_name("Fraud").experiment_id) as run:
        mlflow.log_text("flavors: {}", "model/MLmodel")
    with pytest.raises(MlflowException, match="'m1' already exists"):
        mlflow.register_model(f"runs:/{run.info.run_id}/model", "M1")
    assert not RegisteredModel.objects.filter(name="M1").exists()


def test_ordinary_names_still_work(client):
    """What MLflow's own tests create: spaces, unicode, underscores; renames within one name's case."""
    for name in ("test_model", "UpdateRMTest 2", "模型 v2"):
        assert client.create_registered_model(name).name == name
    client.rename_registered_model("test_model", "Test_Model")
    assert client.get_registered_model("Test_Model").name == "Test_Model"
    experiment_id = client.create_experiment("My Experiment ünïcode", tags={"multiline tag": "x", "team/owner": "a"})
    assert client.get_experiment(experiment_id).tags["team/owner"] == "a"


@pytest.mark.parametrize("alias", ["v1", "latest", ".."])
def test_aliases_mlflow_refuses_are_refused(client, alias):
    client.create_registered_model("fraud")
    run = client.create_run(client.create_experiment("e"))
    client.log_text(run.info.run_id, "flavors: {}", "model/MLmodel")
    client.create_model_version("fraud", f"runs:/{run.info.run_id}/model", run.info.run_id)
    with pytest.raises(MlflowException) as caught:
        client.set_registered_model_alias("fraud", alias, "1")
    assert error_code(caught) == "INVALID_PARAMETER_VALUE"
    assert not ModelAlias.objects.exists()


@pytest.mark.parametrize(("key", "words"), [("..", "'..'"), ("a\\b", "'\\\\'"), ("a\u202eb", "U+202E")])
def test_bad_tag_keys_are_refused(client, key, words):
    client.create_registered_model("fraud")
    with pytest.raises(MlflowException) as caught:
        client.set_registered_model_tag("fraud", key, "x")
    assert error_code(caught) == "INVALID_PARAMETER_VALUE"
    assert words in caught.value.message
    assert RegisteredModel.objects.get().tags == {}
