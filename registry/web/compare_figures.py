"""Plotly figures for the comparison and dataset pages, shaped on the server as plain dicts.

No Django here: each function takes lists and returns {"data": [...], "layout": {...}} for `json_script`;
static/registry/charts.js draws them with the vendored Plotly basic bundle (static/vendor/plotly-basic.min.js).
Numbers are rounded to six significant digits and histories downsampled so that a page with four long histories
stays a few hundred kilobytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from registry.lib.series import minmax_downsample

# One colour per build, in column order; the page header shows the same swatches.
PALETTE = ("#2f5bea", "#e0702b", "#1f8a4c", "#9b3fc4")
DATASET_COLORS = ("#2f5bea", "#e0702b")

# Points drawn over all history charts of a page, shared among their traces; each trace gets 200 to 2,000.
HISTORY_POINT_BUDGET = 20_000
MAX_TRACE_POINTS = 2_000
MIN_TRACE_POINTS = 200


def color_of(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def rounded(value: float | None, digits: int = 6) -> float | None:
    """`value` to `digits` significant digits; None for missing, NaN and the infinities (Plotly draws a gap)."""
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def points_per_trace(trace_count: int) -> int:
    if trace_count <= 0:
        return MAX_TRACE_POINTS
    return max(MIN_TRACE_POINTS, min(MAX_TRACE_POINTS, HISTORY_POINT_BUDGET // trace_count))


def _title(text: str) -> dict:
    return {"text": text, "font": {"size": 13}, "x": 0, "xanchor": "left"}


@dataclass(frozen=True, slots=True)
class HistoryTrace:
    label: str
    color: str
    steps: Sequence[int]
    values: Sequence[float]  # NaN for missing points


def history_figure(key: str, traces: Sequence[HistoryTrace], *, max_points: int = MAX_TRACE_POINTS) -> dict:
    """One metric's history per build, overlaid, each downsampled (min/max per bucket) to at most `max_points`."""
    data = []
    for trace in traces:
        steps, values = minmax_downsample(trace.steps, trace.values, max_points)
        data.append(
            {
                "type": "scatter",
                "mode": "lines" if len(steps) > 1 else "markers",
                "name": trace.label,
                "x": list(steps),
                "y": [rounded(v) for v in values],
                "line": {"color": trace.color, "width": 1.6},
                "marker": {"color": trace.color},
            }
        )
    return {
        "data": data,
        "layout": {
            "title": _title(key),
            "height": 300,
            "hovermode": "x unified",
            "xaxis": {"title": {"text": "step", "standoff": 4}},
            "yaxis": {"title": {"text": _short(key, 28), "standoff": 4}},
            "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.0, "yanchor": "bottom"},
            "margin": {"t": 40, "b": 44},
        },
        "controls": ["log", "smooth"],
    }


BAR_COLUMNS = 6


def final_bars_figure(
    keys: Sequence[str], labels: Sequence[str], colors: Sequence[str], values: Sequence[Sequence[float | None]]
) -> dict:
    """Final values as grouped bars: one group per metric, one bar per build. `values[build][metric]`.

    Each metric gets its own small panel and y-axis, so a latency in milliseconds does not flatten an accuracy.
    """
    rows = max(1, math.ceil(len(keys) / BAR_COLUMNS))
    columns = max(1, math.ceil(len(keys) / rows))  # 7 metrics: rows of 4 and 3 rather than 6 and 1
    data = []
    layout: dict = {
        "title": _title("Final values"),
        "grid": {"rows": rows, "columns": columns, "pattern": "independent", "xgap": 0.25, "ygap": 0.45},
        "height": 60 + 190 * rows,
        "hovermode": "closest",
        "showlegend": True,
        "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.0, "yanchor": "bottom"},
        "margin": {"t": 56, "b": 30, "l": 48, "r": 16},
    }
    for m, key in enumerate(keys):
        suffix = "" if m == 0 else str(m + 1)
        for b, (label, color, build_values) in enumerate(zip(labels, colors, values, strict=True)):
            data.append(
                {
                    "type": "bar",
                    "name": label,
                    "legendgroup": label,
                    "showlegend": m == 0,
                    "x": [_short(key, 22)],
                    "y": [rounded(build_values[m])],
                    "offsetgroup": str(b),
                    "marker": {"color": color},
                    "xaxis": f"x{suffix}",
                    "yaxis": f"y{suffix}",
                    "hovertemplate": f"{label}: %{{y}}<extra>{key}</extra>",
                }
            )
        layout[f"xaxis{suffix}"] = {"type": "category", "tickfont": {"size": 11}}
        layout[f"yaxis{suffix}"] = {"gridcolor": "#eef0f3", "zeroline": False, "tickfont": {"size": 10}, "nticks": 4}
    return {"data": data, "layout": layout}


