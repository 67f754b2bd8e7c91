"""Governance through the JSON API: requests, decisions, direct changes, timeline, stage at a time, rollback, audit.

Every answer goes through tests.api.conftest's checks: never a 500, errors in the {"error", "message", "details"}
shape.
"""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.core.serializers.json import DjangoJSONEncoder

from registry.accounts.models import ApiToken
from registry.catalog.models import ModelVersion, Stage
from registry.governance import services
from registry.governance.models import GateKind, PolicyGate, StagePolicy
from tests.api.conftest import Api, assert_error
from tests.builders import model_create
from tests.governance.helpers import PRODUCTION_APPROVERS, REQUESTERS, build, person

pytestmark = pytest.mark.django_db


def api_for(client, user, scope: str = ApiToken.Scope.WRITE) -> Api:
    return Api(client, ApiToken.issue(user=user, name=f"{user.username}'s token", scope=scope)[1])


@pytest.fixture
def rita(client):
    """A requester."""
    return api_for(client, person("rita", REQUESTERS))


@pytest.fixture
def paula(client):
    """A Production approver."""
    return api_for(client, person("paula", PRODUCTION_APPROVERS))


@pytest.fixture
def pete(client):
    """Another Production approver."""
    return api_for(client, person("pete", PRODUCTION_APPROVERS))


@pytest.fixture
def olga(client):
    """An outsider: a token, but no governance permission."""
    return api_for(client, person("olga"))


@pytest.fixture
def root(client):
    return api_for(client, person("root", superuser=True))


@pytest.fixture
def fraud(db):
    model = model_create(name="fraud")
    build(model, {"f1": 0.8, "auc": 0.9}, datasets={"evaluation": "eval"})
    build(model, {"f1": 0.85, "auc": 0.88})
    return model


def request_move(api, version: int = 1, stage: str = "Production", **payload):
    return api.post(f"/models/fraud/versions/{version}/transition-requests", {"to_stage": stage, **payload})


def stage_of(number: int) -> str:
    return ModelVersion.objects.get(model__name="fraud", version=number).stage


# --- Requests -------------------------------------------------------------------------------------------------------


def test_a_request_is_created_with_its_frozen_evidence(rita, fraud):
    response = request_move(rita, comment="Beats the baseline.", archive_existing=True, stage="production")
    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: body[k] for k in ("model", "version", "from_stage", "to_stage", "status", "requested_by")} == {
        "model": "fraud",
        "version": 1,
        "from_stage": "None",
        "to_stage": "Production",
        "status": "pending",
        "requested_by": "rita",
    }
    assert body["archive_existing"] is True and body["comment"] == "Beats the baseline."
    assert body["evidence"]["metrics"] == {"auc": 0.9, "f1": 0.8}
    assert body["evidence"]["datasets"][0]["name"] == "eval"
    assert body["url"] == f"http://testserver/approvals/?request={body['id']}#request-{body['id']}"
    assert stage_of(1) == "None"


@pytest.mark.parametrize(
    ("path", "payload", "status"),
    [
        ("/models/fraud/versions/1/transition-requests", {"to_stage": "Prod"}, 400),
        ("/models/fraud/versions/1/transition-requests", {}, 422),
        ("/models/fraud/versions/9/transition-requests", {"to_stage": "Staging"}, 404),
        ("/models/nope/versions/1/transition-requests", {"to_stage": "Staging"}, 404),
        (f"/models/fraud/versions/{2**70}/transition-requests", {"to_stage": "Staging"}, 404),
    ],
)
def test_bad_requests_are_refused_with_a_reason(rita, fraud, path, payload, status):
    assert_error(rita.post(path, payload), status)


def test_an_outsider_cannot_request(olga, fraud):
    assert_error(request_move(olga), 403, code="forbidden", contains="permission to request")


def test_a_second_pending_request_for_the_same_move_is_a_conflict(rita, fraud):
    request_move(rita)
    assert_error(request_move(rita), 409, code="already_pending")


def test_read_only_tokens_cannot_request(client, fraud):
    reader = api_for(client, person("rita", REQUESTERS), scope=ApiToken.Scope.READ)
    assert_error(request_move(reader), 403)


def test_listing_and_getting_requests(rita, paula, fraud):
    first = request_move(rita).json()
    second = request_move(rita, version=2, stage="Staging").json()
    paula.post(f"/transition-requests/{second['id']}/reject", {"comment": "No."})

    pending = rita.get("/transition-requests").json()
    assert [r["id"] for r in pending["items"]] == [first["id"]] and pending["next_offset"] is None
    everything = rita.get("/transition-requests", query={"status": "all", "model": "fraud"}).json()
    assert [r["id"] for r in everything["items"]] == [second["id"], first["id"]]
    rejected = rita.get("/transition-requests", query={"status": "rejected"}).json()["items"]
    assert [(r["id"], r["decided_by"], r["decision_comment"]) for r in rejected] == [(second["id"], "paula", "No.")]
    assert rita.get("/transition-requests", query={"model": "other"}).json()["items"] == []
    assert_error(rita.get("/transition-requests", query={"status": "open"}), 400, contains="status must be one of")

    assert rita.get(f"/transition-requests/{first['id']}").json() == first
    assert_error(rita.get("/transition-requests/999999"), 404)
    assert_error(rita.get(f"/transition-requests/{2**64}"), 404)


