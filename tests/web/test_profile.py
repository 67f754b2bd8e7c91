"""The profile page: create an API token (shown once), list and revoke tokens; change your own password."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from registry.accounts import services as accounts
from registry.accounts.models import ApiToken, hash_token
from registry.audit import services as audit
from registry.audit.models import AuditAction, AuditEvent

pytestmark = pytest.mark.django_db


def test_anonymous_is_sent_to_login(client):
    response = client.get(reverse("profile"))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    response = client.post(reverse("password_change"), {"current_password": "x", "new_password": "y"})
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_create_token_shows_it_once_and_stores_only_its_hash(client, owner):
    client.force_login(owner)
    response = client.post(reverse("profile"), {"name": "CI pipeline", "scope": "read"})
    assert response.status_code == 200
    raw = response.context["new_token"]
    assert raw.startswith("mrt_")
    assert raw in response.content.decode()
    token = ApiToken.objects.get(user=owner)
    assert token.name == "CI pipeline" and token.scope == "read"
    assert token.token_hash == hash_token(raw) and raw not in (token.token_hash, token.prefix)
    # Shown once: the next visit lists the token but not its value.
    again = client.get(reverse("profile")).content.decode()
    assert "CI pipeline" in again and raw not in again
    # The form after a creation is a fresh one: submitting it again would make a second token.
    assert 'placeholder="CI pipeline" value=""' in response.content.decode()


def test_a_token_that_expires(client, owner):
    from datetime import timedelta

    from django.utils import timezone

    client.force_login(owner)
    response = client.post(reverse("profile"), {"name": "nightly", "scope": "write", "expires_in": "30"})
    assert response.status_code == 200
    token = ApiToken.objects.get(user=owner)
    assert abs(token.expires_at - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)
    assert token.expires_at.strftime("%Y-%m-%d") in response.content.decode()  # the list's Expires column
    event = AuditEvent.objects.get(action=AuditAction.TOKEN_CREATED)
    assert event.data["expires_at"] == token.expires_at.isoformat()
    # Past its date it stops working and the list says so.
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert ApiToken.authenticate(response.context["new_token"]) is None
    assert "expired" in client.get(reverse("profile")).content.decode()


@pytest.mark.parametrize("expires_in", ["abc", "12", "-1"])
def test_an_expiry_not_offered_is_a_form_error(client, owner, expires_in):
    client.force_login(owner)
    response = client.post(reverse("profile"), {"name": "x", "scope": "read", "expires_in": expires_in})
    assert response.status_code == 400 and "Expires:" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_bad_form_is_an_error_on_the_page_and_creates_nothing(client, owner):
    client.force_login(owner)
    response = client.post(reverse("profile"), {"name": "  ", "scope": "admin"})
    assert response.status_code == 400
    assert "form-error" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_revoke_own_token(client, owner):
    token, raw = ApiToken.issue(user=owner, name="old")
    client.force_login(owner)
    response = client.post(reverse("revoke_token", args=[token.pk]))
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert ApiToken.authenticate(raw) is None


def test_outsider_cannot_see_or_revoke_someone_elses_token(client, owner, outsider):
    token, _ = ApiToken.issue(user=owner, name="owner-ci")
    client.force_login(outsider)
    assert "owner-ci" not in client.get(reverse("profile")).content.decode()
    assert client.post(reverse("revoke_token", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_profile_query_count_is_constant(client, owner, django_assert_num_queries):
    client.force_login(owner)
    for n in range(50):
        ApiToken.issue(user=owner, name=f"t{n}")
    for n in range(50):
        accounts.user_details_set(user=owner, by=owner, first_name=f"name {n}")
    # session, user, tokens, the account's renames (its usernames over time), its events
    with django_assert_num_queries(5):
        client.get(reverse("profile"))


# --- Your own password -----------------------------------------------------------------------------------------------

OLD, NEW = "an-Old-pass-4821", "a-New-pass-9137"


@pytest.fixture
def signed_in(client, owner, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    owner.set_password(OLD)
    owner.save()
    client.force_login(owner)
    return owner


def change(client, current=OLD, new=NEW, again=None):
    form = {"current_password": current, "new_password": new, "new_password_again": again or new}
    return client.post(reverse("password_change"), form)


def test_change_your_password_stay_signed_in_and_leave_a_record(client, signed_in):
    response = change(client)
    assert response.status_code == 302 and response["Location"] == reverse("profile")
    signed_in.refresh_from_db()
    assert signed_in.check_password(NEW)
    assert client.get(reverse("profile")).status_code == 200  # this session kept
    event = AuditEvent.objects.get(action=AuditAction.USER_CHANGED)
    assert (event.actor_name, event.subject, event.to_value) == (
        signed_in.username,
        f"user:{signed_in.username}",
        "password",
    )


@pytest.mark.parametrize(
    ("current", "new", "again", "words"),
    [
        ("wrong-pass", NEW, None, "not your current password"),
        (OLD, NEW, "a-Different-pass-1", "two new passwords differ"),
        (OLD, "short", None, "too weak"),
        (OLD, "", None, "This field is required"),
    ],
)
def test_a_refused_password_is_an_error_on_the_page_and_changes_nothing(client, signed_in, current, new, again, words):
    response = change(client, current, new, again)
    assert response.status_code == 400
    assert words in response.content.decode()
    signed_in.refresh_from_db()
    assert signed_in.check_password(OLD) and not AuditEvent.objects.exists()


def test_other_sessions_are_signed_out(client, signed_in):
    from django.test import Client

    other = Client()
    other.post(reverse("login"), {"username": signed_in.username, "password": OLD})
    assert other.get(reverse("profile")).status_code == 200
    change(client)
    assert other.get(reverse("profile")).status_code == 302


def test_someone_who_signs_in_through_the_identity_provider_is_told_so(client, owner):
    owner.set_unusable_password()
    owner.save()
    client.force_login(owner)
    page = client.get(reverse("profile")).content.decode()
    assert "with no password here" in page and 'name="current_password"' not in page
    assert change(client, current="").status_code == 400


def test_wrong_current_passwords_count_towards_the_sign_in_throttle(client, signed_in, settings):
    settings.AXES_ENABLED, settings.AXES_FAILURE_LIMIT = True, 3
    for _ in range(3):
        change(client, current="wrong-pass")
    response = change(client)  # the right one, too late
    assert response.status_code == 429
    signed_in.refresh_from_db()
    assert signed_in.check_password(OLD)


# --- Your own name and email -----------------------------------------------------------------------------------------


def test_set_your_name_and_email_and_leave_a_record(client, owner):
    client.force_login(owner)
    form = {"first_name": "Olga", "last_name": " Owner ", "email": "olga@example.org"}
    response = client.post(reverse("details_change"), form)
    assert response.status_code == 302 and response["Location"] == reverse("profile")
    owner.refresh_from_db()
    assert (owner.first_name, owner.last_name, owner.email) == ("Olga", "Owner", "olga@example.org")
    event = AuditEvent.objects.get(action=AuditAction.USER_CHANGED)
    assert (event.actor_name, event.subject) == (owner.username, f"user:{owner.username}")
    assert event.data["first_name"] == ["", "Olga"]
    page = client.get(reverse("profile")).content.decode()
    assert 'value="olga@example.org"' in page and "Name and email saved." in page

    client.post(reverse("details_change"), form)  # the same again: nothing changed, nothing recorded
    assert AuditEvent.objects.filter(action=AuditAction.USER_CHANGED).count() == 1


@pytest.mark.parametrize(
    ("form", "words"),
    [({"email": "not-an-address"}, "Enter a valid email address"), ({"first_name": "x" * 151}, "at most 150")],
)
def test_a_refused_name_or_email_is_an_error_on_the_page_and_changes_nothing(client, owner, form, words):
    client.force_login(owner)
    before = (owner.first_name, owner.email)
    response = client.post(reverse("details_change"), form)
    assert response.status_code == 400 and words in response.content.decode()
    owner.refresh_from_db()
    assert (owner.first_name, owner.email) == before and not AuditEvent.objects.exists()


# --- What was done to your account ----------------------------------------------------------------------------------


def test_you_see_who_changed_your_account_and_others_do_not(client, owner, outsider, superuser):
    approvers = Group.objects.create(name="production-approvers")
    accounts.user_access_set(user=owner, by=superuser, groups=[approvers])
    accounts.token_issue(user=owner, name="nightly", scope="read", by=owner)
    accounts.user_access_set(user=outsider, by=superuser, is_staff=True)  # someone else's account

    client.force_login(owner)
    page = client.get(reverse("profile")).content.decode()
    history = page[page.index('id="account-history"') :]
    assert superuser.username in history and "joined production-approvers" in history
    assert "API token created" in history and ">you<" in history
    assert "staff: yes" not in history
    log = client.get(reverse("audit_log")).content.decode()  # the audit page shows them to the holder as well
    assert "joined production-approvers" in log and "staff: yes" not in log

    client.force_login(outsider)
    log = client.get(reverse("audit_log")).content.decode()
    assert "staff: yes" in log and "joined production-approvers" not in log


def test_a_username_reused_after_a_deletion_does_not_bring_the_old_accounts_history(client, superuser):
    old = accounts.user_create(username="bob", password="a-Long-pw-2026", by=superuser)
    accounts.token_issue(user=old, name="old-bobs-token", scope="read", by=old)
    accounts.user_delete(user=old, by=superuser)
    new = accounts.user_create(username="bob", password="a-Long-pw-2027", by=superuser)

    client.force_login(new)
    page = client.get(reverse("profile")).content.decode()
    assert "old-bobs-token" not in page and "User created" in page  # its own creation, not the old one's token
    assert "old-bobs-token" not in client.get(reverse("audit_log")).content.decode()


def test_the_history_shows_the_newest_ten_and_says_when_the_audit_log_has_older(client, owner):
    client.force_login(owner)
    for n in range(10):
        accounts.token_issue(user=owner, name=f"token-{n}", scope="read", by=owner)
    history = client.get(reverse("profile")).content.decode().split('id="account-history"')[1]
    assert history.count("API token created") == 10 and "has older events" not in history

    accounts.token_issue(user=owner, name="token-10", scope="read", by=owner)
    history = client.get(reverse("profile")).content.decode().split('id="account-history"')[1]
    assert history.count("API token created") == 10 and "has older events" in history


def test_a_renamed_account_keeps_its_history_and_not_that_of_the_names_earlier_holder(client, superuser):
    old_bob = accounts.user_create(username="bob", password="a-Long-pw-2026", by=superuser)
    ana = accounts.user_create(username="ana", password="a-Long-pw-2027", by=superuser)
    accounts.token_issue(user=ana, name="anas-token", scope="read", by=ana)
    accounts.token_issue(user=old_bob, name="old-bobs-token", scope="read", by=old_bob)  # after ana joined
    accounts.user_delete(user=old_bob, by=superuser)
    accounts.user_access_set(user=ana, by=superuser, username="bob")
    accounts.token_issue(user=ana, name="bobs-token", scope="read", by=ana)

    client.force_login(ana)
    history = client.get(reverse("profile")).content.decode().split('id="account-history"')[1]
    assert "anas-token" in history and "bobs-token" in history and "old-bobs-token" not in history

    accounts.user_access_set(user=ana, by=superuser, username="cy")
    history = client.get(reverse("profile")).content.decode().split('id="account-history"')[1]
    assert "anas-token" in history and "bobs-token" in history and "named cy" in history
    assert "old-bobs-token" not in history and "old-bobs-token" not in client.get(reverse("audit_log")).content.decode()


def test_an_event_whose_name_change_is_not_a_pair_is_passed_over(client, owner):
    audit.record(AuditAction.USER_CHANGED, actor=owner, subject=f"user:{owner.username}", data={"name": "odd"})
    client.force_login(owner)
    assert client.get(reverse("profile")).status_code == 200
    assert client.get(reverse("audit_log")).status_code == 200
