"""Editing in the dashboard (registry.web.views.edit): each form calls its service, so permissions and the audit log
come with it; a bad or refused form comes back with the message beside the field and stores nothing."""

from __future__ import annotations

import io
import json

import pytest

from registry.audit.models import AuditAction, AuditEvent
from registry.catalog import artifact_files
from registry.catalog import services as catalog
from registry.catalog.models import ModelAlias, ModelVersion, RegisteredModel, Stage
from registry.governance import services as governance
from registry.governance.models import StageTransitionRequest
from registry.tracking import services as tracking
from tests.builders import admin
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def world(settings):
    """olga owns model "churn" (v1 and v2 from one run with a model folder) and its experiment; eddie may edit
    both, rhea may read them, otto may see neither (a private registry)."""
    settings.REGISTRY_DEFAULT_PERMISSION = 0
    people = {name: UserFactory(username=name) for name in ("olga", "eddie", "rhea", "otto")}
    olga = people["olga"]
    experiment = tracking.experiment_create(name="churn-training", by=olga)
    run = tracking.run_create(experiment=experiment, by=olga, name="gbm")
    for path, body in (("model/MLmodel", b"flavors: {}\n"), ("model/model.pkl", b"\x80\x04weights\x00")):
        artifact_files.artifact_store(owner=run, path=path, stream=io.BytesIO(body), by=olga)
    model = catalog.model_create(name="churn", by=olga)
    for _ in range(2):
        catalog.version_create(model=model, by=olga, run=run, artifact_path="model")
    for name, level in (("eddie", "EDIT"), ("rhea", "READ")):
        catalog.model_grant_set(model=model, by=olga, user=people[name], level=level)
        tracking.experiment_grant_set(experiment=experiment, by=olga, user=people[name], level=level)
    return {**people, "model": model, "run": run, "experiment": experiment}


def as_user(client, user):
    client.force_login(user)
    return client


# --- Description ----------------------------------------------------------------------------------------------------


def test_readers_get_no_form_and_outsiders_learn_nothing(client, world):
    assert as_user(client, world["rhea"]).get("/models/churn/description/").status_code == 403
    assert as_user(client, world["otto"]).get("/models/churn/description/").status_code == 404
    assert as_user(client, world["rhea"]).post("/models/churn/tags/", {"key": "a", "value": "b"}).status_code == 403
    assert RegisteredModel.objects.get(name="churn").tags == {}


