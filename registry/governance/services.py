"""Stage and alias moves under governance: requests that freeze their evidence, gates, decisions, direct changes,
protected aliases, rollback, and the Production timeline. The only code that moves a version's stage or an alias.
What a move is judged on (the frozen evidence, the gates' results) is read by registry.governance.gates.
Who may do what is in registry.governance.access, and what refusals there are in registry.governance.errors.
"""

from __future__ import annotations

from dataclasses import asdict

from django.db import IntegrityError, transaction
from django.utils import timezone

from registry.audit import services as audit
from registry.audit.models import AuditAction, WebhookEventType
from registry.catalog.access import require
from registry.catalog.models import ModelAlias, ModelVersion, RegisteredModel, Stage
from registry.governance import gates
from registry.governance.access import can_approve, can_request, may_move_directly
from registry.governance.errors import (
    AlreadyDecided,
    AlreadyInStage,
    AlreadyPending,
    ApprovalRequired,
    GatesFailed,
    GovernanceError,
    NotAllowed,
    RollbackImpossible,
)
from registry.governance.history import rollback_plan
from registry.governance.models import (
    ALIAS_RULES_STAGE,
    ChangeKind,
    RequestAction,
    RequestStatus,
    StageChange,
    StagePolicy,
    StageTransitionRequest,
)
from registry.lib.access import Level
from registry.lib.errors import NotFound
from registry.lib.names import NameError_, check_alias

# --- Gates applied (registry.governance.gates evaluates them) ------------------------------------------------------


def _check_gates(results: list[gates.GateResult], *, by, override_reason: str, version, stage, request=None) -> None:
    failures = gates.failures(results)
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
        version=version,
        actor=by,
        to_value=stage,
        comment=override_reason,
        request=request,
        data={"failures": failures},
    )


# --- Moving stages and aliases (the only writers of ModelVersion.stage and ModelAlias) -----------------------------


def _move_stage(
    version: ModelVersion,
    stage: str,
    *,
    by,
    comment: str = "",
    kind: str = ChangeKind.DIRECT,
    archive_existing: bool = False,
    request: StageTransitionRequest | None = None,
) -> ModelVersion:
    """Move `version` to `stage` now, recording the change (and any archived holders) in the stage history, the audit
    log and the outbox. Callers have checked the rules."""
    target = Stage.parse(stage)
    with transaction.atomic():
        locked = ModelVersion.objects.select_related("model").select_for_update(of=("self",)).get(pk=version.pk)
        if locked.stage == target:
            return locked
        now = timezone.now()
        if archive_existing and target in (Stage.STAGING, Stage.PRODUCTION):
            holders = (
                ModelVersion.objects.select_related("model")
                .select_for_update(of=("self",))
                .filter(model_id=locked.model_id, stage=target)
                .exclude(pk=locked.pk)
            )
            for holder in holders:
                _record_stage(
                    holder,
                    Stage.ARCHIVED,
                    by=by,
                    at=now,
                    kind=ChangeKind.ARCHIVE_EXISTING,
                    request=request,
                    comment=f"Archived when version {locked.version} entered {target}.",
                )
        _record_stage(locked, target, by=by, at=now, kind=kind, request=request, comment=comment)
        RegisteredModel.objects.filter(pk=locked.model_id).update(updated_at=now)
    version.stage = locked.stage
    return locked


def _record_stage(version: ModelVersion, stage: str, *, by, at, kind: str, request, comment: str) -> None:
    previous = version.stage
    change = StageChange.objects.create(
        model_id=version.model_id,
        version=version,
        from_stage=previous,
        to_stage=stage,
        kind=kind,
        changed_by=by,
        changed_at=at,
        comment=comment,
        request=request,
    )
    version.stage = stage
    version.updated_at = at
    version.save(update_fields=["stage", "updated_at"])
    audit.record(
        AuditAction.STAGE_CHANGED,
        version=version,
        actor=by,
        from_value=previous,
        to_value=stage,
        comment=comment,
        request=request,
        data={"kind": kind, "stage_change_id": change.pk},
    )
    audit.emit(
        WebhookEventType.STAGE_CHANGED,
        model=version.model,
        payload={**audit.version_payload(version), "from_stage": previous, "to_stage": stage, "kind": kind},
    )


