"""Downsampling of long metric histories for charts. Pure Python: no Django, no numpy.

`minmax_downsample` splits the points into buckets by position and keeps, from each bucket, the first point, its
minimum, its maximum and its last point (in step order, without duplicates). Spikes survive, order is kept, and
the result never exceeds `max_points`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

DEFAULT_POINTS = 2000


def minmax_downsample(
    steps: Sequence[int], values: Sequence[float], max_points: int = DEFAULT_POINTS
) -> tuple[list[int], list[float]]:
    """Return at most `max_points` (step, value) pairs that keep each bucket's extremes, in input order.

    The first and last points are always kept; the points between are cut into buckets of equal count and each
    bucket contributes its minimum and its maximum (NaN never counts as an extreme).
    """
    n = len(steps)
    if n != len(values):
        raise ValueError("steps and values must have the same length")
    if max_points < 4:
        raise ValueError("max_points must be at least 4")
    if n <= max_points:
        return list(steps), list(values)
    values = list(values)
    has_nan = any(map(math.isnan, values))
    buckets = (max_points - 2) // 2
    inner = n - 2
    keep = [0]
    for b in range(buckets):
        start = 1 + b * inner // buckets
        end = 1 + (b + 1) * inner // buckets
        if start >= end:
            continue
        chunk = values[start:end]
        if has_nan:
            finite = [v for v in chunk if not math.isnan(v)]
            if not finite:
                keep.append(start)
                continue
        else:
            finite = chunk
        # min() and max() run in C; index() finds the first occurrence, which is all a chart needs.
        lo = start + chunk.index(min(finite))
        hi = start + chunk.index(max(finite))
        keep.extend((lo, hi) if lo < hi else (hi, lo) if hi < lo else (lo,))
    keep.append(n - 1)
    return [steps[i] for i in keep], [values[i] for i in keep]


def json_safe(values: Sequence[float]) -> list[float | None]:
    """Plotly draws None as a gap; NaN and the infinities cannot travel in JSON."""
    return [None if (v is None or math.isnan(v) or math.isinf(v)) else v for v in values]
