"""The governance services: who may request, approve, reject, cancel and move directly; gates and their override;
frozen evidence; the audit log of every path; the Production timeline, holders at a time, and rollback."""

from __future__ import annotations

from datetime import timedelta

import pytest

from registry.audit.models import AuditAction, AuditEvent
from registry.catalog.models import ModelVersion, Stage
from registry.governance import gates, services
from registry.governance.errors import AlreadyDecided, AlreadyPending, GatesFailed, GovernanceError, NotAllowed
from registry.governance.history import holders_at
from registry.governance.models import (
    ChangeKind,
    GateKind,
    PolicyGate,
    RequestStatus,
    StageChange,
    StagePolicy,
    StageTransitionRequest,
    stage_intervals,
)
from registry.tracking.models import MetricSeries
from registry.tracking.services import Point
from tests.builders import alias_delete, alias_set, metrics_log, model_create, version_stage_set
from tests.governance.helpers import PRODUCTION_APPROVERS, REQUESTERS, STAGING_APPROVERS, build, person

pytestmark = pytest.mark.django_db


# --- Personas and data ----------------------------------------------------------------------------------------------


@pytest.fixture
def requester(db):
    return person("rita", REQUESTERS)


@pytest.fixture
def approver(db):
    return person("paula", PRODUCTION_APPROVERS)


@pytest.fixture
def second_approver(db):
    return person("pete", PRODUCTION_APPROVERS)


@pytest.fixture
def staging_approver(db):
    return person("stan", STAGING_APPROVERS)


@pytest.fixture
def outsider(db):
    return person("olga")


@pytest.fixture
def root(db):
    return person("root", superuser=True)


@pytest.fixture
def fraud(requester):
    """Owned by rita, the data scientist who registers its versions and asks for their promotion."""
    return model_create(name="fraud", owner=requester)


@pytest.fixture
def v1(fraud, requester):
    return build(fraud, {"f1": 0.80, "auc": 0.90}, by=requester, datasets={"training": "train", "evaluation": "eval"})


@pytest.fixture
def v2(fraud, requester):
    return build(fraud, {"f1": 0.85, "auc": 0.88}, by=requester, datasets={"training": "train"})


def production_gate(fraud, kind=GateKind.METRIC, **fields) -> PolicyGate:
    policy, _ = StagePolicy.objects.get_or_create(model=fraud, defaults={"approval_required_for": ["Production"]})
    return PolicyGate.objects.create(policy=policy, stage=Stage.PRODUCTION, kind=kind, **fields)


def ask(version, by, stage=Stage.PRODUCTION, **kwargs) -> StageTransitionRequest:
    return services.transition_request(version=version, to_stage=stage, by=by, **kwargs)


def actions(model, **filters) -> list[str]:
    return list(
        AuditEvent.objects.filter(model_id=model.pk, **filters).order_by("at", "id").values_list("action", flat=True)
    )


def stage_of(version) -> str:
    return ModelVersion.objects.values_list("stage", flat=True).get(pk=version.pk)


# --- The permission matrix ------------------------------------------------------------------------------------------


def test_a_requester_asks_and_another_approver_approves(v1, requester, approver):
    request = ask(v1, requester, comment="Beats the baseline.")
    assert request.status == RequestStatus.PENDING
    assert (request.from_stage, request.to_stage) == ("None", "Production")
    assert stage_of(v1) == "None"  # nothing moves until someone approves

    approved = services.transition_approve(request_id=request.pk, by=approver, comment="Checked the evidence.")

    assert approved.status == RequestStatus.APPROVED
    assert approved.decided_by == approver and approved.decision_comment == "Checked the evidence."
    assert stage_of(v1) == "Production"
    change = StageChange.objects.get(version=v1)
    assert (change.kind, change.request_id, change.changed_by) == (ChangeKind.APPROVAL, request.pk, approver)


def test_self_approval_is_refused_by_default(v1, approver):
    request = ask(v1, approver)
    with pytest.raises(NotAllowed, match="your own request"):
        services.transition_approve(request_id=request.pk, by=approver)
    assert StageTransitionRequest.objects.get(pk=request.pk).status == RequestStatus.PENDING
    assert stage_of(v1) == "None"


def test_self_approval_is_allowed_when_the_policy_says_so(fraud, v1, approver):
    StagePolicy.objects.create(model=fraud, approval_required_for=["Production"], allow_self_approval=True)
    request = ask(v1, approver)
    services.transition_approve(request_id=request.pk, by=approver)
    assert stage_of(v1) == "Production"


