"""Writes about who may do what with a registered model or an experiment: grants to users and groups, owners, and
the level for everyone else.

These serve both grant tables (registered models and experiments): the catalog and tracking services check that the
caller may MANAGE the object, then call these with the object and what to name it in the audit log. Every change is
refused whole, with a message saying what to do, when it would leave nobody able to manage the object or take MANAGE
away from the person making it.
"""

from __future__ import annotations

from django.db import transaction

from registry.accounts.access import level_of
from registry.accounts.models import account_subject
from registry.audit import services as audit
from registry.audit.models import AuditAction
from registry.lib.access import GRANTABLE, Level
from registry.lib.errors import Conflict, Invalid, NotFound


def grant_level(level: object) -> Level:
    try:
        parsed = Level.parse(level)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    if parsed not in GRANTABLE:
        raise Invalid(f"Grant READ, EDIT or MANAGE; to take access away, revoke the grant (got {parsed.name}).")
    return parsed


def _grantee(user, group) -> tuple[dict, str]:
    if (user is None) == (group is None):
        raise Invalid("A grant is to one user or one group.")
    if user is not None:
        return {"user": user, "group": None}, account_subject(user.get_username())
    return {"user": None, "group": group}, f"group:{group.name}"


def _check_still_managed(obj, by, *, what: str) -> None:
    """After a change (inside its transaction): someone can still manage `obj`, and `by` still can (unless a
    superuser). Raises Conflict, which rolls the change back."""
    obj.__dict__.pop("_level_cache", None)
    try:
        keeps_manage = by.is_superuser or level_of(obj, by) >= Level.MANAGE
    finally:
        obj.__dict__.pop("_level_cache", None)  # the change may yet roll back: read the levels again next time
    if not keeps_manage:
        raise Conflict(
            f"This would take MANAGE on {what} away from you. Ask another manager to change your own access."
        )
    has_manager = obj.owner_id is not None or obj.grants.filter(level=Level.MANAGE).exists()
    if not has_manager:
        raise Conflict(f"This would leave nobody who may manage {what}. Grant MANAGE to someone else first.")


def grant_set(
    *, obj, by, user=None, group=None, level: object, extra: dict | None = None, scope: dict, what: str
) -> object:
    """Give `user` or `group` `level` on `obj` (replacing a grant they had); `extra` holds the grant table's own
    fields (a model's stage rights). `scope` names the object for the audit log: {"model": m} or {"experiment": e}."""
    parsed = grant_level(level)
    grantee, subject = _grantee(user, group)
    with transaction.atomic():
        grants = obj.grants.select_for_update()
        existing = grants.filter(**{k: v for k, v in grantee.items() if v is not None}).first()
        before = f"{Level(existing.level).name}" if existing else "NONE"
        fields = {"level": int(parsed), "granted_by": by, **(extra or {})}
        if existing is None:
            grant = obj.grants.create(**grantee, **fields)
        else:
            for name, value in fields.items():
                setattr(existing, name, value)
            existing.save()
            grant = existing
        _check_still_managed(obj, by, what=what)
        audit.record(
            AuditAction.ACCESS_GRANTED,
            actor=by,
            subject=subject,
            from_value=before,
            to_value=parsed.name,
            data={key: value for key, value in (extra or {}).items()},
            **scope,
        )
    return grant


def grant_revoke(*, obj, by, user=None, group=None, scope: dict, what: str) -> None:
    grantee, subject = _grantee(user, group)
    with transaction.atomic():
        existing = obj.grants.select_for_update().filter(**{k: v for k, v in grantee.items() if v is not None}).first()
        if existing is None:
            raise NotFound(f"{subject.replace(':', ' ', 1).capitalize()} holds no grant on {what}.")
        before = Level(existing.level).name
        existing.delete()
        _check_still_managed(obj, by, what=what)
        audit.record(AuditAction.ACCESS_REVOKED, actor=by, subject=subject, from_value=before, **scope)


def owner_set(*, obj, by, owner, scope: dict, what: str) -> None:
    """Make `owner` the owner of `obj`. The previous owner keeps MANAGE through a grant, so handing an object over
    never locks its former owner out by surprise (the new owner may revoke it)."""
    if owner is None or not owner.is_active:
        raise Invalid("The owner must be an active user.")
    previous = obj.owner
    if previous is not None and previous.pk == owner.pk:
        return
    try:
        with transaction.atomic():
            type(obj).objects.filter(pk=obj.pk).update(owner=owner)
            obj.owner = owner
            if previous is not None:
                obj.grants.update_or_create(user=previous, defaults={"level": int(Level.MANAGE), "granted_by": by})
            _check_still_managed(obj, by, what=what)
            audit.record(
                AuditAction.OWNER_CHANGED,
                actor=by,
                subject=account_subject(owner.get_username()),
                from_value=previous.get_username() if previous else "",
                to_value=owner.get_username(),
                **scope,
            )
    except Exception:
        obj.owner = previous
        raise


def default_level_set(*, obj, by, level: object | None, scope: dict, what: str) -> None:
    """The level of every signed-in user without a grant on `obj`: NONE, READ or EDIT, or None for the registry's
    default."""
    parsed = None
    if level is not None and level != "":
        try:
            parsed = Level.parse(level)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        if parsed > Level.EDIT:
            raise Invalid("Everyone's level can be NONE, READ or EDIT; grant MANAGE to people by name.")
    before = obj.default_level
    try:
        with transaction.atomic():
            type(obj).objects.filter(pk=obj.pk).update(default_level=None if parsed is None else int(parsed))
            obj.default_level = None if parsed is None else int(parsed)
            _check_still_managed(obj, by, what=what)
            audit.record(
                AuditAction.DEFAULT_LEVEL_CHANGED,
                actor=by,
                subject="everyone",
                from_value="default" if before is None else Level(before).name,
                to_value="default" if parsed is None else parsed.name,
                **scope,
            )
    except Exception:
        obj.default_level = before
        raise


def grants_of(obj) -> list:
    """The object's grants with their users and groups, highest level first (one query)."""
    return list(obj.grants.select_related("user", "group").order_by("-level", "user__username", "group__name"))
