"""Registered models, versions, aliases and reference resolution through the JSON API."""

from __future__ import annotations

import hashlib

import pytest

from registry.accounts.models import ApiToken
from registry.catalog.models import ArtifactFile, ModelAlias, ModelVersion, RegisteredModel, Stage
from tests.api.conftest import Api, assert_error
from tests.builders import version_stage_set

pytestmark = pytest.mark.django_db

WEIGHTS = b"pretend these are weights" * 100


@pytest.fixture
def model(api):
    response = api.post("/models", {"name": "fraud", "description": "Card **fraud**", "tags": {"team": "risk"}})
    assert response.status_code == 201
    return response.json()


@pytest.fixture
def run_with_model(api, run_id):
    """A run holding a model folder (two files) and one file outside it."""
    api.upload(run_id, "model/model.pkl", WEIGHTS)
    api.upload(run_id, "model/conda.yaml", b"name: fraud")
    api.upload(run_id, "plots/roc.png", b"png")
    return run_id


def register(api, name: str = "fraud", **payload):
    return api.post(f"/models/{name}/versions", payload)


def set_stage(name: str, version: int, stage: str) -> None:
    version_stage_set(version=ModelVersion.objects.get(model__name=name, version=version), stage=stage)


# --- Models ---------------------------------------------------------------------------------------------------------


def test_create_and_get(api, model, user):
    assert model["name"] == "fraud" and model["owner"] == user.username
    assert (model["description"], model["tags"]) == ("Card **fraud**", {"team": "risk"})
    assert (model["latest_version"], model["aliases"]) == (None, [])
    assert model["versions_by_stage"] == {"Staging": [], "Production": []}
    assert api.get("/models/fraud").json() == model


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("a/b", 400),
        ("a@b", 400),
        ("a\x00b", 400),
        ("a\nb", 400),
        ("a\x7fb", 400),
        (" padded", 400),
        ("x" * 257, 422),
        ("", 422),
    ],
)
def test_model_name_validation(api, name, status):
    assert_error(api.post("/models", {"name": name}), status)
    assert not RegisteredModel.objects.exists()


def test_model_names_may_hold_spaces_and_unicode(api):
    assert api.post("/models", {"name": "détecteur de fraude"}).status_code == 201
    assert api.get("/models/détecteur de fraude").json()["name"] == "détecteur de fraude"
    assert api.post("/models", {"name": "x" * 256}).status_code == 201


def test_duplicate_model_is_409(api, model):
    assert_error(api.post("/models", {"name": "fraud"}), 409, code="already_exists", contains="fraud")
    assert RegisteredModel.objects.count() == 1


def test_unknown_model_is_404_with_a_message(api):
    for response in (
        api.get("/models/nope"),
        api.patch("/models/nope", {"description": "x"}),
        api.delete("/models/nope"),
        api.get("/models/nope/versions"),
        api.get("/models/nope/versions/1"),
        register(api, "nope"),
        api.get("/models/nope/aliases"),
    ):
        assert_error(response, 404, contains="nope")


@pytest.fixture
def catalogue(api, user):
    """Five models with tags, two with versions in a stage."""
    for name, tags in [
        ("alpha", {"team": "vision"}),
        ("beta", {"team": "nlp", "tier": "gold"}),
        ("gamma", {"team": "vision", "odd key": "x"}),
        ("delta", {}),
        ("epsilon", {"contains": "x", "a__b": "c"}),
    ]:
        api.post("/models", {"name": name, "description": f"The {name} model", "tags": tags})
    for name in ("alpha", "beta"):
        register(api, name)
    set_stage("alpha", 1, Stage.PRODUCTION)
    set_stage("beta", 1, Stage.STAGING)


def model_names(api, **query) -> list[str]:
    response = api.get("/models", query=query)
    assert response.status_code == 200, response.content
    return [m["name"] for m in response.json()["items"]]


def test_list_search_and_filters(api, catalogue):
    assert model_names(api) == ["alpha", "beta", "delta", "epsilon", "gamma"]
    assert model_names(api, q="ALPHA") == ["alpha"]
    assert model_names(api, q="model") == ["alpha", "beta", "delta", "epsilon", "gamma"]
    assert model_names(api, tag="team") == ["alpha", "beta", "gamma"]
    assert model_names(api, tag="team:vision") == ["alpha", "gamma"]
    assert model_names(api, tag="tier:gold") == ["beta"]
    assert model_names(api, tag="odd key:x") == ["gamma"]
    assert model_names(api, tag="contains:x") == ["epsilon"]
    assert model_names(api, tag="a__b:c") == ["epsilon"]
    assert model_names(api, tag="team:nobody") == []
    assert model_names(api, stage="production") == ["alpha"]
    assert model_names(api, stage="Staging") == ["beta"]
    assert model_names(api, stage="archived") == []
    assert_error(api.get("/models", query={"stage": "prod"}), 400, contains="Unknown stage")


