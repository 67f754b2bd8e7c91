"""Who may change who may do what: an account's permissions, a group's name and permissions, passwords and API
tokens, on every surface that writes them (the admin, the profile page, manage.py createtoken), go through the
accounts services: only the right people may, and the audit log says who changed what.

The approver roles are Django permissions (governance.approve_production…), held by a user or through a group, so
whoever can change permissions decides what reaches Production.
"""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.urls import reverse

from registry.accounts import services as accounts
from registry.accounts.models import ApiToken
from registry.audit.models import AuditAction, AuditEvent
from registry.catalog import services as catalog
from registry.lib.errors import Conflict, Forbidden, Invalid
from registry.tracking import services as tracking
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()
APPROVE_PRODUCTION = "governance.approve_production"


@pytest.fixture(autouse=True)
def plain_static_files(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def permission(dotted: str) -> Permission:
    app_label, codename = dotted.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def staff_with(*dotted: str):
    """A staff member (not an administrator) holding Django's admin permissions `dotted`."""
    sam = UserFactory(username="sam", is_staff=True)
    sam.user_permissions.set([permission(d) for d in dotted])
    return User.objects.get(pk=sam.pk)  # fresh: Django caches permissions on the instance


def admin_url(model: type, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def root_client(client, superuser):
    client.force_login(superuser)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


# --- An account's rights and teams ----------------------------------------------------------------------------------


def user_form(user, **changes) -> dict:
    """The user change form as the admin page posts it, with `changes`."""
    form = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
    }
    form.update(changes)
    return {key: value for key, value in form.items() if value is not None}


def test_joining_a_team_in_the_admin_is_audited(root_client, superuser):
    ana = UserFactory(username="ana")
    approvers, risk = Group.objects.create(name="approvers-x"), Group.objects.create(name="risk-team")
    ana.groups.add(risk)
    response = root_client.post(
        admin_url(type(ana), "change", ana.pk), user_form(ana, is_staff="on", groups=[approvers.pk])
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    ana.refresh_from_db()
    assert ana.is_staff and list(ana.groups.values_list("name", flat=True)) == ["approvers-x"]
    event = AuditEvent.objects.get(action=AuditAction.USER_CHANGED, subject="user:ana")
    assert event.actor_name == superuser.username
    assert event.data == {"is_staff": [False, True], "groups_added": ["approvers-x"], "groups_removed": ["risk-team"]}
    assert (event.from_value, event.to_value) == ("staff: no; left risk-team", "staff: yes; joined approvers-x")

    root_client.post(admin_url(type(ana), "change", ana.pk), user_form(ana, is_staff="on", groups=[approvers.pk]))
    assert AuditEvent.objects.filter(action=AuditAction.USER_CHANGED).count() == 1  # nothing changed, nothing said


def test_an_administrator_cannot_take_their_own_rights_away_in_the_admin(root_client, superuser):
    response = root_client.post(admin_url(type(superuser), "change", superuser.pk), user_form(superuser, is_staff="on"))
    assert response.status_code == 302
    superuser.refresh_from_db()
    assert superuser.is_superuser  # the form left is_superuser unticked; the service refused, nothing changed
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("cannot take away your own administrator rights" in m for m in messages)


PASSWORD = "a-Long-pass-4821"


def test_accounts_made_and_deleted_in_the_admin_are_audited(root_client):
    response = root_client.post(
        admin_url(User, "add"),
        {
            "username": "bea",
            "usable_password": "true",
            "password1": "a-Long-pass-4821",
            "password2": "a-Long-pass-4821",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    bea = User.objects.get(username="bea")
    assert bea.check_password(PASSWORD)
    assert AuditEvent.objects.filter(action=AuditAction.USER_CREATED, subject="user:bea").exists()

    response = root_client.post(admin_url(User, "add"), {"username": "sso-only", "usable_password": "false"})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert not User.objects.get(username="sso-only").has_usable_password()

    response = root_client.post(admin_url(User, "delete", bea.pk), {"post": "yes"})
    assert response.status_code == 302 and not User.objects.filter(username="bea").exists()
    assert AuditEvent.objects.filter(action=AuditAction.USER_DELETED, subject="user:bea").exists()


@pytest.mark.parametrize("huge", ["99999999999999999999", "-99999999999999999999", str(2**31)])
def test_an_id_no_row_can_have_is_a_form_error_not_a_500(root_client, huge):
    ana = UserFactory(username="ana")
    team = Group.objects.create(name="risk-team")
    response = root_client.post(admin_url(type(ana), "change", ana.pk), user_form(ana, groups=[huge]))
    assert response.status_code == 200 and "Please correct the error below." in response.content.decode()
    response = root_client.post(admin_url(Group, "change", team.pk), {"name": "risk-team", "permissions": [huge]})
    assert response.status_code == 200 and "Please correct the error below." in response.content.decode()


def test_only_an_administrator_changes_rights_or_teams(superuser):
    staff, ana = UserFactory(username="sam", is_staff=True), UserFactory(username="ana")
    team = Group.objects.create(name="risk-team")
    assert accounts.user_access_set(user=ana, by=staff, is_active=True, is_staff=False, groups=[]) == {}  # no change
    with pytest.raises(Forbidden):
        accounts.user_access_set(user=staff, by=staff, is_superuser=True)
    with pytest.raises(Forbidden):
        accounts.user_access_set(user=staff, by=staff, groups=[team])
    staff.refresh_from_db()
    assert not staff.is_superuser and not staff.groups.exists()


# --- An account's own permissions ------------------------------------------------------------------------------------


def test_an_approver_role_given_in_the_admin_is_audited(client, superuser):
    ana = UserFactory(username="ana")
    client.force_login(superuser)
    form = user_form(ana, user_permissions=[permission(APPROVE_PRODUCTION).pk])
    response = client.post(admin_url(User, "change", ana.pk), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert User.objects.get(pk=ana.pk).has_perm(APPROVE_PRODUCTION)
    (event,) = events(AuditAction.USER_CHANGED)
    assert event.actor_name == superuser.username and event.subject == "user:ana"
    assert event.data == {"permissions_added": [APPROVE_PRODUCTION], "permissions_removed": []}
    assert event.to_value == f"may {APPROVE_PRODUCTION}"

    client.post(admin_url(User, "change", ana.pk), user_form(ana))  # every permission unticked
    assert not User.objects.get(pk=ana.pk).has_perm(APPROVE_PRODUCTION)
    assert events(AuditAction.USER_CHANGED)[-1].data == {
        "permissions_added": [],
        "permissions_removed": [APPROVE_PRODUCTION],
    }


def test_staff_who_may_edit_users_cannot_make_themselves_approvers(client):
    sam = staff_with("auth.change_user", "auth.view_user")
    client.force_login(sam)
    form = user_form(sam, is_staff="on", user_permissions=[permission(APPROVE_PRODUCTION).pk])
    form["user_permissions"] = [*[p.pk for p in sam.user_permissions.all()], permission(APPROVE_PRODUCTION).pk]
    response = client.post(admin_url(User, "change", sam.pk), form)
    assert response.status_code == 302
    assert any("Only an administrator may change users' names, rights" in m for m in messages_of(response))
    assert not User.objects.get(pk=sam.pk).has_perm(APPROVE_PRODUCTION)
    assert not events(AuditAction.USER_CHANGED)


def test_staff_who_may_edit_users_save_their_own_name(client):
    sam = staff_with("auth.change_user", "auth.view_user")
    client.force_login(sam)
    keep = [p.pk for p in sam.user_permissions.all()]
    response = client.post(
        admin_url(User, "change", sam.pk), user_form(sam, is_staff="on", first_name="Sam", user_permissions=keep)
    )
    assert response.status_code == 302 and not any("Nothing was changed" in m for m in messages_of(response))
    assert User.objects.get(pk=sam.pk).first_name == "Sam"
    (event,) = events(AuditAction.USER_CHANGED)  # through user_details_set: a name is not a right, but it is recorded
    assert (event.actor_name, event.subject, event.data) == ("sam", "user:sam", {"first_name": ["", "Sam"]})
    assert (event.from_value, event.to_value) == ("first name: —", "first name: Sam")


def test_names_and_email_changed_in_the_admin_are_audited_and_its_records_are_read_only(client, superuser):
    """Staff who may edit accounts set anyone's name and email; when an account joined and last signed in are
    records: the form shows them and saves nothing the page sends for them."""
    sam = staff_with("auth.change_user", "auth.view_user")
    bob = UserFactory(username="bob", email="bob@old.example")
    joined = bob.date_joined
    client.force_login(sam)
    form = user_form(bob, email="bob@new.example", last_name="Builder", date_joined_0="1999-01-01")
    response = client.post(admin_url(User, "change", bob.pk), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    bob.refresh_from_db()
    assert (bob.email, bob.last_name, bob.date_joined) == ("bob@new.example", "Builder", joined)
    (event,) = events(AuditAction.USER_CHANGED)
    assert (event.actor_name, event.subject) == ("sam", "user:bob")
    assert event.data == {"last_name": ["", "Builder"], "email": ["bob@old.example", "bob@new.example"]}

    response = client.post(admin_url(User, "change", bob.pk), user_form(bob, email="not an address"))
    assert response.status_code == 200 and "Enter a valid email address" in response.content.decode()
    assert User.objects.get(pk=bob.pk).email == "bob@new.example" and len(events(AuditAction.USER_CHANGED)) == 1


def test_only_the_person_or_staff_who_may_edit_accounts_change_a_name_or_email(member, owner):
    with pytest.raises(Forbidden, match="may change a name or email"):
        accounts.user_details_set(user=owner, by=member, email="owner@evil.example")
    plain_staff = UserFactory(username="plain-staff", is_staff=True)  # staff, but not allowed to edit accounts
    with pytest.raises(Forbidden):
        accounts.user_details_set(user=owner, by=plain_staff, first_name="X")
    assert accounts.user_details_set(user=member, by=member, first_name=" Mia ") == {"first_name": ["", "Mia"]}
    assert accounts.user_details_set(user=member, by=member, first_name="Mia") == {}  # nothing changed, nothing said
    assert len(events(AuditAction.USER_CHANGED)) == 1


@pytest.mark.parametrize(
    "details, words",
    [
        ({"email": "no-at-sign"}, "is not an email address"),
        ({"first_name": "x" * 151}, "first name is at most 150 characters"),
        ({"nickname": "x"}, "Unknown account details: nickname"),
    ],
)
def test_names_and_email_are_checked(member, details, words):
    with pytest.raises(Invalid, match=words):
        accounts.user_details_set(user=member, by=member, **details)
    assert not events(AuditAction.USER_CHANGED)


def test_a_username_changed_in_the_admin_is_an_administrators_and_audited(root_client, superuser):
    """Single sign-on finds accounts by username: renaming one decides whose provider sign-in lands in it."""
    ana = UserFactory(username="ana")
    response = root_client.post(admin_url(User, "change", ana.pk), user_form(ana, username="anna"))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert User.objects.get(pk=ana.pk).username == "anna"
    (event,) = events(AuditAction.USER_CHANGED)
    assert (event.subject, event.data) == ("user:anna", {"name": ["ana", "anna"]})
    assert (event.from_value, event.to_value) == ("named ana", "named anna")


def test_staff_who_may_edit_users_cannot_rename_them(client):
    sam = staff_with("auth.change_user", "auth.view_user")
    bob = UserFactory(username="bob")
    client.force_login(sam)
    response = client.post(admin_url(User, "change", bob.pk), user_form(bob, username="bob-old"))
    assert any("Only an administrator may change users' names" in m for m in messages_of(response))
    assert User.objects.get(pk=bob.pk).username == "bob" and not events(AuditAction.USER_CHANGED)


def test_a_username_taken_or_blank_is_refused(superuser):
    ana, _ = UserFactory(username="ana"), UserFactory(username="bob")
    with pytest.raises(Conflict, match="already exists"):
        accounts.user_access_set(user=ana, by=superuser, username="bob")
    with pytest.raises(Invalid, match="needs a username"):
        accounts.user_access_set(user=ana, by=superuser, username="  ")
    assert User.objects.get(pk=ana.pk).username == "ana" and not events(AuditAction.USER_CHANGED)


# --- Groups ----------------------------------------------------------------------------------------------------------


def test_a_group_made_renamed_and_given_a_role_in_the_admin_is_audited(client, superuser):
    client.force_login(superuser)
    approve = permission(APPROVE_PRODUCTION)
    response = client.post(admin_url(Group, "add"), {"name": "approvers", "permissions": [approve.pk]})
    assert response.status_code == 302, response.content.decode()[:2000]
    group = Group.objects.get(name="approvers")
    assert list(group.permissions.all()) == [approve]
    (created,) = events(AuditAction.GROUP_CREATED)
    assert (created.subject, created.actor_name) == ("group:approvers", superuser.username)
    assert created.data == {"permissions_added": [APPROVE_PRODUCTION], "permissions_removed": []}
    assert created.to_value == f"approvers; may {APPROVE_PRODUCTION}"

    request_perm = permission("governance.request_transition")
    response = client.post(
        admin_url(Group, "change", group.pk), {"name": "prod-approvers", "permissions": [request_perm.pk]}
    )
    assert response.status_code == 302
    (changed,) = events(AuditAction.GROUP_CHANGED)
    assert changed.subject == "group:prod-approvers"
    assert changed.data == {
        "name": ["approvers", "prod-approvers"],
        "permissions_added": ["governance.request_transition"],
        "permissions_removed": [APPROVE_PRODUCTION],
    }
    assert changed.from_value == f"named approvers; may {APPROVE_PRODUCTION}"
    assert changed.to_value == "named prod-approvers; may governance.request_transition"

    client.post(admin_url(Group, "change", group.pk), {"name": "prod-approvers", "permissions": [request_perm.pk]})
    assert len(events(AuditAction.GROUP_CHANGED)) == 1  # nothing changed, nothing said


def test_staff_who_may_edit_groups_cannot_give_a_group_a_role(client):
    sam = staff_with("auth.change_group", "auth.view_group", "auth.add_group")
    team = Group.objects.create(name="team")
    sam.groups.add(team)
    client.force_login(sam)
    response = client.post(
        admin_url(Group, "change", team.pk), {"name": "team", "permissions": [permission(APPROVE_PRODUCTION).pk]}
    )
    assert any("Only an administrator may change groups" in m for m in messages_of(response))
    assert not team.permissions.exists() and not User.objects.get(pk=sam.pk).has_perm(APPROVE_PRODUCTION)
    response = client.post(admin_url(Group, "add"), {"name": "mine"})
    assert any("Only an administrator may create groups" in m for m in messages_of(response))
    assert not Group.objects.filter(name="mine").exists()
    assert not AuditEvent.objects.exists()


def test_deleting_a_group_keeps_what_it_took_away_in_each_objects_history(client, superuser, owner):
    team = Group.objects.create(name="risk-team")
    team.permissions.add(permission(APPROVE_PRODUCTION))
    owner.groups.add(team)
    model = catalog.model_create(name="churn", by=owner)
    catalog.model_grant_set(model=model, by=owner, group=team, level="EDIT")
    experiment = tracking.experiment_create(name="churn-training", by=owner)
    tracking.experiment_grant_set(experiment=experiment, by=owner, group=team, level="READ")

    client.force_login(superuser)
    response = client.post(admin_url(Group, "delete", team.pk), {"post": "yes"})
    assert response.status_code == 302 and not Group.objects.filter(name="risk-team").exists()
    (deleted,) = events(AuditAction.GROUP_DELETED)
    assert deleted.from_value == "risk-team"
    assert deleted.data == {"members": [owner.username], "permissions": [APPROVE_PRODUCTION]}
    revoked = {(e.model_name, e.experiment_name, e.from_value) for e in events(AuditAction.ACCESS_REVOKED)}
    assert revoked == {("churn", "", "EDIT"), ("", "churn-training", "READ")}
    assert all(e.subject == "group:risk-team" for e in events(AuditAction.ACCESS_REVOKED))
    assert all(e.data == {"because": "group risk-team deleted"} for e in events(AuditAction.ACCESS_REVOKED))


def test_group_names_are_checked():
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    with pytest.raises(Invalid, match="needs a name"):
        accounts.group_save(group=None, name="  ", by=root)
    with pytest.raises(Invalid, match="at most 150"):
        accounts.group_save(group=None, name="x" * 151, by=root)
    accounts.group_save(group=None, name="team", by=root)
    with pytest.raises(Conflict, match="already exists"):
        accounts.group_save(group=None, name="team", by=root)
    assert Group.objects.filter(name="team").count() == 1 and len(events(AuditAction.GROUP_CREATED)) == 1


# --- Deleting an account ---------------------------------------------------------------------------------------------


def test_deleting_an_account_keeps_its_lost_grants_and_ownerships_in_each_objects_history(superuser, owner):
    ana = UserFactory(username="ana")
    model = catalog.model_create(name="churn", by=owner)
    catalog.model_grant_set(model=model, by=owner, user=ana, level="MANAGE")
    own = catalog.model_create(name="anas-model", by=ana)

    accounts.user_delete(user=ana, by=superuser)
    grant_event = AuditEvent.objects.get(action=AuditAction.ACCESS_REVOKED)
    assert (grant_event.model_name, grant_event.subject, grant_event.from_value) == ("churn", "user:ana", "MANAGE")
    owner_event = AuditEvent.objects.get(action=AuditAction.OWNER_CHANGED, model_id=own.pk)
    assert (owner_event.from_value, owner_event.to_value) == ("ana", "")
    assert owner_event.data == {"because": "user ana deleted"}


# --- Passwords in the admin ------------------------------------------------------------------------------------------


def password_url(user) -> str:
    return admin_url(User, "password_change", user.pk)


def test_a_password_set_in_the_admin_is_audited(client, superuser):
    ana = UserFactory(username="ana")
    client.force_login(superuser)
    assert client.get(password_url(ana)).status_code == 200
    response = client.post(
        password_url(ana),
        {"usable_password": "true", "password1": "a-Long-pass-4821", "password2": "a-Long-pass-4821"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert User.objects.get(pk=ana.pk).check_password("a-Long-pass-4821")
    event = events(AuditAction.USER_CHANGED)[-1]
    assert (event.subject, event.actor_name, event.to_value) == ("user:ana", superuser.username, "password")

    response = client.post(password_url(ana), {"usable_password": "false", "unset-password": "1"})
    assert response.status_code == 302
    assert not User.objects.get(pk=ana.pk).has_usable_password()
    assert events(AuditAction.USER_CHANGED)[-1].to_value == "password sign-in off"

    response = client.post(password_url(ana), {"usable_password": "true", "password1": "a", "password2": "b"})
    assert response.status_code == 200 and "didn’t match" in response.content.decode()  # the form's own errors
    assert len(events(AuditAction.USER_CHANGED)) == 2


def test_an_administrator_cannot_turn_off_their_own_password_sign_in(client, superuser):
    client.force_login(superuser)
    response = client.post(password_url(superuser), {"usable_password": "false", "unset-password": "1"})
    assert response.status_code == 302
    assert any("cannot turn off your own password sign-in" in m for m in messages_of(response))
    assert User.objects.get(pk=superuser.pk).has_usable_password()


def test_staff_who_may_edit_users_cannot_set_their_passwords(client, superuser):
    """Setting someone's password lets you sign in as them: an administrator's right, not an admin permission's."""
    sam = staff_with("auth.change_user", "auth.view_user")
    client.force_login(sam)
    form = {"usable_password": "true", "password1": "a-Long-pass-4821", "password2": "a-Long-pass-4821"}
    assert client.post(password_url(superuser), form).status_code == 403
    assert not User.objects.get(pk=superuser.pk).check_password("a-Long-pass-4821")
    assert client.get(password_url(sam)).status_code == 403  # their own: the profile's password page is theirs


# --- API tokens ------------------------------------------------------------------------------------------------------


def test_tokens_made_and_revoked_on_the_profile_page_are_audited(client, member):
    client.force_login(member)
    response = client.post(reverse("profile"), {"name": "CI pipeline", "scope": "read"})
    assert response.status_code == 200
    token = ApiToken.objects.get(user=member)
    (created,) = events(AuditAction.TOKEN_CREATED)
    assert (created.actor_name, created.subject) == (member.username, f"user:{member.username}")
    assert created.to_value == f"CI pipeline ({token.prefix}…, read)"
    assert created.data["prefix"] == token.prefix and created.data["token"] == token.pk

    client.post(reverse("revoke_token", args=[token.pk]))
    client.post(reverse("revoke_token", args=[token.pk]))  # twice: said once
    (revoked,) = events(AuditAction.TOKEN_REVOKED)
    assert revoked.from_value == f"CI pipeline ({token.prefix}…, read)"
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


def test_a_token_for_someone_else_is_an_administrators_to_make(client, superuser):
    """A token acts as its user: staff allowed to add tokens in the admin must not mint one for an administrator."""
    sam = staff_with("accounts.add_apitoken", "accounts.view_apitoken", "accounts.change_apitoken")
    client.force_login(sam)
    form = {"user": superuser.pk, "name": "mine now", "scope": "write"}
    response = client.post(admin_url(ApiToken, "add"), form)
    assert any("Only an administrator may create API tokens for other people" in m for m in messages_of(response))
    assert not ApiToken.objects.exists() and not AuditEvent.objects.exists()

    client.force_login(superuser)
    response = client.post(admin_url(ApiToken, "add"), {"user": sam.pk, "name": "for sam", "scope": "read"})
    assert response.status_code == 302
    token = ApiToken.objects.get()
    assert (token.user, token.scope) == (sam, "read")
    assert events(AuditAction.TOKEN_CREATED)[0].actor_name == superuser.username


def test_a_stored_token_is_never_edited_in_the_admin(client, superuser, member):
    token, _ = accounts.token_issue(user=member, name="ci", scope="read", by=member)
    client.force_login(superuser)
    response = client.post(admin_url(ApiToken, "change", token.pk), {"user": superuser.pk, "scope": "write"})
    assert response.status_code == 302
    token.refresh_from_db()
    assert (token.user, token.scope) == (member, "read")
    assert client.get(admin_url(ApiToken, "delete", token.pk)).status_code == 403  # revoked, never deleted


def test_only_the_holder_or_an_administrator_revokes_a_token(member, owner, superuser):
    token, _ = accounts.token_issue(user=member, name="ci", scope="write", by=member)
    with pytest.raises(Forbidden):
        accounts.token_revoke(token=token, by=owner)
    assert accounts.token_revoke(token=token, by=superuser) is True
    assert events(AuditAction.TOKEN_REVOKED)[0].actor_name == superuser.username


@pytest.mark.parametrize(
    ("name", "scope", "words"),
    [("  ", "read", "Give the token a name"), ("x" * 101, "read", "at most 100"), ("ci", "admin", "scope is one of")],
)
def test_token_input_is_checked(member, name, scope, words):
    with pytest.raises(Invalid, match=words):
        accounts.token_issue(user=member, name=name, scope=scope, by=member)
    assert not ApiToken.objects.exists()


def test_createtoken_names_itself_in_the_audit_log(member):
    out = io.StringIO()
    call_command("createtoken", member.username, "--name", "nightly", "--read-only", stdout=out)
    event = AuditEvent.objects.get(action=AuditAction.TOKEN_CREATED)
    assert (event.actor_name, event.actor_id, event.subject) == ("system:createtoken", None, f"user:{member.username}")
    assert out.getvalue().splitlines()[-1].startswith("mrt_")


# --- Django's own account commands ----------------------------------------------------------------------------------


def test_createsuperuser_names_itself_in_the_audit_log(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-Long-pw-2026")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "ops@example.org")
    call_command("createsuperuser", "--noinput", "--username", "ops", stdout=io.StringIO())
    ops = User.objects.get(username="ops")
    assert ops.is_superuser and ops.is_staff and ops.email == "ops@example.org" and ops.check_password("a-Long-pw-2026")
    event = AuditEvent.objects.get(action=AuditAction.USER_CREATED)
    assert (event.actor_name, event.actor_id, event.subject) == ("system:createsuperuser", None, "user:ops")


def test_createsuperuser_asks_and_refuses_what_the_service_refuses(monkeypatch):
    answers = iter(["ann", ""])
    passwords = iter(["a-Long-pw-2026", "typo", "a-Long-pw-2026", "a-Long-pw-2026"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(passwords))
    err = io.StringIO()
    call_command("createsuperuser", stdout=io.StringIO(), stderr=err)
    assert "Passwords do not match" in err.getvalue() and User.objects.get(username="ann").is_superuser

    from django.core.management.base import CommandError

    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-Long-pw-2026")
    with pytest.raises(CommandError, match="A user named 'ann' already exists"):
        call_command("createsuperuser", "--noinput", "--username", "ann")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "123")
    with pytest.raises(CommandError, match="The password is too weak"):
        call_command("createsuperuser", "--noinput", "--username", "weak")
    with pytest.raises(CommandError, match="DJANGO_SUPERUSER_USERNAME"):
        call_command("createsuperuser", "--noinput")
    assert not User.objects.filter(username="weak").exists()
    assert len(events(AuditAction.USER_CREATED)) == 1


def test_changepassword_names_itself_in_the_audit_log(monkeypatch, member):
    from django.core.management.base import CommandError

    passwords = iter(["123", "123", "a-New-pw-2026", "a-New-pw-2026"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(passwords))
    err = io.StringIO()
    call_command("changepassword", member.username, stdout=io.StringIO(), stderr=err)
    assert "too weak" in err.getvalue()
    assert User.objects.get(pk=member.pk).check_password("a-New-pw-2026")
    (event,) = events(AuditAction.USER_CHANGED)
    assert (event.actor_name, event.subject, event.to_value) == (
        "system:changepassword",
        f"user:{member.username}",
        "password",
    )

    monkeypatch.setattr("getpass.getpass", lambda prompt="": prompt)  # never the same twice
    with pytest.raises(CommandError, match="after 3 attempts"):
        call_command("changepassword", member.username, stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("changepassword", "nobody")


def test_make_runs_admin_account_is_audited(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("ensure_admin", stdout=io.StringIO())
    assert User.objects.get(username="admin").check_password((tmp_path / "admin_password").read_text().strip())
    event = AuditEvent.objects.get(action=AuditAction.USER_CREATED)
    assert (event.actor_name, event.subject) == ("system:ensure_admin", "user:admin")