def test_a_requester_cannot_approve_or_reject_production(v1, requester, approver):
    request = ask(v1, approver)
    with pytest.raises(NotAllowed, match="approve moves to Production"):
        services.transition_approve(request_id=request.pk, by=requester)
    with pytest.raises(NotAllowed, match="decide moves to Production"):
        services.transition_reject(request_id=request.pk, by=requester)


def test_a_staging_approver_decides_staging_but_not_production(v1, v2, requester, staging_approver):
    to_staging = ask(v1, requester, Stage.STAGING)
    services.transition_approve(request_id=to_staging.pk, by=staging_approver)
    assert stage_of(v1) == "Staging"
    to_production = ask(v2, requester)
    with pytest.raises(NotAllowed):
        services.transition_approve(request_id=to_production.pk, by=staging_approver)


def test_an_outsider_can_do_nothing(fraud, v1, outsider, requester, approver):
    with pytest.raises(NotAllowed, match="permission to request"):
        ask(v1, outsider)
    request = ask(v1, requester)
    for decide in (services.transition_approve, services.transition_reject, services.transition_cancel):
        with pytest.raises(NotAllowed):
            decide(request_id=request.pk, by=outsider)
    with pytest.raises(NotAllowed):
        services.stage_change_direct(version=v1, to_stage=Stage.STAGING, by=outsider)
    services.transition_approve(request_id=request.pk, by=approver)
    with pytest.raises(NotAllowed):
        services.production_rollback(model=fraud, by=outsider)
    assert StageTransitionRequest.objects.get(pk=request.pk).status == RequestStatus.APPROVED


def test_only_the_requester_or_a_superuser_cancels(v1, v2, requester, approver, root):
    mine = ask(v1, requester)
    with pytest.raises(NotAllowed, match="Only the requester"):
        services.transition_cancel(request_id=mine.pk, by=approver)
    services.transition_cancel(request_id=mine.pk, by=requester, comment="Wrong version.")
    assert StageTransitionRequest.objects.get(pk=mine.pk).status == RequestStatus.CANCELLED
    theirs = ask(v2, requester)
    services.transition_cancel(request_id=theirs.pk, by=root)
    assert StageTransitionRequest.objects.get(pk=theirs.pk).status == RequestStatus.CANCELLED


def test_a_rejected_request_moves_nothing_and_cannot_be_approved_afterwards(v1, requester, approver, second_approver):
    request = ask(v1, requester)
    services.transition_reject(request_id=request.pk, by=approver, comment="Eval set too small.")
    assert stage_of(v1) == "None"
    with pytest.raises(AlreadyDecided, match="already rejected by paula at"):
        services.transition_approve(request_id=request.pk, by=second_approver)


def test_one_pending_request_per_version_and_target(v1, requester):
    ask(v1, requester)
    with pytest.raises(AlreadyPending):
        ask(v1, requester)
    ask(v1, requester, Stage.STAGING)  # another target is another request


def test_asking_for_the_current_stage_is_refused(v1, requester):
    version_stage_set(version=v1, stage=Stage.STAGING)
    with pytest.raises(GovernanceError, match="already in Staging"):
        ask(v1, requester, Stage.STAGING)


# --- Direct changes -------------------------------------------------------------------------------------------------


def test_direct_changes_follow_the_policy(fraud, v1, v2, requester, approver):
    # Staging needs no approval under the default policy: a requester may move there now.
    services.stage_change_direct(version=v1, to_stage=Stage.STAGING, by=requester)
    assert stage_of(v1) == "Staging"
    # Production does: a requester may not, a Production approver may (allow_direct_changes).
    with pytest.raises(NotAllowed, match="need approval"):
        services.stage_change_direct(version=v1, to_stage=Stage.PRODUCTION, by=requester)
    services.stage_change_direct(version=v1, to_stage=Stage.PRODUCTION, by=approver, comment="Hotfix.")
    assert StageChange.objects.filter(version=v1, to_stage="Production").get().kind == ChangeKind.DIRECT
    # Without allow_direct_changes nobody skips the request.
    StagePolicy.objects.create(model=fraud, approval_required_for=["Production"], allow_direct_changes=False)
    with pytest.raises(NotAllowed, match="need an approved request"):
        services.stage_change_direct(version=v2, to_stage=Stage.PRODUCTION, by=approver)


