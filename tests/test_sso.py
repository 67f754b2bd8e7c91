"""Single sign-on with OpenID Connect against a real provider (the npm package oidc-provider) started on loopback.

A person signs in through the whole flow as a browser would (requests following redirects, filling in the
provider's sign-in and consent forms), lands signed in, and their teams come from the provider's `groups` claim.
"""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urljoin

import pytest
import requests
from django.contrib.auth.models import Group

from registry.accounts.models import ApiToken, IdentityProviderGroup
from registry.audit.models import AuditEvent
from registry.catalog import services as catalog
from registry.lib.access import Level
from tests.builders import admin
from tests.conftest import OidcProvider, free_port
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def form_action(html: str) -> str:
    match = re.search(r'<form[^>]*action="([^"]+)"', html)
    assert match, html[:2000]
    return unescape(match.group(1))


def sign_in(live_server, provider: OidcProvider, login: str, next_path: str = "/models/") -> requests.Response:
    """The whole flow as a browser does it: the button, the provider's sign-in form, its consent form, back."""
    browser = requests.Session()
    page = browser.get(f"{live_server.url}/login/?next={next_path}", timeout=30)
    button = re.search(r'href="([^"]*/oidc/authenticate/[^"]*)"[^>]*>Sign in with Acme ID<', page.text)
    assert button, page.text
    at_provider = browser.get(live_server.url + unescape(button.group(1)), timeout=30)
    assert at_provider.url.startswith(provider.issuer), at_provider.url
    answer = browser.post(
        urljoin(at_provider.url, form_action(at_provider.text)),
        data={"prompt": "login", "login": login, "password": "whatever"},
        timeout=30,
    )
    if answer.url.startswith(provider.issuer) and 'value="consent"' in answer.text:
        answer = browser.post(urljoin(answer.url, form_action(answer.text)), data={"prompt": "consent"}, timeout=30)
    answer.browser = browser
    return answer


def test_signing_in_through_the_provider_lands_signed_in_with_the_teams_it_names(live_server, oidc_provider):
    oidc_provider.set_accounts(
        {"alice": {"email": "alice@example.com", "given_name": "Alice", "groups": ["risk-team", "fraud-team"]}}
    )
    model = catalog.model_create(name="fraud-detector", by=admin(), default_level=Level.NONE)
    catalog.model_grant_set(model=model, by=admin(), group=Group.objects.create(name="risk-team"), level=Level.READ)

    landed = sign_in(live_server, oidc_provider, "alice")
    assert landed.status_code == 200 and landed.url == f"{live_server.url}/models/", landed.url
    assert "fraud-detector" in landed.text  # visible through the team the provider named
    from django.contrib.auth import get_user_model

    alice = get_user_model().objects.get(username="alice")
    assert (alice.email, alice.first_name, alice.has_usable_password()) == ("alice@example.com", "Alice", False)
    assert set(alice.groups.values_list("name", flat=True)) == {"risk-team", "fraud-team"}
    assert set(IdentityProviderGroup.objects.values_list("group__name", flat=True)) == {"risk-team", "fraud-team"}
    created = AuditEvent.objects.get(action="user_created")
    assert (created.actor_name, created.to_value, created.data) == ("alice", "alice", {"sso": True})
    assert landed.browser.get(f"{live_server.url}/models/fraud-detector/", timeout=30).status_code == 200


def test_teams_names_and_email_follow_the_provider_at_every_sign_in_and_local_roles_stay(live_server, oidc_provider):
    oidc_provider.set_accounts({"alice": {"email": "a@example.com", "groups": ["risk-team", "fraud-team"]}})
    sign_in(live_server, oidc_provider, "alice")
    from django.contrib.auth import get_user_model

    alice = get_user_model().objects.get(username="alice")
    local_role = Group.objects.create(name="Auditors")  # handed out here, not by the provider
    alice.groups.add(local_role)

    oidc_provider.set_accounts(
        {"alice": {"email": "alice@new.example", "given_name": "Alice", "groups": ["fraud-team", "ml-platform"]}}
    )
    assert sign_in(live_server, oidc_provider, "alice").status_code == 200
    assert set(alice.groups.values_list("name", flat=True)) == {"fraud-team", "ml-platform", "Auditors"}
    teams, details = AuditEvent.objects.filter(action="user_changed").order_by("-id")[:2]
    assert details.data == {"email": ["a@example.com", "alice@new.example"], "first_name": ["", "Alice"], "sso": True}
    assert details.actor_name == "alice" and details.to_value == "email: alice@new.example; first name: Alice"
    assert teams.data["added"] == ["ml-platform"] and teams.data["removed"] == ["risk-team"]