def test_an_htmx_save_answers_the_section_with_its_message_and_records_it(client, world):
    response = as_user(client, world["eddie"]).post(
        "/models/churn/description/", {"description": "Predicts *churn*."}, **HTMX
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert '<section class="card" id="model-description"' in body and "<html" not in body
    assert "Saved the description of model." in body and "<em>churn</em>" in body
    event = AuditEvent.objects.get(action=AuditAction.MODEL_UPDATED)
    assert event.actor_name == "eddie" and event.model_name == "churn"


def test_without_javascript_the_form_is_a_page_and_a_save_redirects_back(client, world):
    as_user(client, world["eddie"])
    page = client.get("/models/churn/versions/2/description/")
    assert page.status_code == 200 and "<html" in page.content.decode()
    response = client.post("/models/churn/versions/2/description/", {"description": "Retrained."})
    assert response.status_code == 302 and response["Location"] == "/models/churn/versions/2/"
    assert ModelVersion.objects.get(model__name="churn", version=2).description == "Retrained."


def test_a_description_too_long_comes_back_with_the_error_and_nothing_changes(client, world):
    response = as_user(client, world["eddie"]).post("/models/churn/description/", {"description": "x" * 50_001})
    assert response.status_code == 422
    assert "Ensure this value has at most 50000 characters" in response.content.decode()
    assert RegisteredModel.objects.get(name="churn").description == ""


def test_markdown_preview_is_sanitised(client, world):
    response = as_user(client, world["rhea"]).post(
        "/markdown-preview/", {"description": "**bold** <script>alert(1)</script> [x](javascript:alert(1))"}
    )
    body = response.content.decode()
    assert "<strong>bold</strong>" in body
    assert "<script" not in body and "javascript:" not in body


# --- Tags -----------------------------------------------------------------------------------------------------------


def test_tags_rows_replace_the_set_dropping_empty_rows(client, world):
    as_user(client, world["eddie"]).post(
        "/models/churn/tags/", {"key": ["team", "", "tier"], "value": ["growth", "", "gold"]}, **HTMX
    )
    assert RegisteredModel.objects.get(name="churn").tags == {"team": "growth", "tier": "gold"}
    event = AuditEvent.objects.get(action=AuditAction.MODEL_TAGS_CHANGED)
    assert event.data["set"] == {"team": "growth", "tier": "gold"}


@pytest.mark.parametrize(
    ("keys", "values", "message"),
    [
        (["team", "team"], ["a", "b"], "used twice"),
        (["", "tier"], ["orphan", "gold"], "Give this tag a key"),
        (["k" * 251], ["v"], "at most 250 characters"),
    ],
)
def test_bad_tag_rows_are_refused_beside_the_row(client, world, keys, values, message):
    response = as_user(client, world["eddie"]).post("/models/churn/tags/", {"key": keys, "value": values}, **HTMX)
    assert response.status_code == 200  # htmx swaps the form back in, errors included
    assert message in response.content.decode() and 'aria-invalid="true"' in response.content.decode()
    assert RegisteredModel.objects.get(name="churn").tags == {}


# --- Aliases --------------------------------------------------------------------------------------------------------


def test_an_alias_is_set_by_version_number(client, world):
    response = as_user(client, world["eddie"]).post("/models/churn/aliases/", {"alias": "candidate", "version": 2})
    assert response.status_code == 302
    assert ModelAlias.objects.get(model__name="churn", alias="candidate").version.version == 2
    assert AuditEvent.objects.filter(action=AuditAction.ALIAS_SET, actor_name="eddie").exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"alias": "candidate", "version": 7}, "churn has no version 7; the newest is v2."),
        ({"alias": "has space", "version": 1}, "An alias must start with a letter"),
        ({"alias": "candidate", "version": "two"}, "Enter a whole number."),
    ],
)
def test_a_bad_alias_form_says_what_to_fix(client, world, data, message):
    response = as_user(client, world["eddie"]).post("/models/churn/aliases/", data)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not ModelAlias.objects.exists()


def test_a_protected_alias_opens_a_request_instead(client, world):
    response = as_user(client, world["eddie"]).post(
        "/models/churn/aliases/", {"alias": "champion", "version": 2}, **HTMX
    )
    request = StageTransitionRequest.objects.get(alias="champion")
    assert f"request #{request.pk} for @champion → v2 opened" in response.content.decode()
    assert not ModelAlias.objects.filter(alias="champion").exists()


def test_a_reader_cannot_move_aliases(client, world):
    response = as_user(client, world["rhea"]).post("/models/churn/aliases/", {"alias": "candidate", "version": 2})
    assert response.status_code == 422
    assert "You need EDIT access" in response.content.decode()
    assert not ModelAlias.objects.exists()


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "Production", "model_list", ""])
def test_the_next_address_must_be_a_path_on_this_site(client, world, target):
    """A bare word is not a path: Django's redirect() would look it up as a view name (a 500 when there is none)."""
    response = as_user(client, world["eddie"]).post(
        "/models/churn/aliases/", {"alias": "candidate", "version": 1, "next": target}
    )
    assert response["Location"] == "/models/churn/#aliases"


# --- Creating and registering ---------------------------------------------------------------------------------------


def test_create_a_model_and_own_it(client, world):
    response = as_user(client, world["otto"]).post("/new-model/", {"name": "fraud", "everyone": "NONE"})
    assert response.status_code == 302 and response["Location"] == "/models/fraud/"
    model = RegisteredModel.objects.get(name="fraud")
    assert model.owner.username == "otto" and model.default_level == 0


@pytest.mark.parametrize(("name", "message"), [("churn", "already exists"), ("x" * 300, "at most 256 characters")])
def test_a_model_name_that_cannot_be_is_refused_beside_the_name(client, world, name, message):
    response = as_user(client, world["otto"]).post("/new-model/", {"name": name})
    assert response.status_code == 422
    assert message in response.content.decode()
    assert RegisteredModel.objects.count() == 1