def test_archive_existing_archives_the_current_holder(v1, v2, approver):
    services.stage_change_direct(version=v1, to_stage=Stage.PRODUCTION, by=approver)
    services.stage_change_direct(version=v2, to_stage=Stage.PRODUCTION, by=approver, archive_existing=True)
    assert (stage_of(v1), stage_of(v2)) == ("Archived", "Production")
    archived = StageChange.objects.get(version=v1, to_stage="Archived")
    assert archived.kind == ChangeKind.ARCHIVE_EXISTING


def test_an_approved_request_with_archive_existing_archives_the_holder(v1, v2, requester, approver):
    services.stage_change_direct(version=v1, to_stage=Stage.PRODUCTION, by=approver)
    request = ask(v2, requester, archive_existing=True)
    services.transition_approve(request_id=request.pk, by=approver)
    assert (stage_of(v1), stage_of(v2)) == ("Archived", "Production")
    assert StageChange.objects.get(version=v1, to_stage="Archived").request_id == request.pk


# --- Gates ----------------------------------------------------------------------------------------------------------


def test_passing_gates_let_the_approval_through_and_are_recorded(fraud, v1, requester, approver):
    production_gate(fraud, metric="f1", operator=">=", threshold=0.75)
    production_gate(fraud, kind=GateKind.DATASET, context="evaluation")
    production_gate(fraud, kind=GateKind.GIT_COMMIT)
    request = ask(v1, requester)
    assert [g["passed"] for g in request.evidence["gates"]] == [True, True, True]
    services.transition_approve(request_id=request.pk, by=approver)
    request.refresh_from_db()
    assert [g["passed"] for g in request.evidence["gates_at_approval"]] == [True, True, True]
    assert stage_of(v1) == "Production"


def test_failing_gates_refuse_the_approval_and_say_which(fraud, v2, requester, approver):
    production_gate(fraud, metric="f1", operator=">=", threshold=0.9)
    production_gate(fraud, kind=GateKind.DATASET, context="evaluation")
    production_gate(fraud, kind=GateKind.GIT_COMMIT)
    request = ask(v2, requester)
    assert [g["passed"] for g in request.evidence["gates"]] == [False, False, True]

    with pytest.raises(GatesFailed) as raised:
        services.transition_approve(request_id=request.pk, by=approver)

    assert raised.value.status == 409
    assert raised.value.details == [
        {"gate": "f1 >= 0.9", "message": "f1 = 0.85 misses 0.9"},
        {"gate": "has a dataset with context 'evaluation'", "message": "no dataset logged with context 'evaluation'"},
    ]
    assert stage_of(v2) == "None"
    assert StageTransitionRequest.objects.get(pk=request.pk).status == RequestStatus.PENDING


def test_a_superuser_overrides_failing_gates_with_a_recorded_reason(fraud, v2, requester, root):
    production_gate(fraud, metric="f1", operator=">=", threshold=0.9)
    request = ask(v2, requester)
    services.transition_approve(request_id=request.pk, by=root, override_reason="Incident: the old model is broken.")
    assert stage_of(v2) == "Production"
    override = AuditEvent.objects.get(model_id=fraud.pk, action=AuditAction.GATE_OVERRIDDEN)
    assert override.comment == "Incident: the old model is broken."
    assert override.actor_name == "root" and override.request_id == request.pk and override.to_value == "Production"
    assert override.data["failures"] == [{"gate": "f1 >= 0.9", "message": "f1 = 0.85 misses 0.9"}]


def test_a_non_superuser_cannot_override_gates(fraud, v2, requester, approver):
    production_gate(fraud, metric="f1", operator=">=", threshold=0.9)
    request = ask(v2, requester)
    with pytest.raises(NotAllowed, match="Only a superuser"):
        services.transition_approve(request_id=request.pk, by=approver, override_reason="Trust me.")
    assert stage_of(v2) == "None"
    assert not AuditEvent.objects.filter(action=AuditAction.GATE_OVERRIDDEN).exists()


def test_gates_apply_to_direct_changes_too(fraud, v2, approver, root):
    production_gate(fraud, metric="f1", operator=">=", threshold=0.9)
    with pytest.raises(GatesFailed):
        services.stage_change_direct(version=v2, to_stage=Stage.PRODUCTION, by=approver)
    services.stage_change_direct(version=v2, to_stage=Stage.PRODUCTION, by=root, override_reason="Known issue.")
    assert stage_of(v2) == "Production"


