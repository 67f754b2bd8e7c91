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


OVERLAY_COLOURS = ("#e0702b", "#1f8a4c", "#9b3fc4")


def metric_history_figure(
    key: str,
    steps: Sequence[int],
    values: Sequence[float],
    *,
    max_points: int = DEFAULT_POINTS,
    height: int = 300,
    label: str = "",
    overlays: Sequence[tuple[str, Sequence[int], Sequence[float]]] = (),
) -> dict:
    """One metric's history as a line over steps, downsampled to at most `max_points` points, with a log-scale switch
    and a smoothing slider. `overlays` are (label, steps, values) of other runs' histories of the same metric, drawn
    over it in their own colours so that runs can be read against each other."""
    data = [_history_trace(label or key, steps, values, max_points, LINE_COLOUR)]
    for index, (other, other_steps, other_values) in enumerate(overlays):
        data.append(
            _history_trace(other, other_steps, other_values, max_points, OVERLAY_COLOURS[index % len(OVERLAY_COLOURS)])
        )
    return {
        "data": data,
        "layout": {
            "title": {"text": key},
            "xaxis": {"title": {"text": "step"}},
            "yaxis": {"title": {"text": key}},
            "showlegend": bool(overlays),
            "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
            "height": height,
        },
        "controls": ["log", "smooth"],
    }


def _history_trace(name: str, steps: Sequence[int], values: Sequence[float], max_points: int, colour: str) -> dict:
    xs, ys = minmax_downsample(steps, values, max_points) if len(steps) > max_points else (list(steps), list(values))
    return {
        "type": "scatter",
        "mode": "lines+markers" if len(xs) <= 60 else "lines",
        "name": name,
        "x": xs,
        "y": json_safe(ys),
        "line": {"color": colour, "width": 1.6},
        "marker": {"size": 5, "color": colour},
        "hovertemplate": "step %{x}: %{y}<extra>%{fullData.name}</extra>",
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
            "xaxis": {"title": {"text": "version"}, "tickformat": "d", "tickprefix": "v", **_integer_ticks(versions)},
            "yaxis": {"title": {"text": metric}},
            "hovermode": "closest",
            "annotations": annotations,
            "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.12},
            "height": 340,
        },
    }


def _integer_ticks(versions: Sequence[int]) -> dict:
    """One tick per version while they fit (v1, v2, …); Plotly's own spacing, still whole numbers, beyond that."""
    return {"dtick": 1} if len(versions) <= 20 else {}


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
