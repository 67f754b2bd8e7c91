"""Datasets: registered once per (name, digest), listed, fetched and linked to runs in a role."""

from __future__ import annotations

import pytest

from registry.tracking.models import Dataset, RunInput
from tests.api.conftest import Api, assert_error

pytestmark = pytest.mark.django_db

IRIS = {
    "name": "iris-train",
    "digest": "5f1e0c",
    "source_uri": "s3://data/iris/train.parquet",
    "source_type": "s3",
    "schema": [{"name": "sepal_length", "type": "float64"}, {"name": "species", "type": "string"}],
    "profile": {"num_rows": 120, "columns": {"sepal_length": {"nulls": 0, "mean": 5.8}}},
}


def test_register_is_201_then_200_and_idempotent(api):
    first = api.post("/datasets", IRIS)
    assert first.status_code == 201
    body = first.json()
    assert {k: body[k] for k in IRIS} == IRIS
    again = api.post("/datasets", IRIS | {"source_uri": "elsewhere", "profile": {}})
    assert again.status_code == 200
    # The same (name, digest) is the same dataset; what was registered first stays.
    assert again.json() == body
    assert Dataset.objects.count() == 1
    new_digest = api.post("/datasets", IRIS | {"digest": "77aa00"})
    assert new_digest.status_code == 201 and new_digest.json()["id"] != body["id"]


def test_list_and_filter(api):
    api.post("/datasets", IRIS)
    api.post("/datasets", IRIS | {"digest": "77aa00"})
    api.post("/datasets", {"name": "wine", "digest": "abc"})
    listed = api.get("/datasets").json()
    assert [(d["name"], d["digest"]) for d in listed["items"]][0][0] == "iris-train"
    assert {d["name"] for d in listed["items"]} == {"iris-train", "wine"} and listed["next_offset"] is None
    by_name = api.get("/datasets", query={"name": "iris-train"}).json()["items"]
    assert {d["digest"] for d in by_name} == {"5f1e0c", "77aa00"}
    by_digest = api.get("/datasets", query={"digest": "abc"}).json()["items"]
    assert [d["name"] for d in by_digest] == ["wine"]
    assert api.get("/datasets", query={"name": "nope"}).json()["items"] == []
    paged = api.get("/datasets", query={"limit": 2}).json()
    assert len(paged["items"]) == 2 and paged["next_offset"] == 2


def test_get(api):
    dataset = api.post("/datasets", IRIS).json()
    fetched = api.get(f"/datasets/{dataset['id']}")
    assert fetched.status_code == 200 and fetched.json() == dataset


def test_get_unknown_is_404(api):
    assert_error(api.get("/datasets/999999"), 404)
    assert_error(api.get("/datasets/not-a-number"), 422)


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "", "digest": "abc"},
        {"name": "x", "digest": ""},
        {"name": "x"},
        {"name": "x", "digest": "a" * 129},
        {"name": "x", "digest": "abc", "schema": [{"name": "col"}]},
        {"name": "x", "digest": "abc", "profile": []},
    ],
)
def test_register_invalid_is_422_and_writes_nothing(api, payload):
    assert_error(api.post("/datasets", payload), 422)
    assert not Dataset.objects.exists()


def test_link_to_a_run_with_a_context(api, run_id):
    dataset = api.post("/datasets", IRIS).json()
    linked = api.post(f"/runs/{run_id}/inputs", {"dataset_id": dataset["id"], "context": "training"})
    assert linked.status_code == 201
    assert linked.json() == {
        "dataset_id": dataset["id"],
        "name": "iris-train",
        "digest": "5f1e0c",
        "context": "training",
    }
    # Linking again is idempotent; the same data in another role is a second link.
    api.post(f"/runs/{run_id}/inputs", {"dataset_id": dataset["id"], "context": "training"})
    api.post(f"/runs/{run_id}/inputs", {"dataset_id": dataset["id"], "context": "evaluation"})
    inputs = api.get(f"/runs/{run_id}").json()["inputs"]
    assert sorted(i["context"] for i in inputs) == ["evaluation", "training"]
    assert RunInput.objects.filter(run_id=run_id).count() == 2
    # The default role is training.
    other = api.post("/datasets", IRIS | {"digest": "77aa00"}).json()
    assert api.post(f"/runs/{run_id}/inputs", {"dataset_id": other["id"]}).json()["context"] == "training"


def test_link_404s_and_bad_context(api, run_id):
    dataset = api.post("/datasets", IRIS).json()
    assert_error(api.post(f"/runs/{run_id}/inputs", {"dataset_id": 999999}), 404)
    assert_error(api.post("/runs/" + "0" * 32 + "/inputs", {"dataset_id": dataset["id"]}), 404)
    assert_error(api.post(f"/runs/{run_id}/inputs", {"dataset_id": dataset["id"], "context": ""}), 422)
    assert_error(api.post(f"/runs/{run_id}/inputs", {"dataset_id": dataset["id"], "context": "c" * 65}), 422)
    assert not RunInput.objects.exists()


def test_link_to_another_users_run_is_403(client, api, run_id, other_token):
    dataset = api.post("/datasets", IRIS).json()
    response = Api(client, other_token).post(f"/runs/{run_id}/inputs", {"dataset_id": dataset["id"]})
    assert_error(response, 403)
    assert not RunInput.objects.exists()
