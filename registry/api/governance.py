"""Governance through the API: transition requests (stages and protected aliases) and their decisions, direct
stage changes, the Production timeline, "what was in Production at time T", rollback and the audit log.

The rules are registry.governance.services'; a refusal (GovernanceError) is answered with its status (403, 409...)
by the handler in registry.api.errors, each failing gate listed in `details`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from django.db.models import Q
from django.http import HttpRequest
from django.urls import reverse
from ninja import Query, Router, Status
from pydantic import WithJsonSchema

from registry.api.catalog import ERRORS, _versions_for_output, version_out
from registry.api.errors import ApiError
from registry.api.schemas import (
    AliasRequestIn,
    AuditActionFilter,
    AuditPage,
    CommentIn,
    DecisionIn,
    InTime,
    Limit,
    Offset,
    StageAtOut,
    StageChangeIn,
    StageText,
    TimelineOut,
    TimelineStage,
    TransitionRequestIn,
    TransitionRequestOut,
    TransitionRequestPage,
    VersionOut,
)
from registry.api.tracking import cursor_page
from registry.audit.models import AuditAction, AuditEvent
from registry.catalog.access import model_for, version_for
from registry.catalog.models import ModelVersion, Stage
from registry.governance import services
from registry.governance.audit_log import events_visible_to, filtered
from registry.governance.history import holders_at
from registry.governance.models import StageChange, StageTransitionRequest, stage_intervals
from registry.keyset import Key

router = Router(tags=["governance"])
# Stage changes read for a timeline: a model would need years of hourly releases to reach it.
TIMELINE_CHANGES = 100_000
BIGINT_MAX = 2**63 - 1
STATUSES = ("pending", "approved", "rejected", "cancelled", "all")

# --- Shaping and loading --------------------------------------------------------------------------------------------


def _requests(request: HttpRequest):
    return StageTransitionRequest.objects.readable_by(request.user).select_related(
        "version__model", "requested_by", "decided_by"
    )


def request_out(request: HttpRequest, transition: StageTransitionRequest) -> dict:
    path = reverse("approval_list") + f"?request={transition.pk}#request-{transition.pk}"
    return {
        "id": transition.pk,
        "model": transition.version.model.name,
        "version": transition.version.version,
        "action": transition.action,
        "alias": transition.alias,
        "from_stage": transition.from_stage,
        "to_stage": transition.to_stage,
        "archive_existing": transition.archive_existing,
        "status": transition.status,
        "requested_by": transition.requested_by.get_username() if transition.requested_by else None,
        "comment": transition.comment,
        "created_at": transition.created_at,
        "decided_by": transition.decided_by.get_username() if transition.decided_by else None,
        "decided_at": transition.decided_at,
        "decision_comment": transition.decision_comment,
        "evidence": transition.evidence or {},
        "url": request.build_absolute_uri(path),
    }


def _request_or_404(request: HttpRequest, request_id: int) -> StageTransitionRequest:
    found = _requests(request).filter(pk=request_id).first() if 0 < request_id <= BIGINT_MAX else None
    if found is None:
        raise ApiError(404, f"No transition request {request_id}.")
    return found


def _version(request: HttpRequest, name: str, version: int) -> ModelVersion:
    return version_for(request.user, name, version, queryset=ModelVersion.objects.select_related("model", "run"))


def _stage(text: str) -> Stage:
    try:
        return Stage.parse(text)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


def _version_answer(version: ModelVersion) -> dict:
    return version_out(_versions_for_output().get(pk=version.pk))


# Newest first; the audit log grows without end, so its pages go by cursor (`next_after`) as well as by offset.
AUDIT_KEYS = [Key("at", True, datetime), Key("id", True)]
AFTER = Query("", description="`next_after` of the previous page")


def _page(queryset, offset: int, limit: int):
    # offset and limit are bounded by their types (Offset, Limit): out of range is a 422 before this runs.
    rows = list(queryset[offset : offset + limit + 1])
    return rows[:limit], (offset + limit if len(rows) > limit else None)


# --- Requests and decisions -----------------------------------------------------------------------------------------


@router.post(
    "/models/{name}/versions/{version}/transition-requests",
    response={201: TransitionRequestOut, **ERRORS},
    summary="Ask for a version to move to a stage; an approver decides",
    description="Freezes the version's metrics, datasets, code and the gate results of this moment into `evidence`.",
)
def create_transition_request(request: HttpRequest, name: str, version: int, payload: TransitionRequestIn):
    model_version = _version(request, name, version)
    created = services.transition_request(
        version=model_version,
        to_stage=_stage(payload.to_stage),
        by=request.user,
        comment=payload.comment,
        archive_existing=payload.archive_existing,
    )
    return Status(201, request_out(request, _requests(request).get(pk=created.pk)))


@router.post(
    "/models/{name}/alias-requests",
    response={201: TransitionRequestOut, **ERRORS},
    summary="Ask for a protected alias to point at a version (or, with version null, to be deleted)",
    description="Decided as a Production move is: the gates of Production, an approver for Production who is not "
    "the requester.",
)
def create_alias_request(request: HttpRequest, name: str, payload: AliasRequestIn):
    model = model_for(request.user, name)
    version = _version(request, name, payload.version) if payload.version is not None else None
    created = services.alias_request(
        model=model, alias=payload.alias, version=version, by=request.user, comment=payload.comment
    )
    return Status(201, request_out(request, _requests(request).get(pk=created.pk)))


@router.get(
    "/transition-requests",
    response={200: TransitionRequestPage, **ERRORS},
    summary="List transition requests, newest first (pending ones by default)",
)
def list_transition_requests(
    request: HttpRequest,
    status: Annotated[str, WithJsonSchema({"type": "string", "enum": list(STATUSES)})] = Query(
        "pending", description="pending, approved, rejected, cancelled or all."
    ),
    model: str = Query("", description="Only this model's requests."),
    offset: Offset = 0,
    limit: Limit = 100,
):
    if status not in STATUSES:
        raise ApiError(400, f"status must be one of {', '.join(STATUSES)}.")
    queryset = _requests(request)
    if status != "all":
        queryset = queryset.filter(status=status)
    if model:
        queryset = queryset.filter(version__model__name=model)
    items, next_offset = _page(queryset.order_by("-created_at", "-id"), offset, limit)
    return {"items": [request_out(request, t) for t in items], "next_offset": next_offset}


@router.get(
    "/transition-requests/{request_id}",
    response={200: TransitionRequestOut, **ERRORS},
    summary="Get a transition request with its evidence",
)
def get_transition_request(request: HttpRequest, request_id: int):
    return request_out(request, _request_or_404(request, request_id))


@router.post(
    "/transition-requests/{request_id}/approve",
    response={200: TransitionRequestOut, **ERRORS},
    summary="Approve a pending request: the version moves now",
    description="409 `already_decided` if someone decided it first; 409 `gates_failed` lists the failing gates in "
    "`details` (a superuser may pass `override_reason` to approve anyway, recorded in the audit log).",
)
def approve_transition_request(request: HttpRequest, request_id: int, payload: DecisionIn):
    _request_or_404(request, request_id)
    services.transition_approve(
        request_id=request_id, by=request.user, comment=payload.comment, override_reason=payload.override_reason
    )
    return request_out(request, _request_or_404(request, request_id))


@router.post(
    "/transition-requests/{request_id}/reject",
    response={200: TransitionRequestOut, **ERRORS},
    summary="Reject a pending request",
)
def reject_transition_request(request: HttpRequest, request_id: int, payload: CommentIn):
    _request_or_404(request, request_id)
    services.transition_reject(request_id=request_id, by=request.user, comment=payload.comment)
    return request_out(request, _request_or_404(request, request_id))


@router.post(
    "/transition-requests/{request_id}/cancel",
    response={200: TransitionRequestOut, **ERRORS},
    summary="Withdraw your own pending request",
)
def cancel_transition_request(request: HttpRequest, request_id: int, payload: CommentIn):
    _request_or_404(request, request_id)
    services.transition_cancel(request_id=request_id, by=request.user, comment=payload.comment)
    return request_out(request, _request_or_404(request, request_id))


# --- Direct changes, timeline, rollback, audit ----------------------------------------------------------------------


@router.post(
    "/models/{name}/versions/{version}/stage",
    response={200: VersionOut, **ERRORS},
    summary="Move a version now, where the policy allows it without a request",
    description="403 when the target stage needs an approved request and you may not move there directly.",
)
def set_version_stage(request: HttpRequest, name: str, version: int, payload: StageChangeIn):
    model_version = _version(request, name, version)
    services.stage_change_direct(
        version=model_version,
        to_stage=_stage(payload.to_stage),
        by=request.user,
        comment=payload.comment,
        archive_existing=payload.archive_existing,
        override_reason=payload.override_reason,
    )
    return _version_answer(model_version)


@router.get(
    "/models/{name}/timeline",
    response={200: TimelineOut, **ERRORS},
    summary="Which version held a stage from when to when, oldest first",
    by_alias=True,
)
def stage_timeline(
    request: HttpRequest,
    name: str,
    stage: TimelineStage = "Production",
):
    model = model_for(request.user, name)
    wanted = _stage(stage)
    if wanted == Stage.NONE:
        raise ApiError(400, "Timelines cover Staging, Production or Archived; None is where versions start.")
    changes = (
        StageChange.objects.filter(model=model)
        .filter(Q(to_stage=wanted) | Q(from_stage=wanted))
        .timeline_rows(TIMELINE_CHANGES)
    )
    intervals = stage_intervals(changes, stages=(wanted,))
    return {
        "model": model.name,
        "stage": wanted.value,
        "intervals": [{"version": i.version, "from": i.start, "to": i.end} for i in intervals],
    }


@router.get(
    "/models/{name}/stage-at",
    response={200: StageAtOut, **ERRORS},
    summary="Which versions held a stage at a moment (what was in Production at time T)",
)
def stage_at(
    request: HttpRequest,
    name: str,
    at: InTime = Query(..., description="ISO 8601; without a time zone it is read as UTC."),
    stage: StageText = "Production",
):
    model = model_for(request.user, name)
    wanted = _stage(stage)
    moment = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return {
        "model": model.name,
        "stage": wanted.value,
        "at": moment,
        "versions": holders_at(model, wanted, moment),
    }


@router.post(
    "/models/{name}/rollback",
    response={200: VersionOut, **ERRORS},
    summary="Put the previous Production version back and archive the current one",
    description="Needs the permission to approve moves to Production; answers the version now in Production.",
)
def rollback(request: HttpRequest, name: str, payload: CommentIn):
    model = model_for(request.user, name)
    restored = services.production_rollback(model=model, by=request.user, comment=payload.comment)
    return _version_answer(restored)


def audit_out(event: AuditEvent) -> dict:
    return {
        "id": event.pk,
        "at": event.at,
        "action": event.action,
        "actor": event.actor_name,
        "model": event.model_name or None,
        "version": event.version_number,
        "alias": event.alias,
        "experiment": event.experiment_name or None,
        "run_id": event.run_id or None,
        "subject": event.subject,
        "from_value": event.from_value,
        "to_value": event.to_value,
        "comment": event.comment,
        "request_id": event.request_id,
        "data": event.data,
    }


@router.get("/models/{name}/audit", response={200: AuditPage, **ERRORS}, summary="A model's audit log, newest first")
def audit_log(request: HttpRequest, name: str, offset: Offset = 0, limit: Limit = 100, after: str = AFTER):
    model = model_for(request.user, name)
    page = cursor_page(AuditEvent.objects.filter(model_id=model.pk), AUDIT_KEYS, after, offset, limit)
    rows = page.pop("rows")
    return {**page, "items": [audit_out(e) for e in rows]}


@router.get(
    "/audit",
    response={200: AuditPage, **ERRORS},
    summary="The registry's audit log, newest first, filtered",
    description="Events about what you may read (everything for superusers and auditors, who hold "
    "`audit.view_auditevent`). `model` matches the model's current name or the name it had when the event was "
    "recorded, so a renamed or deleted model still answers.",
)
def registry_audit_log(
    request: HttpRequest,
    model: str = "",
    experiment: str = "",
    actor: str = Query("", description="A username, or a system actor such as system:demo."),
    action: AuditActionFilter = "",
    since: InTime | None = Query(None, description="ISO 8601; without a time zone it is read as UTC."),
    until: InTime | None = None,
    offset: Offset = 0,
    limit: Limit = 100,
    after: str = AFTER,
):
    if action and action not in AuditAction.values:
        raise ApiError(400, f"Unknown action {action!r}; use one of {', '.join(AuditAction.values)}.")
    events = filtered(
        events_visible_to(request.user),
        model=model,
        experiment=experiment,
        actor=actor,
        action=action,
        since=_utc(since),
        until=_utc(until),
    )
    page = cursor_page(events, AUDIT_KEYS, after, offset, limit)
    rows = page.pop("rows")
    return {**page, "items": [audit_out(e) for e in rows]}


def _utc(moment: datetime | None) -> datetime | None:
    return moment if moment is None or moment.tzinfo is not None else moment.replace(tzinfo=UTC)
