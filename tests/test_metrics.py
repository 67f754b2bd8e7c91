"""Metrics and params: what is logged comes back unchanged, summaries stay right, bad input writes nothing."""

from __future__ import annotations

import math
import random

import pytest

from registry import rawsql
from registry.lib import names, numbers
from registry.tracking.models import PARAM_VALUE_MAX, MetricPoint, MetricSeries, Param, Run
from registry.tracking.services import ParamConflict, Point, TrackingError
from tests.builders import log_batch, metrics_log, params_log
from tests.concurrency import at_once
from tests.factories import RunFactory


@pytest.fixture
def run(db):
    return RunFactory()


def history(run, key: str) -> list[float]:
    """The key's points read back with a fresh query, in (step, timestamp) order."""
    return list(
        MetricPoint.objects.filter(series__run=run, series__key=key)
        .order_by("step", "timestamp", "id")
        .values_list("value", flat=True)
    )


def summary(run, key: str) -> MetricSeries:
    return MetricSeries.objects.get(run_id=run.pk, key=key)


# --- NaN and the infinities -----------------------------------------------------------------------------------------


def test_nan_and_infinities_round_trip_through_points(run):
    written = metrics_log(
        run=run,
        points=[
            Point("loss", math.nan, step=0, timestamp=1),
            Point("loss", math.inf, step=1, timestamp=2),
            Point("loss", -math.inf, step=2, timestamp=3),
            Point("loss", 0.25, step=3, timestamp=4),
        ],
    )
    assert written == 4
    values = history(run, "loss")
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf, 0.25]
    # Model instances go through the same conversion as values_list.
    points = list(MetricPoint.objects.filter(series__run=run).order_by("step"))
    assert math.isnan(points[0].value)
    assert points[1].value == math.inf and points[2].value == -math.inf


@pytest.mark.parametrize("special", [math.nan, math.inf, -math.inf])
def test_special_value_as_last_value_round_trips(run, special):
    metrics_log(run=run, points=[Point("score", special, step=0, timestamp=1)])
    series = summary(run, "score")
    assert series.count == 1
    if math.isnan(special):
        assert math.isnan(series.last_value)
        # NaN is ignored by min and max: a series of only NaN has no extremes.
        assert math.isnan(series.min_value) and math.isnan(series.max_value)
    else:
        assert series.last_value == special
        assert series.min_value == special and series.max_value == special


def test_infinities_are_the_extremes_and_nan_is_skipped(run):
    metrics_log(
        run=run,
        points=[
            Point("gain", 1.0, step=0, timestamp=1),
            Point("gain", math.inf, step=1, timestamp=2),
            Point("gain", math.nan, step=2, timestamp=3),
            Point("gain", -math.inf, step=3, timestamp=4),
            Point("gain", math.nan, step=4, timestamp=5),
        ],
    )
    series = summary(run, "gain")
    assert series.min_value == -math.inf
    assert series.max_value == math.inf
    assert math.isnan(series.last_value)
    assert series.last_step == 4
    assert series.count == 5


def test_values_filter_reads_nan_back_as_nan(run):
    metrics_log(run=run, points=[Point("a", math.nan), Point("b", 2.0)])
    rows = dict(MetricSeries.objects.filter(run=run).values_list("key", "last_value"))
    assert math.isnan(rows["a"])
    assert rows["b"] == 2.0


# --- Summaries ------------------------------------------------------------------------------------------------------


def test_last_is_the_point_with_highest_step_then_timestamp(run):
    metrics_log(
        run=run,
        points=[
            Point("loss", 0.9, step=5, timestamp=100),
            Point("loss", 0.1, step=3, timestamp=900),  # later in time, earlier step: not last
            Point("loss", 0.7, step=5, timestamp=50),  # same step, earlier timestamp: not last
        ],
    )
    series = summary(run, "loss")
    assert (series.last_value, series.last_step, series.last_timestamp) == (0.9, 5, 100)

    # A later call with an earlier step does not move "last"; a later step does.
    metrics_log(run=run, points=[Point("loss", 0.05, step=4, timestamp=2000)])
    series = summary(run, "loss")
    assert (series.last_value, series.last_step) == (0.9, 5)
    metrics_log(run=run, points=[Point("loss", 0.3, step=6, timestamp=10)])
    series = summary(run, "loss")
    assert (series.last_value, series.last_step, series.last_timestamp) == (0.3, 6, 10)


