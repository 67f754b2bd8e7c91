"""Writes about people: user accounts (the admin's, MLflow's auth API's, single sign-on's), their rights and teams,
groups, and API tokens. Each checks that `by` may make it (most only an administrator may) and records it in the
audit log in the same transaction.

Grants on models and experiments are in `registry.accounts.grants`.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from registry.accounts.access import Grant, grants_held
from registry.accounts.models import ApiToken, account_subject
from registry.audit import services as audit
from registry.audit.models import AuditAction
from registry.lib.errors import Conflict, Forbidden, Invalid

User = get_user_model()
CHANGE_USERS = f"{User._meta.app_label}.change_{User._meta.model_name}"  # Django's auth.change_user


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


# --- User accounts (MLflow's auth API) ------------------------------------------------------------------------------


def _is_system(by) -> bool:
    """A system actor ("system:createsuperuser"): a management command, run by whoever runs the server."""
    return isinstance(by, str) and by.startswith("system:")


def _require_superuser(by, doing: str) -> None:
    if _is_system(by):
        return
    if not (by and not isinstance(by, str) and by.is_active and by.is_superuser):
        raise Forbidden(f"Only an administrator may {doing}.")


def user_create(
    *, username: str, password: str | None, by, is_superuser: bool = False, unusable: bool = False, email: str = ""
):
    """A new account. `password` None with `unusable`: an account without a usable password, which signs in through
    the identity provider only (the admin's "password-based authentication: disabled")."""
    _require_superuser(by, "create users")
    if not username or (not password and not unusable):
        raise Invalid("A user needs a username and a password.")
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise Invalid(f"{email!r} is not an email address.") from None
    user = User(**{User.USERNAME_FIELD: username}, email=email)
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
            audit.record(AuditAction.USER_CREATED, actor=by, subject=account_subject(username), to_value=username)
    except IntegrityError:
        raise Conflict(f"A user named {username!r} already exists.") from None
    return user


def user_password_set(*, user, password: str, by, current_password: str | None = None) -> None:
    """Set `user`'s password. People change their own with their current one (administrators need not); only an
    administrator sets someone else's, and so does a management command (changepassword)."""
    if _is_system(by) or by.pk != user.pk:
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
        audit.record(
            AuditAction.USER_CHANGED, actor=by, subject=account_subject(user.get_username()), to_value="password"
        )


def user_password_off(*, user, by) -> None:
    """Turn `user`'s password sign-in off: they sign in through the identity provider only, until an administrator
    sets a password. An administrator's, for someone else."""
    _require_superuser(by, "turn off someone's password sign-in")
    if by.pk == user.pk:
        raise Conflict("You cannot turn off your own password sign-in; ask another administrator.")
    with transaction.atomic():
        user.set_unusable_password()
        user.save(update_fields=["password"])
        audit.record(
            AuditAction.USER_CHANGED,
            actor=by,
            subject=account_subject(user.get_username()),
            to_value="password sign-in off",
        )


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
            subject=account_subject(user.get_username()),
            from_value="admin" if before else "user",
            to_value="admin" if is_admin else "user",
        )


USER_FLAGS = ("is_active", "is_staff", "is_superuser")
USER_DETAILS = ("first_name", "last_name", "email")


def user_details_set(*, user, by, **details: str | None) -> dict:
    """Set an account's `first_name`, `last_name` and `email` (None leaves one as it is). They decide no access
    (single sign-on finds accounts by username), so people set their own, and staff who may edit accounts in the
    admin (Django's auth.change_user) anyone's. One `user_changed` event names each change (`data`: {field: [old,
    new]}), none when nothing changed. Returns that change."""
    unknown = set(details) - set(USER_DETAILS)
    if unknown:
        raise Invalid(f"Unknown account details: {', '.join(sorted(unknown))}.")
    if by.pk != user.pk and not (by.is_active and by.is_staff and by.has_perm(CHANGE_USERS)):
        raise Forbidden("Only the person themselves, or staff who may edit accounts, may change a name or email.")
    wanted = {}
    for field, value in details.items():
        if value is None:
            continue
        value = value.strip()
        limit = User._meta.get_field(field).max_length
        if len(value) > limit:
            raise Invalid(f"The {field.replace('_', ' ')} is at most {limit} characters (got {len(value)}).")
        wanted[field] = value
    if wanted.get("email"):
        try:
            validate_email(wanted["email"])
        except ValidationError:
            raise Invalid(f"{wanted['email']!r} is not an email address.") from None
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        change = {
            field: [getattr(locked, field), value] for field, value in wanted.items() if getattr(locked, field) != value
        }
        if not change:
            return change
        _details_write(user, change, by=by)
    return change


