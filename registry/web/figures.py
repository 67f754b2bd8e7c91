"""Plotly figures as plain {data, layout} dicts, built from plain lists; charts.js draws them.

Long series are cut down with min/max downsampling so that spikes survive, and every number goes through
`json_safe` because NaN and the infinities cannot travel in JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from registry.lib.series import DEFAULT_POINTS, json_safe, minmax_downsample

STAGE_COLOURS = {"Production": "#1f8a4c", "Staging": "#c98500", "Archived": "#9aa3ae", "None": "#c7cdd6"}
LINE_COLOUR = "#2f5bea"
# Annotating every Production version would bury the chart; the newest few are labelled, all are marked.
MAX_ANNOTATIONS = 6


def plotly_time(moment: datetime) -> str:
    """Plotly reads dates as wall-clock text and rejects UTC offsets: give it the moment's own wall clock."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def metric_history_figure(
    key: str, steps: Sequence[int], values: Sequence[float], *, max_points: int = DEFAULT_POINTS, height: int = 300
) -> dict:
    """One metric's history as a line over steps, downsampled to at most `max_points` points."""
    xs, ys = minmax_downsample(steps, values, max_points) if len(steps) > max_points else (list(steps), list(values))
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers" if len(xs) <= 60 else "lines",
                "name": key,
                "x": xs,
                "y": json_safe(ys),
                "line": {"color": LINE_COLOUR, "width": 1.6},
                "marker": {"size": 5},
                "hovertemplate": "step %{x}<br>%{y}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": key},
            "xaxis": {"title": {"text": "step"}},
            "showlegend": False,
            "height": height,
        },
    }


def version_trend_figure(metric: str, versions: Sequence[int], values: Sequence[float], stages: Sequence[str]) -> dict:
    """A metric's last value across versions; Production versions get a star and (the newest few) a label."""
    safe = json_safe(values)
    production = [(v, y) for v, y, s in zip(versions, safe, stages, strict=True) if s == "Production"]
    annotations = [
        {
            "x": v,
            "y": y,
            "text": f"v{v} in Production",
            "showarrow": True,
            "arrowhead": 2,
            "ay": -32,
            "font": {"color": STAGE_COLOURS["Production"], "size": 11},
        }
        for v, y in production[-MAX_ANNOTATIONS:]
        if y is not None
    ]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": metric,
                "x": list(versions),
                "y": safe,
                "connectgaps": False,
                "line": {"color": LINE_COLOUR, "width": 1.6},
                "marker": {"size": 6},
                "hovertemplate": "v%{x}: %{y}<extra></extra>",
            },
            {
                "type": "scatter",
                "mode": "markers",
                "name": "Production",
                "x": [v for v, _ in production],
                "y": [y for _, y in production],
                "marker": {"symbol": "star", "size": 15, "color": STAGE_COLOURS["Production"]},
                "hovertemplate": "v%{x} (Production): %{y}<extra></extra>",
            },
        ],
        "layout": {
            "title": {"text": f"{metric} by version"},
            "xaxis": {"title": {"text": "version"}, "tickformat": "d"},
            "hovermode": "closest",
            "annotations": annotations,
            "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.12},
            "height": 340,
        },
    }


def stage_timeline_figure(rows: Sequence[tuple[str, int, datetime, datetime]]) -> dict:
    """Which version held which stage when: (stage, version, start, end) rows as horizontal bars on a time axis.

    Times are drawn on their own wall clock (pass them in the zone the reader expects).
    """
    traces = []
    for stage in ("Production", "Staging", "Archived"):
        mine = [row for row in rows if row[0] == stage]
        if not mine:
            continue
        traces.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": stage,
                "y": [stage] * len(mine),
                "base": [plotly_time(start) for _, _, start, _ in mine],
                "x": [max((end - start).total_seconds() * 1000, 1) for _, _, start, end in mine],
                "text": [f"v{version}" for _, version, _, _ in mine],
                "textposition": "inside",
                "insidetextanchor": "middle",
                "marker": {"color": STAGE_COLOURS[stage], "line": {"color": "#ffffff", "width": 1}},
                "customdata": [[plotly_time(start), plotly_time(end)] for _, _, start, end in mine],
                "hovertemplate": "%{text}: %{customdata[0]|%Y-%m-%d %H:%M} → %{customdata[1]|%Y-%m-%d %H:%M}"
                "<extra>%{y}</extra>",
            }
        )
    return {
        "data": traces,
        "layout": {
            "xaxis": {"type": "date"},
            "yaxis": {"autorange": "reversed"},
            "barmode": "overlay",
            "hovermode": "closest",
            "showlegend": False,
            "height": 90 + 60 * max(len(traces), 1),
            "margin": {"t": 16, "l": 92},
        },
    }
