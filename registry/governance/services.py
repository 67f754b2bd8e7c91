"""Stage transitions under governance: requests that freeze their evidence, gates, decisions, direct changes,
rollback, and the Production timeline.

Permissions: `governance.request_transition` to ask; `governance.approve_<stage>` to approve moves to that stage or
to move there directly where the policy allows it. Superusers hold every permission.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from registry.catalog import services as catalog
from registry.catalog.models import (
    ChangeKind,
    ModelVersion,
    RegisteredModel,
    RequestStatus,
    Stage,
    StageChange,
    StageTransitionRequest,
)
from registry.governance import audit
from registry.governance.models import AuditAction, GateKind, PolicyGate, StagePolicy, WebhookEventType
from registry.tracking.models import MetricSeries, RunInput

REQUEST_PERMISSION = "governance.request_transition"


def approve_permission(stage: str) -> str:
    return f"governance.approve_{Stage.parse(stage).value.lower()}"


class GovernanceError(ValueError):
    """A governance rule refused the action; `status` is the HTTP status an API should answer with."""

    status = 400

    def __init__(self, message: str, details: list | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []


class NotAllowed(GovernanceError):
    status = 403


class AlreadyDecided(GovernanceError):
    status = 409


class AlreadyPending(GovernanceError):
    status = 409


class GatesFailed(GovernanceError):
    status = 409


def can_request(user) -> bool:
    return bool(user and user.is_active and user.has_perm(REQUEST_PERMISSION))


def can_approve(user, stage: str) -> bool:
    return bool(user and user.is_active and user.has_perm(approve_permission(stage)))


# --- Evidence and gates ---------------------------------------------------------------------------------------------


def _metrics_of(version: ModelVersion) -> dict[str, float]:
    if not version.run_id:
        return {}
    return {m.key: m.last_value for m in MetricSeries.objects.filter(run_id=version.run_id).only("key", "last_value")}


def _json_float(value: float | None):
    return None if value is None or math.isnan(value) or math.isinf(value) else value


def current_holders(model_id: int, stage: str, *, exclude: int | None = None) -> list[ModelVersion]:
    holders = ModelVersion.objects.filter(model_id=model_id, stage=stage).order_by("-version")
    if exclude is not None:
        holders = holders.exclude(pk=exclude)
    return list(holders)


def freeze_evidence(version: ModelVersion, stage: str) -> dict:
    """What the version is, at request time: key metrics, datasets, environment, code, and deltas against the
    version that holds the target stage now."""
    run = version.run
    metrics = _metrics_of(version)
    holders = current_holders(version.model_id, stage, exclude=version.pk)
    holder = holders[0] if holders else None
    holder_metrics = _metrics_of(holder) if holder else {}
    deltas = {
        key: _json_float(value - holder_metrics[key])
        for key, value in metrics.items()
        if key in holder_metrics and not math.isnan(value) and not math.isnan(holder_metrics[key])
    }
    inputs = (
        RunInput.objects.filter(run_id=version.run_id).select_related("dataset").order_by("context", "dataset__name")
        if run
        else []
    )
    return {
        "version": version.version,
        "metrics": {k: _json_float(v) for k, v in sorted(metrics.items())},
        "datasets": [
            {"name": i.dataset.name, "digest": i.dataset.digest, "context": i.context, "dataset_id": i.dataset_id}
            for i in inputs
        ],
        "environment": {
            "python_version": run.python_version if run else "",
            "platform": run.platform if run else "",
            "packages": run.packages if run else {},
            "image": run.image if run else "",
        },
        "code": {
            "git_remote": run.git_remote if run else "",
            "git_commit": run.git_commit if run else "",
            "git_branch": run.git_branch if run else "",
            "git_dirty": run.git_dirty if run else None,
        },
        "compared_with": {"version": holder.version, "stage": stage} if holder else None,
        "metric_deltas": deltas,
    }


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    detail: str


_COMPARE = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
}


def evaluate_gate(gate: PolicyGate, version: ModelVersion, metrics: dict[str, float]) -> GateResult:
    name = gate.describe()
    run = version.run
    if gate.kind in (GateKind.METRIC, GateKind.METRIC_VS_CURRENT):
        value = metrics.get(gate.metric)
        if value is None or math.isnan(value):
            return GateResult(name, False, f"version {version.version} has no value for {gate.metric!r}")
        bound = gate.threshold
        if gate.kind == GateKind.METRIC_VS_CURRENT:
            holders = current_holders(version.model_id, gate.stage, exclude=version.pk)
            if not holders:
                return GateResult(name, True, f"no version is in {gate.stage} yet; nothing to beat")
            current = _metrics_of(holders[0]).get(gate.metric)
            if current is None or math.isnan(current):
                return GateResult(name, True, f"version {holders[0].version} has no {gate.metric!r}; nothing to beat")
            bound = current + gate.threshold
        passed = _COMPARE[gate.operator](value, bound)
        return GateResult(name, passed, f"{gate.metric} = {value:.6g} {'meets' if passed else 'misses'} {bound:.6g}")
    if gate.kind == GateKind.DATASET:
        found = bool(run) and RunInput.objects.filter(run=run, context=gate.context).exists()
        return GateResult(name, found, "found" if found else f"no dataset logged with context '{gate.context}'")
    if gate.kind == GateKind.GIT_COMMIT:
        commit = run.git_commit if run else ""
        return GateResult(name, bool(commit), commit[:12] if commit else "no git commit recorded")
    if gate.kind == GateKind.CLEAN_GIT:
        clean = bool(run) and bool(run.git_commit) and run.git_dirty is False
        return GateResult(name, clean, "clean" if clean else "the tree was dirty or unknown")
    if gate.kind == GateKind.IMAGE:
        image = run.image if run else ""
        return GateResult(name, bool(image), image or "no container image recorded")
    return GateResult(name, False, f"unknown gate kind {gate.kind!r}")


def evaluate_gates(version: ModelVersion, stage: str, policy: StagePolicy | None = None) -> list[GateResult]:
    policy = policy or StagePolicy.objects.for_model(version.model)
    gates = policy.gates_for(stage)
    if not gates:
        return []
    metrics = _metrics_of(version)
    return [evaluate_gate(gate, version, metrics) for gate in gates]


def _failures(results: list[GateResult]) -> list[dict]:
    return [{"gate": r.gate, "message": r.detail} for r in results if not r.passed]


def _check_gates(results: list[GateResult], *, by, override_reason: str, version, stage, request=None) -> None:
    failures = _failures(results)
    if not failures:
        return
    if not override_reason.strip():
        raise GatesFailed(
            f"{len(failures)} gate(s) fail for version {version.version} → {stage}; a superuser may override them "
            "with a recorded reason.",
            failures,
        )
    if not by.is_superuser:
        raise NotAllowed("Only a superuser may override failing gates.", failures)
    audit.record(
        AuditAction.GATE_OVERRIDDEN,
        model=version.model,
        version=version,
        actor=by,
        to_value=stage,
        comment=override_reason,
        request=request,
        data={"failures": failures},
    )


# --- Requests and decisions -----------------------------------------------------------------------------------------


def transition_request(
    *, version: ModelVersion, to_stage: str, by, comment: str = "", archive_existing: bool = False
) -> StageTransitionRequest:
    """Ask to move `version` to `to_stage`, freezing the evidence and the gate results of this moment."""
    stage = Stage.parse(to_stage)
    if not can_request(by):
        raise NotAllowed("You do not have permission to request stage transitions.")
    with transaction.atomic():
        version = ModelVersion.objects.select_related("model", "run").select_for_update(of=("self",)).get(pk=version.pk)
        if version.stage == stage:
            raise GovernanceError(f"Version {version.version} is already in {stage}.")
        results = evaluate_gates(version, stage)
        evidence = freeze_evidence(version, stage)
        evidence["gates"] = [asdict(r) for r in results]
        try:
            with transaction.atomic():
                request = StageTransitionRequest.objects.create(
                    version=version,
                    from_stage=version.stage,
                    to_stage=stage,
                    archive_existing=archive_existing,
                    requested_by=by,
                    comment=comment,
                    evidence=evidence,
                )
        except IntegrityError:
            raise AlreadyPending(
                f"Version {version.version} already has a pending request to move to {stage}."
            ) from None
        audit.record(
            AuditAction.REQUEST_CREATED,
            model=version.model,
            version=version,
            actor=by,
            from_value=version.stage,
            to_value=stage,
            comment=comment,
            request=request,
        )
        audit.emit(
            WebhookEventType.TRANSITION_REQUESTED,
            model=version.model,
            payload={**_request_payload(request), "gates": evidence["gates"]},
        )
    return request


def _request_payload(request: StageTransitionRequest) -> dict:
    return {
        "request_id": request.pk,
        "model": request.version.model.name,
        "version": request.version.version,
        "from_stage": request.from_stage,
        "to_stage": request.to_stage,
        "status": request.status,
        "requested_by": request.requested_by.get_username() if request.requested_by else None,
        "comment": request.comment,
    }


def _locked_pending(request_id: int) -> StageTransitionRequest:
    # Not decided_by in the join: on PostgreSQL a transaction that waited for the lock gets the request row as the
    # winner left it, but rows joined to it as they were before, so the decider would read as nobody.
    request = (
        StageTransitionRequest.objects.select_related("version__model", "version__run", "requested_by")
        .select_for_update(of=("self",))
        .get(pk=request_id)
    )
    if request.status != RequestStatus.PENDING:
        who = request.decided_by.get_username() if request.decided_by else "someone"
        raise AlreadyDecided(
            f"This request was already {request.status} by {who} at {request.decided_at:%Y-%m-%d %H:%M:%S} UTC."
        )
    return request


def _decide(request: StageTransitionRequest, status: str, action: str, *, by, comment: str, evidence=None) -> None:
    """Record a decision on a locked pending request, and its audit event."""
    request.status = status
    request.decided_by = by
    request.decided_at = timezone.now()
    request.decision_comment = comment
    fields = ["status", "decided_by", "decided_at", "decision_comment"]
    if evidence is not None:
        request.evidence = evidence
        fields.append("evidence")
    request.save(update_fields=fields)
    audit.record(
        action,
        model=request.version.model,
        version=request.version,
        actor=by,
        from_value=request.from_stage,
        to_value=request.to_stage,
        comment=comment,
        request=request,
    )


def transition_approve(*, request_id: int, by, comment: str = "", override_reason: str = "") -> StageTransitionRequest:
    """Approve a pending request: the stage changes atomically. Of two approvers racing, exactly one succeeds; the
    other gets AlreadyDecided."""
    with transaction.atomic():
        request = _locked_pending(request_id)
        version = request.version
        policy = StagePolicy.objects.for_model(version.model)
        if not can_approve(by, request.to_stage):
            raise NotAllowed(f"You do not have permission to approve moves to {request.to_stage}.")
        if request.requested_by_id == by.pk and not policy.allow_self_approval:
            raise NotAllowed("You cannot approve your own request; another approver must decide it.")
        results = evaluate_gates(version, request.to_stage, policy)
        _check_gates(
            results, by=by, override_reason=override_reason, version=version, stage=request.to_stage, request=request
        )
        evidence = {**request.evidence, "gates_at_approval": [asdict(r) for r in results]}
        _decide(
            request, RequestStatus.APPROVED, AuditAction.REQUEST_APPROVED, by=by, comment=comment, evidence=evidence
        )
        catalog.version_stage_set(
            version=version,
            stage=request.to_stage,
            by=by,
            comment=comment or request.comment,
            kind=ChangeKind.APPROVAL,
            archive_existing=request.archive_existing,
            request=request,
        )
        audit.emit(WebhookEventType.TRANSITION_APPROVED, model=version.model, payload=_request_payload(request))
    return request


def transition_reject(*, request_id: int, by, comment: str = "") -> StageTransitionRequest:
    with transaction.atomic():
        request = _locked_pending(request_id)
        if not can_approve(by, request.to_stage):
            raise NotAllowed(f"You do not have permission to decide moves to {request.to_stage}.")
        _decide(request, RequestStatus.REJECTED, AuditAction.REQUEST_REJECTED, by=by, comment=comment)
        audit.emit(WebhookEventType.TRANSITION_REJECTED, model=request.version.model, payload=_request_payload(request))
    return request


def transition_cancel(*, request_id: int, by, comment: str = "") -> StageTransitionRequest:
    """The requester (or a superuser) withdraws a pending request."""
    with transaction.atomic():
        request = _locked_pending(request_id)
        if request.requested_by_id != by.pk and not by.is_superuser:
            raise NotAllowed("Only the requester may cancel this request.")
        _decide(request, RequestStatus.CANCELLED, AuditAction.REQUEST_CANCELLED, by=by, comment=comment)
    return request


def stage_change_direct(
    *,
    version: ModelVersion,
    to_stage: str,
    by,
    comment: str = "",
    archive_existing: bool = False,
    override_reason: str = "",
) -> ModelVersion:
    """Move a version now, without a request, where the policy allows it; recorded as a direct change."""
    stage = Stage.parse(to_stage)
    policy = StagePolicy.objects.for_model(version.model)
    if policy.needs_approval(stage):
        if not policy.allow_direct_changes:
            raise NotAllowed(f"Moves to {stage} need an approved request for {version.model.name!r}; request one.")
        if not can_approve(by, stage):
            raise NotAllowed(f"Moves to {stage} need approval: request the transition, or ask an approver for {stage}.")
    elif not (can_request(by) or can_approve(by, stage)):
        raise NotAllowed("You do not have permission to change stages.")
    with transaction.atomic():
        results = evaluate_gates(version, stage, policy)
        _check_gates(results, by=by, override_reason=override_reason, version=version, stage=stage)
        return catalog.version_stage_set(
            version=version,
            stage=stage,
            by=by,
            comment=comment,
            kind=ChangeKind.DIRECT,
            archive_existing=archive_existing,
        )


# --- Timeline and rollback ------------------------------------------------------------------------------------------


def holders_at(model: RegisteredModel, stage: str, at: datetime) -> list[int]:
    """Version numbers that held `stage` at time `at`, replayed from the stage history."""
    holding: set[int] = set()
    changes = (
        StageChange.objects.filter(model=model, changed_at__lte=at)
        .filter(Q(to_stage=stage) | Q(from_stage=stage))
        .select_related("version")
        .order_by("changed_at", "id")
        .only("from_stage", "to_stage", "version__version")
    )
    for change in changes:
        if change.to_stage == stage:
            holding.add(change.version.version)
        elif change.from_stage == stage:
            holding.discard(change.version.version)
    return sorted(holding, reverse=True)


def previous_production(model: RegisteredModel) -> ModelVersion | None:
    """The version that held Production before the current holder(s), still existing and not in Production."""
    current = {v.pk for v in current_holders(model.pk, Stage.PRODUCTION)}
    entries = (
        StageChange.objects.filter(model=model, to_stage=Stage.PRODUCTION)
        .exclude(version_id__in=current)
        .select_related("version")
        .order_by("-changed_at", "-id")
    )
    for change in entries:
        return change.version
    return None


def production_rollback(*, model: RegisteredModel, by, comment: str = "") -> ModelVersion:
    """Put the previous Production holder back in Production and archive the current one(s), in one transaction."""
    if not can_approve(by, Stage.PRODUCTION):
        raise NotAllowed("Rolling back Production needs the permission to approve moves to Production.")
    with transaction.atomic():
        RegisteredModel.objects.select_for_update().get(pk=model.pk)
        current = current_holders(model.pk, Stage.PRODUCTION)
        if not current:
            raise GovernanceError(f"{model.name!r} has no version in Production to roll back.")
        previous = previous_production(model)
        if previous is None:
            raise GovernanceError(f"{model.name!r} has no earlier Production version to roll back to.")
        reason = comment or f"Rolled back to version {previous.version}."
        for holder in current:
            catalog.version_stage_set(
                version=holder, stage=Stage.ARCHIVED, by=by, comment=reason, kind=ChangeKind.ROLLBACK
            )
        catalog.version_stage_set(
            version=previous, stage=Stage.PRODUCTION, by=by, comment=reason, kind=ChangeKind.ROLLBACK
        )
        audit.record(
            AuditAction.ROLLBACK,
            model=model,
            version=previous,
            actor=by,
            from_value=",".join(str(v.version) for v in current),
            to_value=str(previous.version),
            comment=reason,
        )
    previous.refresh_from_db()
    return previous
