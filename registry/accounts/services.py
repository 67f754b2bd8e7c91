"""Writes about people and their access: grants on a model or an experiment, owners, the level for everyone, and
the user accounts MLflow's auth API manages.

The grant functions serve both grant tables (registered models and experiments): the catalog and tracking services
check that the caller may MANAGE the object, then call these with the object and what to name it in the audit log.
Every change is refused whole, with a message saying what to do, when it would leave nobody able to manage the
object or take MANAGE away from the person making it.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from registry.accounts.access import level_of
from registry.audit import services as audit
from registry.audit.models import AuditAction
from registry.lib.access import GRANTABLE, Level
from registry.lib.errors import Conflict, Forbidden, Invalid, NotFound

User = get_user_model()


def find_user(username: str):
    user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
    if user is None:
        raise Invalid(f"No user named {username!r}: check the spelling (usernames are case-sensitive).")
    return user


def find_group(name: str) -> Group:
    group = Group.objects.filter(name=name).first()
    if group is None:
        raise Invalid(f"No group named {name!r}: an administrator creates groups (teams) in the admin.")
    return group


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
        return {"user": user, "group": None}, f"user:{user.get_username()}"
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
                subject=f"user:{owner.get_username()}",
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


# --- User accounts (MLflow's auth API) ------------------------------------------------------------------------------


def _require_superuser(by, doing: str) -> None:
    if not (by and by.is_active and by.is_superuser):
        raise Forbidden(f"Only an administrator may {doing}.")


def user_create(*, username: str, password: str | None, by, is_superuser: bool = False, unusable: bool = False):
    """A new account. `password` None with `unusable`: an account without a usable password, which signs in through
    the identity provider only (the admin's "password-based authentication: disabled")."""
    _require_superuser(by, "create users")
    if not username or (not password and not unusable):
        raise Invalid("A user needs a username and a password.")
    user = User(**{User.USERNAME_FIELD: username})
    if password:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise Invalid("The password is too weak: " + " ".join(exc.messages)) from None
    try:
        with transaction.atomic():
            if password:
                user.set_password(password)
            else:
                user.set_unusable_password()
            user.is_superuser = user.is_staff = is_superuser
            user.save()
            audit.record(AuditAction.USER_CREATED, actor=by, subject=f"user:{username}", to_value=username)
    except IntegrityError:
        raise Conflict(f"A user named {username!r} already exists.") from None
    return user


def user_password_set(*, user, password: str, by, current_password: str | None = None) -> None:
    own = by.pk == user.pk
    if not own:
        _require_superuser(by, "change another user's password")
    elif not by.is_superuser and not (current_password and user.check_password(current_password)):
        raise Forbidden("To change your own password, send your current password too.")
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise Invalid("The password is too weak: " + " ".join(exc.messages)) from None
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        audit.record(AuditAction.USER_CHANGED, actor=by, subject=f"user:{user.get_username()}", to_value="password")


def user_admin_set(*, user, is_admin: bool, by) -> None:
    _require_superuser(by, "make users administrators")
    if user.pk == by.pk and not is_admin:
        raise Conflict("You cannot take away your own administrator rights; ask another administrator.")
    with transaction.atomic():
        before = user.is_superuser
        user.is_superuser = user.is_staff = bool(is_admin)
        user.save(update_fields=["is_superuser", "is_staff"])
        audit.record(
            AuditAction.USER_CHANGED,
            actor=by,
            subject=f"user:{user.get_username()}",
            from_value="admin" if before else "user",
            to_value="admin" if is_admin else "user",
        )


USER_FLAGS = ("is_active", "is_staff", "is_superuser")


def user_access_set(*, user, by, groups=None, **flags: bool) -> dict:
    """Set what an account may do, as an administrator edits it: `is_active`, `is_staff`, `is_superuser` (any of
    them) and its teams (`groups`, the whole new set; None leaves them). Teams carry grants and the approver roles, so
    who joined or left which is in the audit log: one `user_changed` event naming every change (`data`), none when
    nothing changed. Returns that change, empty when nothing changed. Only an administrator may change anything
    (a staff member saving someone's name in the admin passes the same values back, which changes nothing)."""
    unknown = set(flags) - set(USER_FLAGS)
    if unknown:
        raise Invalid(f"Unknown account flags: {', '.join(sorted(unknown))}.")
    if user.pk == by.pk and any(flag in flags and not flags[flag] for flag in ("is_active", "is_superuser")):
        raise Conflict("You cannot take away your own administrator rights or sign-in; ask another administrator.")
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        change: dict = {
            flag: [getattr(locked, flag), bool(value)]
            for flag, value in flags.items()
            if getattr(locked, flag) != bool(value)
        }
        if groups is not None:
            before = {g.pk: g.name for g in locked.groups.all()}
            after = {g.pk: g.name for g in groups}
            added = sorted(name for pk, name in after.items() if pk not in before)
            removed = sorted(name for pk, name in before.items() if pk not in after)
            if added or removed:
                change.update({"groups_added": added, "groups_removed": removed})
        if not change:
            return change
        _require_superuser(by, "change users' rights or teams")
        flag_values = {flag: values[1] for flag, values in change.items() if flag in USER_FLAGS}
        if flag_values:
            User.objects.filter(pk=user.pk).update(**flag_values)
            for flag, value in flag_values.items():
                setattr(user, flag, value)
        if "groups_added" in change:
            user.groups.set(list(after))
        from_words, to_words = _access_words(change)
        audit.record(
            AuditAction.USER_CHANGED,
            actor=by,
            subject=f"user:{user.get_username()}",
            from_value=from_words,
            to_value=to_words,
            data=change,
        )
    return change


_FLAG_WORDS = {"is_active": "may sign in", "is_staff": "staff", "is_superuser": "administrator"}


def _access_words(change: dict) -> tuple[str, str]:
    """The audit log's from and to for user_access_set: "staff: no; left risk-team" → "staff: yes; joined approvers"."""
    before, after = [], []
    for flag, word in _FLAG_WORDS.items():
        if flag in change:
            old, new = change[flag]
            before.append(f"{word}: {'yes' if old else 'no'}")
            after.append(f"{word}: {'yes' if new else 'no'}")
    if change.get("groups_removed"):
        before.append("left " + ", ".join(change["groups_removed"]))
    if change.get("groups_added"):
        after.append("joined " + ", ".join(change["groups_added"]))
    return "; ".join(before), "; ".join(after)


def user_delete(*, user, by) -> None:
    _require_superuser(by, "delete users")
    if user.pk == by.pk:
        raise Conflict("You cannot delete your own account; ask another administrator.")
    with transaction.atomic():
        name = user.get_username()
        user.delete()
        audit.record(AuditAction.USER_DELETED, actor=by, subject=f"user:{name}", from_value=name)


# --- Single sign-on -------------------------------------------------------------------------------------------------

GROUP_NAME_MAX = 150


def _claimed_groups(groups) -> list[str]:
    """The group names a claim holds: a list of strings (or one string); blank and over-long names are skipped."""
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, list | tuple):
        return []
    names = {g.strip() for g in groups if isinstance(g, str) and g.strip() and len(g.strip()) <= GROUP_NAME_MAX}
    return sorted(names)


