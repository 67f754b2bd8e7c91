"""Issue 12's names through /api/v1: each shape is a 400 saying what to fix, and nothing is stored; names are unique
ignoring case (409 `name_clash` naming the one that exists)."""

from __future__ import annotations

import pytest

from registry.audit.models import AuditEvent
from registry.catalog.models import ModelAlias, RegisteredModel
from registry.tracking.models import Experiment
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db

# (name, words the message must hold)
SHAPES = [
    ("..", "must not be '..'"),
    (".", "must not be '.'"),
    ("a%2Fb", "'%'"),
    ("a%252Fb", "'%'"),
    ("a\\b", "'\\\\'"),
    ("a?b", "'?'"),
    ("a#b", "'#'"),
    ("abc\u202edef", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    ("a\u200bb", "U+200B (ZERO WIDTH SPACE)"),
]


@pytest.mark.parametrize(("name", "words"), SHAPES)
def test_model_names_of_issue_12_are_refused(api, name, words):
    before = AuditEvent.objects.count()
    body = assert_error(api.post("/models", {"name": name}), 400)
    assert words in body["message"], body
    assert not RegisteredModel.objects.exists()
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize(("name", "words"), SHAPES)
def test_experiment_names_of_issue_12_are_refused(api, name, words):
    count = Experiment.objects.count()  # the Default experiment
    body = assert_error(api.post("/experiments", {"name": name}), 400)
    assert words in body["message"], body
    assert Experiment.objects.count() == count


@pytest.mark.parametrize(("name", "words"), SHAPES)
def test_renaming_to_a_bad_name_is_refused(api, name, words):
    api.post("/models", {"name": "fraud"})
    body = assert_error(api.patch("/models/fraud", {"name": name}), 400)
    assert words in body["message"]
    assert list(RegisteredModel.objects.values_list("name", flat=True)) == ["fraud"]


def test_a_second_m1_beside_m1_is_refused_naming_the_existing_one(api):
    assert api.post("/models", {"name": "m1"}).status_code == 201
    body = assert_error(api.post("/models", {"name": "M1"}), 409, code="name_clash")
    assert "'m1' already exists" in body["message"] and "ignoring case" in body["message"]
    assert list(RegisteredModel.objects.values_list("name", flat=True)) == ["m1"]
    # Renaming another model onto it is refused the same way; changing the case of its own name is not.
    api.post("/models", {"name": "m2"})
    assert (
        "'m1' already exists"
        in assert_error(api.patch("/models/m2", {"name": "M1"}), 409, code="name_clash")["message"]
    )
    assert_error(api.post("/models", {"name": "m2"}), 409, code="already_exists")  # the very name: as before
    assert api.patch("/models/m1", {"name": "M1"}).json()["name"] == "M1"
    # Lookups are exact: the model is M1 now.
    assert api.get("/models/M1").status_code == 200
    assert_error(api.get("/models/m1"), 404)


def test_experiments_are_unique_ignoring_case_too(api):
    assert api.post("/experiments", {"name": "Fraud"}).status_code == 201
    body = assert_error(api.post("/experiments", {"name": "fraud"}), 409, code="name_clash")
    assert "'Fraud' already exists" in body["message"]
    assert_error(api.post("/experiments", {"name": "DEFAULT"}), 409)
    assert Experiment.objects.filter(name__iexact="fraud").count() == 1


@pytest.mark.parametrize(("key", "words"), [("..", "'..'"), ("a\\b", "'\\\\'"), ("a?b", "'?'"), ("a\u202eb", "U+202E")])
def test_bad_tag_keys_are_refused(api, key, words):
    body = assert_error(api.post("/models", {"name": "fraud", "tags": {key: "x"}}), 400)
    assert words in body["message"]
    assert not RegisteredModel.objects.exists()
    api.post("/models", {"name": "fraud"})
    assert words in assert_error(api.patch("/models/fraud", {"tags": {key: "x"}}), 400)["message"]
    assert RegisteredModel.objects.get().tags == {}


@pytest.mark.parametrize("alias", ["v1", "latest", "a.b", "..", "a\u202eb"])
def test_bad_aliases_are_refused(api, run_id, alias):
    api.post("/models", {"name": "fraud"})
    api.post("/models/fraud/versions", {"run_id": run_id})
    assert_error(api.put(f"/models/fraud/aliases/{alias}", {"version": 1}), 400)
    assert not ModelAlias.objects.exists()