def test_register_a_runs_folder_as_the_next_version(client, world):
    run = world["run"]
    as_user(client, world["eddie"])
    page = client.get(f"/register/?run={run.pk}").content.decode()
    assert 'value="model" checked' in page and "2 files" in page
    response = client.post("/register/", {"run": run.pk, "folder": "model", "model": "churn"})
    assert response.status_code == 302 and response["Location"] == "/models/churn/versions/3/"
    version = ModelVersion.objects.get(model__name="churn", version=3)
    assert sorted(version.artifacts.values_list("path", flat=True)) == ["MLmodel", "model.pkl"]


def test_the_folder_picker_answers_alone_for_htmx(client, world):
    run = world["run"]
    response = as_user(client, world["eddie"]).get(
        f"/register/?run={run.pk}", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="register-folders"
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<fieldset class="field" id="register-folders">')
    assert "(all files)" in body and "<code>model/</code>" in body


@pytest.mark.parametrize(
    ("user", "data", "field_error"),
    [
        ("rhea", {"folder": "model", "model": "churn"}, "You need EDIT access"),  # may read, not register
        ("otto", {"folder": "model", "model": "churn"}, "No run with this id that you may read"),
        ("eddie", {"folder": "../etc", "model": "churn"}, "id_folder"),
        ("eddie", {"folder": "model", "model": "nope"}, "tick “create it”"),
    ],
)
def test_a_registration_that_cannot_be_says_why_and_stores_nothing(client, world, user, data, field_error):
    response = as_user(client, world[user]).post("/register/", {"run": world["run"].pk, **data})
    assert response.status_code == 422
    body = response.content.decode()
    assert field_error in body or "field-error" in body
    assert ModelVersion.objects.count() == 2 and RegisteredModel.objects.count() == 1


def test_registering_under_a_new_name_creates_the_model_in_the_same_step(client, world):
    response = as_user(client, world["eddie"]).post(
        "/register/", {"run": world["run"].pk, "folder": "model", "model": "churn-next", "create": "on"}
    )
    assert response["Location"] == "/models/churn-next/versions/1/"
    assert RegisteredModel.objects.get(name="churn-next").owner.username == "eddie"


# --- Renaming -------------------------------------------------------------------------------------------------------


def test_a_manager_renames_a_model_and_its_aliases_and_history_follow(client, world):
    model = world["model"]
    governance.alias_set(model=model, alias="champion", version=model.versions.get(version=2), by=admin())
    page = as_user(client, world["olga"]).get("/models/churn/").content.decode()
    assert 'href="/models/churn/rename/"' in page
    body = client.get("/models/churn/rename/").content.decode()
    assert "churn@champion" in body and "@champion" in body and 'value="churn"' in body

    response = client.post("/models/churn/rename/", {"new_name": "churn-gbm"})
    assert response.status_code == 302 and response["Location"] == "/models/churn-gbm/"
    model = RegisteredModel.objects.get(pk=world["model"].pk)
    assert model.name == "churn-gbm" and model.aliases.get().alias == "champion"
    event = AuditEvent.objects.get(action=AuditAction.MODEL_RENAMED)
    assert (event.actor_name, event.from_value, event.to_value) == ("olga", "churn", "churn-gbm")
    page = client.get(response["Location"]).content.decode()
    assert "Renamed churn to churn-gbm" in page
    assert client.get("/models/churn/").status_code == 404


@pytest.mark.parametrize(
    ("new_name", "words"),
    [
        ("churn", "is its name already"),
        ("taken", "already exists"),
        ("TAKEN", "would be mistaken for it"),
        ("a/b", "must not contain"),
        ("", "This field is required"),
        ("x" * 300, "at most"),
    ],
)
def test_a_refused_name_is_an_error_on_the_page_and_changes_nothing(client, world, new_name, words):
    catalog.model_create(name="taken", by=world["olga"])
    response = as_user(client, world["olga"]).post("/models/churn/rename/", {"new_name": new_name})
    assert response.status_code == 422 and words in response.content.decode(), response.content.decode()[-3000:]
    assert RegisteredModel.objects.filter(name="churn").exists()
    assert not AuditEvent.objects.filter(action=AuditAction.MODEL_RENAMED).exists()


def test_only_managers_rename(client, world):
    assert as_user(client, world["eddie"]).post("/models/churn/rename/", {"new_name": "mine"}).status_code == 403
    assert "/rename/" not in client.get("/models/churn/").content.decode()
    assert as_user(client, world["otto"]).get("/models/churn/rename/").status_code == 404
    assert RegisteredModel.objects.filter(name="churn").exists()


# --- Deleting -------------------------------------------------------------------------------------------------------


def test_the_delete_page_names_what_goes(client, world):
    governance.alias_set(model=world["model"], alias="old", version=ModelVersion.objects.get(version=1), by=admin())
    body = as_user(client, world["olga"]).get("/models/churn/delete/").content.decode()
    assert "2 versions" in body and "4 files" in body and "churn@old" in body


def test_a_model_is_deleted_only_when_its_name_is_typed(client, world):
    as_user(client, world["olga"])
    assert client.post("/models/churn/delete/", {"confirm_name": "chrun"}).status_code == 422
    assert RegisteredModel.objects.filter(name="churn").exists()
    response = client.post("/models/churn/delete/", {"confirm_name": "churn"})
    assert response["Location"] == "/models/"
    assert not RegisteredModel.objects.filter(name="churn").exists()
    assert AuditEvent.objects.filter(action=AuditAction.MODEL_DELETED, actor_name="olga").exists()


def test_a_model_in_production_is_not_deleted(client, world):
    governance.stage_change_direct(version=ModelVersion.objects.get(version=2), to_stage=Stage.PRODUCTION, by=admin())
    response = as_user(client, world["olga"]).post("/models/churn/delete/", {"confirm_name": "churn"})
    assert response.status_code == 422
    assert "archive it before deleting the model" in response.content.decode()
    assert RegisteredModel.objects.filter(name="churn").exists()


def test_only_the_author_or_a_manager_deletes_a_version(client, world):
    response = as_user(client, world["eddie"]).post("/models/churn/versions/1/delete/", {"confirm": "yes"})
    assert response.status_code == 422
    assert "Only the author of version 1" in response.content.decode()
    response = as_user(client, world["olga"]).post("/models/churn/versions/1/delete/", {"confirm": "yes"})
    assert response["Location"] == "/models/churn/"
    assert list(ModelVersion.objects.values_list("version", flat=True)) == [2]


# --- File previews --------------------------------------------------------------------------------------------------


def test_text_files_preview_inline_binary_ones_do_not(client, world):
    run = world["run"]
    for path, body in (
        ("card.md", b"# Churn\n<script>x</script>"),
        ("schema.json", b'{"b": 1, "a": [1, 2]}'),
        ("requirements.txt", b"scikit-learn==1.5\n"),
        ("weights.txt", b"\x00\x01binary"),
    ):
        artifact_files.artifact_store(owner=run, path=path, stream=io.BytesIO(body), by=world["olga"])
    as_user(client, world["rhea"])
    markdown = client.get(f"/runs/{run.pk}/preview/card.md").content.decode()
    assert "<h1>Churn</h1>" in markdown and "<script" not in markdown
    pretty = client.get(f"/runs/{run.pk}/preview/schema.json").content.decode()
    assert json.dumps({"b": 1, "a": [1, 2]}, indent=2).replace('"', "&quot;") in pretty
    assert "scikit-learn==1.5" in client.get(f"/runs/{run.pk}/preview/requirements.txt").content.decode()
    assert "binary; download it" in client.get(f"/runs/{run.pk}/preview/weights.txt").content.decode()
    assert (
        "No preview for this kind of file" in client.get("/models/churn/versions/1/preview/model.pkl").content.decode()
    )
    assert as_user(client, world["otto"]).get(f"/runs/{run.pk}/preview/card.md").status_code == 404


# --- The rest of the site -------------------------------------------------------------------------------------------


def test_pages_carry_a_content_security_policy_without_inline_scripts(client, world):
    response = as_user(client, world["rhea"]).get("/models/churn/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-eval" not in policy and "'unsafe-inline'" not in policy.split("style-src-attr")[0]
    body = response.content.decode()
    assert "<script>" not in body and " onclick=" not in body


def test_a_misspelled_model_gets_the_styled_404_with_the_search_filled_in(client, world):
    response = as_user(client, world["rhea"]).get("/models/chrun/versions/3/")
    body = response.content.decode()
    assert response.status_code == 404
    assert "No model named &#x27;chrun&#x27;." in body
    assert 'id="error-q" name="q" type="search" placeholder="Model name" value="chrun"' in body
