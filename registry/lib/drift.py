"""How far a column's distribution moved between two datasets: the population stability index (PSI).

Pure Python. Inputs are what a dataset profile stores: histograms as bin edges and counts for numeric columns, the
most frequent values for the others. PSI = sum over buckets of (q - p) * ln(q / p), with p and q the two shares of
rows in each bucket; a bucket that is empty on one side gets a small share instead of zero so the sum stays finite.

The usual reading, used for the labels: below 0.1 no real change, 0.1 to 0.25 a moderate shift, above 0.25 a
significant one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

EPSILON = 1e-4
MODERATE = 0.1
SIGNIFICANT = 0.25

NONE, MODERATE_LABEL, SIGNIFICANT_LABEL, UNKNOWN = "none", "moderate", "significant", "unknown"


def psi(expected: Sequence[float], actual: Sequence[float], *, epsilon: float = EPSILON) -> float | None:
    """PSI between two sets of counts over the same buckets; None when either side is empty or they do not align."""
    if len(expected) != len(actual) or not expected:
        return None
    total_e, total_a = math.fsum(expected), math.fsum(actual)
    if total_e <= 0 or total_a <= 0:
        return None
    score = 0.0
    for e, a in zip(expected, actual, strict=True):
        p = max(e / total_e, epsilon)
        q = max(a / total_a, epsilon)
        score += (q - p) * math.log(q / p)
    return score


def drift_label(score: float | None) -> str:
    if score is None or math.isnan(score):
        return UNKNOWN
    if score < MODERATE:
        return NONE
    if score <= SIGNIFICANT:
        return MODERATE_LABEL
    return SIGNIFICANT_LABEL


def rebin(edges: Sequence[float], counts: Sequence[float], new_edges: Sequence[float]) -> list[float]:
    """Spread `counts` over `new_edges`, assuming rows are uniform within each original bin.

    A zero-width bin (all its rows on one value) goes whole to the new bin holding that value. Mass outside the new
    edges is dropped, so new edges should cover the old range.
    """
    if len(edges) != len(counts) + 1:
        raise ValueError("A histogram needs one more edge than counts.")
    out = [0.0] * (len(new_edges) - 1)
    if not out:
        return out
    for i, count in enumerate(counts):
        lo, hi = edges[i], edges[i + 1]
        if not count:
            continue
        if hi <= lo:
            j = _bin_of(lo, new_edges)
            if j is not None:
                out[j] += count
            continue
        width = hi - lo
        for j in range(len(out)):
            overlap = min(hi, new_edges[j + 1]) - max(lo, new_edges[j])
            if overlap > 0:
                out[j] += count * overlap / width
    return out


def _bin_of(value: float, edges: Sequence[float]) -> int | None:
    if value < edges[0] or value > edges[-1]:
        return None
    for j in range(len(edges) - 1):
        if value < edges[j + 1]:
            return j
    return len(edges) - 2


def common_edges(a: Sequence[float], b: Sequence[float], bins: int | None = None) -> list[float]:
    """Equal-width edges covering both histograms' ranges, with as many bins as the finer of the two (or `bins`)."""
    lo, hi = min(a[0], b[0]), max(a[-1], b[-1])
    n = bins or max(len(a), len(b)) - 1
    n = max(n, 1)
    if hi <= lo:
        return [lo - 0.5, hi + 0.5]
    width = (hi - lo) / n
    return [lo + i * width for i in range(n)] + [hi]


def clean_histogram(hist: Any) -> tuple[list[float], list[float]] | None:
    """(edges, counts) of a stored histogram, or None unless it is well formed: finite, ordered, one more edge."""
    if not isinstance(hist, Mapping):
        return None
    edges, counts = hist.get("bins"), hist.get("counts")
    if not isinstance(edges, list) or not isinstance(counts, list) or not counts or len(edges) != len(counts) + 1:
        return None
    try:
        edges = [float(x) for x in edges]
        counts = [float(x) for x in counts]
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(x) for x in edges + counts) or any(x < 0 for x in counts):
        return None
    if any(edges[i] > edges[i + 1] for i in range(len(edges) - 1)):
        return None
    return edges, counts


def histogram_psi(old: Any, new: Any) -> float | None:
    """PSI of two profile histograms ({"bins": edges, "counts": counts}); re-binned onto common edges if they differ."""
    a, b = clean_histogram(old), clean_histogram(new)
    if a is None or b is None:
        return None
    (edges_a, counts_a), (edges_b, counts_b) = a, b
    if edges_a == edges_b:
        return psi(counts_a, counts_b)
    edges = common_edges(edges_a, edges_b)
    return psi(rebin(edges_a, counts_a, edges), rebin(edges_b, counts_b, edges))


def _top_counts(stats: Mapping[str, Any]) -> tuple[dict[str, float], bool]:
    """({value: count}, complete) from a profile's top values; complete when they are all the distinct values."""
    counts: dict[str, float] = {}
    for item in stats.get("top") or []:
        if not isinstance(item, Mapping) or "value" not in item:
            continue
        count = item.get("count")
        if isinstance(count, bool) or not isinstance(count, int | float) or not math.isfinite(count) or count < 0:
            continue
        counts[_key(item["value"])] = counts.get(_key(item["value"]), 0.0) + float(count)
    distinct = stats.get("distinct")
    complete = isinstance(distinct, int) and not isinstance(distinct, bool) and len(counts) >= distinct
    return counts, complete


def _key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _present_rows(stats: Mapping[str, Any], num_rows: int | None, listed: float) -> float:
    nulls = stats.get("nulls")
    if isinstance(num_rows, int) and isinstance(nulls, int) and not isinstance(nulls, bool) and num_rows >= nulls:
        return max(float(num_rows - nulls), listed)
    return listed


def categorical_psi(
    old: Mapping[str, Any], new: Mapping[str, Any], *, old_rows: int | None = None, new_rows: int | None = None
) -> float | None:
    """PSI of two categorical columns from their most frequent values.

    A value is its own bucket when its count is known on both sides (it is in a side's top list, or that list holds
    every distinct value, so absence means zero). Everything else is pooled in one "other" bucket per side, sized
    from the row count less the nulls when those are known.
    """
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return None
    counts_a, complete_a = _top_counts(old)
    counts_b, complete_b = _top_counts(new)
    if not counts_a or not counts_b:
        return None
    values = [
        v
        for v in dict.fromkeys([*counts_a, *counts_b])
        if (v in counts_a or complete_a) and (v in counts_b or complete_b)
    ]
    bucket_a = [counts_a.get(v, 0.0) for v in values]
    bucket_b = [counts_b.get(v, 0.0) for v in values]
    other_a = _present_rows(old, old_rows, math.fsum(counts_a.values())) - math.fsum(bucket_a)
    other_b = _present_rows(new, new_rows, math.fsum(counts_b.values())) - math.fsum(bucket_b)
    if other_a > 0 or other_b > 0:
        bucket_a.append(max(other_a, 0.0))
        bucket_b.append(max(other_b, 0.0))
    return psi(bucket_a, bucket_b)
