"""Who may do what with a model or an experiment: its owner, the level for everyone, and grants to users and groups.

Anyone who may read the object sees who has access (so they know whom to ask); changing it needs MANAGE. The rules
(no demoting yourself, someone always able to manage it) are the services'; a refusal is a 4xx saying what to do.
"""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest
from ninja import Router, Status

from registry.accounts import services as accounts
from registry.accounts.access import level_of, registry_default
from registry.accounts.grants import grants_of
from registry.api.catalog import ERRORS
from registry.api.errors import ApiError
from registry.api.schemas import AccessOut, AccessPatch, ExperimentGrantIn, GrantIn, GrantOut
from registry.catalog import services as catalog
from registry.catalog.access import model_for
from registry.lib.access import Level
from registry.lib.errors import Invalid
from registry.tracking import services as tracking
from registry.tracking.access import experiment_for

router = Router(tags=["access"])


def find_user(username: str):
    """The user named in the URL or body; 404 when there is none (a reference to nothing, not a malformed request)."""
    try:
        return accounts.find_user(username)
    except Invalid as exc:
        raise ApiError(404, exc.message) from None


def find_group(name: str):
    try:
        return accounts.find_group(name)
    except Invalid as exc:
        raise ApiError(404, exc.message) from None


def grant_out(grant) -> dict:
    return {
        "user": grant.user.get_username() if grant.user_id else None,
        "group": grant.group.name if grant.group_id else None,
        "level": Level(grant.level).name,
        "request_stages": getattr(grant, "request_stages", []) or [],
        "approve_stages": getattr(grant, "approve_stages", []) or [],
        "granted_by": grant.granted_by.get_username() if grant.granted_by_id and grant.granted_by else None,
        "granted_at": grant.granted_at,
    }


def access_out(obj, user) -> dict:
    return {
        "owner": obj.owner.get_username() if obj.owner_id else None,
        "default_level": Level(obj.default_level).name if obj.default_level is not None else None,
        "registry_default": registry_default().name,
        "your_level": level_of(obj, user).name,
        "grants": [grant_out(g) for g in grants_of(obj)],
    }


def _patch(request: HttpRequest, payload: AccessPatch, *, owner_set, default_level_set) -> None:
    data = payload.dict(exclude_unset=True)
    with transaction.atomic():
        if data.get("default_level") is not None:
            level = None if data["default_level"] == "DEFAULT" else data["default_level"]
            default_level_set(by=request.user, level=level)
        if data.get("owner"):
            owner_set(by=request.user, owner=find_user(data["owner"]))


# --- Models ---------------------------------------------------------------------------------------------------------


@router.get("/models/{name}/access", response={200: AccessOut, **ERRORS}, summary="Who may do what with a model")
def model_access(request: HttpRequest, name: str):
    model = model_for(request.user, name)
    return access_out(model, request.user)


@router.patch(
    "/models/{name}/access",
    response={200: AccessOut, **ERRORS},
    summary="Hand a model over, or set everyone's level on it (MANAGE)",
)
def model_access_update(request: HttpRequest, name: str, payload: AccessPatch):
    model = model_for(request.user, name)
    _patch(
        request,
        payload,
        owner_set=lambda **kw: catalog.model_owner_set(model=model, **kw),
        default_level_set=lambda **kw: catalog.model_default_level_set(model=model, **kw),
    )
    return access_out(model_for(request.user, name), request.user)


@router.put(
    "/models/{name}/access/users/{username}",
    response={200: GrantOut, **ERRORS},
    summary="Grant a user a level on a model, and the stages they may request and approve (MANAGE)",
)
def model_grant_user(request: HttpRequest, name: str, username: str, payload: GrantIn):
    model = model_for(request.user, name)
    grant = catalog.model_grant_set(model=model, by=request.user, user=find_user(username), **payload.dict())
    return grant_out(grant)


@router.put(
    "/models/{name}/access/groups/{group}",
    response={200: GrantOut, **ERRORS},
    summary="Grant a group (a team) a level on a model (MANAGE)",
)
def model_grant_group(request: HttpRequest, name: str, group: str, payload: GrantIn):
    model = model_for(request.user, name)
    grant = catalog.model_grant_set(model=model, by=request.user, group=find_group(group), **payload.dict())
    return grant_out(grant)


@router.delete(
    "/models/{name}/access/users/{username}", response={204: None, **ERRORS}, summary="Revoke a user's grant"
)
def model_revoke_user(request: HttpRequest, name: str, username: str):
    catalog.model_grant_revoke(model=model_for(request.user, name), by=request.user, user=find_user(username))
    return Status(204, None)


@router.delete("/models/{name}/access/groups/{group}", response={204: None, **ERRORS}, summary="Revoke a group's grant")
def model_revoke_group(request: HttpRequest, name: str, group: str):
    catalog.model_grant_revoke(model=model_for(request.user, name), by=request.user, group=find_group(group))
    return Status(204, None)


# --- Experiments ----------------------------------------------------------------------------------------------------


@router.get(
    "/experiments/{ref}/access", response={200: AccessOut, **ERRORS}, summary="Who may do what with an experiment"
)
def experiment_access(request: HttpRequest, ref: str):
    return access_out(experiment_for(request.user, ref), request.user)


@router.patch(
    "/experiments/{ref}/access",
    response={200: AccessOut, **ERRORS},
    summary="Hand an experiment over, or set everyone's level on it (MANAGE)",
)
def experiment_access_update(request: HttpRequest, ref: str, payload: AccessPatch):
    experiment = experiment_for(request.user, ref)
    _patch(
        request,
        payload,
        owner_set=lambda **kw: tracking.experiment_owner_set(experiment=experiment, **kw),
        default_level_set=lambda **kw: tracking.experiment_default_level_set(experiment=experiment, **kw),
    )
    return access_out(experiment_for(request.user, experiment.pk), request.user)


def _experiment_grant(request: HttpRequest, ref: str, payload: ExperimentGrantIn, **grantee):
    experiment = experiment_for(request.user, ref)
    return grant_out(
        tracking.experiment_grant_set(experiment=experiment, by=request.user, level=payload.level, **grantee)
    )


@router.put(
    "/experiments/{ref}/access/users/{username}",
    response={200: GrantOut, **ERRORS},
    summary="Grant a user a level on an experiment (MANAGE)",
)
def experiment_grant_user(request: HttpRequest, ref: str, username: str, payload: ExperimentGrantIn):
    return _experiment_grant(request, ref, payload, user=find_user(username))


@router.put(
    "/experiments/{ref}/access/groups/{group}",
    response={200: GrantOut, **ERRORS},
    summary="Grant a group a level on an experiment (MANAGE)",
)
def experiment_grant_group(request: HttpRequest, ref: str, group: str, payload: ExperimentGrantIn):
    return _experiment_grant(request, ref, payload, group=find_group(group))


@router.delete(
    "/experiments/{ref}/access/users/{username}", response={204: None, **ERRORS}, summary="Revoke a user's grant"
)
def experiment_revoke_user(request: HttpRequest, ref: str, username: str):
    experiment = experiment_for(request.user, ref)
    tracking.experiment_grant_revoke(experiment=experiment, by=request.user, user=find_user(username))
    return Status(204, None)


@router.delete(
    "/experiments/{ref}/access/groups/{group}", response={204: None, **ERRORS}, summary="Revoke a group's grant"
)
def experiment_revoke_group(request: HttpRequest, ref: str, group: str):
    experiment = experiment_for(request.user, ref)
    tracking.experiment_grant_revoke(experiment=experiment, by=request.user, group=find_group(group))
    return Status(204, None)