@pytest.mark.parametrize("rows", [1, 50])
def test_listing_costs_the_same_whatever_the_number_of_requests(rita, django_assert_num_queries, rows):
    model = model_create(name="fraud")
    user = person("rita", REQUESTERS)
    for _ in range(rows):
        services.transition_request(version=build(model), to_stage=Stage.STAGING, by=user)
    # token with its user, last-use stamp, the page of requests (version, model, requester and decider joined)
    with django_assert_num_queries(3):
        response = rita.get("/transition-requests")
    assert len(response.json()["items"]) == rows


# --- Decisions ------------------------------------------------------------------------------------------------------


def test_approving_moves_the_version_and_a_second_approval_is_a_conflict(rita, paula, pete, fraud):
    request_id = request_move(rita).json()["id"]
    response = paula.post(f"/transition-requests/{request_id}/approve", {"comment": "Evidence checked."})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["decided_by"], body["decision_comment"]) == ("approved", "paula", "Evidence checked.")
    assert stage_of(1) == "Production"
    assert rita.get("/models/fraud/versions/1").json()["stage"] == "Production"

    late = assert_error(pete.post(f"/transition-requests/{request_id}/approve", {}), 409, code="already_decided")
    assert "already approved by paula at" in late["message"]


def test_approving_your_own_request_is_forbidden(paula, fraud):
    request_id = request_move(paula).json()["id"]
    assert_error(paula.post(f"/transition-requests/{request_id}/approve", {}), 403, contains="your own request")


def test_a_requester_cannot_approve(rita, paula, fraud):
    request_id = request_move(paula).json()["id"]
    assert_error(rita.post(f"/transition-requests/{request_id}/approve", {}), 403, code="forbidden")
    assert_error(rita.post(f"/transition-requests/{request_id}/reject", {}), 403, code="forbidden")


def test_failing_gates_are_listed_and_only_a_superuser_overrides_them(rita, paula, root, fraud):
    policy = StagePolicy.objects.create(model=fraud, approval_required_for=["Production"])
    PolicyGate.objects.create(policy=policy, kind=GateKind.METRIC, metric="f1", operator=">=", threshold=0.9)
    PolicyGate.objects.create(policy=policy, kind=GateKind.DATASET, context="evaluation")
    PolicyGate.objects.create(policy=policy, kind=GateKind.IMAGE)
    request_id = request_move(rita, version=2).json()["id"]

    refused = assert_error(paula.post(f"/transition-requests/{request_id}/approve", {}), 409, code="gates_failed")
    assert refused["details"] == [
        {"gate": "f1 >= 0.9", "message": "f1 = 0.85 misses 0.9"},
        {"gate": "has a dataset with context 'evaluation'", "message": "no dataset logged with context 'evaluation'"},
        {"gate": "Has a container image", "message": "no container image recorded"},
    ]
    not_root = paula.post(f"/transition-requests/{request_id}/approve", {"override_reason": "Trust me."})
    assert_error(not_root, 403, contains="Only a superuser")
    assert stage_of(2) == "None"

    response = root.post(f"/transition-requests/{request_id}/approve", {"override_reason": "Incident 42."})
    assert response.status_code == 200
    assert stage_of(2) == "Production"
    overridden = [e for e in rita.get("/models/fraud/audit").json()["items"] if e["action"] == "gate_overridden"]
    assert [(e["actor"], e["comment"], e["request_id"]) for e in overridden] == [("root", "Incident 42.", request_id)]


def test_rejecting_and_cancelling(rita, paula, fraud):
    rejected = request_move(rita).json()["id"]
    body = paula.post(f"/transition-requests/{rejected}/reject", {"comment": "Not yet."}).json()
    assert (body["status"], body["decision_comment"]) == ("rejected", "Not yet.")
    cancelled = request_move(rita).json()["id"]
    assert_error(paula.post(f"/transition-requests/{cancelled}/cancel", {}), 403, contains="Only the requester")
    assert rita.post(f"/transition-requests/{cancelled}/cancel", {}).json()["status"] == "cancelled"
    assert stage_of(1) == "None"
    assert_error(paula.post("/transition-requests/999999/reject", {}), 404)


# --- Direct changes -------------------------------------------------------------------------------------------------


def test_direct_changes_where_the_policy_allows_them(rita, paula, olga, fraud):
    staged = rita.post("/models/fraud/versions/1/stage", {"to_stage": "Staging", "comment": "Try it."})
    assert staged.status_code == 200 and staged.json()["stage"] == "Staging"
    assert_error(rita.post("/models/fraud/versions/1/stage", {"to_stage": "Production"}), 403, contains="approval")
    assert_error(olga.post("/models/fraud/versions/2/stage", {"to_stage": "Staging"}), 403)
    moved = paula.post("/models/fraud/versions/1/stage", {"to_stage": "Production", "archive_existing": True})
    assert moved.json()["stage"] == "Production"
    assert_error(paula.post("/models/fraud/versions/1/stage", {"to_stage": "Live"}), 400, contains="Unknown stage")