def test_min_max_and_count_across_calls(run):
    metrics_log(run=run, points=[Point("acc", v, step=i, timestamp=i) for i, v in enumerate([0.5, math.nan, 0.7])])
    metrics_log(run=run, points=[Point("acc", v, step=10 + i, timestamp=i) for i, v in enumerate([0.2, 0.9])])
    series = summary(run, "acc")
    assert (series.min_value, series.max_value, series.count) == (0.2, 0.9, 5)
    assert MetricPoint.objects.filter(series=series).count() == 5


def test_summary_after_only_nan_then_numbers(run):
    metrics_log(run=run, points=[Point("f1", math.nan, step=0, timestamp=1)])
    metrics_log(run=run, points=[Point("f1", 0.4, step=1, timestamp=2), Point("f1", 0.6, step=2, timestamp=3)])
    series = summary(run, "f1")
    assert (series.min_value, series.max_value, series.last_value, series.count) == (0.4, 0.6, 0.6, 3)


def test_points_may_share_a_step(run):
    metrics_log(run=run, points=[Point("loss", 1.0, step=0, timestamp=1), Point("loss", 2.0, step=0, timestamp=2)])
    assert history(run, "loss") == [1.0, 2.0]
    assert summary(run, "loss").last_value == 2.0


def test_many_keys_in_one_call_each_get_their_summary(run):
    points = [Point(f"m{k}", float(i), step=i, timestamp=i) for k in range(3) for i in range(4)]
    assert metrics_log(run=run, points=points) == 12
    rows = MetricSeries.objects.filter(run=run).order_by("key").values_list("key", "count", "min_value", "max_value")
    assert list(rows) == [(f"m{k}", 4, 0.0, 3.0) for k in range(3)]


def test_summaries_match_a_reference_over_random_batches(run):
    """The database's merge (MetricSeries.objects.merge_batch) against the summary computed in Python from every
    point logged so far: batches out of step order, repeated (step, timestamp) pairs, NaN and infinities."""
    rng = random.Random(20261204)
    values = [0.5, -1.25, 3.0, math.nan, math.inf, -math.inf, 0.0, 7.5]
    logged: dict[str, list[tuple[int, int, float]]] = {}
    for _ in range(40):
        batch = [
            Point(rng.choice("abc"), rng.choice(values), rng.randrange(6), rng.randrange(3))
            for _ in range(rng.randrange(1, 7))
        ]
        metrics_log(run=run, points=batch)
        for point in batch:
            logged.setdefault(point.key, []).append((point.step, point.timestamp, point.value))
        for key, points in logged.items():
            finite = [v for _, _, v in points if not math.isnan(v)]
            last = points[0]
            for point in points:  # the highest (step, timestamp); of equals, the one logged last
                if point[:2] >= last[:2]:
                    last = point
            series = summary(run, key)
            assert series.count == len(points)
            assert (series.last_step, series.last_timestamp) == last[:2]
            assert numbers.float_to_json(series.last_value) == numbers.float_to_json(last[2])
            if finite:
                assert (series.min_value, series.max_value) == (min(finite), max(finite))
            else:
                assert math.isnan(series.min_value) and math.isnan(series.max_value)