def test_unknown_teams_are_skipped_when_group_creation_is_off(live_server, oidc_provider, settings):
    settings.OIDC_CREATE_GROUPS = False
    Group.objects.create(name="risk-team")
    oidc_provider.set_accounts({"carol": {"groups": ["risk-team", "not-here"]}})
    sign_in(live_server, oidc_provider, "carol")
    from django.contrib.auth import get_user_model

    carol = get_user_model().objects.get(username="carol")
    assert list(carol.groups.values_list("name", flat=True)) == ["risk-team"]
    assert not Group.objects.filter(name="not-here").exists()


def test_a_local_account_with_a_password_is_not_taken_over(live_server, oidc_provider, settings):
    UserFactory(username="admin", is_superuser=True, is_staff=True)  # has a local password
    oidc_provider.set_accounts({"admin": {"groups": []}})
    refused = sign_in(live_server, oidc_provider, "admin")
    assert refused.url.startswith(f"{live_server.url}/login/?sso=failed")
    assert "did not work" in refused.text
    assert "_auth_user_id" not in refused.browser.cookies.get_dict()  # not signed in
    assert refused.browser.get(f"{live_server.url}/models/", timeout=30).url.startswith(f"{live_server.url}/login/")

    settings.OIDC_LINK_LOCAL_ACCOUNTS = True
    assert sign_in(live_server, oidc_provider, "admin").url == f"{live_server.url}/models/"


def test_local_accounts_and_api_tokens_keep_working(live_server, oidc_provider):
    bob = UserFactory(username="bob")
    bob.set_password("a long local password 42")
    bob.save()
    browser = requests.Session()
    login = browser.get(f"{live_server.url}/login/", timeout=30)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    signed_in = browser.post(
        f"{live_server.url}/login/",
        data={"username": "bob", "password": "a long local password 42", "csrfmiddlewaretoken": csrf},
        headers={"Referer": f"{live_server.url}/login/"},
        timeout=30,
    )
    assert signed_in.url == f"{live_server.url}/models/", signed_in.url  # / sends signed-in users to the models

    oidc_provider.set_accounts({"alice": {"groups": ["risk-team"]}})
    sign_in(live_server, oidc_provider, "alice")
    from django.contrib.auth import get_user_model

    token = ApiToken.issue(user=get_user_model().objects.get(username="alice"), name="ci")[1]
    me = requests.get(f"{live_server.url}/api/v1/models", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert me.status_code == 200


def test_without_configuration_there_is_no_button_and_no_flow(client, db):
    page = client.get("/login/")
    assert b"Sign in with" not in page.content
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404


def test_the_issuer_alone_is_enough(live_server, oidc_provider, settings):
    for name in ("AUTHORIZATION", "TOKEN", "USER", "JWKS"):
        setattr(settings, f"OIDC_OP_{name}_ENDPOINT", "")
    settings.OIDC_OP_ISSUER = oidc_provider.issuer  # the endpoints come from its discovery document
    oidc_provider.set_accounts({"dora": {"groups": ["risk-team"]}})
    assert sign_in(live_server, oidc_provider, "dora").url == f"{live_server.url}/models/"


def test_an_unreachable_issuer_sends_people_back_to_the_login_page(client, db, settings):
    settings.SSO_ENABLED, settings.OIDC_RP_CLIENT_ID = True, "registry"
    settings.OIDC_OP_ISSUER = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for name in ("AUTHORIZATION", "TOKEN", "USER", "JWKS"):
        setattr(settings, f"OIDC_OP_{name}_ENDPOINT", "")
    answer = client.get("/oidc/authenticate/")
    assert (answer.status_code, answer["Location"]) == (302, "/login/?sso=failed")
    assert b"did not work" in client.get("/login/?sso=failed").content
