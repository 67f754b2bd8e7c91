"""Who may move stages and aliases, on a model the user may read (NotFound otherwise):

- request a move to a stage: the registry-wide role `governance.request_transition`, that stage among the
  requestable stages of a grant on the model, or MANAGE on the model;
- approve a move to a stage: the registry-wide role `governance.approve_<stage>`, or that stage among the
  approvable stages of a grant on the model (never the requester, unless the policy allows self-approval);
- protected aliases (the policy's `protected_aliases`, by default champion and production) follow Production's rules;
  other aliases need EDIT on the model.

Superusers hold every right.

The governance services check these before they write; pages call them to offer only what the user may do.
"""

from __future__ import annotations

from registry.accounts.access import stage_rights_of
from registry.catalog.access import require
from registry.catalog.models import RegisteredModel, Stage
from registry.governance.models import StagePolicy
from registry.lib.access import Level

REQUEST_PERMISSION = "governance.request_transition"


def approve_permission(stage: str) -> str:
    return f"governance.approve_{Stage.parse(stage).value.lower()}"


def _active(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


def can_request(user, model: RegisteredModel, stage: str) -> bool:
    """May `user` ask for a version of `model` to move to `stage`? (They may read the model: see `_readable`.)"""
    if not _active(user):
        return False
    if user.is_superuser or user.has_perm(REQUEST_PERMISSION):
        return True
    if require(model, user, Level.READ) >= Level.MANAGE:
        return True
    return Stage.parse(stage).value in stage_rights_of(model, user)[0]


def can_approve(user, model: RegisteredModel, stage: str) -> bool:
    """May `user` approve (or directly make, where the policy allows) a move of `model`'s versions to `stage`?"""
    if not _active(user):
        return False
    if user.is_superuser or user.has_perm(approve_permission(stage)):
        return True
    return Stage.parse(stage).value in stage_rights_of(model, user)[1]


def may_move_directly(user, model: RegisteredModel, policy: StagePolicy, stage: str) -> bool:
    """Who may move a version to `stage` without a request (the stage panel offers exactly this)."""
    if policy.needs_approval(stage):
        return policy.allow_direct_changes and can_approve(user, model, stage)
    return can_request(user, model, stage) or can_approve(user, model, stage)