def test_a_batch_of_more_keys_and_params_than_one_statement_takes(run):
    keys = rawsql.VALUES_CHUNK * 2 + 1
    metrics_log(run=run, points=[Point(f"m{k}", float(k), 0, 1) for k in range(keys)])
    metrics_log(run=run, points=[Point(f"m{k}", -float(k), 1, 1) for k in range(keys)])
    rows = MetricSeries.objects.filter(run=run).values_list("key", "count", "min_value", "max_value", "last_value")
    assert sorted(rows) == sorted((f"m{k}", 2, -float(k), float(k), -float(k)) for k in range(keys))
    params = {f"p{k}": str(k) for k in range(keys)}
    params_log(run=run, params=params)
    params_log(run=run, params={**params, "new": "1"})  # all but one logged before: read back in chunks
    with pytest.raises(ParamConflict) as excinfo:
        params_log(run=run, params={**params, f"p{keys - 1}": "changed"})
    assert [d["key"] for d in excinfo.value.details] == [f"p{keys - 1}"]
    assert Param.objects.filter(run=run).count() == keys + 1


def test_deleting_a_series_or_a_run_leaves_no_point_behind(run):
    """MetricPoint.series has no constraint in the database (see the model): the ORM's cascade is what removes
    points, whichever of their owners goes (an experiment cannot go while it has runs)."""
    other = RunFactory()
    for owner in (run, other):
        metrics_log(run=owner, points=[Point(key, 0.5, step, 1) for key in ("a", "b") for step in range(3)])
    kept = set(MetricPoint.objects.filter(series__run=other).values_list("pk", flat=True))

    MetricSeries.objects.filter(run=run, key="a").delete()
    assert MetricPoint.objects.filter(series__run=run).count() == 3
    run.delete()

    assert set(MetricPoint.objects.values_list("pk", flat=True)) == kept
    assert not MetricPoint.objects.exclude(series_id__in=MetricSeries.objects.values("pk")).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_of_one_run_in_opposite_key_orders_all_land():
    """Eight writers log the same params and metrics of one run at once, half of them listing the keys backwards
    (rows are written, and locked, in key order whatever the order given): all of them land, and every point is
    counted once in its key's summary."""
    run = RunFactory()
    keys = [f"k{i:02}" for i in range(12)]
    turn = iter(range(8))

    def write() -> int:
        index = next(turn)
        order = keys if index % 2 else keys[::-1]
        log_batch(
            run=Run.objects.get(pk=run.pk),
            params={key: "1" for key in order},
            points=[Point(key, float(index), index, 1) for key in order],
            tags={},
        )
        return index

    assert sorted(at_once(write, 8)) == list(range(8))
    rows = MetricSeries.objects.filter(run=run).values_list("key", "count", "min_value", "max_value", "last_step")
    assert sorted(rows) == [(key, 8, 0.0, 7.0, 7) for key in keys]
    assert Param.objects.filter(run=run).count() == len(keys)


def test_missing_timestamp_defaults_to_now_in_milliseconds(run):
    from registry.tracking.services import now_ms

    before = now_ms()
    metrics_log(run=run, points=[Point("loss", 1.0)])
    assert before <= MetricPoint.objects.get(series__run=run).timestamp <= now_ms()


def test_empty_batch_writes_nothing(run):
    assert metrics_log(run=run, points=[]) == 0
    assert not MetricSeries.objects.exists()


# --- Refused points -------------------------------------------------------------------------------------------------


def test_invalid_points_are_reported_per_item_and_nothing_is_written(run):
    points = [
        Point("ok", 1.0),
        Point("bad\nkey", 1.0),
        Point("ok", "not a number"),
        Point("ok", 1.0, step="seven"),
        Point("ok", 1.0, step=2**63),
        Point("x" * (names.KEY_MAX + 1), 1.0),
        Point("ok", None),
        Point("ok", 1.0, step=0, timestamp="yesterday"),
        Point("ok", 1.0, step=0, timestamp=2**64),
        Point("ok", 1.0, step=math.inf),
        Point("", 1.0),
    ]
    with pytest.raises(TrackingError) as excinfo:
        metrics_log(run=run, points=points)
    details = excinfo.value.details
    assert [d["index"] for d in details] == list(range(1, len(points)))
    assert all(d["message"] for d in details)
    assert "control characters" in details[0]["message"]
    assert "64 bits" in details[3]["message"]
    assert f"at most {names.KEY_MAX}" in details[4]["message"]
    assert "64 bits" in details[7]["message"]
    assert not MetricSeries.objects.exists()
    assert not MetricPoint.objects.exists()