def _details_write(user, change: dict[str, list[str]], *, by, **data) -> None:
    """Write `change` ({field: [old, new]}) to `user`'s row and record it, in the caller's transaction."""
    User.objects.filter(pk=user.pk).update(**{field: values[1] for field, values in change.items()})
    for field, values in change.items():
        setattr(user, field, values[1])
    audit.record(
        AuditAction.USER_CHANGED,
        actor=by,
        subject=account_subject(user.get_username()),
        from_value="; ".join(f"{field.replace('_', ' ')}: {old or '—'}" for field, (old, _) in change.items()),
        to_value="; ".join(f"{field.replace('_', ' ')}: {new or '—'}" for field, (_, new) in change.items()),
        data={**change, **data},
    )


def _permissions(permissions) -> dict[int, tuple[str, str]]:
    """{id: ("app.codename", "Can approve moves to Production")} for Permission rows or their ids (one query)."""
    ids = [getattr(p, "pk", p) for p in permissions]
    rows = Permission.objects.filter(pk__in=ids).select_related("content_type")
    return {p.pk: (f"{p.content_type.app_label}.{p.codename}", p.name) for p in rows}


def _permissions_change(before, after) -> dict:
    """The audit data for a new set of permissions: {"permissions_added": [...], "permissions_removed": [...]}
    as "app.codename", or {} when the set is the same."""
    was, now = _permissions(before), _permissions(after)
    added = sorted(key for pk, (key, _) in now.items() if pk not in was)
    removed = sorted(key for pk, (key, _) in was.items() if pk not in now)
    return {"permissions_added": added, "permissions_removed": removed} if added or removed else {}


def user_access_set(*, user, by, username: str | None = None, groups=None, permissions=None, **flags: bool) -> dict:
    """Set who an account is and what it may do, as an administrator edits it: its `username` (single sign-on finds
    accounts by it, and grants, tokens and sessions follow the account), `is_active`, `is_staff`, `is_superuser`
    (any of them), its teams (`groups`, the whole new set) and its own permissions (`permissions`, the whole new
    set: the approver roles such as governance.approve_production are permissions); None leaves a value as it is.
    Who gained or lost what is in the audit log: one `user_changed` event naming every change (`data`), none when
    nothing changed. Returns that change, empty when nothing changed. Only an administrator may change anything (a
    staff member saving someone's email in the admin passes the same values back, which changes nothing)."""
    unknown = set(flags) - set(USER_FLAGS)
    if unknown:
        raise Invalid(f"Unknown account flags: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        change: dict = {
            flag: [getattr(locked, flag), bool(value)]
            for flag, value in flags.items()
            if getattr(locked, flag) != bool(value)
        }
        if username is not None and username != locked.get_username():
            if not username.strip():
                raise Invalid("A user needs a username.")
            change["name"] = [locked.get_username(), username]
        losing = [flag for flag in ("is_active", "is_superuser") if flag in change and not change[flag][1]]
        if user.pk == by.pk and losing:
            raise Conflict("You cannot take away your own administrator rights or sign-in; ask another administrator.")
        if groups is not None:
            before = {g.pk: g.name for g in locked.groups.all()}
            after = {g.pk: g.name for g in groups}
            added = sorted(name for pk, name in after.items() if pk not in before)
            removed = sorted(name for pk, name in before.items() if pk not in after)
            if added or removed:
                change.update({"groups_added": added, "groups_removed": removed})
        if permissions is not None:
            permissions = list(permissions)
            change.update(_permissions_change(locked.user_permissions.all(), permissions))
        if not change:
            return change
        _require_superuser(by, "change users' names, rights, teams or permissions")
        if "name" in change:
            try:
                with transaction.atomic():
                    User.objects.filter(pk=user.pk).update(**{User.USERNAME_FIELD: username})
            except IntegrityError:
                raise Conflict(f"A user named {username!r} already exists.") from None
            setattr(user, User.USERNAME_FIELD, username)
        flag_values = {flag: values[1] for flag, values in change.items() if flag in USER_FLAGS}
        if flag_values:
            User.objects.filter(pk=user.pk).update(**flag_values)
            for flag, value in flag_values.items():
                setattr(user, flag, value)
        if "groups_added" in change:
            user.groups.set(list(after))
        if "permissions_added" in change:
            user.user_permissions.set(permissions)
        _record_access_change(
            AuditAction.USER_CHANGED, by=by, subject=account_subject(user.get_username()), change=change
        )
    return change