def test_a_gate_against_the_current_holder(fraud, v1, v2, approver, requester):
    production_gate(fraud, kind=GateKind.METRIC_VS_CURRENT, metric="auc", operator=">=", threshold=0.0)
    services.stage_change_direct(version=v1, to_stage=Stage.PRODUCTION, by=approver)  # nothing to beat yet
    request = ask(v2, requester)
    assert request.evidence["gates"][0]["passed"] is False  # auc 0.88 < 0.90
    assert request.evidence["gates"][0]["detail"] == "auc = 0.88 misses 0.9"


# --- Evidence -------------------------------------------------------------------------------------------------------


def test_evidence_is_frozen_at_request_time(fraud, v1, v2, requester, approver):
    services.stage_change_direct(version=v1, to_stage=Stage.PRODUCTION, by=approver)
    request = ask(v2, requester)
    evidence = StageTransitionRequest.objects.get(pk=request.pk).evidence
    assert evidence["metrics"] == {"auc": 0.88, "f1": 0.85}
    assert evidence["compared_with"] == {"version": 1, "stage": "Production"}
    assert evidence["metric_deltas"] == pytest.approx({"auc": -0.02, "f1": 0.05})
    assert [(d["context"], d["name"]) for d in evidence["datasets"]] == [("training", "train")]
    assert evidence["datasets"][0]["digest"]
    assert evidence["code"]["git_commit"] == "0123456789abcdef0123456789abcdef01234567"

    metrics_log(run=v2.run, points=[Point("f1", 0.5, step=1), Point("recall", 0.3)])
    assert MetricSeries.objects.get(run=v2.run, key="f1").last_value == 0.5

    assert StageTransitionRequest.objects.get(pk=request.pk).evidence == evidence
    assert gates.freeze_evidence(v2, Stage.PRODUCTION)["metrics"]["f1"] == 0.5  # what a new request would see


# --- The audit log --------------------------------------------------------------------------------------------------


def test_every_path_leaves_an_audit_event(fraud, v1, v2, requester, approver, root):
    assert actions(fraud) == ["model_created", "version_created", "version_created"]
    created = AuditEvent.objects.get(model_id=fraud.pk, action="version_created", version_number=1)
    assert (created.actor_name, created.actor_id, created.to_value) == ("rita", requester.pk, v1.source)

    # request and approve (with archive_existing later)
    first = ask(v1, requester, comment="Go.")
    services.transition_approve(request_id=first.pk, by=approver, comment="OK.")
    assert actions(fraud, request_id=first.pk) == ["request_created", "request_approved", "stage_changed"]
    changed = AuditEvent.objects.get(request_id=first.pk, action="stage_changed")
    assert (changed.from_value, changed.to_value, changed.data["kind"]) == ("None", "Production", "approval")

    # reject and cancel
    rejected = ask(v2, requester, Stage.STAGING)
    services.transition_reject(request_id=rejected.pk, by=approver, comment="Not yet.")
    assert actions(fraud, request_id=rejected.pk) == ["request_created", "request_rejected"]
    assert AuditEvent.objects.get(request_id=rejected.pk, action="request_rejected").comment == "Not yet."
    cancelled = ask(v2, requester, Stage.STAGING)
    services.transition_cancel(request_id=cancelled.pk, by=requester)
    assert actions(fraud, request_id=cancelled.pk) == ["request_created", "request_cancelled"]

    # a direct change that archives the holder
    services.stage_change_direct(version=v2, to_stage=Stage.PRODUCTION, by=approver, archive_existing=True)
    kinds = dict(
        AuditEvent.objects.filter(model_id=fraud.pk, action="stage_changed", request_id=None).values_list(
            "version_number", "data__kind"
        )
    )
    assert kinds == {1: "archive_existing", 2: "direct"}

    # aliases
    alias_set(model=fraud, alias="champion", version=v2, by=approver)
    alias_delete(model=fraud, alias="champion", by=approver)
    assert actions(fraud, action__startswith="alias") == ["alias_set", "alias_deleted"]

    # rollback: v1 comes back
    services.production_rollback(model=fraud, by=approver, comment="Latency regression.")
    rollback = AuditEvent.objects.get(model_id=fraud.pk, action="rollback")
    assert (rollback.from_value, rollback.to_value, rollback.comment) == ("2", "1", "Latency regression.")

    # gate override
    production_gate(fraud, metric="f1", operator=">=", threshold=0.99)
    services.stage_change_direct(version=v2, to_stage=Stage.STAGING, by=root, override_reason="ignored: no gate")
    override = ask(v2, requester)
    services.transition_approve(request_id=override.pk, by=root, override_reason="Emergency.")
    assert "gate_overridden" in actions(fraud, request_id=override.pk)

    governance_actions = {
        "version_created", "stage_changed", "alias_set", "alias_deleted", "request_created", "request_approved",
        "request_rejected", "request_cancelled", "gate_overridden", "rollback",
    }  # fmt: skip
    assert governance_actions <= set(actions(fraud))