def test_key_of_exactly_the_maximum_length_is_accepted(run):
    key = "k" * names.KEY_MAX
    metrics_log(run=run, points=[Point(key, 1.0)])
    assert summary(run, key).count == 1


# --- Params ---------------------------------------------------------------------------------------------------------


def test_params_are_stored_as_text(run):
    params_log(run=run, params={"lr": 0.01, "layers": 3, "optimizer": "adam", "note": None})
    stored = dict(Param.objects.filter(run=run).values_list("key", "value"))
    assert stored == {"lr": "0.01", "layers": "3", "optimizer": "adam", "note": ""}


def test_logging_the_same_param_value_again_is_fine(run):
    params_log(run=run, params={"lr": "0.01"})
    again = params_log(run=run, params={"lr": 0.01, "epochs": 5})
    assert list(again.items()) == [("lr", "0.01"), ("epochs", "5")]
    assert Param.objects.filter(run=run).count() == 2


def test_changing_a_param_is_a_conflict_and_keeps_the_original(run):
    params_log(run=run, params={"lr": "0.01", "epochs": "10"})
    with pytest.raises(ParamConflict) as excinfo:
        params_log(run=run, params={"lr": "0.02", "batch": "32", "epochs": "10"})
    assert [d["key"] for d in excinfo.value.details] == ["lr"]
    assert "'0.01'" in excinfo.value.details[0]["message"]
    # The original stays, and nothing else from the refused call was written.
    assert dict(Param.objects.filter(run=run).values_list("key", "value")) == {"lr": "0.01", "epochs": "10"}


def test_same_key_on_another_run_is_independent(run):
    params_log(run=run, params={"lr": "0.01"})
    other = RunFactory()
    params_log(run=other, params={"lr": "0.5"})
    assert Param.objects.get(run=other, key="lr").value == "0.5"
    assert Param.objects.get(run=run, key="lr").value == "0.01"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("lr\x00", "control characters"),
        ("tab\tkey", "control characters"),
        ("nel\x85", "control characters"),
        ("k" * (names.KEY_MAX + 1), f"at most {names.KEY_MAX}"),
        ("", "non-empty"),
    ],
)
def test_invalid_param_keys_are_refused(run, key, message):
    with pytest.raises(TrackingError) as excinfo:
        params_log(run=run, params={"good": "1", key: "2"})
    [detail] = excinfo.value.details
    assert (detail["index"], detail["key"]) == (1, key)
    assert message in detail["message"]
    assert not Param.objects.filter(run=run).exists()


def test_param_value_longer_than_the_limit_is_refused(run):
    with pytest.raises(TrackingError) as excinfo:
        params_log(run=run, params={"config": "x" * (PARAM_VALUE_MAX + 1)})
    assert excinfo.value.details[0]["key"] == "config"
    assert str(PARAM_VALUE_MAX) in excinfo.value.details[0]["message"]
    params_log(run=run, params={"config": "x" * PARAM_VALUE_MAX})
    assert len(Param.objects.get(run=run, key="config").value) == PARAM_VALUE_MAX


# --- registry.lib.numbers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), (1.5, 1.5), (0.0, 0.0), (math.inf, "Infinity"), (-math.inf, "-Infinity"), (-2.0, -2.0)],
)
def test_float_to_json(value, expected):
    assert numbers.float_to_json(value) == expected


def test_float_to_json_nan():
    assert numbers.float_to_json(math.nan) == "NaN"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Infinity", math.inf),
        ("+Infinity", math.inf),
        ("inf", math.inf),
        (" INF ", math.inf),
        ("-Infinity", -math.inf),
        ("-inf", -math.inf),
        ("1e3", 1000.0),
        (3, 3.0),
        (2.5, 2.5),
    ],
)
def test_float_from_json(text, expected):
    result = numbers.float_from_json(text)
    assert result == expected and isinstance(result, float)


@pytest.mark.parametrize("text", ["NaN", "nan", " nan"])
def test_float_from_json_nan(text):
    assert math.isnan(numbers.float_from_json(text))