def sso_user_sync(
    *,
    user,
    username: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    groups: list[str] | None = None,
    create_groups: bool = True,
    by=None,
):
    """Create (`user` None) or refresh the account of someone the identity provider signed in, and set their
    membership of the provider's groups to `groups` (None: the provider sent no groups claim, membership stays).

    Groups named in the claim become provider-managed (`IdentityProviderGroup`); with `create_groups`, names that
    are no group yet are created, else skipped. Membership of groups the provider does not manage (roles handed out
    here) is never touched. Every change is audited (`data.sso`), its actor `by`: by default the person signing in,
    who acts through the provider.
    """
    from registry.accounts.models import IdentityProviderGroup

    fields = {"email": email[:254], "first_name": first_name[:150], "last_name": last_name[:150]}
    with transaction.atomic():
        if user is None:
            user = User(**{User.USERNAME_FIELD: username}, **fields)
            user.set_unusable_password()  # signs in through the provider only, until an administrator sets one
            try:
                with transaction.atomic():
                    user.save()
            except IntegrityError:
                raise Conflict(f"A user named {username!r} already exists.") from None
            audit.record(
                AuditAction.USER_CREATED,
                actor=by or user,
                subject=f"user:{username}",
                to_value=username,
                data={"sso": True},
            )
        else:
            changed = [name for name, value in fields.items() if getattr(user, name) != value]
            if changed:
                for name in changed:
                    setattr(user, name, fields[name])
                user.save(update_fields=changed)
        if groups is None:
            return user
        wanted = _claimed_groups(groups)
        existing = {g.name: g for g in Group.objects.filter(name__in=wanted)}
        if create_groups:
            for name in wanted:
                if name not in existing:
                    existing[name], _ = Group.objects.get_or_create(name=name)
        claimed = [existing[name] for name in wanted if name in existing]
        IdentityProviderGroup.objects.bulk_create(
            [IdentityProviderGroup(group=g) for g in claimed], ignore_conflicts=True
        )
        managed = set(user.groups.filter(from_idp__isnull=False).values_list("name", flat=True))
        added = sorted({g.name for g in claimed} - managed)
        removed = sorted(managed - {g.name for g in claimed})
        if added:
            user.groups.add(*[existing[name] for name in added])
        if removed:
            user.groups.remove(*Group.objects.filter(name__in=removed))
        if added or removed:
            audit.record(
                AuditAction.USER_CHANGED,
                actor=by or user,
                subject=f"user:{user.get_username()}",
                to_value="groups",
                data={"added": added, "removed": removed, "sso": True},
            )
    return user