_FLAG_WORDS = {"is_active": "may sign in", "is_staff": "staff", "is_superuser": "administrator"}


def _record_access_change(action: str, *, by, subject: str, change: dict) -> None:
    from_words, to_words = _access_words(change)
    audit.record(action, actor=by, subject=subject, from_value=from_words, to_value=to_words, data=change)


def _access_words(change: dict) -> tuple[str, str]:
    """The audit log's from and to for a change of rights: "staff: no; left risk-team" → "staff: yes; joined
    approvers; may governance.approve_production"."""
    before, after = [], []
    for flag, word in _FLAG_WORDS.items():
        if flag in change:
            old, new = change[flag]
            before.append(f"{word}: {'yes' if old else 'no'}")
            after.append(f"{word}: {'yes' if new else 'no'}")
    if change.get("name"):
        before.append(f"named {change['name'][0]}")
        after.append(f"named {change['name'][1]}")
    if change.get("groups_removed"):
        before.append("left " + ", ".join(change["groups_removed"]))
    if change.get("groups_added"):
        after.append("joined " + ", ".join(change["groups_added"]))
    if change.get("permissions_removed"):
        before.append("may " + ", ".join(change["permissions_removed"]))
    if change.get("permissions_added"):
        after.append("may " + ", ".join(change["permissions_added"]))
    return "; ".join(before), "; ".join(after)


def _record_taken_away(*, grants: list[Grant], owned: list, by, why: str) -> None:
    """Deleting a user or a group deletes their grants, and a user's ownerships, with it (the database cascades):
    one event per object, in that object's history, so a model's log shows who lost access and why."""
    for grant in grants:
        audit.record(
            AuditAction.ACCESS_REVOKED,
            actor=by,
            subject=grant.grantee,
            from_value=grant.level_name,
            data={"because": why},
            **{grant.object_field: grant.granted_on},
        )
    for field, obj, username in owned:
        audit.record(
            AuditAction.OWNER_CHANGED,
            actor=by,
            subject=account_subject(username),
            from_value=username,
            to_value="",
            data={"because": why},
            **{field: obj},
        )


def _owned_by(user) -> list[tuple[str, object, str]]:
    """(object field, object, username) for every model and experiment `user` owns."""
    found = []
    for table in Grant.__subclasses__():
        objects = table._meta.get_field(table.object_field).related_model
        found += [(table.object_field, obj, user.get_username()) for obj in objects.objects.filter(owner=user)]
    return found


def user_delete(*, user, by) -> None:
    """Delete an account, with its grants and tokens; the models and experiments it owned keep no owner (an
    administrator can hand them to someone). The audit log keeps each lost grant and ownership in its object's
    history."""
    _require_superuser(by, "delete users")
    if user.pk == by.pk:
        raise Conflict("You cannot delete your own account; ask another administrator.")
    with transaction.atomic():
        name = user.get_username()
        _record_taken_away(grants=grants_held(user=user), owned=_owned_by(user), by=by, why=f"user {name} deleted")
        user.delete()
        audit.record(AuditAction.USER_DELETED, actor=by, subject=account_subject(name), from_value=name)


# --- Groups (teams) -------------------------------------------------------------------------------------------------

GROUP_NAME_MAX = 150


def _group_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise Invalid("A group needs a name.")
    if len(name) > GROUP_NAME_MAX:
        raise Invalid(f"A group's name is at most {GROUP_NAME_MAX} characters (got {len(name)}).")
    return name