def _as_float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _short(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Viridis, as five stops, for the metric's markers and their colour bar.
VIRIDIS = (
    (0.0, (0x44, 0x01, 0x54)),
    (0.25, (0x3B, 0x52, 0x8B)),
    (0.5, (0x21, 0x91, 0x8C)),
    (0.75, (0x5E, 0xC9, 0x62)),
    (1.0, (0xFD, 0xE7, 0x25)),
)
AXIS_COLOUR = "#9aa3ae"


@dataclass(frozen=True, slots=True)
class Axis:
    """One vertical axis of the parallel chart: each build's place on it (0 bottom to 1 top), what each place reads,
    and the tick labels drawn beside it."""

    label: str
    positions: list[float]
    texts: list[str]
    ticks: list[tuple[float, str]]


def _numeric_axis(label: str, numbers: Sequence[float]) -> Axis:
    low, high = min(numbers), max(numbers)
    span = high - low
    positions = [0.5 if not span else (n - low) / span for n in numbers]
    ticks = (
        [(0.5, f"{rounded(low, 4):g}")] if not span else [(0.0, f"{rounded(low, 4):g}"), (1.0, f"{rounded(high, 4):g}")]
    )
    return Axis(_short(label), positions, [f"{rounded(n, 6):g}" for n in numbers], ticks)


def _category_axis(label: str, texts: Sequence[str]) -> Axis:
    categories = sorted(set(texts))
    step = 1 / (len(categories) - 1) if len(categories) > 1 else 0
    place = {c: (i * step if len(categories) > 1 else 0.5) for i, c in enumerate(categories)}
    return Axis(_short(label), [place[t] for t in texts], list(texts), [(place[c], _short(c, 14)) for c in categories])


def parallel_figure(
    labels: Sequence[str],
    colors: Sequence[str],
    params: Sequence[dict[str, str | None]],
    param_keys: Sequence[str],
    metric_key: str,
    metric_values: Sequence[float | None],
    *,
    lower_is_better: bool,
) -> dict | None:
    """Parallel coordinates: one line per build, in the build's own colour (as everywhere on the page), through the
    params that differ, ending at `metric_key`, where a marker coloured on a Viridis scale (the bright end always the
    better one, read on the colour bar) shows how good the build is.

    Drawn with scatter traces (Plotly's basic bundle has no parcoords): each axis is scaled to 0..1 between the
    values the builds hold. Params that every build holds alike are left out: an axis where all lines meet says
    nothing. Builds without a finite value of the metric are left out (a line needs every axis). A param whose
    values are all numbers is a numeric axis; any other (text, missing in some build) an axis of categories.
    Returns None when fewer than two builds have the metric.
    """
    keep = [i for i, v in enumerate(metric_values) if rounded(v) is not None]
    if len(keep) < 2:
        return None
    axes = []
    for key in param_keys:
        texts = [params[i].get(key) for i in keep]
        if len(set(texts)) < 2:
            continue
        numbers = [_as_float(t) for t in texts]
        if all(n is not None for n in numbers):
            axes.append(_numeric_axis(key, numbers))
        else:
            axes.append(_category_axis(key, ["—" if t is None else t for t in texts]))
    metric = [rounded(metric_values[i]) for i in keep]
    metric_axis = _numeric_axis(metric_key, metric)
    axes.append(metric_axis)
    xs = list(range(len(axes)))
    data: list[dict] = [
        {
            "type": "scatter",
            "mode": "lines",
            "x": [x for x in xs for _ in range(3)],
            "y": [y for _ in xs for y in (0, 1, None)],
            "line": {"color": AXIS_COLOUR, "width": 1},
            "hoverinfo": "skip",
            "showlegend": False,
        }
    ]
    for row, build in enumerate(keep):
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": labels[build],
                "x": xs,
                "y": [axis.positions[row] for axis in axes],
                "customdata": [axis.texts[row] for axis in axes],
                "text": [axis.label for axis in axes],
                "line": {"color": colors[build], "width": 2.5},
                "marker": {"color": colors[build], "size": 6},
                "hovertemplate": "%{text}: %{customdata}<extra>%{fullData.name}</extra>",
            }
        )
    data.append(
        {
            "type": "scatter",
            "mode": "markers",
            "x": [xs[-1]] * len(metric),
            "y": metric_axis.positions,
            "marker": {
                "color": metric,
                "colorscale": [[x, "#" + "".join(f"{c:02x}" for c in rgb)] for x, rgb in VIRIDIS],
                "reversescale": lower_is_better,
                "showscale": True,
                "size": 14,
                "line": {"color": AXIS_COLOUR, "width": 1},
                "colorbar": {"title": {"text": _short(metric_key, 16), "side": "right"}, "thickness": 12, "len": 0.9},
            },
            "hoverinfo": "skip",
            "showlegend": False,
        }
    )
    annotations = [
        {"x": x, "y": y, "text": text, "showarrow": False, "xanchor": "right", "xshift": -5, "font": {"size": 10}}
        for x, axis in zip(xs, axes, strict=True)
        for y, text in axis.ticks
    ]
    return {
        "data": data,
        "layout": {
            "height": 380,
            "margin": {"l": 70, "r": 24, "t": 24, "b": 56},
            "hovermode": "closest",
            "showlegend": True,
            "legend": {"orientation": "h", "x": 0, "y": -0.18},
            "xaxis": {
                "tickvals": xs,
                "ticktext": [axis.label for axis in axes],
                "showgrid": False,
                "zeroline": False,
                "range": [-0.6, len(axes) - 0.6],
                "side": "top",
            },
            "yaxis": {"visible": False, "range": [-0.08, 1.08], "fixedrange": True},
            "annotations": annotations,
        },
    }


