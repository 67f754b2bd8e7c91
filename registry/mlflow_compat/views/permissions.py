"""MLflow's auth API (`mlflow.server.get_app_client("basic-auth", ...)`) over the registry's users and grants.

    users/create, users/get, users/current, users/list, users/update-password, users/update-admin, users/delete
    experiments/permissions/{create,get,update,delete}          (MLflow 2's per-resource routes)
    registered-models/permissions/{create,get,update,delete}
    /api/3.0/mlflow/users/permissions/{grant,revoke,get}       (MLflow 3's unified routes)

Permissions are our levels (READ, EDIT, MANAGE) granted on a model or an experiment, by someone who MANAGEs it; a
user's admin flag is superuser. What MLflow has and we do not: explicit denials (NO_PERMISSIONS is refused: revoke
the grant instead, or make the object private with its level for everyone) and roles/workspaces (use groups).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.http import HttpRequest

from registry.accounts import services as accounts
from registry.accounts.access import level_of
from registry.catalog import services as catalog
from registry.lib.access import GRANTABLE, Level
from registry.mlflow_compat.auth import Caller
from registry.mlflow_compat.errors import denied, invalid, not_found
from registry.mlflow_compat.inputs import Params
from registry.mlflow_compat.views.common import experiment_or_404, model_or_404
from registry.tracking import services as tracking

User = get_user_model()
RESOURCE_TYPES = ("experiment", "registered_model")


def user_json(user) -> dict:
    return {"id": user.pk, "username": user.get_username(), "is_admin": user.is_superuser}


def _user(username: str):
    user = User.objects.filter(**{User.USERNAME_FIELD: username}).first() if username else None
    if user is None:
        raise not_found(f"User with username={username} not found")
    return user


def _level(params: Params) -> Level:
    text = params.str("permission", required=True)
    try:
        level = Level.parse(text)
    except ValueError as exc:
        raise invalid(str(exc)) from None
    if level not in GRANTABLE:
        raise invalid(
            f"{text} cannot be granted here: grant READ, EDIT or MANAGE, and revoke a grant to take access away "
            "(a private model or experiment sets its level for everyone to NONE)."
        )
    return level


# --- Users ----------------------------------------------------------------------------------------------------------


def create_user(request: HttpRequest, params: Params, caller: Caller) -> dict:
    user = accounts.user_create(
        username=params.str("username", required=True, max_length=150),
        password=params.str("password", required=True),
        by=caller.user,
    )
    return {"user": user_json(user)}


def get_user(request: HttpRequest, params: Params, caller: Caller) -> dict:
    username = params.str("username", required=True)
    if username != caller.user.get_username() and not caller.user.is_superuser:
        raise denied("Only an administrator may look up other users.")
    return {"user": user_json(_user(username))}


def current_user(request: HttpRequest, params: Params, caller: Caller) -> dict:
    return {"user": user_json(caller.user)}


def list_users(request: HttpRequest, params: Params, caller: Caller) -> dict:
    if not caller.user.is_superuser:
        raise denied("Only an administrator may list users.")
    return {"users": [user_json(u) for u in User.objects.order_by(User.USERNAME_FIELD)]}


def update_user_password(request: HttpRequest, params: Params, caller: Caller) -> dict:
    user = _user(params.str("username", required=True))
    accounts.user_password_set(
        user=user,
        password=params.str("password", required=True),
        by=caller.user,
        current_password=params.str("current_password") or None,
    )
    return {}


def update_user_admin(request: HttpRequest, params: Params, caller: Caller) -> dict:
    accounts.user_admin_set(
        user=_user(params.str("username", required=True)), is_admin=params.bool("is_admin"), by=caller.user
    )
    return {}


def delete_user(request: HttpRequest, params: Params, caller: Caller) -> dict:
    accounts.user_delete(user=_user(params.str("username", required=True)), by=caller.user)
    return {}


# --- Per-resource permissions (MLflow 2) ----------------------------------------------------------------------------


def _grant_of(obj, user):
    return obj.grants.filter(user=user).first()


def _experiment_permission(experiment, user, level) -> dict:
    return {
        "experiment_permission": {
            "experiment_id": str(experiment.pk),
            "user_id": user.pk,
            "permission": Level(level).mlflow_name,
        }
    }


def _model_permission(model, user, level) -> dict:
    return {
        "registered_model_permission": {"name": model.name, "user_id": user.pk, "permission": Level(level).mlflow_name}
    }


def create_experiment_permission(request: HttpRequest, params: Params, caller: Caller) -> dict:
    experiment = experiment_or_404(params.str("experiment_id", required=True), caller.user)
    user, level = _user(params.str("username", required=True)), _level(params)
    if _grant_of(experiment, user) is not None:
        raise invalid(f"User {user.get_username()} already has a permission on experiment {experiment.pk}.")
    tracking.experiment_grant_set(experiment=experiment, by=caller.user, user=user, level=level)
    return _experiment_permission(experiment, user, level)


def get_experiment_permission(request: HttpRequest, params: Params, caller: Caller) -> dict:
    experiment = experiment_or_404(params.str("experiment_id", required=True), caller.user)
    user = _user(params.str("username", required=True))
    grant = _grant_of(experiment, user)
    if grant is None:
        raise not_found(f"Experiment permission with experiment_id={experiment.pk} and username={user} not found")
    return _experiment_permission(experiment, user, grant.level)


def update_experiment_permission(request: HttpRequest, params: Params, caller: Caller) -> dict:
    experiment = experiment_or_404(params.str("experiment_id", required=True), caller.user)
    user, level = _user(params.str("username", required=True)), _level(params)
    if _grant_of(experiment, user) is None:
        raise not_found(f"Experiment permission with experiment_id={experiment.pk} and username={user} not found")
    tracking.experiment_grant_set(experiment=experiment, by=caller.user, user=user, level=level)
    return {}


def delete_experiment_permission(request: HttpRequest, params: Params, caller: Caller) -> dict:
    experiment = experiment_or_404(params.str("experiment_id", required=True), caller.user)
    tracking.experiment_grant_revoke(
        experiment=experiment, by=caller.user, user=_user(params.str("username", required=True))
    )
    return {}


def create_registered_model_permission(request: HttpRequest, params: Params, caller: Caller) -> dict:
    model = model_or_404(params.str("name", required=True), caller.user)
    user, level = _user(params.str("username", required=True)), _level(params)
    if _grant_of(model, user) is not None:
        raise invalid(f"User {user.get_username()} already has a permission on registered model {model.name}.")
    catalog.model_grant_set(model=model, by=caller.user, user=user, level=level)
    return _model_permission(model, user, level)


def get_registered_model_permission(request: HttpRequest, params: Params, caller: Caller) -> dict:
    model = model_or_404(params.str("name", required=True), caller.user)
    user = _user(params.str("username", required=True))
    grant = _grant_of(model, user)
    if grant is None:
        raise not_found(f"Registered model permission with name={model.name} and username={user} not found")
    return _model_permission(model, user, grant.level)


def update_registered_model_permission(request: HttpRequest, params: Params, caller: Caller) -> dict:
    model = model_or_404(params.str("name", required=True), caller.user)
    user, level = _user(params.str("username", required=True)), _level(params)
    grant = _grant_of(model, user)
    if grant is None:
        raise not_found(f"Registered model permission with name={model.name} and username={user} not found")
    catalog.model_grant_set(
        model=model,
        by=caller.user,
        user=user,
        level=level,
        request_stages=grant.request_stages,
        approve_stages=grant.approve_stages,
    )
    return {}


def delete_registered_model_permission(request: HttpRequest, params: Params, caller: Caller) -> dict:
    model = model_or_404(params.str("name", required=True), caller.user)
    catalog.model_grant_revoke(model=model, by=caller.user, user=_user(params.str("username", required=True)))
    return {}


# --- Unified grants (MLflow 3) --------------------------------------------------------------------------------------


def _resource(params: Params, caller: Caller):
    kind = params.str("resource_type", required=True)
    ident = params.str("resource_id", required=True)
    if kind == "experiment":
        return kind, experiment_or_404(ident, caller.user)
    if kind == "registered_model":
        return kind, model_or_404(ident, caller.user)
    raise invalid(f"resource_type must be one of {', '.join(RESOURCE_TYPES)} here (got {kind!r}).")


def grant_user_permission(request: HttpRequest, params: Params, caller: Caller) -> dict:
    kind, obj = _resource(params, caller)
    user, level = _user(params.str("username", required=True)), _level(params)
    if kind == "experiment":
        tracking.experiment_grant_set(experiment=obj, by=caller.user, user=user, level=level)
    else:
        grant = _grant_of(obj, user)
        rights = {"request_stages": grant.request_stages, "approve_stages": grant.approve_stages} if grant else {}
        catalog.model_grant_set(model=obj, by=caller.user, user=user, level=level, **rights)
    return {}


def revoke_user_permission(request: HttpRequest, params: Params, caller: Caller) -> dict:
    kind, obj = _resource(params, caller)
    user = _user(params.str("username", required=True))
    if kind == "experiment":
        tracking.experiment_grant_revoke(experiment=obj, by=caller.user, user=user)
    else:
        catalog.model_grant_revoke(model=obj, by=caller.user, user=user)
    return {}


def get_user_permission(request: HttpRequest, params: Params, caller: Caller) -> dict:
    """The user's effective level, as a request of theirs would see it. `allowed` is MLflow's `can_use`: EDIT or
    more (READ alone is not "use" in MLflow's terms)."""
    kind, obj = _resource(params, caller)
    user = _user(params.str("username", required=True))
    if user.pk != caller.user.pk and level_of(obj, caller.user) < Level.MANAGE:
        raise denied("Only someone who manages this resource may look up other users' permissions on it.")
    level = level_of(obj, user)
    return {"allowed": level >= Level.EDIT, "permission": level.mlflow_name}