def _write_alias(
    model: RegisteredModel, alias: str, version: ModelVersion | None, *, by, comment: str = "", request=None
):
    """Point `alias` at `version` (or delete it, with None), recording it; answers the version it pointed at before."""
    with transaction.atomic():
        existing = (
            ModelAlias.objects.select_for_update().select_related("version").filter(model=model, alias=alias).first()
        )
        previous = existing.version if existing else None
        if version is None:
            if existing is None:
                return None
            existing.delete()
        elif existing is None:
            ModelAlias.objects.create(model=model, alias=alias, version=version, updated_by=by)
        elif existing.version_id != version.pk:
            existing.version, existing.updated_by, existing.updated_at = version, by, timezone.now()
            existing.save(update_fields=["version", "updated_by", "updated_at"])
        else:
            return previous
        audit.record(
            AuditAction.ALIAS_SET if version is not None else AuditAction.ALIAS_DELETED,
            model=model,
            version=version or previous,
            alias=alias,
            actor=by,
            from_value=previous.version if previous else "",
            to_value=version.version if version else "",
            comment=comment,
            request=request,
        )
        audit.emit(
            WebhookEventType.ALIAS_CHANGED,
            model=model,
            payload={
                "model": model.name,
                "alias": alias,
                "from_version": previous.version if previous else None,
                "to_version": version.version if version else None,
            },
        )
    return previous


# --- Requests and decisions -----------------------------------------------------------------------------------------


def transition_request(
    *, version: ModelVersion, to_stage: str, by, comment: str = "", archive_existing: bool = False
) -> StageTransitionRequest:
    """Ask to move `version` to `to_stage`, freezing the evidence and the gate results of this moment."""
    stage = Stage.parse(to_stage)
    require(version.model, by, Level.READ)
    if not can_request(by, version.model, stage):
        raise NotAllowed(
            f"You do not have permission to request moves to {stage} for {version.model.name!r}: it takes the "
            "requester role, a grant on the model that names the stage, or MANAGE on the model."
        )
    with transaction.atomic():
        version = ModelVersion.objects.select_related("model", "run").select_for_update(of=("self",)).get(pk=version.pk)
        if version.stage == stage:
            raise AlreadyInStage(f"Version {version.version} is already in {stage}.")
        return _open_request(
            version,
            action=RequestAction.STAGE,
            stage=stage,
            by=by,
            comment=comment,
            archive_existing=archive_existing,
            already=f"Version {version.version} already has a pending request to move to {stage}.",
        )


def alias_request(
    *, model: RegisteredModel, alias: str, version: ModelVersion | None, by, comment: str = ""
) -> StageTransitionRequest:
    """Ask to point protected `alias` at `version` (or, with None, to delete it): the request is decided as a
    Production move is."""
    alias = _checked_alias(alias)
    require(model, by, Level.READ)
    if not (can_request(by, model, ALIAS_RULES_STAGE) or require(model, by, Level.READ) >= Level.EDIT):
        raise NotAllowed(f"You do not have permission to request alias moves for {model.name!r}; ask for EDIT access.")
    with transaction.atomic():
        current = ModelAlias.objects.select_related("version").filter(model=model, alias=alias).first()
        if version is None:
            if current is None:
                raise NotFound(f"{model.name!r} has no alias {alias!r}.")
            target, action = current.version, RequestAction.ALIAS_DELETE
        else:
            if version.model_id != model.pk:
                raise GovernanceError(f"Version {version.version} does not belong to model {model.name!r}.")
            if current is not None and current.version_id == version.pk:
                raise GovernanceError(f"@{alias} already points at version {version.version}.")
            target, action = version, RequestAction.ALIAS_SET
        target = ModelVersion.objects.select_related("model", "run").get(pk=target.pk)
        return _open_request(
            target,
            action=action,
            stage=ALIAS_RULES_STAGE,
            by=by,
            comment=comment,
            alias=alias,
            already=f"@{alias} of {model.name!r} already has a pending request.",
        )