def _centres_and_widths(edges: Sequence[float]) -> tuple[list[float], list[float]]:
    centres = [rounded((edges[i] + edges[i + 1]) / 2) for i in range(len(edges) - 1)]
    widths = [rounded(edges[i + 1] - edges[i]) for i in range(len(edges) - 1)]
    return centres, widths


def histogram_figure(title: str, edges: Sequence[float], counts: Sequence[float], *, color: str = PALETTE[0]) -> dict:
    """A stored histogram (bin edges and counts) drawn as touching bars."""
    centres, widths = _centres_and_widths(edges)
    return {
        "data": [
            {
                "type": "bar",
                "x": centres,
                "y": list(counts),
                "width": widths,
                "marker": {"color": color, "line": {"width": 0}},
                "hovertemplate": "%{x}: %{y} rows<extra></extra>",
            }
        ],
        "layout": {"title": _title(title), "height": 240, "bargap": 0, "hovermode": "closest", "showlegend": False},
    }


def histograms_overlay_figure(title: str, histograms: Sequence[tuple[str, Sequence[float], Sequence[float]]]) -> dict:
    """Several histograms of one column, as shares of rows so that datasets of different sizes compare."""
    data = []
    for i, (label, edges, counts) in enumerate(histograms):
        total = math.fsum(counts) or 1.0
        centres, widths = _centres_and_widths(edges)
        data.append(
            {
                "type": "bar",
                "name": label,
                "x": centres,
                "y": [rounded(100.0 * c / total, 4) for c in counts],
                "width": widths,
                "opacity": 0.55,
                "marker": {"color": DATASET_COLORS[i % len(DATASET_COLORS)], "line": {"width": 0}},
                "hovertemplate": "%{x}: %{y}% of rows<extra>" + label + "</extra>",
            }
        )
    return {
        "data": data,
        "layout": {
            "title": _title(title),
            "height": 260,
            "barmode": "overlay",
            "bargap": 0,
            "hovermode": "closest",
            "yaxis": {"title": {"text": "% of rows"}},
        },
    }


def top_values_figure(
    title: str,
    series: Sequence[tuple[str, Sequence[tuple[str, float]]]],
    *,
    totals: Sequence[float | None] | None = None,
) -> dict:
    """Bars of the most frequent values; with several datasets, grouped bars in the first one's order.

    With `totals` (rows per dataset), bars show shares of rows instead of counts, so that sizes do not matter.
    """
    order: list[str] = []
    for _, items in series:
        for value, _count in items:
            if value not in order:
                order.append(value)
    data = []
    for i, (label, items) in enumerate(series):
        counts = dict(items)
        total = totals[i] if totals else None
        ys = [counts.get(v) for v in order]
        if total:
            ys = [None if y is None else rounded(100.0 * y / total, 4) for y in ys]
        data.append(
            {
                "type": "bar",
                "name": label,
                "x": [_short(v, 30) for v in order],
                "y": ys,
                "marker": {"color": DATASET_COLORS[i % len(DATASET_COLORS)]},
            }
        )
    return {
        "data": data,
        "layout": {
            "title": _title(title),
            "height": 260,
            "barmode": "group",
            "hovermode": "x unified" if len(series) > 1 else "closest",
            "showlegend": len(series) > 1,
            "xaxis": {"type": "category", "automargin": True},
            "yaxis": {"title": {"text": "% of rows" if totals else "rows"}},
        },
    }