def test_list_order_and_paging(api, catalogue):
    assert model_names(api, order_by="-name") == ["gamma", "epsilon", "delta", "beta", "alpha"]
    api.patch("/models/delta", {"description": "touched last"})
    assert model_names(api, order_by="-updated")[0] == "delta"
    assert model_names(api, order_by="updated")[-1] == "delta"
    assert_error(api.get("/models", query={"order_by": "size"}), 400, contains="order_by")

    page = api.get("/models", query={"limit": 2}).json()
    assert [m["name"] for m in page["items"]] == ["alpha", "beta"] and page["next_offset"] == 2
    page = api.get("/models", query={"limit": 2, "offset": 4}).json()
    assert [m["name"] for m in page["items"]] == ["gamma"] and page["next_offset"] is None
    assert_error(api.get("/models", query={"limit": 0}), 422)


def test_list_shows_versions_by_stage_and_aliases(api, catalogue):
    api.put("/models/alpha/aliases/candidate", {"version": 1})
    [alpha] = api.get("/models", query={"q": "alpha"}).json()["items"]
    assert alpha["latest_version"] == 1
    assert alpha["versions_by_stage"] == {"Staging": [], "Production": [1]}
    assert alpha["aliases"] == [{"alias": "candidate", "version": 1}]


def test_patch_rename_description_and_tags(api, model):
    updated = api.patch("/models/fraud", {"description": "New", "tags": {"team": "ml"}}).json()
    assert (updated["description"], updated["tags"]) == ("New", {"team": "ml"})
    assert updated["updated_at"] > model["updated_at"]
    renamed = api.patch("/models/fraud", {"name": "fraud-v2"}).json()
    assert renamed["name"] == "fraud-v2" and renamed["description"] == "New"
    assert_error(api.get("/models/fraud"), 404)
    assert api.get("/models/fraud-v2").status_code == 200


def test_patch_keeps_the_version_counter(api, model):
    register(api)
    register(api)
    api.patch("/models/fraud", {"description": "edited"})
    assert register(api).json()["version"] == 3


def test_rename_to_an_existing_name_is_409(api, model):
    api.post("/models", {"name": "churn"})
    assert_error(api.patch("/models/churn", {"name": "fraud"}), 409, contains="fraud")
    assert set(RegisteredModel.objects.values_list("name", flat=True)) == {"fraud", "churn"}


@pytest.mark.parametrize("name", ["a/b", "a@b", "tab\there", "x" * 257, ""])
def test_rename_to_an_invalid_name_is_refused(api, model, name):
    assert_error(api.patch("/models/fraud", {"name": name}))
    assert RegisteredModel.objects.get().name == "fraud"


def test_delete_by_the_owner(api, model):
    register(api)
    assert api.delete("/models/fraud").status_code == 204
    assert not RegisteredModel.objects.exists() and not ModelVersion.objects.exists()
    assert_error(api.get("/models/fraud"), 404)


def test_delete_by_another_user_is_403(client, api, model, other_token, staff_token):
    assert_error(Api(client, other_token).delete("/models/fraud"), 403, contains="owner")
    # Staff status alone is not the right to delete someone else's model.
    assert_error(Api(client, staff_token).delete("/models/fraud"), 403)
    assert RegisteredModel.objects.filter(name="fraud").exists()


def test_delete_by_a_superuser(client, model, superuser):
    raw = ApiToken.issue(user=superuser, name="root")[1]
    assert Api(client, raw).delete("/models/fraud").status_code == 204


def test_delete_with_a_production_version_is_409(api, model):
    register(api)
    register(api)
    set_stage("fraud", 2, Stage.PRODUCTION)
    assert_error(api.delete("/models/fraud"), 409, contains="Production")
    assert ModelVersion.objects.count() == 2
    set_stage("fraud", 2, Stage.ARCHIVED)
    assert api.delete("/models/fraud").status_code == 204


