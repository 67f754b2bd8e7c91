"""Plotly figures for the comparison and dataset pages, shaped on the server as plain dicts.

No Django here: each function takes lists and returns {"data": [...], "layout": {...}} for `json_script`;
static/registry/charts.js draws them with the vendored plotly.min.js. Numbers are rounded to six significant digits
and histories downsampled so that a page with four long histories stays a few hundred kilobytes.
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
            "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.0, "yanchor": "bottom"},
            "margin": {"t": 40, "b": 44},
        },
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


def _category_dimension(label: str, texts: Sequence[str]) -> dict:
    categories = sorted(set(texts))
    index = {c: i for i, c in enumerate(categories)}
    return {
        "label": _short(label),
        "values": [index[t] for t in texts],
        "tickvals": list(range(len(categories))),
        "ticktext": [_short(c, 18) for c in categories],
        "range": [-0.5, len(categories) - 0.5] if len(categories) == 1 else [0, len(categories) - 1],
    }


def parallel_figure(
    labels: Sequence[str],
    params: Sequence[dict[str, str | None]],
    param_keys: Sequence[str],
    metric_key: str,
    metric_values: Sequence[float | None],
    *,
    lower_is_better: bool,
) -> dict | None:
    """Parallel coordinates: one line per build through its params, ending at `metric_key`, coloured by it.

    Builds without a finite value of the metric are left out (a line needs every axis). A param whose values are
    all numbers is a numeric axis; any other (text, missing in some build) is an axis of categories. Returns None
    when fewer than two builds have the metric.
    """
    keep = [i for i, v in enumerate(metric_values) if rounded(v) is not None]
    if len(keep) < 2:
        return None
    dims = [_category_dimension("build", [labels[i] for i in keep])]
    for key in param_keys:
        texts = [params[i].get(key) for i in keep]
        numbers = [_as_float(t) for t in texts]
        if all(n is not None for n in numbers):
            dims.append({"label": _short(key), "values": numbers})
        else:
            dims.append(_category_dimension(key, ["—" if t is None else t for t in texts]))
    colors = [rounded(metric_values[i]) for i in keep]
    dims.append({"label": _short(metric_key), "values": colors})
    return {
        "data": [
            {
                "type": "parcoords",
                "dimensions": dims,
                "line": {
                    "color": colors,
                    "colorscale": "Viridis",
                    # The best end of the scale is always the bright yellow one.
                    "reversescale": lower_is_better,
                    # The metric's own axis, last, reads the values; a colour bar would only repeat it.
                    "showscale": False,
                },
            }
        ],
        "layout": {"height": 380, "margin": {"l": 70, "r": 70, "t": 56, "b": 24}, "hovermode": False},
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
