"""Population stability index between two datasets' profiles: registry.lib.drift."""

from __future__ import annotations

import math

import pytest

from registry.lib import drift


def test_psi_of_identical_distributions_is_zero():
    assert drift.psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0)


def test_psi_matches_the_textbook_formula():
    expected, actual = [0.25, 0.25, 0.5], [0.5, 0.25, 0.25]
    by_hand = sum((a - e) * math.log(a / e) for e, a in zip(expected, actual, strict=True))
    assert drift.psi(expected, actual) == pytest.approx(by_hand)
    assert drift.psi(actual, expected) == pytest.approx(by_hand)  # symmetric


def test_psi_stays_finite_when_a_bucket_is_empty_on_one_side():
    score = drift.psi([100, 0], [50, 50])
    assert math.isfinite(score) and score > 0.25


def test_psi_is_none_for_empty_or_misaligned_counts():
    assert drift.psi([], []) is None
    assert drift.psi([0, 0], [1, 1]) is None
    assert drift.psi([1, 2], [1, 2, 3]) is None


@pytest.mark.parametrize(
    ("score", "label"),
    [(0.0, "none"), (0.099, "none"), (0.1, "moderate"), (0.25, "moderate"), (0.2501, "significant"), (None, "unknown")],
)
def test_drift_labels(score, label):
    assert drift.drift_label(score) == label


def test_rebin_spreads_counts_uniformly_within_bins():
    assert drift.rebin([0, 2], [10], [0, 1, 2]) == [5.0, 5.0]
    assert drift.rebin([0, 1, 2], [4, 6], [0, 2]) == [10.0]
    # A zero-width bin (every row on one value) lands whole in the bin that holds the value.
    assert drift.rebin([3, 3], [7], [0, 2, 4]) == [0.0, 7.0]


def test_rebin_keeps_the_total_when_new_edges_cover_the_range():
    counts = drift.rebin([0, 1, 3, 10], [5, 10, 20], drift.common_edges([0, 1, 3, 10], [-2, 12]))
    assert sum(counts) == pytest.approx(35)


def test_common_edges_cover_both_ranges_with_the_finer_bin_count():
    edges = drift.common_edges([0, 5, 10], [5, 10, 15, 20])
    assert edges[0] == 0 and edges[-1] == 20 and len(edges) == 4


def test_histogram_psi_on_identical_edges():
    a = {"bins": [0, 1, 2, 3], "counts": [10, 20, 10]}
    assert drift.histogram_psi(a, a) == pytest.approx(0.0)
    shifted = {"bins": [0, 1, 2, 3], "counts": [30, 5, 5]}
    assert drift.histogram_psi(a, shifted) > 0.25


def test_histogram_psi_rebins_when_edges_differ():
    narrow = {"bins": [0, 5, 10], "counts": [50, 50]}
    same_shape = {"bins": [0, 2.5, 5, 7.5, 10], "counts": [25, 25, 25, 25]}
    moved = {"bins": [10, 15, 20], "counts": [50, 50]}
    assert drift.histogram_psi(narrow, same_shape) == pytest.approx(0.0, abs=1e-9)
    assert drift.drift_label(drift.histogram_psi(narrow, moved)) == "significant"


@pytest.mark.parametrize(
    "bad",
    [None, {}, {"bins": [0, 1], "counts": [1, 2]}, {"bins": [0, "x"], "counts": [1]}, {"bins": [1, 0], "counts": [1]}],
)
def test_histogram_psi_is_none_for_malformed_histograms(bad):
    assert drift.histogram_psi(bad, {"bins": [0, 1], "counts": [1]}) is None


def top(*pairs, distinct=None, nulls=0):
    stats = {"top": [{"value": v, "count": c} for v, c in pairs], "nulls": nulls}
    if distinct is not None:
        stats["distinct"] = distinct
    return stats


def test_categorical_psi_of_the_same_distribution_is_zero():
    a = top(("basic", 50), ("pro", 30), ("team", 20), distinct=3)
    b = top(("basic", 500), ("pro", 300), ("team", 200), distinct=3)
    assert drift.categorical_psi(a, b) == pytest.approx(0.0)


def test_categorical_psi_counts_a_new_category_when_lists_are_complete():
    a = top(("basic", 50), ("pro", 50), distinct=2)
    b = top(("basic", 40), ("pro", 20), ("enterprise", 40), distinct=3)
    assert drift.drift_label(drift.categorical_psi(a, b)) == "significant"


def test_categorical_psi_pools_values_unknown_on_one_side_into_other():
    # "c" is outside a's truncated top list, so its count there is unknown: it joins "other" on both sides.
    a = top(("a", 40), ("b", 30), distinct=5)
    b = top(("a", 40), ("c", 30), distinct=5)
    score = drift.categorical_psi(a, b, old_rows=100, new_rows=100)
    assert score is not None and math.isfinite(score)


def test_categorical_psi_treats_booleans_and_strings_alike():
    a = top((True, 20), (False, 80), distinct=2)
    b = top(("true", 20), ("false", 80), distinct=2)
    assert drift.categorical_psi(a, b) == pytest.approx(0.0)


def test_categorical_psi_is_none_without_top_values():
    assert drift.categorical_psi({}, top(("a", 1))) is None
    assert drift.categorical_psi(top(("a", "x")), top(("a", 1))) is None