def _open_request(version, *, action, stage, by, comment, already, alias="", archive_existing=False):
    policy = StagePolicy.objects.for_model(version.model)
    results = gates.evaluate_gates(version, stage, policy) if action != RequestAction.ALIAS_DELETE else []
    evidence = gates.freeze_evidence(version, stage)
    evidence["gates"] = [asdict(r) for r in results]
    try:
        with transaction.atomic():
            request = StageTransitionRequest.objects.create(
                model=version.model,
                version=version,
                action=action,
                alias=alias,
                from_stage=version.stage,
                to_stage=stage,
                archive_existing=archive_existing,
                requested_by=by,
                comment=comment,
                evidence=evidence,
            )
    except IntegrityError:
        raise AlreadyPending(already) from None
    audit.record(
        AuditAction.REQUEST_CREATED,
        version=version,
        alias=alias,
        actor=by,
        from_value=version.stage,
        to_value=stage if action == RequestAction.STAGE else f"@{alias}",
        comment=comment,
        request=request,
        data={"action": action},
    )
    audit.emit(
        WebhookEventType.TRANSITION_REQUESTED,
        model=version.model,
        payload={**_request_payload(request), "gates": evidence["gates"]},
    )
    return request


def _request_payload(request: StageTransitionRequest) -> dict:
    payload = {
        "request_id": request.pk,
        "model": request.version.model.name,
        "version": request.version.version,
        "action": request.action,
        "from_stage": request.from_stage,
        "to_stage": request.to_stage,
        "status": request.status,
        "requested_by": request.requested_by.get_username() if request.requested_by else None,
        "comment": request.comment,
    }
    if request.alias:
        payload["alias"] = request.alias
    return payload


def _locked_pending(request_id: int, by) -> StageTransitionRequest:
    # Not decided_by in the join: on PostgreSQL a transaction that waited for the lock gets the request row as the
    # winner left it, but rows joined to it as they were before, so the decider would read as nobody.
    request = (
        StageTransitionRequest.objects.select_related("version__model", "version__run", "requested_by")
        .select_for_update(of=("self",))
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        raise NotFound(f"No transition request {request_id}.")
    require(request.version.model, by, Level.READ)
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
        version=request.version,
        alias=request.alias,
        actor=by,
        from_value=request.from_stage,
        to_value=request.to_stage if not request.is_alias else f"@{request.alias}",
        comment=comment,
        request=request,
    )


def transition_approve(*, request_id: int, by, comment: str = "", override_reason: str = "") -> StageTransitionRequest:
    """Approve a pending request: the stage (or the alias) changes atomically. Of two approvers racing, exactly one
    succeeds; the other gets AlreadyDecided."""
    with transaction.atomic():
        request = _locked_pending(request_id, by)
        version = request.version
        model = version.model
        policy = StagePolicy.objects.for_model(model)
        if not can_approve(by, model, request.to_stage):
            raise NotAllowed(f"You do not have permission to approve moves to {request.to_stage} for {model.name!r}.")
        if request.requested_by_id == by.pk and not policy.allow_self_approval:
            raise NotAllowed("You cannot approve your own request; another approver must decide it.")
        results = (
            []
            if request.action == RequestAction.ALIAS_DELETE
            else gates.evaluate_gates(version, request.to_stage, policy)
        )
        _check_gates(
            results, by=by, override_reason=override_reason, version=version, stage=request.to_stage, request=request
        )
        evidence = {**request.evidence, "gates_at_approval": [asdict(r) for r in results]}
        _decide(
            request, RequestStatus.APPROVED, AuditAction.REQUEST_APPROVED, by=by, comment=comment, evidence=evidence
        )
        if request.action == RequestAction.STAGE:
            _move_stage(
                version,
                request.to_stage,
                by=by,
                comment=comment or request.comment,
                kind=ChangeKind.APPROVAL,
                archive_existing=request.archive_existing,
                request=request,
            )
        else:
            target = version if request.action == RequestAction.ALIAS_SET else None
            _write_alias(model, request.alias, target, by=by, comment=comment or request.comment, request=request)
        audit.emit(WebhookEventType.TRANSITION_APPROVED, model=model, payload=_request_payload(request))
    return request


def transition_reject(*, request_id: int, by, comment: str = "") -> StageTransitionRequest:
    with transaction.atomic():
        request = _locked_pending(request_id, by)
        if not can_approve(by, request.version.model, request.to_stage):
            raise NotAllowed(
                f"You do not have permission to decide moves to {request.to_stage} for {request.version.model.name!r}."
            )
        _decide(request, RequestStatus.REJECTED, AuditAction.REQUEST_REJECTED, by=by, comment=comment)
        audit.emit(WebhookEventType.TRANSITION_REJECTED, model=request.version.model, payload=_request_payload(request))
    return request


