"""Figure shaping: plain {data, layout} dicts, downsampled without losing extremes or order, JSON-safe."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

from registry.web.compare_figures import parallel_figure
from registry.web.figures import (
    metric_history_figure,
    plotly_time,
    stage_timeline_figure,
    version_trend_figure,
)
from registry.web.templatetags.registry_tags import duration, metric


def test_short_history_is_drawn_whole():
    figure = metric_history_figure("loss", [0, 1, 2], [0.9, 0.5, 0.4])
    trace = figure["data"][0]
    assert trace["x"] == [0, 1, 2]
    assert trace["y"] == [0.9, 0.5, 0.4]
    assert figure["layout"]["title"]["text"] == "loss"
    assert figure["layout"]["yaxis"]["title"]["text"] == "loss"  # the y-axis says what it measures
    assert figure["controls"] == ["log", "smooth"]


def test_overlays_are_drawn_in_their_own_colours_with_a_legend():
    figure = metric_history_figure(
        "loss", [0, 1], [0.9, 0.5], label="run-a", overlays=[("run-b", [0, 1, 2], [0.8, 0.6, 0.5]), ("run-c", [], [])]
    )
    assert [trace["name"] for trace in figure["data"]] == ["run-a", "run-b", "run-c"]
    assert len({trace["line"]["color"] for trace in figure["data"]}) == 3
    assert figure["layout"]["showlegend"] is True
    assert not metric_history_figure("loss", [0], [1.0])["layout"]["showlegend"]


def test_long_history_is_downsampled_keeping_extremes_and_order():
    steps = list(range(100_000))
    values = [math.sin(s / 500) for s in steps]
    values[31_337] = 50.0  # a spike
    values[77_777] = -50.0  # a dip

    trace = metric_history_figure("loss", steps, values)["data"][0]

    assert len(trace["x"]) <= 2000
    assert trace["x"] == sorted(trace["x"])
    assert len(set(trace["x"])) == len(trace["x"])
    assert trace["x"][0] == 0 and trace["x"][-1] == 99_999
    assert 31_337 in trace["x"] and 77_777 in trace["x"]
    assert max(trace["y"]) == 50.0 and min(trace["y"]) == -50.0
    assert all(values[x] == y for x, y in zip(trace["x"], trace["y"], strict=True))


def test_budget_can_be_raised():
    steps = list(range(50_000))
    trace = metric_history_figure("x", steps, [float(s % 7) for s in steps], max_points=20_000)["data"][0]
    assert 19_000 < len(trace["x"]) <= 20_000


def test_nan_and_infinities_become_gaps_and_the_figure_is_strict_json():
    figure = metric_history_figure("x", [0, 1, 2, 3], [1.0, math.nan, math.inf, -math.inf])
    assert figure["data"][0]["y"] == [1.0, None, None, None]
    json.dumps(figure, allow_nan=False)


def test_trend_marks_production_versions():
    figure = version_trend_figure(
        "auc", [1, 2, 3, 4], [0.8, math.nan, 0.9, 0.85], ["Archived", "None", "Production", "Staging"]
    )
    line, production = figure["data"]
    assert line["x"] == [1, 2, 3, 4]
    assert line["y"] == [0.8, None, 0.9, 0.85]
    assert (production["x"], production["y"]) == ([3], [0.9])
    assert [a["text"] for a in figure["layout"]["annotations"]] == ["v3 in Production"]
    # versions read v1, v2, … with one tick each, and the y-axis names the metric
    assert figure["layout"]["xaxis"]["tickprefix"] == "v" and figure["layout"]["xaxis"]["dtick"] == 1
    assert figure["layout"]["yaxis"]["title"]["text"] == "auc"
    json.dumps(figure, allow_nan=False)


def test_trend_of_nothing_is_an_empty_chart():
    figure = version_trend_figure("auc", [], [], [])
    assert figure["data"][0]["x"] == [] and figure["data"][1]["x"] == []


def test_timeline_bars_run_from_start_to_end_per_stage():
    t0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    rows = [
        ("Production", 3, t0, t0 + timedelta(days=2)),
        ("Staging", 4, t0 + timedelta(days=1), t0 + timedelta(days=1, hours=6)),
        ("Production", 4, t0 + timedelta(days=2), t0 + timedelta(days=5)),
    ]
    figure = stage_timeline_figure(rows)
    production, staging = figure["data"]
    assert production["name"] == "Production" and production["orientation"] == "h"
    assert production["text"] == ["v3", "v4"]
    assert production["base"] == ["2025-05-01 12:00:00.000000", "2025-05-03 12:00:00.000000"]
    assert production["x"] == [2 * 86_400_000, 3 * 86_400_000]
    assert staging["x"] == [6 * 3_600_000]
    assert figure["layout"]["xaxis"]["type"] == "date"


def test_plotly_time_has_no_offset():
    assert plotly_time(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2025-01-02 03:04:05.000000"


def test_metric_and_duration_filters():
    assert metric(None) == "—"
    assert metric(math.nan) == "NaN"
    assert metric(-math.inf) == "−∞"
    assert metric(0.123456789) == "0.123457"
    assert metric(12345678.0) == "1.23457e+07"
    assert duration(timedelta(seconds=3.25)) == "3.2 s"
    assert duration(timedelta(days=3, hours=4, minutes=5)) == "3 d 4 h"
    assert duration(None) == "—"


def test_parallel_chart_draws_only_params_that_vary_with_a_colour_bar():
    figure = parallel_figure(
        ["v1", "v2", "v3"],
        ["#111111", "#222222", "#333333"],
        [
            {"lr": "0.1", "depth": "3", "optimizer": "adam", "seed": "1"},
            {"lr": "0.01", "depth": "5", "optimizer": "sgd", "seed": "1"},
            {"lr": "0.001", "depth": "4", "optimizer": "adam", "seed": "1"},
        ],
        ["lr", "depth", "optimizer", "seed"],
        "loss",
        [0.3, 0.1, None],
        lower_is_better=True,
    )
    layout = figure["layout"]
    assert layout["xaxis"]["ticktext"] == ["lr", "depth", "optimizer", "loss"]  # seed never varies
    assert {trace["type"] for trace in figure["data"]} == {"scatter"}  # the basic bundle has no parcoords
    lines = {trace["name"]: trace for trace in figure["data"] if trace.get("name")}
    assert set(lines) == {"v1", "v2"}  # v3 has no loss
    assert lines["v1"]["line"]["color"] == "#111111"  # the build's colour, as in the page's header and other charts
    assert lines["v1"]["y"] == [1.0, 0.0, 0.0, 1.0] and lines["v1"]["customdata"] == ["0.1", "3", "adam", "0.3"]
    # loss: lower is better, so the scale is reversed: v2's 0.1 gets the bright end
    scale = figure["data"][-1]["marker"]
    assert scale["showscale"] and scale["reversescale"] and scale["color"] == [0.3, 0.1]
    ticks = {(a["x"], a["text"]) for a in layout["annotations"]}
    assert {(0, "0.01"), (0, "0.1"), (2, "adam"), (2, "sgd"), (3, "0.1"), (3, "0.3")} <= ticks
    json.dumps(figure, allow_nan=False)


def test_parallel_chart_needs_two_builds_with_the_metric():
    assert (
        parallel_figure(["v1", "v2"], ["#111", "#222"], [{}, {}], [], "auc", [0.9, None], lower_is_better=False) is None
    )