@pytest.mark.parametrize("value", [True, False, None, "abc", "", [1.0], {"v": 1}])
def test_float_from_json_refuses_non_numbers(value):
    with pytest.raises(ValueError, match="number"):
        numbers.float_from_json(value)


@pytest.mark.parametrize("value", [0.1, -3.0, math.inf, -math.inf, math.nan])
def test_float_json_round_trip(value):
    back = numbers.float_from_json(numbers.float_to_json(value))
    assert (math.isnan(back) and math.isnan(value)) or back == value


# --- registry.lib.names ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["churn", "Churn model v2", "fraud-detector_01", "m" * names.MODEL_NAME_MAX, "ü"])
def test_good_model_names(name):
    assert names.check_model_name(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "non-empty"),
        ("   ", "non-empty"),
        (None, "non-empty"),
        (" churn", "white space"),
        ("churn ", "white space"),
        ("m" * (names.MODEL_NAME_MAX + 1), f"at most {names.MODEL_NAME_MAX}"),
        ("team/churn", "'/'"),
        ("churn@champion", "'@'"),
        ("churn\x00", "control characters"),
        ("churn\x9f", "control characters"),
    ],
)
def test_bad_model_names(name, message):
    with pytest.raises(names.NameError_, match=message):
        names.check_model_name(name)


@pytest.mark.parametrize("key", ["loss", "val/loss", "a b", "k" * names.KEY_MAX, "准确率"])
def test_good_keys(key):
    assert names.check_key(key) == key


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "non-empty"),
        (3, "non-empty"),
        ("k" * (names.KEY_MAX + 1), "at most"),
        ("a\rb", "control"),
        ("\x7f", "control"),
    ],
)
def test_bad_keys(key, message):
    with pytest.raises(names.NameError_, match=message):
        names.check_key(key)


def test_key_messages_name_what_is_checked():
    with pytest.raises(names.NameError_, match="A metric key must"):
        names.check_key("", what="metric key")


@pytest.mark.parametrize("alias", ["champion", "_shadow", "canary-2", "A" * names.ALIAS_MAX, "version_next"])
def test_good_aliases(alias):
    assert names.check_alias(alias) == alias


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        ("", "non-empty"),
        ("2nd", "start with a letter"),
        ("has space", "start with a letter"),
        ("dot.ted", "start with a letter"),
        ("A" * (names.ALIAS_MAX + 1), "at most"),
        ("latest", "reserved"),
        ("Production", "reserved"),
        ("STAGING", "reserved"),
        ("v3", "version number"),
        ("V12", "version number"),
    ],
)
def test_bad_aliases(alias, message):
    with pytest.raises(names.NameError_, match=message):
        names.check_alias(alias)


# --- History pages --------------------------------------------------------------------------------------------------


def _all_pages(series_id: int, limit: int) -> list[list[tuple]]:
    pages, start = [], None
    while True:
        rows, start = MetricPoint.objects.page_from(series_id, start, limit)
        pages.append(rows)
        if start is None:
            return pages


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 100])
def test_history_pages_cover_every_point_once_even_across_ties(run, limit):
    """Points sharing a step and timestamp (MLflow allows it) straddle page boundaries without loss or repeats."""
    points = [Point("loss", float(v), 0, 1000) for v in range(5)]  # five at one (step, timestamp)
    points += [Point("loss", 0.5, 1, 1000 + i) for i in range(3)]  # distinct timestamps
    points += [Point("loss", v, 2, 2000) for v in (math.nan, 1.0, 1.0)]  # ties, one NaN, two identical
    metrics_log(run=run, points=points)
    series = MetricSeries.objects.get(run=run, key="loss")
    pages = _all_pages(series.pk, limit)
    rows = [row for page in pages for row in page]
    assert all(len(page) <= limit for page in pages)
    assert len(rows) == len(points)
    assert sorted((s, t, "nan" if v is None else repr(v)) for s, t, v in rows) == sorted(
        (p.step, p.timestamp, repr(p.value)) for p in points
    )
    assert [r[:2] for r in rows] == sorted(r[:2] for r in rows)  # history order
