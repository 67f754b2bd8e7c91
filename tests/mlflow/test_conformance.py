"""Behaviours MLflow's own REST tests check (../shared/mlflow-conformance), kept here so `make test` guards them:
MLflow's validation and wording, dataset inputs as logged, logged models whose source run is unknown, searching
logged models by dataset metrics."""

from __future__ import annotations

import pytest
from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.exceptions import MlflowException

from registry.tracking.models import RunInput
from tests.mlflow.conftest import error_code

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def run_id(client) -> str:
    return client.create_run(client.create_experiment("validation")).info.run_id


def _refused(rest, endpoint: str, payload: dict, expected: str) -> None:
    response = rest.api("POST", endpoint, json=payload)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert expected in response.json()["message"], response.json()["message"]


def test_wrongly_typed_fields_are_refused_in_mlflows_words(rest, run_id):
    metric = {"run_id": run_id, "key": "m", "value": 1, "timestamp": 5, "step": 0}
    _refused(rest, "runs/log-metric", {**metric, "run_id": 31}, "Invalid value 31 for parameter 'run_id' supplied")
    _refused(rest, "runs/log-metric", {**metric, "key": 31}, "Invalid value 31 for parameter 'key' supplied")
    _refused(rest, "runs/log-metric", {**metric, "step": "foo"}, "Invalid value \"foo\" for parameter 'step' supplied")
    _refused(rest, "runs/log-metric", {**metric, "run_id": None}, "Missing value for required parameter 'run_id'")
    _refused(rest, "runs/log-metric", {**metric, "key": None}, "Missing value for required parameter 'key'")
    _refused(rest, "runs/log-parameter", {"run_id": run_id, "key": 31, "value": "v"}, "parameter 'key' supplied")
    _refused(
        rest, "runs/set-tag", {"run_id": run_id, "key": "k", "value": 41}, "Invalid value 41 for parameter 'value'"
    )
    for field in ("metrics", "params", "tags"):
        _refused(
            rest, "runs/log-batch", {"run_id": run_id, field: "foo"}, f"Invalid value \"foo\" for parameter '{field}'"
        )
    _refused(
        rest,
        "runs/log-batch",
        {"run_id": run_id, "metrics": [{"key": "mae", "value": 2.5}]},
        "Missing value for required parameter 'metrics[0].timestamp'",
    )
    _refused(rest, "experiments/create", {"name": 123}, "Invalid value 123 for parameter 'name'")
    _refused(
        rest,
        "experiments/create",
        {"name": "e", "artifact_location": 9.0, "tags": []},
        "Invalid value 9.0 for parameter 'artifact_location'",
    )
    _refused(rest, "experiments/create", {"name": "e", "tags": "5"}, "Invalid value \"5\" for parameter 'tags'")
    too_many = {"experiment_ids": ["0"], "max_results": 123456789}
    _refused(rest, "runs/search", too_many, "Invalid value 123456789 for parameter 'max_results' supplied")
    # A batch with a timestamp and no step is fine.
    batch = {"run_id": run_id, "metrics": [{"key": "mae", "value": 2.5, "timestamp": 123456789}]}
    assert rest.api("POST", "runs/log-batch", json=batch).status_code == 200


def test_messages_are_worded_as_mlflows(client, run_id):
    client.set_tag(run_id, "realTag", "x")
    with pytest.raises(MlflowException, match="No tag with name: fakeTag"):
        client.delete_tag(run_id, "fakeTag")
    client.create_registered_model("twice")
    with pytest.raises(MlflowException, match=r"Registered Model \(name=twice\) already exists") as exists:
        client.create_registered_model("twice")
    assert error_code(exists) == "RESOURCE_ALREADY_EXISTS"
    client.create_model_version("twice", "s3://bucket/model")
    with pytest.raises(MlflowException, match="Parameter 'version' must be an integer, got 'not a number'."):
        client.get_model_version("twice", "not a number")


