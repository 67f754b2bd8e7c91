"""Charts in Chromium as a reader uses them: drawn by Plotly's basic bundle when they scroll into view, a log scale
and smoothing on history charts, other runs overlaid on a metric's history, the parallel chart with its colour bar;
all under the Content-Security-Policy with no console error."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from registry.catalog import services as catalog
from registry.tracking import services as tracking
from tests.browser.checks import axe_violations, check_page, script_errors
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-browser-1"


@pytest.fixture
def world():
    olga = UserFactory(username="olga", password=PASSWORD)
    experiment = tracking.experiment_create(name="churn-training", by=olga)
    model = catalog.model_create(name="churn", by=olga)
    runs = []
    for n in range(3):
        run = tracking.run_create(experiment=experiment, by=olga, name=f"gbm-{n}")
        points = [("loss", 10.0 / (step + 1 + n) + (step % 3) * 0.2, step, None) for step in range(60)]
        points += [(f"metric_{k}", 0.5 + 0.01 * step * k, step, None) for k in range(8) for step in range(5)]
        tracking.log_batch(
            run=run,
            by=olga,
            params={"depth": str(3 + n), "lr": "0.1"},
            points=[*points, ("auc", 0.8 + n / 20, 0, None)],
            tags={},
        )
        tracking.run_finish(run=run, by=olga)
        catalog.version_create(model=model, by=olga, run=run)
        runs.append(run)
    return {"runs": runs}


def wait_until(page, expression: str, timeout: float = 10) -> None:
    """Poll `expression` from Python: Playwright's wait_for_function evaluates strings in the page, which the
    Content-Security-Policy (no eval) refuses."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        page.wait_for_timeout(50)


def sign_in(page, live_server) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "olga")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/models/")


def test_history_chart_switches_to_log_scale_and_smooths_and_overlays_other_runs(page, live_server, world):
    first, second, _ = world["runs"]
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/runs/{first.pk}/metrics/loss/")
    chart = page.locator(".chart.js-plotly-plot")
    chart.wait_for()
    assert page.locator("script[src*='plotly-basic.min.js']").count() == 1

    page.get_by_label("Log scale for loss").check()
    page.locator(".js-plotly-plot .yaxislayer-above text").first.wait_for()
    wait_until(page, "document.querySelector('.js-plotly-plot').layout.yaxis.type === 'log'")

    raw = page.evaluate("document.querySelector('.js-plotly-plot').data[0].y.slice(0, 6)")
    page.get_by_label("Smoothing for loss").fill("0.6")
    expect(page.locator(".chart-controls output")).to_have_text("0.60")
    smoothed = page.evaluate("document.querySelector('.js-plotly-plot').data[0].y.slice(0, 6)")
    assert smoothed[0] == pytest.approx(raw[0])  # debiased: the first point is not pulled towards zero
    assert smoothed[1:] != raw[1:]
    assert max(smoothed) - min(smoothed) < max(raw) - min(raw)
    page.get_by_label("Smoothing for loss").fill("0")
    expect(page.locator(".chart-controls output")).to_have_text("0.00")
    assert page.evaluate("document.querySelector('.js-plotly-plot').data[0].y.slice(0, 6)") == raw

    page.get_by_label("Overlay another run of this experiment").select_option(label="gbm-1")
    page.get_by_role("button", name="Overlay").click()
    page.locator(".chart.js-plotly-plot").wait_for()
    names = page.evaluate("document.querySelector('.js-plotly-plot').data.map(t => t.name)")
    assert names == ["gbm-0", "gbm-1"]
    assert f"overlay={second.pk}" in page.url
    page.get_by_role("link", name="Stop overlaying gbm-1").click()
    page.locator(".chart.js-plotly-plot").wait_for()
    assert page.evaluate("document.querySelector('.js-plotly-plot').data.length") == 1
    assert check_page(page) == []


def test_compare_draws_charts_as_they_scroll_into_view_with_a_parallel_colour_bar(page, live_server, world):
    sign_in(page, live_server)
    page.set_viewport_size({"width": 1400, "height": 700})
    page.goto(f"{live_server.url}/compare/?versions=churn:1,churn:2,churn:3&color=auc")
    page.wait_for_load_state("networkidle")
    total = page.locator("[data-figure]").count()
    drawn_at_top = page.locator("[data-figure].js-plotly-plot").count()
    assert drawn_at_top < total  # charts far below the fold wait until they are near

    parallel = page.locator("[data-figure='parallel-figure']")
    parallel.scroll_into_view_if_needed()
    page.locator("[data-figure='parallel-figure'].js-plotly-plot").wait_for()
    assert parallel.locator(".colorbar").count() == 1
    ticks = page.evaluate("document.querySelector(\"[data-figure='parallel-figure']\").layout.xaxis.ticktext")
    assert ticks == ["depth", "auc"]  # lr is 0.1 everywhere: no axis for it
    page.evaluate(
        """async () => { for (let y = 0; y < document.body.scrollHeight; y += 400) {
             window.scrollTo(0, y); await new Promise(r => setTimeout(r, 50)); } }"""
    )
    expect(page.locator("[data-figure].js-plotly-plot")).to_have_count(total)
    assert script_errors(page) == []
    assert axe_violations(page) == []  # with every chart drawn
    # A label on a plain div is one assistive technology ignores (axe aria-prohibited-attr): each chart is a figure.
    assert page.locator(".chart[aria-label]:not([role])").count() == 0