# --- Versions -------------------------------------------------------------------------------------------------------


def test_register_from_a_runs_artifact_path(api, model, run_with_model, user):
    response = register(api, run_id=run_with_model, artifact_path="model", description="first", tags={"k": "v"})
    assert response.status_code == 201
    version = response.json()
    assert version["version"] == 1 and version["model"] == "fraud"
    assert version["run_id"] == run_with_model
    assert version["source"] == f"runs:/{run_with_model}/model"
    assert (version["stage"], version["status"], version["created_by"]) == ("None", "ready", user.username)
    assert (version["description"], version["tags"]) == ("first", {"k": "v"})
    artifacts = {a["path"]: a for a in version["artifacts"]}
    assert set(artifacts) == {"conda.yaml", "model.pkl"}
    assert artifacts["model.pkl"]["sha256"] == hashlib.sha256(WEIGHTS).hexdigest()
    assert artifacts["model.pkl"]["size"] == len(WEIGHTS)
    assert artifacts["model.pkl"]["url"] == "/api/v1/models/fraud/versions/1/artifacts/model.pkl"
    # Copies, not moves: the run keeps its files.
    assert ArtifactFile.objects.filter(run_id=run_with_model).count() == 3

    second = register(api, run_id=run_with_model.upper(), artifact_path="model/model.pkl").json()
    assert second["version"] == 2
    assert [a["path"] for a in second["artifacts"]] == ["model.pkl"]
    whole_run = register(api, run_id=run_with_model, artifact_path="").json()
    assert whole_run["version"] == 3 and len(whole_run["artifacts"]) == 3
    assert api.get("/models/fraud").json()["latest_version"] == 3


def test_register_without_a_run(api, model):
    version = register(api).json()
    assert (version["version"], version["run_id"], version["artifacts"], version["metrics"]) == (1, None, [], {})


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"artifact_path": "model"}, 400),
        ({"run_id": "RUN", "artifact_path": "nothing-here"}, 404),  # the folder is what is missing
        ({"run_id": "RUN", "artifact_path": "mod"}, 404),
        ({"run_id": "RUN", "artifact_path": "../other-run"}, 400),
        ({"run_id": "RUN", "artifact_path": "/etc"}, 400),
        ({"run_id": "0" * 32, "artifact_path": "model"}, 404),
        ({"run_id": "short", "artifact_path": "model"}, 422),
    ],
)
def test_failed_registrations_consume_no_number(api, model, run_with_model, payload, status):
    if payload.get("run_id") == "RUN":
        payload = payload | {"run_id": run_with_model}
    body = assert_error(register(api, **payload), status)
    assert body["message"]
    assert not ModelVersion.objects.exists()
    assert RegisteredModel.objects.get().last_version == 0
    assert register(api, run_id=run_with_model, artifact_path="model").json()["version"] == 1


def test_get_and_patch_a_version(api, model, run_with_model):
    register(api, run_id=run_with_model, artifact_path="model")
    version = api.get("/models/fraud/versions/1").json()
    assert version["version"] == 1 and len(version["artifacts"]) == 2
    patched = api.patch("/models/fraud/versions/1", {"description": "Better", "tags": {"reviewed": "yes"}}).json()
    assert (patched["description"], patched["tags"]) == ("Better", {"reviewed": "yes"})
    assert patched["updated_at"] >= version["updated_at"]
    assert api.patch("/models/fraud/versions/1", {}).json()["description"] == "Better"
    assert_error(api.get("/models/fraud/versions/2"), 404)
    assert_error(api.patch("/models/fraud/versions/2", {"description": "x"}), 404)
    assert_error(api.get("/models/fraud/versions/one"), 422)


@pytest.fixture
def scored_versions(api, model):
    """Versions 1-3 of fraud from runs with f1 0.85, 0.97 and 0.93 (and a fourth without a run)."""
    for f1, optimizer in [(0.85, "sgd"), (0.97, "adam"), (0.93, "adam")]:
        run = api.post("/runs", {"experiment": "fraud", "tags": {"team": "risk"}}).json()["id"]
        api.post(f"/runs/{run}/log-batch", {"metrics": [{"key": "f1", "value": f1}], "params": {"opt": optimizer}})
        register(api, run_id=run)
    register(api)


def version_numbers(api, **query) -> list[int]:
    response = api.get("/models/fraud/versions", query=query)
    assert response.status_code == 200, response.content
    return [v["version"] for v in response.json()["items"]]