# --- Timeline, holders at a time, rollback --------------------------------------------------------------------------


@pytest.fixture
def history(fraud, v1, v2, approver, clock):
    """v1 in Production at t1; v2 replaces it at t2 (v1 archived); rollback at t3 (v1 back, v2 archived).
    Returns the three moments."""
    t1 = clock.advance(hours=1)
    services.stage_change_direct(version=v1, to_stage=Stage.PRODUCTION, by=approver)
    t2 = clock.advance(hours=1)
    services.stage_change_direct(version=v2, to_stage=Stage.PRODUCTION, by=approver, archive_existing=True)
    t3 = clock.advance(hours=1)
    services.production_rollback(model=fraud, by=approver)
    clock.advance(hours=1)
    return t1, t2, t3


def test_holders_at_replays_the_history(fraud, history):
    t1, t2, t3 = history
    second = timedelta(seconds=1)
    assert holders_at(fraud, Stage.PRODUCTION, t1 - second) == []
    assert holders_at(fraud, Stage.PRODUCTION, t1 + second) == [1]
    assert holders_at(fraud, Stage.PRODUCTION, t2 + second) == [2]
    assert holders_at(fraud, Stage.PRODUCTION, t3 + second) == [1]
    assert holders_at(fraud, Stage.ARCHIVED, t2 + second) == [1]
    assert holders_at(fraud, Stage.ARCHIVED, t3 + second) == [2]


def test_the_production_timeline_lists_each_span(fraud, history):
    t1, t2, t3 = history
    rows = StageChange.objects.filter(model=fraud).timeline_rows(100)
    spans = [(i.version, i.start, i.end) for i in stage_intervals(rows, stages=(Stage.PRODUCTION,))]
    assert spans == [(1, t1, t2), (2, t2, t3), (1, t3, None)]


def test_rollback_restores_the_previous_version_and_archives_the_current(fraud, v1, v2, approver):
    services.stage_change_direct(version=v1, to_stage=Stage.PRODUCTION, by=approver)
    services.stage_change_direct(version=v2, to_stage=Stage.PRODUCTION, by=approver, archive_existing=True)
    restored = services.production_rollback(model=fraud, by=approver, comment="Bad canary.")
    assert restored.pk == v1.pk and restored.stage == "Production"
    assert (stage_of(v1), stage_of(v2)) == ("Production", "Archived")
    rollback_changes = StageChange.objects.filter(model=fraud, kind=ChangeKind.ROLLBACK)
    assert sorted(rollback_changes.values_list("version__version", "to_stage")) == [(1, "Production"), (2, "Archived")]
    assert set(rollback_changes.values_list("comment", flat=True)) == {"Bad canary."}


def test_rollback_refuses_when_there_is_nothing_to_roll_back_to(fraud, v1, approver):
    with pytest.raises(GovernanceError, match="no version in Production"):
        services.production_rollback(model=fraud, by=approver)
    services.stage_change_direct(version=v1, to_stage=Stage.PRODUCTION, by=approver)
    with pytest.raises(GovernanceError, match="no earlier Production version"):
        services.production_rollback(model=fraud, by=approver)
    assert stage_of(v1) == "Production"
    assert not AuditEvent.objects.filter(action="rollback").exists()


def test_rollback_needs_the_production_approver_right(fraud, v1, v2, approver, staging_approver):
    services.stage_change_direct(version=v1, to_stage=Stage.PRODUCTION, by=approver)
    services.stage_change_direct(version=v2, to_stage=Stage.PRODUCTION, by=approver, archive_existing=True)
    with pytest.raises(NotAllowed):
        services.production_rollback(model=fraud, by=staging_approver)
    assert stage_of(v2) == "Production"
