"""Model cards in the dashboard (registry.web.views.cards) and through catalog.card_update: EDIT to edit, sections
size-limited with the error beside the field, a version's sections over its model's, prefilled drafts, the audit
trail, the evidence of a promotion request, the card gate, and the self-contained HTML export."""

from __future__ import annotations

import io
import re

import pytest

from registry.audit.models import AuditAction, AuditEvent
from registry.catalog import artifact_files
from registry.catalog import services as catalog
from registry.catalog.models import ModelCard, Stage
from registry.governance import gates
from registry.governance import services as governance
from registry.governance.models import GateKind, PolicyGate, StagePolicy
from registry.lib import model_card as cards
from registry.tracking import services as tracking
from registry.tracking.services import Point
from tests.builders import dataset_register, metrics_log, run_input_add
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
EMPTY = dict.fromkeys(cards.SECTION_KEYS, "")


@pytest.fixture
def world(settings):
    """olga owns "churn" (v1 from a run with a training and an evaluation dataset and an f1); eddie may edit it,
    rhea read it, otto neither (a private registry)."""
    settings.REGISTRY_DEFAULT_PERMISSION = 0
    people = {
        name: UserFactory(username=name, email=f"{name}@example.com") for name in ("olga", "eddie", "rhea", "otto")
    }
    olga = people["olga"]
    experiment = tracking.experiment_create(name="churn-training", by=olga)
    run = tracking.run_create(experiment=experiment, by=olga, name="gbm")
    artifact_files.artifact_store(owner=run, path="model/model.pkl", stream=io.BytesIO(b"weights"), by=olga)
    metrics_log(run=run, points=[Point("f1", 0.81)])
    run_input_add(run=run, dataset=dataset_register(name="customers-2025", digest="a" * 64), context="training")
    run_input_add(run=run, dataset=dataset_register(name="holdout-q4", digest="b" * 64), context="evaluation")
    model = catalog.model_create(name="churn", by=olga)
    version = catalog.version_create(model=model, by=olga, run=run, artifact_path="model")
    for name, level in (("eddie", "EDIT"), ("rhea", "READ")):
        catalog.model_grant_set(model=model, by=olga, user=people[name], level=level)
        tracking.experiment_grant_set(experiment=experiment, by=olga, user=people[name], level=level)
    return {**people, "model": model, "version": version}


def as_user(client, user):
    client.force_login(user)
    return client


def test_editing_needs_edit_readers_see_it_and_outsiders_learn_nothing(client, world):
    catalog.card_update(model=world["model"], by=world["olga"], sections={"intended_use": "Rank accounts."})
    reader = as_user(client, world["rhea"])
    assert reader.get("/models/churn/card/").status_code == 403
    assert reader.post("/models/churn/card/", {**EMPTY, "intended_use": "Mine now."}).status_code == 403
    page = reader.get("/models/churn/versions/1/").content.decode()
    assert "Rank accounts." in page and 'href="/models/churn/versions/1/card/"' not in page
    assert as_user(client, world["otto"]).get("/models/churn/card/").status_code == 404
    assert as_user(client, world["otto"]).get("/models/churn/card.html").status_code == 404
    assert ModelCard.objects.get().sections == {"intended_use": "Rank accounts."}