def test_list_versions_filter_and_order(api, scored_versions):
    assert version_numbers(api) == [4, 3, 2, 1]
    assert version_numbers(api, filter="metrics.f1 > 0.9") == [3, 2]
    assert version_numbers(api, filter="metrics.f1 > 0.9", order_by="metrics.f1 DESC") == [2, 3]
    assert version_numbers(api, order_by="metrics.f1 DESC") == [2, 3, 1, 4]
    assert version_numbers(api, order_by="metrics.f1") == [1, 3, 2, 4]
    assert version_numbers(api, filter="params.opt = 'adam' AND tags.team = 'risk'") == [3, 2]
    assert version_numbers(api, order_by="attributes.version") == [1, 2, 3, 4]
    assert version_numbers(api, filter="metrics.f1 IS NULL") == [4]
    listed = api.get("/models/fraud/versions", query={"filter": "metrics.f1 > 0.95"}).json()["items"]
    assert listed[0]["metrics"] == {"f1": 0.97}
    assert_error(api.get("/models/fraud/versions", query={"filter": "metrics.f1 >> 1"}), 400)
    assert_error(api.get("/models/fraud/versions", query={"order_by": "bogus.x"}), 400)


def test_list_versions_by_stage_and_paging(api, scored_versions):
    set_stage("fraud", 2, Stage.PRODUCTION)
    assert version_numbers(api, stage="production") == [2]
    assert_error(api.get("/models/fraud/versions", query={"stage": "live"}), 400)
    page = api.get("/models/fraud/versions", query={"limit": 3}).json()
    assert [v["version"] for v in page["items"]] == [4, 3, 2] and page["next_offset"] == 3
    rest = api.get("/models/fraud/versions", query={"limit": 3, "after": page["next_after"]}).json()
    assert [v["version"] for v in rest["items"]] == [1] and rest["next_after"] is None
    assert_error(api.get("/models/fraud/versions", query={"after": "x"}), 400, contains="next_after")


# --- Aliases --------------------------------------------------------------------------------------------------------


def test_alias_set_move_delete(api, model):
    register(api)
    register(api)
    assert api.put("/models/fraud/aliases/candidate", {"version": 1}).json() == {"alias": "candidate", "version": 1}
    assert api.get("/models/fraud/versions/1").json()["aliases"] == ["candidate"]
    assert api.put("/models/fraud/aliases/challenger", {"version": 2}).status_code == 200

    moved = api.put("/models/fraud/aliases/candidate", {"version": 2}).json()
    assert moved == {"alias": "candidate", "version": 2}
    assert api.get("/models/fraud/versions/1").json()["aliases"] == []
    assert sorted(api.get("/models/fraud/versions/2").json()["aliases"]) == ["candidate", "challenger"]
    assert api.get("/models/fraud/aliases").json() == [
        {"alias": "candidate", "version": 2},
        {"alias": "challenger", "version": 2},
    ]
    assert ModelAlias.objects.count() == 2

    assert api.delete("/models/fraud/aliases/candidate").status_code == 204
    assert_error(api.delete("/models/fraud/aliases/candidate"), 404, contains="candidate")
    assert api.get("/models/fraud").json()["aliases"] == [{"alias": "challenger", "version": 2}]


@pytest.mark.parametrize(
    "alias",
    ["latest", "Latest", "production", "STAGING", "none", "archived", "v3", "V12", "1st", "-x", "a.b", "has%20space",
     "caf%C3%A9", "a" * 257],
)  # fmt: skip
def test_reserved_and_bad_aliases_are_refused(api, model, alias):
    register(api)
    assert_error(api.put(f"/models/fraud/aliases/{alias}", {"version": 1}), 400)
    assert not ModelAlias.objects.exists()


def test_alias_to_a_version_of_another_model_is_refused(api, model):
    api.post("/models", {"name": "churn"})
    for _ in range(3):
        register(api, "churn")
    register(api)
    # churn has a version 3; fraud does not.
    assert_error(api.put("/models/fraud/aliases/candidate", {"version": 3}), 404)
    assert_error(api.put("/models/fraud/aliases/candidate", {"version": 0}), 422)
    assert_error(api.put("/models/nope/aliases/candidate", {"version": 1}), 404)
    assert not ModelAlias.objects.exists()


# --- References -----------------------------------------------------------------------------------------------------