# --- Timeline, stage at a time, rollback, audit ---------------------------------------------------------------------


@pytest.fixture
def history(paula, fraud, clock):
    """v1 in Production at t1, replaced by v2 at t2; returns (t1, t2)."""
    t1 = clock.advance(hours=1)
    paula.post("/models/fraud/versions/1/stage", {"to_stage": "Production"})
    t2 = clock.advance(hours=1)
    paula.post("/models/fraud/versions/2/stage", {"to_stage": "Production", "archive_existing": True})
    clock.advance(hours=1)
    return t1, t2


def iso(moment) -> str:
    """A time as the API writes it (DjangoJSONEncoder: milliseconds, Z for UTC)."""
    return DjangoJSONEncoder().default(moment.astimezone(UTC))


def test_the_timeline_says_who_held_production_from_when_to_when(rita, history):
    t1, t2 = history
    body = rita.get("/models/fraud/timeline", query={"stage": "Production"}).json()
    assert body["model"] == "fraud" and body["stage"] == "Production"
    assert body["intervals"] == [
        {"version": 1, "from": iso(t1), "to": iso(t2)},
        {"version": 2, "from": iso(t2), "to": None},
    ]
    archived = rita.get("/models/fraud/timeline", query={"stage": "archived"}).json()["intervals"]
    assert archived == [{"version": 1, "from": iso(t2), "to": None}]
    assert_error(rita.get("/models/fraud/timeline", query={"stage": "None"}), 400)
    assert_error(rita.get("/models/fraud/timeline", query={"stage": "Live"}), 400)
    assert_error(rita.get("/models/nope/timeline"), 404)


def test_what_was_in_production_at_a_time(rita, history):
    t1, t2 = history
    second = timedelta(seconds=1)

    def at(moment) -> list[int]:
        return rita.get("/models/fraud/stage-at", query={"at": iso(moment)}).json()["versions"]

    assert (at(t1 - second), at(t1 + second), at(t2 + second)) == ([], [1], [2])
    naive = (t1 + second).astimezone(UTC).replace(tzinfo=None).isoformat()  # read as UTC
    assert rita.get("/models/fraud/stage-at", query={"at": naive}).json()["versions"] == [1]
    assert_error(rita.get("/models/fraud/stage-at", query={"at": "yesterday"}), 422)
    assert_error(rita.get("/models/fraud/stage-at"), 422)


def test_rollback_puts_the_previous_version_back(rita, paula, history):
    assert_error(rita.post("/models/fraud/rollback", {}), 403, contains="Production")
    response = paula.post("/models/fraud/rollback", {"comment": "Latency."})
    assert response.status_code == 200
    assert (response.json()["version"], response.json()["stage"]) == (1, "Production")
    assert (stage_of(1), stage_of(2)) == ("Production", "Archived")


def test_rollback_with_nothing_to_go_back_to_is_refused(paula, fraud):
    assert_error(paula.post("/models/fraud/rollback", {}), 409, contains="no version in Production")
    assert_error(paula.post("/models/nope/rollback", {}), 404)


def test_the_audit_log_is_paged_newest_first(rita, paula, fraud):
    request_id = request_move(rita).json()["id"]
    paula.post(f"/transition-requests/{request_id}/approve", {"comment": "OK"})
    everything = rita.get("/models/fraud/audit").json()
    actions = [e["action"] for e in everything["items"]]
    assert actions == [
        "stage_changed",
        "request_approved",
        "request_created",
        "version_created",
        "version_created",
        "model_created",
    ]
    approved = everything["items"][1]
    assert approved["actor"] == "paula" and approved["request_id"] == request_id and approved["version"] == 1
    assert (approved["from_value"], approved["to_value"], approved["comment"]) == ("None", "Production", "OK")
    first = rita.get("/models/fraud/audit", query={"limit": 2}).json()
    assert [e["id"] for e in first["items"]] == [e["id"] for e in everything["items"][:2]]
    following = rita.get("/models/fraud/audit", query={"limit": 2, "offset": first["next_offset"]}).json()
    assert [e["id"] for e in following["items"]] == [e["id"] for e in everything["items"][2:4]]
    by_cursor, token = [], None
    while True:
        page = rita.get("/models/fraud/audit", query={"limit": 4, **({"after": token} if token else {})}).json()
        by_cursor += [e["id"] for e in page["items"]]
        if not (token := page["next_after"]):
            break
    assert by_cursor == [e["id"] for e in everything["items"]]
    assert_error(rita.get("/models/fraud/audit", query={"limit": 0}), 422)
    assert_error(rita.get("/audit", query={"after": "garbage"}), 400)
