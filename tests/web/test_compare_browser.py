"""The comparison and dataset pages in a real browser: charts are drawn, the "only differences" switch works."""

from __future__ import annotations

import pytest

from tests.builders import model_create
from tests.factories import UserFactory
from tests.web.test_compare import SCHEMA, build, dataset

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def script_errors(page) -> list[str]:
    """Script errors; failed loads are left out (the browser asks for /favicon.ico, which the site does not have).

    A missing script would show anyway: the tests wait for every chart to be drawn.
    """
    return [e for e in page.console_errors if not e.startswith("Failed to load resource")]


def sign_in(page, live_server) -> None:
    UserFactory(username="viewer", password="pw-for-browser-1")
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "viewer")
    page.fill("#id_password", "pw-for-browser-1")
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def test_compare_page_draws_its_charts_and_switches_rows(page, live_server, monkeypatch):
    from registry.web.views import compare as compare_view

    monkeypatch.setattr(compare_view, "MAX_INLINE_ROWS", 150)  # the second history loads on its own
    model = model_create(name="churn")
    many = {f"p{i:02d}": i for i in range(25)}
    build(model, 1, params=many, metrics={"auc": 0.8}, history=["a_loss", "b_loss"])
    build(model, 2, params={**many, "p00": 7}, metrics={"auc": 0.9}, history=["a_loss", "b_loss"])
    sign_in(page, live_server)

    page.goto(f"{live_server.url}/compare/?versions=churn:1,churn:2")
    page.locator("#histories .chart-slot[hx-get]").scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelectorAll('.chart-slot[hx-get]').length === 0")
    page.wait_for_function("() => document.querySelectorAll('.chart[data-drawn=\"1\"]').length === 4")

    # bars, two histories (one loaded later), parallel coordinates
    assert page.locator(".chart .main-svg").count() >= 4
    same_row = page.locator('#params tr[data-same="1"]').first
    assert not same_row.is_visible()  # 26 rows: only differences by default
    page.uncheck('input[data-only-diff="params"]')
    assert same_row.is_visible()
    assert script_errors(page) == []


def test_dataset_pages_draw_their_charts(page, live_server):
    profile = {
        "num_rows": 10,
        "columns": {
            "age": {"nulls": 0, "mean": 4.5, "histogram": {"bins": [0, 5, 10], "counts": [5, 5]}},
            "plan": {"nulls": 0, "distinct": 2, "top": [{"value": "a", "count": 6}, {"value": "b", "count": 4}]},
        },
    }
    first = dataset("train", "a" * 64, schema=SCHEMA)
    first.profile = profile
    first.save()
    second = dataset("train", "b" * 64, schema=SCHEMA)
    second.profile = profile
    second.save()
    sign_in(page, live_server)

    page.goto(f"{live_server.url}/datasets/{first.pk}/")
    page.wait_for_function("() => document.querySelectorAll('.chart[data-drawn=\"1\"]').length === 2")
    page.click("form.compare-with button")
    page.wait_for_url("**/datasets/compare/**")
    page.wait_for_function("() => document.querySelectorAll('.chart[data-drawn=\"1\"]').length === 2")
    assert page.locator(".badge.drift-none").count() == 2
    assert script_errors(page) == []