def group_save(*, group: Group | None, name: str, by, permissions=None) -> Group:
    """Create a group (`group` None), or rename one and set its permissions (the whole new set; None leaves them).
    Groups are teams: they hold grants, and their permissions include the approver roles (approve_production…), so
    only an administrator changes them, and the audit log says what changed."""
    name = _group_name(name)
    try:
        with transaction.atomic():
            if group is None:
                _require_superuser(by, "create groups")
                group = Group.objects.create(name=name)
                change = _permissions_change([], permissions or [])
                if change:
                    group.permissions.set(list(permissions))
                _, may = _access_words(change)
                to_value = f"{name}; {may}" if may else name
                audit.record(
                    AuditAction.GROUP_CREATED, actor=by, subject=f"group:{name}", to_value=to_value, data=change
                )
                return group
            locked = Group.objects.select_for_update().get(pk=group.pk)
            change = {"name": [locked.name, name]} if locked.name != name else {}
            if permissions is not None:
                permissions = list(permissions)
                change.update(_permissions_change(locked.permissions.all(), permissions))
            if not change:
                return group
            _require_superuser(by, "change groups")
            if "name" in change:
                Group.objects.filter(pk=group.pk).update(name=name)
                group.name = name
            if "permissions_added" in change:
                group.permissions.set(permissions)
            _record_access_change(AuditAction.GROUP_CHANGED, by=by, subject=f"group:{name}", change=change)
    except IntegrityError:
        raise Conflict(f"A group named {name!r} already exists.") from None
    return group


def group_delete(*, group: Group, by) -> None:
    """Delete a group: its members leave it and lose what it gave them (its grants, its permissions). The audit
    log keeps the members and permissions it had, and each lost grant in its object's history."""
    _require_superuser(by, "delete groups")
    with transaction.atomic():
        name = group.name
        members = sorted(
            User.objects.filter(groups=group).values_list(User.USERNAME_FIELD, flat=True)  # type: ignore[misc]
        )
        permissions = sorted(key for key, _ in _permissions(group.permissions.all()).values())
        _record_taken_away(grants=grants_held(group=group), owned=[], by=by, why=f"group {name} deleted")
        group.delete()
        audit.record(
            AuditAction.GROUP_DELETED,
            actor=by,
            subject=f"group:{name}",
            from_value=name,
            data={"members": members, "permissions": permissions},
        )


# --- API tokens -----------------------------------------------------------------------------------------------------


def token_issue(*, user, name: str, scope: str, by, expires_at=None) -> tuple[ApiToken, str]:
    """A new API token for `user`, returned with its raw value (shown once, never stored). A token acts as its
    user, so people make their own and only an administrator makes one for someone else. `by` may be a system
    actor's name: manage.py createtoken, run by whoever runs the server."""
    if _is_system(by) or by.pk != user.pk:
        _require_superuser(by, "create API tokens for other people")
    name = (name or "").strip()
    if not name:
        raise Invalid("Give the token a name that says what it is for, e.g. 'CI pipeline'.")
    max_name = ApiToken._meta.get_field("name").max_length
    if len(name) > max_name:
        raise Invalid(f"A token's name is at most {max_name} characters (got {len(name)}).")
    if scope not in ApiToken.Scope.values:
        raise Invalid(f"A token's scope is one of {', '.join(ApiToken.Scope.values)} (got {scope!r}).")
    with transaction.atomic():
        token, raw = ApiToken.issue(user=user, name=name, scope=scope, expires_at=expires_at)
        audit.record(
            AuditAction.TOKEN_CREATED,
            actor=by,
            subject=account_subject(user.get_username()),
            to_value=f"{token.name} ({token.prefix}…, {scope})",
            data={
                "token": token.pk,
                "prefix": token.prefix,
                "scope": scope,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
    return token, raw


def token_revoke(*, token: ApiToken, by) -> bool:
    """Revoke `token` (its user's own, or anyone's by an administrator). False when it was revoked already."""
    if token.user_id != by.pk:
        _require_superuser(by, "revoke other people's API tokens")
    with transaction.atomic():
        revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if not revoked:
            return False
        token.refresh_from_db(fields=["revoked_at"])
        audit.record(
            AuditAction.TOKEN_REVOKED,
            actor=by,
            subject=account_subject(token.user.get_username()),
            from_value=f"{token.name} ({token.prefix}…, {token.scope})",
            data={"token": token.pk, "prefix": token.prefix},
        )
    return True


# --- Single sign-on -------------------------------------------------------------------------------------------------


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
                subject=account_subject(username),
                to_value=username,
                data={"sso": True},
            )
        else:
            change = {
                name: [getattr(user, name), value] for name, value in fields.items() if getattr(user, name) != value
            }
            if change:  # the provider's name or email changed since the last sign-in
                _details_write(user, change, by=by or user, sso=True)
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
                subject=account_subject(user.get_username()),
                to_value="groups",
                data={"added": added, "removed": removed, "sso": True},
            )
    return user