@pytest.fixture
def resolvable(api, model, run_with_model):
    for _ in range(3):
        register(api, run_id=run_with_model, artifact_path="model")
    api.put("/models/fraud/aliases/candidate", {"version": 2})
    set_stage("fraud", 1, Stage.PRODUCTION)
    set_stage("fraud", 3, Stage.STAGING)


@pytest.mark.parametrize(
    ("ref", "version"),
    [
        ("fraud/3", 3),
        ("fraud/1", 1),
        ("fraud@candidate", 2),
        ("fraud@production", 1),
        ("fraud@Production", 1),
        ("fraud@staging", 3),
        ("fraud/staging", 3),
        ("fraud@latest", 3),
        ("fraud/latest", 3),
        ("models:/fraud/1", 1),
        ("models:/fraud@candidate", 2),
        ("  fraud/2  ", 2),
    ],
)
def test_resolve(api, resolvable, ref, version):
    resolved = api.get("/resolve", query={"ref": ref}).json()
    assert (resolved["model"], resolved["version"]) == ("fraud", version)
    assert {a["path"] for a in resolved["artifacts"]} == {"conda.yaml", "model.pkl"}
    assert all(len(a["sha256"]) == 64 and a["url"].startswith("/api/v1/models/fraud/") for a in resolved["artifacts"])


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nope/1", "No model named 'nope'"),
        ("nope@champion", "No model named 'nope'"),
        ("fraud/9", "fraud/9"),
        ("fraud@nobody", "fraud@nobody"),
        ("fraud@archived", "fraud@archived"),
    ],
)
def test_resolve_unknown_is_404_with_a_message(api, resolvable, ref, message):
    assert_error(api.get("/resolve", query={"ref": ref}), 404, contains=message)


@pytest.mark.parametrize("ref", ["fraud", "fraud/", "fraud@", "@champion", "/3", "fraud/0", "fraud/-1", "fraud/abc",
                                 "models:/", "", "   "])  # fmt: skip
def test_resolve_malformed_is_400(api, resolvable, ref):
    assert_error(api.get("/resolve", query={"ref": ref}), 400, contains="name/3")


def test_resolve_without_ref_is_422(api):
    assert_error(api.get("/resolve"), 422)


# --- Version artifacts ----------------------------------------------------------------------------------------------


def test_version_artifacts_list_and_download(api, model, run_with_model):
    register(api, run_id=run_with_model, artifact_path="model")
    listed = api.get("/models/fraud/versions/1/artifacts").json()
    assert [a["path"] for a in listed] == ["conda.yaml", "model.pkl"]
    assert [a["path"] for a in api.get("/models/fraud/versions/1/artifacts", query={"prefix": "model.pkl"}).json()] == [
        "model.pkl"
    ]
    response = api.get("/models/fraud/versions/1/artifacts/model.pkl")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == WEIGHTS
    assert response["X-Checksum-Sha256"] == hashlib.sha256(WEIGHTS).hexdigest()
    ranged = api.get("/models/fraud/versions/1/artifacts/model.pkl", headers={"Range": "bytes=0-6"})
    assert ranged.status_code == 206 and b"".join(ranged.streaming_content) == WEIGHTS[:7]

    assert_error(api.get("/models/fraud/versions/1/artifacts/nope.pkl"), 404)
    assert_error(api.get("/models/fraud/versions/2/artifacts"), 404)
    assert_error(api.get("/models/fraud/versions/1/artifacts/%2e%2e/x"), 400)
    assert_error(api.get("/models/fraud/versions/1/artifacts", query={"prefix": "../"}), 400)


def test_huge_or_odd_numbers_are_4xx_not_500(api, model):
    huge = 10**20
    register(api)
    assert_error(api.get(f"/models/fraud/versions/{huge}"), 404)
    assert_error(api.get(f"/models/fraud/versions/{huge}/artifacts"), 404)
    assert_error(api.patch(f"/models/fraud/versions/{huge}", {"description": "x"}), 404)
    assert_error(api.put("/models/fraud/aliases/candidate", {"version": huge}), 404)
    assert_error(api.get("/models", query={"offset": huge}), 422)
    assert_error(api.get("/models/fraud/versions", query={"offset": huge}), 422)
    assert_error(api.get("/resolve", query={"ref": f"fraud/{huge}"}), 404)
    assert_error(api.get("/resolve", query={"ref": "fraud/²"}), 400)
    assert_error(api.get("/resolve", query={"ref": "fraud/١"}), 400)