def test_an_htmx_save_answers_the_card_and_records_each_revision_in_the_audit_log(client, world):
    editor = as_user(client, world["eddie"])
    response = editor.post(
        "/models/churn/card/", {**EMPTY, "intended_use": "Rank *accounts*.", "limitations": "Not for minors."}, **HTMX
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert "Saved the model card of the model." in body and "<em>accounts</em>" in body
    editor.post(
        "/models/churn/card/",
        {**EMPTY, "intended_use": "Rank accounts by churn risk.", "limitations": "Not for minors."},
    )
    events = AuditEvent.objects.filter(action=AuditAction.MODEL_CARD_CHANGED).order_by("id")
    assert [(e.actor_name, e.to_value) for e in events] == [("eddie", "revision 1"), ("eddie", "revision 2")]
    assert events[1].data["sections"] == {"intended_use": "Rank accounts by churn risk."}
    assert ModelCard.objects.get().revision == 2


def test_a_section_over_its_limit_is_a_form_error_beside_it_and_nothing_is_stored(client, world):
    response = as_user(client, world["eddie"]).post(
        "/models/churn/card/", {**EMPTY, "intended_use": "ok", "limitations": "x" * (cards.SECTION_MAX + 1)}
    )
    body = response.content.decode()
    assert response.status_code == 422
    assert re.search(r'id="model-card-limitations-error"[^>]*>Ensure this value has at most 10000 characters', body)
    assert not ModelCard.objects.exists()
    with pytest.raises(catalog.CardInvalid) as raised:
        catalog.card_update(model=world["model"], by=world["olga"], sections={"risks": "?"})
    assert raised.value.field == "risks"


def test_a_version_overrides_sections_and_reads_the_rest_from_its_model(client, world):
    catalog.card_update(
        model=world["model"], by=world["olga"], sections={"intended_use": "Model-wide use.", "limitations": "Old."}
    )
    as_user(client, world["eddie"]).post(
        "/models/churn/versions/1/card/", {**EMPTY, "limitations": "Fails on new markets."}
    )
    page = client.get("/models/churn/versions/1/").content.decode()
    assert (
        "Model-wide use." in page
        and "from the model" in page
        and "Fails on new markets." in page
        and "Old." not in page
    )
    assert AuditEvent.objects.filter(action=AuditAction.MODEL_CARD_CHANGED, version_number=1).exists()


def test_the_form_is_prefilled_from_datasets_metrics_and_owner(client, world):
    body = as_user(client, world["eddie"]).get("/models/churn/versions/1/card/", **HTMX).content.decode()
    assert "customers-2025" in body and "holdout-q4" in body and "| f1 | 0.81 |" in body
    assert "olga &lt;olga@example.com&gt;" in body and "prefilled" in body


def test_the_card_is_frozen_into_a_request_and_its_gate_wants_intended_use_and_limitations(world):
    model, version, olga = world["model"], world["version"], world["olga"]
    policy = StagePolicy.objects.create(model=model, approval_required_for=["Production"])
    PolicyGate.objects.create(policy=policy, stage=Stage.PRODUCTION, kind=GateKind.MODEL_CARD)
    [result] = gates.evaluate_gates(version, Stage.PRODUCTION)
    assert not result.passed and result.detail == "the model card has no intended use and no limitations and risks"

    catalog.card_update(model=model, by=olga, sections={"intended_use": "Rank accounts.", "limitations": "Biased."})
    request = governance.transition_request(version=version, to_stage=Stage.PRODUCTION, by=olga)
    assert request.evidence["gates"][0]["passed"] is True
    frozen = request.evidence["model_card"]
    assert frozen["model_revision"] == 1
    assert [(s["key"], s["text"], s["from"]) for s in frozen["sections"]] == [
        ("intended_use", "Rank accounts.", "model"),
        ("limitations", "Biased.", "model"),
    ]
    catalog.card_update(model=model, by=olga, sections={"intended_use": "Changed later."})
    request.refresh_from_db()
    assert request.evidence["model_card"]["sections"][0]["text"] == "Rank accounts."


def test_the_export_is_one_self_contained_html_file(client, world):
    catalog.card_update(
        model=world["model"],
        by=world["olga"],
        sections={
            "intended_use": "Rank **accounts**. <script>alert(1)</script>",
            "owners": "[team](https://example.com)",
        },
    )
    response = as_user(client, world["rhea"]).get("/models/churn/versions/1/card.html")
    body = response.content.decode()
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    assert response["Content-Disposition"] == 'attachment; filename="churn-v1-model-card.html"'
    assert response["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    assert body.startswith("<!doctype html>") and "<style>" in body and "<strong>accounts</strong>" in body
    assert "<script" not in body and "<link" not in body and " src=" not in body and "@import" not in body
    assert "/static/" not in body


def test_the_approval_card_shows_the_card_as_it_was_requested(client, world):
    model, version, olga = world["model"], world["version"], world["olga"]
    catalog.card_update(model=model, by=olga, sections={"intended_use": "Rank accounts.", "limitations": "Biased."})
    governance.transition_request(version=version, to_stage=Stage.PRODUCTION, by=olga)
    catalog.card_update(model=model, by=olga, sections={"intended_use": "Rewritten after the request."})
    body = as_user(client, olga).get("/approvals/").content.decode()
    assert "2 of 6 sections written" in body and "Rank accounts." in body
    assert "Rewritten after the request." not in body