def transition_cancel(*, request_id: int, by, comment: str = "") -> StageTransitionRequest:
    """The requester (or someone who manages the model) withdraws a pending request."""
    with transaction.atomic():
        request = _locked_pending(request_id, by)
        manages = require(request.version.model, by, Level.READ) >= Level.MANAGE
        if request.requested_by_id != by.pk and not manages:
            raise NotAllowed("Only the requester or someone who manages the model may cancel this request.")
        _decide(request, RequestStatus.CANCELLED, AuditAction.REQUEST_CANCELLED, by=by, comment=comment)
    return request


# --- Direct changes -------------------------------------------------------------------------------------------------


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
    model = version.model
    require(model, by, Level.READ)
    policy = StagePolicy.objects.for_model(model)
    if not may_move_directly(by, model, policy, stage):
        if policy.needs_approval(stage) and not policy.allow_direct_changes:
            raise NotAllowed(f"Moves to {stage} need an approved request for {model.name!r}; request one.")
        if policy.needs_approval(stage):
            raise NotAllowed(f"Moves to {stage} need approval: request the transition, or ask an approver for {stage}.")
        raise NotAllowed(f"You do not have permission to change the stages of {model.name!r}.")
    with transaction.atomic():
        results = gates.evaluate_gates(version, stage, policy)
        _check_gates(results, by=by, override_reason=override_reason, version=version, stage=stage)
        return _move_stage(
            version, stage, by=by, comment=comment, kind=ChangeKind.DIRECT, archive_existing=archive_existing
        )


def stage_move(*, version: ModelVersion, to_stage: str, by, archive_existing: bool = False, comment: str = ""):
    """Move now where the policy needs no approval for the stage; else open (or name) the request that asks for it
    and raise ApprovalRequired, whoever asks (approvers too). What MLflow's transition_model_version_stage does:
    its API cannot carry an approval, a comment or a gate override."""
    stage = Stage.parse(to_stage)
    model = version.model
    require(model, by, Level.READ)
    if version.stage == stage:
        return version
    policy = StagePolicy.objects.for_model(model)
    if not policy.needs_approval(stage):
        return stage_change_direct(
            version=version, to_stage=stage, by=by, archive_existing=archive_existing, comment=comment
        )
    try:
        request, created = (
            transition_request(
                version=version, to_stage=stage, by=by, comment=comment, archive_existing=archive_existing
            ),
            True,
        )
    except AlreadyPending:
        request = StageTransitionRequest.objects.pending().filter(version=version, to_stage=stage).first()
        if request is None:  # decided in between; let the caller try again
            raise
        created = False
    state = "was created and is pending" if created else "is already pending"
    raise ApprovalRequired(
        f"Moving {model.name!r} version {version.version} to {stage} needs approval under this model's policy, so "
        f"the stage has not changed. Transition request #{request.pk} {state}; an approver decides it at /approvals/.",
        request,
        created=created,
    )


# --- Aliases --------------------------------------------------------------------------------------------------------


def _checked_alias(alias: str) -> str:
    try:
        return check_alias(alias)
    except NameError_ as exc:
        raise GovernanceError(str(exc)) from None


def alias_set(*, model: RegisteredModel, alias: str, version: ModelVersion, by, comment: str = "") -> ModelVersion:
    """Point `alias` at `version`. An unprotected alias needs EDIT on the model. A protected one moves at once only
    for someone who may make a direct Production change (gates checked); anyone else gets ApprovalRequired naming
    the request opened for it."""
    alias = _checked_alias(alias)
    level = require(model, by, Level.READ)
    if version.model_id != model.pk:
        raise GovernanceError(f"Version {version.version} does not belong to model {model.name!r}.")
    policy = StagePolicy.objects.for_model(model)
    if not policy.protects(alias):
        require(model, by, Level.EDIT, doing="move aliases of")
        _write_alias(model, alias, version, by=by, comment=comment)
        return version
    if policy.allow_direct_changes and can_approve(by, model, ALIAS_RULES_STAGE):
        with transaction.atomic():
            _check_gates(
                gates.evaluate_gates(version, ALIAS_RULES_STAGE, policy),
                by=by,
                override_reason="",
                version=version,
                stage=ALIAS_RULES_STAGE,
            )
            _write_alias(model, alias, version, by=by, comment=comment)
        return version
    if level < Level.EDIT and not can_request(by, model, ALIAS_RULES_STAGE):
        raise NotAllowed(f"@{alias} is protected and you do not have permission to request moves of {model.name!r}.")
    _raise_for_request(model, alias, version, by=by, comment=comment)


