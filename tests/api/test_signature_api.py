"""Signatures through /api/v1: given when registering, read from the run folder's MLmodel, edited, and refused with
a 400 naming the field when malformed (nothing stored)."""

from __future__ import annotations

import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry.audit.models import AuditAction, AuditEvent
from registry.catalog import artifact_files
from registry.catalog.models import ModelVersion
from tests.api.conftest import assert_error
from tests.test_signature import MLMODEL

pytestmark = pytest.mark.django_db

SIGNATURE = {
    "inputs": [{"name": "age", "type": "long"}, {"name": "income", "type": "double", "required": False}],
    "outputs": [{"name": "score", "type": "double"}],
    "input_example": {"columns": ["age", "income"], "data": [[42, 5000.0]]},
}


@pytest.fixture
def fraud(api):
    assert api.post("/models", {"name": "fraud"}).status_code == 201


@pytest.fixture
def folder(api, run_id):
    api.upload(run_id, "model/model.pkl", b"weights")
    return run_id


def test_a_signature_given_when_registering_is_stored_normalised(api, fraud, folder):
    response = api.post("/models/fraud/versions", {"run_id": folder, "artifact_path": "model", "signature": SIGNATURE})
    assert response.status_code == 201, response.content
    stored = response.json()["signature"]
    assert stored["inputs"][0] == {"name": "age", "type": "long", "shape": None, "required": True}
    assert stored["inputs"][1]["required"] is False
    assert stored["input_example"] == SIGNATURE["input_example"] and stored["source"] == "api"
    assert api.get("/models/fraud/versions/1").json()["signature"] == stored


def test_the_mlmodel_in_the_folder_gives_the_signature_and_its_example(api, fraud, folder):
    api.upload(folder, "model/MLmodel", MLMODEL.encode())
    api.upload(folder, "model/input_example.json", json.dumps({"columns": ["a"], "data": [[1.5]]}).encode())
    response = api.post("/models/fraud/versions", {"run_id": folder, "artifact_path": "model"})
    assert response.status_code == 201, response.content
    signature = api.get("/models/fraud/versions/1").json()["signature"]
    assert signature["source"] == "MLmodel"
    assert [c["name"] for c in signature["inputs"]] == ["sepal length (cm)", "petals"]
    assert signature["outputs"] == [{"name": "", "type": "int64", "shape": [-1], "required": True}]
    assert signature["input_example"] == {"columns": ["a"], "data": [[1.5]]}


def test_a_broken_mlmodel_registers_without_a_signature(api, fraud, folder):
    api.upload(folder, "model/MLmodel", b"signature: {inputs: '[oops'}\n")
    response = api.post("/models/fraud/versions", {"run_id": folder, "artifact_path": "model"})
    assert response.status_code == 201 and response.json()["signature"] is None


@pytest.mark.parametrize(
    ("signature", "field"),
    [
        ("columns please", "signature"),
        ({"inputs": [{"name": "age"}]}, "signature.inputs[0].type"),
        (
            {"inputs": [{"name": "age", "type": "long"}], "outputs": [{"type": "double", "shape": "wide"}]},
            "signature.outputs[0].shape",
        ),
    ],
)
def test_a_malformed_signature_is_a_400_naming_the_field_and_stores_nothing(api, fraud, folder, signature, field):
    response = api.post("/models/fraud/versions", {"run_id": folder, "artifact_path": "model", "signature": signature})
    body = assert_error(response, 400, contains=field)
    assert body["details"] == [{"field": field}]
    assert not ModelVersion.objects.exists()


def test_patch_sets_replaces_and_removes_the_signature_with_an_audit_event(api, fraud, folder):
    api.post("/models/fraud/versions", {"run_id": folder, "artifact_path": "model"})
    response = api.patch("/models/fraud/versions/1", {"signature": SIGNATURE})
    assert response.status_code == 200 and response.json()["signature"]["inputs"][0]["name"] == "age"

    refused = api.patch("/models/fraud/versions/1", {"signature": {"inputs": [{"type": "long", "shape": [1.5]}]}})
    assert_error(refused, 400, contains="signature.inputs[0].shape")
    assert ModelVersion.objects.get().signature["inputs"][0]["name"] == "age"

    assert api.patch("/models/fraud/versions/1", {"description": "kept"}).json()["signature"] is not None
    assert api.patch("/models/fraud/versions/1", {"signature": None}).json()["signature"] is None
    events = AuditEvent.objects.filter(action=AuditAction.VERSION_SIGNATURE_SET).order_by("id")
    assert [e.to_value for e in events] == ["api", "removed"]


def test_an_mlmodel_uploaded_to_the_version_later_gives_its_signature(api, fraud, folder, user):
    api.post("/models/fraud/versions", {"run_id": folder, "artifact_path": "model"})
    version = ModelVersion.objects.select_related("model").get()
    artifact_files.artifact_store(owner=version, path="MLmodel", stream=io.BytesIO(MLMODEL.encode()), by=user)
    assert api.get("/models/fraud/versions/1").json()["signature"]["source"] == "MLmodel"
    assert AuditEvent.objects.filter(action=AuditAction.VERSION_SIGNATURE_SET, to_value="MLmodel").exists()


def test_reading_the_mlmodel_costs_registration_one_statement(api, fraud, folder):
    api.post("/models/fraud/versions", {"run_id": folder, "artifact_path": "model"})  # warm caches
    with CaptureQueriesContext(connection) as without:
        api.post("/models/fraud/versions", {"run_id": folder, "artifact_path": "model"})
    api.upload(folder, "model/MLmodel", MLMODEL.encode())
    with CaptureQueriesContext(connection) as with_mlmodel:
        response = api.post("/models/fraud/versions", {"run_id": folder, "artifact_path": "model"})
    assert response.json()["signature"]["source"] == "MLmodel"
    # the signature's UPDATE (the files, MLmodel among them, are copied in one INSERT); the file is read from storage
    assert len(with_mlmodel) == len(without) + 1


def test_model_cards_through_the_api(api, fraud, folder, client):
    api.post("/models/fraud/versions", {"run_id": folder, "artifact_path": "model"})
    written = api.put(
        "/models/fraud/card", {"sections": {"intended_use": "Score payments.", "limitations": "EU only."}}
    )
    assert written.status_code == 200 and written.json()["model_revision"] == 1
    api.put("/models/fraud/versions/1/card", {"sections": {"limitations": "EU cards, 2025 only."}})
    card = api.get("/models/fraud/versions/1/card").json()
    by_key = {s["key"]: s for s in card["sections"]}
    assert (by_key["intended_use"]["text"], by_key["intended_use"]["inherited"]) == ("Score payments.", True)
    assert (by_key["limitations"]["text"], by_key["limitations"]["inherited"]) == ("EU cards, 2025 only.", False)
    assert card["version_revision"] == 1

    # The schema names the six sections and their limit: anything else is refused before the service runs.
    body = assert_error(api.put("/models/fraud/card", {"sections": {"risks": "?"}}), 422)
    assert body["details"][0]["field"] == "sections.risks"
    too_long = assert_error(api.put("/models/fraud/card", {"sections": {"limitations": "x" * 10_001}}), 422)
    assert too_long["details"][0]["field"] == "sections.limitations"
    assert_error(api.put("/models/fraud/card", {"sections": {"owners": 5}}), 422)
    assert api.get("/models/fraud/card").json()["model_revision"] == 1
