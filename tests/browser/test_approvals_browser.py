"""Approving in a real browser: an approver signs in, approves a request on /approvals/ (htmx swaps the card and
shows the message), and the model page then shows the version in Production; rolling back from the model page."""

from __future__ import annotations

import pytest

from registry.catalog import services as catalog
from registry.catalog.models import ModelVersion, Stage
from registry.governance import services
from tests.builders import admin, model_create
from tests.governance.helpers import PRODUCTION_APPROVERS, REQUESTERS, build, person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-browser-1"


def sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def watch_failures(page) -> list[str]:
    """Answers of 400 and above, except the favicon the browser asks for on its own (the site has none)."""
    failures: list[str] = []
    page.on(
        "response",
        lambda r: failures.append(f"{r.status} {r.url}") if r.status >= 400 and "favicon" not in r.url else None,
    )
    return failures


def script_errors(page) -> list[str]:
    """Console errors; failed loads are reported by `watch_failures` with their URL instead."""
    return [e for e in page.console_errors if not e.startswith("Failed to load resource")]


@pytest.fixture
def fraud():
    """v1 in Production; v2 with a pending request (by rita) to replace it."""
    requester = person("rita", REQUESTERS)
    approver = person("paula", PRODUCTION_APPROVERS, password=PASSWORD)
    model = model_create(name="fraud")
    catalog.model_grant_set(model=model, by=admin(), user=requester, level="EDIT")
    v1 = build(model, {"f1": 0.80, "auc": 0.91}, by=requester, datasets={"evaluation": "holdout"})
    services.stage_change_direct(version=v1, to_stage=Stage.PRODUCTION, by=approver)
    v2 = build(model, {"f1": 0.85, "auc": 0.90}, by=requester, datasets={"evaluation": "holdout"})
    request = services.transition_request(
        version=v2, to_stage=Stage.PRODUCTION, by=requester, comment="f1 up 5 points.", archive_existing=True
    )
    return model, request


def test_an_approver_approves_a_request_and_the_model_page_shows_it(page, live_server, fraud):
    _, request = fraud
    failures = watch_failures(page)
    sign_in(page, live_server, "paula")

    page.goto(f"{live_server.url}/approvals/")
    card = page.locator(f"#request-{request.pk}")
    assert "f1 up 5 points." in card.inner_text()
    # Deltas say which way they go by the metric's direction: f1 and auc are better higher.
    f1, auc = (card.locator("tr", has_text=key).locator("td.delta") for key in ("f1", "auc"))
    assert f1.inner_text() == "+0.05▲ better" and "better" in f1.get_attribute("class")
    assert auc.inner_text() == "−0.01▼ worse" and "worse" in auc.get_attribute("class")
    card.locator("textarea[name=comment]").fill("Evidence checked.")
    card.get_by_role("button", name="Approve").click()

    # The card leaves "Pending": a status line takes its place and the focus, and "Recently decided" lists it.
    status = page.locator(f"#request-{request.pk}.status-line")
    status.wait_for()
    assert status.inner_text().startswith(
        "Approved: fraud v2 is now in Production. The version that held Production was archived."
    )
    # The status line takes the focus once htmx has settled the swap, a moment after it appears.
    page.wait_for_function("id => document.activeElement.id === id", arg=f"request-{request.pk}", timeout=5000)
    assert page.locator("#decided").get_by_role("link", name=f"#{request.pk}").count() == 1
    assert page.url == f"{live_server.url}/approvals/"  # the decision did not push its own URL

    page.reload()
    assert page.locator("#requests").inner_text().strip().startswith("Nothing waiting")
    assert page.locator(f"#requests #request-{request.pk}").count() == 0
    decided = page.locator("section", has_text="Recently decided")
    assert decided.get_by_role("link", name=f"#{request.pk}").count() == 1

    page.goto(f"{live_server.url}/models/fraud/")
    assert page.locator("#production .production-now").inner_text().startswith("v2")
    assert "Evidence checked." in page.locator("#audit").inner_text()
    assert ModelVersion.objects.get(model__name="fraud", version=2).stage == Stage.PRODUCTION
    assert script_errors(page) == [] and failures == []


def test_rejecting_asks_for_confirmation_first(page, live_server, fraud):
    _, request = fraud
    failures = watch_failures(page)
    sign_in(page, live_server, "paula")
    page.goto(f"{live_server.url}/approvals/")
    card = page.locator(f"#request-{request.pk}")
    confirm = card.get_by_role("button", name="Yes, reject")
    assert not confirm.is_visible()
    card.get_by_text("Reject…").click()
    assert "rita sees your comment" in card.locator(".reject-box").inner_text()
    card.locator("textarea[name=comment]").fill("Not on the holdout set.")
    confirm.click()
    status = page.locator(f"#request-{request.pk}.status-line")
    status.wait_for()
    assert status.inner_text().startswith("Rejected the request to move fraud v2 to Production.")
    request.refresh_from_db()
    assert request.status == "rejected" and request.decision_comment == "Not on the holdout set."
    assert script_errors(page) == [] and failures == []


def test_rolling_back_from_the_model_page_asks_for_confirmation(page, live_server, fraud):
    _, request = fraud
    services.transition_approve(request_id=request.pk, by=person("pete", PRODUCTION_APPROVERS))
    failures = watch_failures(page)
    sign_in(page, live_server, "paula")

    page.goto(f"{live_server.url}/models/fraud/")
    page.get_by_text("Roll back Production…").click()
    page.fill("#rollback-comment", "Latency regression.")
    page.get_by_role("button", name="Roll back to v1").click()
    # The confirmation box is required: the browser keeps the form until it is ticked.
    assert page.url == f"{live_server.url}/models/fraud/"
    assert ModelVersion.objects.get(model__name="fraud", version=2).stage == Stage.PRODUCTION
    page.get_by_label("Yes, roll back to v1").check()
    page.get_by_role("button", name="Roll back to v1").click()
    page.wait_for_url("**/models/fraud/#production")

    assert page.locator(".message.success").inner_text() == "Rolled back: fraud v1 is in Production again."
    assert page.locator("#production .production-now").inner_text().startswith("v1")
    assert script_errors(page) == [] and failures == []