def alias_delete(*, model: RegisteredModel, alias: str, by, comment: str = "") -> None:
    """Delete `alias`; a protected one as alias_set moves it (a request unless the caller may approve)."""
    require(model, by, Level.READ)
    existing = ModelAlias.objects.filter(model=model, alias=alias).first()
    if existing is None:
        raise NotFound(f"{model.name!r} has no alias {alias!r}.")
    policy = StagePolicy.objects.for_model(model)
    if not policy.protects(alias):
        require(model, by, Level.EDIT, doing="move aliases of")
        _write_alias(model, alias, None, by=by, comment=comment)
        return
    if policy.allow_direct_changes and can_approve(by, model, ALIAS_RULES_STAGE):
        _write_alias(model, alias, None, by=by, comment=comment)
        return
    _raise_for_request(model, alias, None, by=by, comment=comment)


def _raise_for_request(model, alias, version, *, by, comment):
    verb = f"Pointing @{alias} at version {version.version}" if version else f"Deleting @{alias}"
    try:
        request, state = alias_request(model=model, alias=alias, version=version, by=by, comment=comment), "was created"
    except AlreadyPending:
        request = StageTransitionRequest.objects.pending().filter(model=model, alias=alias).first()
        if request is None:
            raise
        state = "is already pending"
    raise ApprovalRequired(
        f"{verb} of {model.name!r} needs approval: @{alias} is a protected alias (moved as Production is), so it has "
        f"not changed. Transition request #{request.pk} {state}; an approver decides it at /approvals/.",
        request,
        created=state == "was created",
    )


# --- Policies -------------------------------------------------------------------------------------------------------


def policy_record(*, policy: StagePolicy, by, created: bool = False, deleted: bool = False) -> None:
    """Record a policy as it now is (or that it was deleted) in the audit log. Policies are edited in the admin, by
    holders of `governance.change_stagepolicy`; the admin calls this once the policy and its gates are saved."""
    described = [] if deleted else [f"{gate.stage}: {gate.describe()}" for gate in policy.gates.all()]
    audit.record(
        AuditAction.POLICY_CHANGED,
        actor=by,
        model=policy.model if policy.model_id else None,
        subject="global default policy" if policy.model_id is None else "",
        from_value="created" if created else ("deleted" if deleted else "changed"),
        data={
            "approval_required_for": policy.approval_required_for,
            "allow_self_approval": policy.allow_self_approval,
            "allow_direct_changes": policy.allow_direct_changes,
            "protected_aliases": policy.protected_aliases,
            "gates": described,
        },
    )


# --- Rollback ------------------------------------------------------------------------------------------


def production_rollback(*, model: RegisteredModel, by, comment: str = "") -> ModelVersion:
    """Put back the version that held Production before the current one: the current one is archived, the previous
    one holds Production, and protected aliases on the current one move back with it. One transaction."""
    require(model, by, Level.READ)
    if not can_approve(by, model, Stage.PRODUCTION):
        raise NotAllowed("Rolling back Production needs the right to approve moves to Production.")
    with transaction.atomic():
        RegisteredModel.objects.select_for_update().get(pk=model.pk)
        plan = rollback_plan(model)
        if plan is None:
            if not ModelVersion.objects.filter(model=model, stage=Stage.PRODUCTION).exists():
                raise RollbackImpossible(f"{model.name!r} has no version in Production to roll back.")
            raise RollbackImpossible(f"{model.name!r} has no earlier Production version to roll back to.")
        reason = comment or f"Rolled back from version {plan.current.version} to version {plan.previous.version}."
        _move_stage(plan.current, Stage.ARCHIVED, by=by, comment=reason, kind=ChangeKind.ROLLBACK)
        _move_stage(plan.previous, Stage.PRODUCTION, by=by, comment=reason, kind=ChangeKind.ROLLBACK)
        for alias in plan.aliases:
            _write_alias(model, alias, plan.previous, by=by, comment=reason)
        audit.record(
            AuditAction.ROLLBACK,
            model=model,
            version=plan.previous,
            actor=by,
            from_value=str(plan.current.version),
            to_value=str(plan.previous.version),
            comment=reason,
            data={"aliases": plan.aliases},
        )
    plan.previous.refresh_from_db()
    return plan.previous
