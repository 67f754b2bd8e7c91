"""Metric histories shaped for charts: short ones read whole, long ones through cached downsampled previews."""

from __future__ import annotations

from collections.abc import Sequence

from registry.lib.numbers import float_from_json, float_to_json
from registry.lib.series import DEFAULT_POINTS, minmax_downsample
from registry.tracking.models import MetricPoint, MetricPreview, MetricSeries

PREVIEW_POINTS = DEFAULT_POINTS


def chart_histories(
    series: Sequence[MetricSeries], max_points: int = DEFAULT_POINTS
) -> dict[int, tuple[list[int], list[float]]]:
    """{series id: (steps, values)} with at most `max_points` points each, keeping every bucket's min and max.

    Queries: one for all the short series, one for the previews of the long ones; only a long series whose preview
    is missing or stale (it has grown since) adds a read of its history and an upsert of its preview. Previews are
    kept at PREVIEW_POINTS whatever the caller asks, and cut further here when it asks for fewer.
    """
    out = _histories(series)
    return {
        series_id: minmax_downsample(steps, values, max_points) if len(steps) > max_points else (steps, values)
        for series_id, (steps, values) in out.items()
    }


def _histories(series: Sequence[MetricSeries]) -> dict[int, tuple[list[int], list[float]]]:
    max_points = PREVIEW_POINTS
    short = [s.pk for s in series if s.count <= max_points]
    long = {s.pk: s for s in series if s.count > max_points}
    out: dict[int, tuple[list[int], list[float]]] = {}
    if short:
        out.update(MetricPoint.objects.histories(short))
    if not long:
        return out
    previews = {p.series_id: p for p in MetricPreview.objects.filter(series_id__in=list(long))}
    stale = []
    for series_id, s in long.items():
        preview = previews.get(series_id)
        if preview is None or preview.count != s.count or preview.max_points != max_points:
            stale.append(series_id)
        else:
            out[series_id] = (preview.steps, [float_from_json(v) for v in preview.values])
    if stale:
        rebuilt = []
        for series_id, (steps, values) in MetricPoint.objects.histories(stale).items():
            shown_steps, shown_values = minmax_downsample(steps, values, max_points)
            out[series_id] = (shown_steps, shown_values)
            rebuilt.append(
                MetricPreview(
                    series_id=series_id,
                    count=len(steps),
                    max_points=max_points,
                    steps=shown_steps,
                    values=[float_to_json(v) for v in shown_values],
                )
            )
        MetricPreview.objects.bulk_create(
            rebuilt,
            update_conflicts=True,
            unique_fields=["series"],
            update_fields=["count", "max_points", "steps", "values", "built_at"],
        )
    return out
