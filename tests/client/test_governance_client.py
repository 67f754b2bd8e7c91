"""Stage requests, approvals, timeline and rollback from the Python client and the `registry` command, against the
live server: a trainer (Model requesters) asks, an approver (Production approvers) decides."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from registry_client import Registry, RegistryError
from registry_client.cli import main

from registry.accounts.models import ApiToken
from registry.catalog.models import ModelVersion
from registry.governance.models import GateKind, PolicyGate, StagePolicy, StageTransitionRequest
from tests.builders import model_create
from tests.governance.helpers import PRODUCTION_APPROVERS, REQUESTERS, build, person

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def requester(trainer):
    return person(trainer.username, REQUESTERS)


@pytest.fixture
def approver_token(transactional_db) -> str:
    return ApiToken.issue(user=person("paula", PRODUCTION_APPROVERS), name="approvals")[1]


@pytest.fixture
def approver(live_server, approver_token) -> Registry:
    return Registry(live_server.url, approver_token, progress=False)


@pytest.fixture
def fraud(requester):
    """Two versions, the second with the better f1."""
    model = model_create(name="fraud", owner=requester)
    build(model, {"f1": 0.80}, by=requester)
    build(model, {"f1": 0.85}, by=requester)
    return model


def stage_of(number: int) -> str:
    return ModelVersion.objects.get(model__name="fraud", version=number).stage


@pytest.fixture
def cli(live_server, capsys):
    """Run `registry ARGS...` with `token`; return (exit status, stdout, stderr)."""

    def run(token: str, *args: str) -> tuple[int, str, str]:
        status = main(["--url", live_server.url, "--token", token, *args])
        out, err = capsys.readouterr()
        return status, out, err

    return run


# --- The client -----------------------------------------------------------------------------------------------------


def test_request_approve_timeline_and_rollback(registry, approver, fraud):
    approver.set_stage("fraud", 1, "Production", comment="First release.")
    request = registry.request_transition("fraud", 2, "production", comment="f1 +5 points", archive_existing=True)
    assert (request["status"], request["to_stage"], request["requested_by"]) == ("pending", "Production", "trainer")
    assert request["evidence"]["metrics"] == {"f1": 0.85}
    assert request["evidence"]["metric_deltas"] == {"f1": pytest.approx(0.05)}
    assert request["url"].endswith(f"/approvals/?request={request['id']}#request-{request['id']}")
    assert [r["id"] for r in approver.pending()] == [request["id"]]
    assert approver.pending("other") == []

    approved = approver.approve(request["id"], comment="Looks right.")
    assert (approved["status"], approved["decided_by"]) == ("approved", "paula")
    assert (stage_of(1), stage_of(2)) == ("Archived", "Production")
    assert registry.pending() == []
    assert registry.transition_request(request["id"])["decision_comment"] == "Looks right."

    timeline = registry.timeline("fraud")
    assert [(i["version"], i["to"] is None) for i in timeline] == [(1, False), (2, True)]
    switch = datetime.fromisoformat(timeline[1]["from"])
    assert registry.stage_at("fraud", switch - timedelta(milliseconds=1)) == [1]
    assert registry.stage_at("fraud", datetime.now(UTC)) == [2]

    restored = approver.rollback("fraud", comment="Latency.")
    assert (restored["version"], restored["stage"]) == (1, "Production")
    assert stage_of(2) == "Archived"
    assert registry.audit("fraud", limit=1)[0]["action"] == "rollback"


def test_refusals_are_registry_errors_with_their_reason(registry, approver, fraud):
    with pytest.raises(RegistryError) as not_allowed:
        registry.set_stage("fraud", 2, "Production")
    assert (not_allowed.value.status, not_allowed.value.code) == (403, "forbidden")
    request = registry.request_transition("fraud", 2, "Production")
    with pytest.raises(RegistryError) as own:
        registry.approve(request["id"])
    assert own.value.status == 403 and "permission to approve" in own.value.message
    rejected = approver.reject(request["id"], comment="Not yet.")
    assert rejected["status"] == "rejected"
    with pytest.raises(RegistryError) as late:
        approver.approve(request["id"])
    assert (late.value.status, late.value.code) == (409, "already_decided")
    assert "already rejected by paula" in late.value.message
    with pytest.raises(RegistryError) as nothing:
        approver.rollback("fraud")
    assert nothing.value.status == 409 and "no version in Production" in nothing.value.message


def test_cancelling_your_own_request(registry, fraud):
    request = registry.request_transition("fraud", 2, "Staging")
    assert registry.cancel(request["id"])["status"] == "cancelled"


# --- The command ----------------------------------------------------------------------------------------------------


def test_promote_approvals_approve_and_rollback_from_the_shell(cli, write_token, approver_token, fraud):
    status, out, err = cli(approver_token, "promote", "fraud", "1", "Production", "--direct", "--comment", "v1 live")
    assert status == 0, err
    assert out.strip() == "fraud version 1 is now in Production."

    status, out, err = cli(
        write_token, "promote", "fraud", "2", "Production", "--comment", "better", "--archive-existing"
    )
    assert status == 0, err
    request = StageTransitionRequest.objects.get()
    assert (request.comment, request.archive_existing) == ("better", True)
    lines = out.strip().splitlines()
    assert lines[0] == f"Request {request.pk}: fraud version 2 None -> Production, pending approval."
    assert re.fullmatch(rf"Approvals: http://.+/approvals/\?request={request.pk}#request-{request.pk}", lines[1])

    status, out, err = cli(approver_token, "approvals")
    header, row = out.strip().splitlines()
    assert header.split() == ["ID", "MODEL", "VERSION", "MOVE", "REQUESTED", "BY", "CREATED", "GATES", "COMMENT"]
    assert row.startswith(f"{request.pk}  ") and "None -> Production" in row and "trainer" in row
    assert row.rstrip().endswith("better")

    status, out, err = cli(approver_token, "approve", str(request.pk), "--comment", "ok")
    assert status == 0, err
    assert out.strip() == f"Approved request {request.pk}: fraud version 2 is now in Production."
    assert (stage_of(1), stage_of(2)) == ("Archived", "Production")

    status, out, err = cli(approver_token, "approvals")
    assert (status, out, err.strip()) == (0, "", "No pending requests.")

    status, out, err = cli(approver_token, "rollback", "fraud", "--comment", "too slow")
    assert status == 0, err
    assert out.strip() == "Rolled back fraud: version 1 is in Production again."


def test_the_shell_reports_refusals_in_one_line(cli, write_token, approver_token, fraud):
    status, out, err = cli(write_token, "promote", "fraud", "2", "Production", "--direct")
    assert status == 1 and out == ""
    assert err.startswith("registry: error: 403 forbidden: Moves to Production need approval")

    cli(write_token, "promote", "fraud", "2", "Staging")
    request = StageTransitionRequest.objects.get()
    status, out, err = cli(write_token, "approve", str(request.pk))
    assert status == 1 and "403 forbidden" in err
    status, out, err = cli(approver_token, "reject", str(request.pk), "--comment", "no")
    assert (status, out.strip()) == (0, f"Rejected request {request.pk}: fraud version 2 stays in place.")
    status, out, err = cli(approver_token, "approve", str(request.pk))
    assert status == 1 and "409 already_decided: This request was already rejected by paula" in err


def test_failing_gates_are_listed_by_the_shell(cli, write_token, approver_token, fraud):
    policy = StagePolicy.objects.create(model=fraud, approval_required_for=["Production"])
    PolicyGate.objects.create(policy=policy, kind=GateKind.METRIC, metric="f1", operator=">=", threshold=0.9)
    cli(write_token, "promote", "fraud", "2", "Production")
    request = StageTransitionRequest.objects.get()
    status, out, err = cli(approver_token, "approvals")
    assert "0/1 pass" in out
    status, out, err = cli(approver_token, "approve", str(request.pk))
    assert status == 1
    assert "409 gates_failed: 1 gate(s) fail for version 2 → Production" in err and "f1 = 0.85 misses 0.9" in err


def test_override_reason_needs_direct(cli, write_token, fraud):
    with pytest.raises(SystemExit) as usage:
        cli(write_token, "promote", "fraud", "2", "Staging", "--override-reason", "why")
    assert usage.value.code == 2
