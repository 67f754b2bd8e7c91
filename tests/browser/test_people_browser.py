"""Who may approve Production, in a real browser: an administrator gives a team the Production approver role on the
admin's group page; a member makes an expiring token, changes their own password and email on the profile page (its
account history lists all three), then signs in with the new password; the audit log names who did each."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission

from tests.browser.checks import check_page
from tests.governance.helpers import person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD, NEW_PASSWORD = "pw-for-browser-1", "a-New-pass-9137"


def sign_in(page, live_server, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("form:has(#id_password) button[type=submit]")
    page.wait_for_load_state("networkidle")


def test_a_role_given_in_the_admin_and_a_password_changed_on_the_profile_are_in_the_audit_log(page, live_server):
    root = person("root", password=PASSWORD, superuser=True)
    ana = person("ana", password=PASSWORD)
    team = Group.objects.create(name="risk-team")
    ana.groups.add(team)

    sign_in(page, live_server, root.username)
    page.goto(f"{live_server.url}/admin/auth/group/{team.pk}/change/")
    approve = Permission.objects.get(codename="approve_production")
    page.select_option("#id_permissions_from", value=str(approve.pk))
    page.click("#id_permissions_add")
    page.click("input[name=_save]")
    page.wait_for_load_state("networkidle")
    assert "was changed successfully" in page.inner_text("body")
    assert team.permissions.filter(codename="approve_production").exists()
    page.context.clear_cookies()

    sign_in(page, live_server, ana.username)
    page.goto(f"{live_server.url}/profile/")
    page.fill("#id_name", "nightly")
    page.select_option("#id_expires_in", "30")
    page.locator("form:has(#id_name) button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("#new-token").inner_text().startswith("mrt_")
    page.fill("#id_current_password", PASSWORD)
    page.fill("#id_new_password", NEW_PASSWORD)
    page.fill("#id_new_password_again", NEW_PASSWORD)
    page.click("#password button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "Password changed" in page.inner_text("main")
    assert "nightly" in page.inner_text("main")  # the token list, stacked at 390 px, checked below
    page.fill("#id_email", "ana@example.org")
    page.click("#details button[type=submit]")
    page.wait_for_load_state("networkidle")
    history = page.locator("#account-history tbody tr").all_inner_texts()
    assert "ana@example.org" in history[0] and "password" in history[1] and "API token created" in history[2], history
    for width in (1400, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert check_page(page) == [], width
    page.set_viewport_size({"width": 1400, "height": 900})
    page.context.clear_cookies()
    sign_in(page, live_server, ana.username, NEW_PASSWORD)
    assert page.url.endswith("/models/")

    page.context.clear_cookies()
    sign_in(page, live_server, root.username)
    page.goto(f"{live_server.url}/audit/")
    rows = page.locator("table.data tbody tr").all_inner_texts()
    assert any("Group changed" in r and "root" in r and "governance.approve_production" in r for r in rows), rows
    assert any("User changed" in r and "user:ana" in r and "password" in r for r in rows), rows