def test_dataset_inputs_keep_every_tag_and_the_source_exactly_as_logged(client, run_id):
    dataset = Dataset(name="name1", digest="digest1", source_type="source_type1", source="source1")
    client.log_inputs(run_id, [DatasetInput(dataset=dataset, tags=[InputTag(key="tag1", value="value1")])])
    tagged = Dataset(name="name2", digest="digest2", source_type="local", source='{"uri": "/data/train.csv"}')
    tags = [InputTag("foo", "baz"), InputTag("mlflow.data.context", "train")]
    client.log_inputs(run_id, [DatasetInput(dataset=tagged, tags=tags)])

    inputs = {i.dataset.name: i for i in client.get_run(run_id).inputs.dataset_inputs}
    assert inputs["name1"].dataset.source == "source1"
    assert [(t.key, t.value) for t in inputs["name1"].tags] == [("tag1", "value1")]
    assert inputs["name2"].dataset.source == '{"uri": "/data/train.csv"}'
    assert [(t.key, t.value) for t in inputs["name2"].tags] == [("foo", "baz"), ("mlflow.data.context", "train")]
    # The registry's own view: contexts (the default where MLflow named none) and the plain source URI.
    contexts = dict(RunInput.objects.values_list("dataset__name", "context"))
    assert contexts == {"name1": "training", "name2": "train"}
    assert RunInput.objects.get(dataset__name="name2").dataset.source_uri == "/data/train.csv"


def test_a_logged_models_source_run_may_be_one_this_registry_never_saw(client):
    experiment_id = client.create_experiment("logged")
    model = client.create_logged_model(experiment_id, source_run_id="123")
    assert model.source_run_id == "123"
    assert client.get_logged_model(model.model_id).source_run_id == "123"
    client.set_logged_model_tags(model.model_id, {"tag1": "value1"})
    client.delete_logged_model_tag(model.model_id, "tag1")
    with pytest.raises(MlflowException, match="No tag with key"):
        client.delete_logged_model_tag(model.model_id, "tag1")


def test_search_logged_models_by_dataset_metrics(client):
    experiment_id = client.create_experiment("logged")
    first = client.create_logged_model(experiment_id)
    client.create_logged_model(experiment_id)
    run = client.create_run(experiment_id)
    client.log_metric(
        run.info.run_id, key="metric", value=1, dataset_name="dataset", dataset_digest="123", model_id=first.model_id
    )
    found = client.search_logged_models(
        experiment_ids=[experiment_id], datasets=[{"dataset_name": "dataset", "dataset_digest": "123"}]
    )
    assert [m.model_id for m in found] == [first.model_id]
    by_name = client.search_logged_models(experiment_ids=[experiment_id], datasets=[{"dataset_name": "dataset"}])
    assert [m.model_id for m in by_name] == [first.model_id]
    other = client.search_logged_models(
        experiment_ids=[experiment_id], datasets=[{"dataset_name": "dataset", "dataset_digest": "999"}]
    )
    assert list(other) == []


def test_deleting_a_version_is_a_change_of_its_model(client):
    client.create_registered_model("scorer")
    client.create_model_version("scorer", "s3://bucket/model")
    before = client.get_registered_model("scorer").last_updated_timestamp
    client.delete_model_version("scorer", "1")
    assert client.get_registered_model("scorer").last_updated_timestamp > before


def test_run_scoped_artifact_routes_check_paths_and_serve_files(client, rest, run_id, tmp_path):
    for method_path, params in (
        ("/api/2.0/mlflow/artifacts/list", {"run_id": run_id, "path": "../path"}),
        ("/get-artifact", {"run_id": run_id, "path": "../path"}),
        ("//model-versions/get-artifact", {"name": "model", "version": 1, "path": "../path"}),
    ):
        response = rest("GET", method_path, params=params)
        assert response.status_code == 400
        assert response.json() == {"error_code": "INVALID_PARAMETER_VALUE", "message": "Invalid path"}

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "MLmodel").write_text("flavors: {}\n")
    client.log_artifacts(run_id, str(tmp_path / "model"), "model")
    listed = rest.api("GET", "artifacts/list", params={"run_id": run_id}).json()
    assert listed["files"] == [{"path": "model", "is_dir": True}] and listed["root_uri"].endswith(run_id + "/artifacts")
    inside = rest.api("GET", "artifacts/list", params={"run_id": run_id, "path": "model"}).json()
    assert inside["files"] == [{"path": "model/MLmodel", "is_dir": False, "file_size": 12}]
    assert rest("GET", "/get-artifact", params={"run_id": run_id, "path": "model/MLmodel"}).content == b"flavors: {}\n"

    client.create_registered_model("model")
    client.create_model_version("model", f"runs:/{run_id}/model")
    got = rest("GET", "/model-versions/get-artifact", params={"name": "model", "version": "1", "path": "MLmodel"})
    assert got.content == b"flavors: {}\n"
    client.create_model_version("model", "s3://bucket/model")
    missing = rest("GET", "/model-versions/get-artifact", params={"name": "model", "version": "2", "path": "MLmodel"})
    assert missing.status_code == 404 and "s3://bucket/model" in missing.json()["message"]
