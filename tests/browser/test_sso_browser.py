"""Signing in with the identity provider in a real browser: the login page's button, the provider's own forms (oidc-
provider on loopback), back on the registry signed in, with the team's private model in the list."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from registry.catalog import services as catalog
from registry.lib.access import Level
from tests.browser.checks import check_page
from tests.builders import admin

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_in_with_the_provider_in_the_browser(page, live_server, oidc_provider):
    oidc_provider.set_accounts({"alice": {"email": "alice@example.com", "groups": ["risk-team"]}})
    model = catalog.model_create(name="fraud-detector", by=admin(), default_level=Level.NONE)
    catalog.model_grant_set(model=model, by=admin(), group=Group.objects.create(name="risk-team"), level=Level.READ)

    page.goto(f"{live_server.url}/login/")
    for width in (1400, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert check_page(page) == [], width
    page.set_viewport_size({"width": 1400, "height": 900})
    page.get_by_role("link", name="Sign in with Acme ID").click()

    # The provider's own pages (not ours: their checks are the provider's business).
    page.wait_for_url(f"{oidc_provider.issuer}/**")
    page.fill("input[name=login]", "alice")
    page.fill("input[name=password]", "anything")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Continue")
    page.click("button[type=submit]")

    page.wait_for_url(f"{live_server.url}/models/")
    assert "fraud-detector" in page.inner_text("main")
    page.console_errors.clear()
    page.reload()
    assert check_page(page) == []
