"""Sign-in throttling in a real browser: after ten wrong passwords the login form gives way to a page saying the
sign-in is locked, for how long and what to do (no script errors or CSP refusals, readable at 1400 and 390 px, light
and dark); the right password is refused until an administrator lifts the lockout, then it signs in."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from tests.browser.checks import check_page
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-browser-1"
LOCKED_STATUS = "Failed to load resource: the server responded with a status of 429"


def try_password(page, live_server, password: str):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "carol")
    page.fill("#id_password", password)
    with page.expect_navigation() as navigation:
        page.click("button[type=submit]")
    return navigation.value


def test_ten_wrong_passwords_show_the_lockout_page_until_an_admin_lifts_it(page, live_server, settings):
    user = UserFactory(username="carol")
    user.set_password(PASSWORD)
    user.save()

    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = try_password(page, live_server, "wrong")
        assert response.status == 200
        assert "Please enter a correct username and password" in page.inner_text(".form-error")
    response = try_password(page, live_server, "wrong")
    assert response.status == 429
    assert page.inner_text("h1") == "Too many failed sign-in attempts"
    assert "locked for 15 minutes" in page.inner_text("main")
    assert "ask an administrator to lift the lockout" in page.inner_text("main")

    # The page's own 429 is the expected answer; anything else in the console (a CSP refusal, a script error) fails.
    page.console_errors[:] = [e for e in page.console_errors if not e.startswith(LOCKED_STATUS)]
    for width, scheme in [(1400, "light"), (390, "light"), (1400, "dark"), (390, "dark")]:
        page.set_viewport_size({"width": width, "height": 900})
        page.emulate_media(color_scheme=scheme)
        assert check_page(page) == [], (width, scheme)

    assert try_password(page, live_server, PASSWORD).status == 429
    page.click("text=Back to the login page")
    assert page.url.endswith("/login/")

    call_command("axes_reset_username", "carol")
    assert try_password(page, live_server, PASSWORD).status == 200
    assert "/login/" not in page.url, "signed in"
