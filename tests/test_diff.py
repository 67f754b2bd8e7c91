"""What differs between builds and between datasets (registry.lib.diff), and reading the builds to compare."""

from __future__ import annotations

import math

import pytest

from registry.lib import diff
from registry.lib.selection import MAX_BUILDS, parse_runs, parse_selection, parse_versions

# --- Value tables and the "only differences" switch -------------------------------------------------------------------


def test_value_rows_mark_changed_cells_against_the_baseline_and_missing_values_as_none():
    rows = diff.value_rows([{"lr": "0.1", "depth": "4"}, {"lr": "0.1", "depth": "6"}, {"lr": "0.2"}])
    by_key = {r.key: r for r in rows}
    assert [r.key for r in rows] == ["depth", "lr"]
    assert by_key["depth"].values == ("4", "6", None)
    assert by_key["depth"].changed == (False, True, True)
    assert not by_key["depth"].same
    assert by_key["lr"].changed == (False, False, True)
    assert by_key["lr"].cells == [("0.1", False), ("0.1", False), ("0.2", True)]


def test_value_rows_same_when_every_build_agrees_and_missing_differs_from_empty():
    rows = diff.value_rows([{"a": "", "b": "x"}, {"b": "x"}])
    by_key = {r.key: r for r in rows}
    assert by_key["b"].same
    assert not by_key["a"].same  # "" in one build, absent in the other
    assert by_key["a"].values == ("", None)


def test_value_rows_keep_the_given_key_order_and_render_booleans():
    rows = diff.value_rows([{"Python": "3.11", "Dirty": True}, {"Python": "3.12", "Dirty": False}], ["Python", "Dirty"])
    assert [r.key for r in rows] == ["Python", "Dirty"]
    assert rows[1].values == ("true", "false")


@pytest.mark.parametrize(
    ("requested", "rows", "expected"),
    [
        (None, 20, False),  # 20 rows: all shown
        (None, 21, True),  # past 20 rows: only differences
        ("", 100, True),
        ("0", 100, False),  # ?diff=0 shows everything
        ("1", 3, True),  # ?diff=1 hides equal rows even in a short table
        ("true", 3, True),
        ("banana", 3, False),  # nonsense falls back to the default
        ("banana", 30, True),
    ],
)
def test_only_differences_is_on_by_default_past_twenty_rows(requested, rows, expected):
    assert diff.only_differences(requested, rows) is expected


# --- Metrics: direction and the best value ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "loss",
        "val_loss",
        "trainLoss",
        "error",
        "test_err",
        "rmse",
        "val_mse",
        "MAE",
        "mape",
        "logloss",
        "perplexity",
        "p95_latency_ms",
        "train_time",
        "epoch_duration",
        "test_wer",
        "cer",
        "training_seconds",
        "predict_ms",
    ],
)
def test_lower_is_better_for_losses_errors_and_durations(key):
    assert diff.guess_lower_is_better(key)


@pytest.mark.parametrize("key", ["accuracy", "f1", "auc", "precision", "recall", "answer_rate", "power", "r2"])
def test_higher_is_better_otherwise_and_short_words_must_stand_alone(key):
    # "answer" and "power" contain "wer" but are not word error rates.
    assert not diff.guess_lower_is_better(key)


def test_metric_direction_user_choice_wins_over_the_guess():
    assert diff.metric_direction("val_loss") == diff.Direction(True, False)
    assert diff.metric_direction("val_loss", higher={"val_loss"}) == diff.Direction(False, True)
    assert diff.metric_direction("accuracy", lower={"accuracy"}) == diff.Direction(True, True)


def test_best_value_follows_the_direction():
    values = [0.3, 0.1, 0.2]
    assert diff.best_indices(values, lower_is_better=True) == {1}
    assert diff.best_indices(values, lower_is_better=False) == {0}


def test_best_value_ties_are_all_best():
    assert diff.best_indices([0.9, 0.95, 0.95, 0.7], lower_is_better=False) == {1, 2}


def test_best_value_is_never_nan_nor_missing():
    assert diff.best_indices([math.nan, 0.5, None], lower_is_better=True) == {1}
    assert diff.best_indices([math.nan, 0.5, None], lower_is_better=False) == {1}
    assert diff.best_indices([math.nan, None], lower_is_better=True) == frozenset()


def test_parse_metric_names_splits_on_commas_but_keeps_known_names_whole():
    assert diff.parse_metric_names(["a,b", "c", " d , "]) == {"a", "b", "c", "d"}
    assert diff.parse_metric_names(["loss,train"], known={"loss,train"}) == {"loss,train"}


def test_toggle_direction_moves_the_metric_between_lists():
    lower, higher = diff.toggle_direction("acc", {"loss"}, {"acc"}, lower_is_better=True)
    assert (lower, higher) == (["acc", "loss"], [])
    lower, higher = diff.toggle_direction("loss", ["loss"], [], lower_is_better=False)
    assert (lower, higher) == ([], ["loss"])


# --- Packages ---------------------------------------------------------------------------------------------------------


def test_package_diff_of_two_builds():
    result = diff.package_diff(
        [
            {"numpy": "2.1.0", "scikit-learn": "1.5.2", "joblib": "1.4.2", "scipy": "1.14"},
            {"numpy": "2.2.0", "scikit-learn": "1.5.2", "lightgbm": "4.5.0", "scipy": "1.14"},
        ]
    )
    assert {(r.name, r.status[1]) for r in result.rows} == {
        ("joblib", "removed"),
        ("lightgbm", "added"),
        ("numpy", "changed"),
    }
    assert result.counts[0] == diff.PackageCounts(0, 0, 0)
    assert result.counts[1] == diff.PackageCounts(added=1, removed=1, changed=1)
    assert result.unchanged == 2
    assert [r.name for r in result.of_status(1, "changed")] == ["numpy"]
    assert result.rows[2].cells == [("2.1.0", "same"), ("2.2.0", "changed")]


def test_package_diff_of_several_builds_is_relative_to_the_first():
    result = diff.package_diff([{"a": "1"}, {"a": "1"}, {"a": "2", "b": "1"}, {}])
    row_a = next(r for r in result.rows if r.name == "a")
    assert row_a.versions == ("1", "1", "2", None)
    assert row_a.status == ("same", "same", "changed", "removed")
    assert [c.total for c in result.counts] == [0, 0, 2, 1]
    assert result.unchanged == 0


def test_package_diff_tolerates_missing_and_malformed_package_lists():
    result = diff.package_diff([None, "not a dict", {"x": 1}])
    assert result.rows[0].versions == (None, None, "1")
    assert result.counts[2].added == 1


# --- Datasets: schemas, row counts and the evaluation warning -------------------------------------------------------

SCHEMA = [{"name": "age", "type": "float64"}, {"name": "plan", "type": "string"}, {"name": "tenure", "type": "int64"}]


def test_schema_diff_lists_added_removed_and_retyped_columns():
    new = [
        {"name": "age", "type": "float64"},
        {"name": "tenure", "type": "float64"},
        {"name": "calls", "type": "int64"},
    ]
    result = diff.schema_diff(SCHEMA, new)
    assert result.added == [("calls", "int64")]
    assert result.removed == [("plan", "string")]
    assert result.type_changed == [("tenure", "int64", "float64")]
    assert result.unchanged == [("age", "float64")]
    assert result.changed
    assert result.summary == "1 added, 1 removed, 1 type changed"
    assert not diff.schema_diff(SCHEMA, SCHEMA).changed


def test_schema_columns_skip_junk():
    assert diff.schema_columns([{"name": "a"}, "junk", {"type": "x"}, None]) == {"a": ""}
    assert diff.schema_columns(None) == {}
    assert diff.schema_columns({"a": "int64"}) == {"a": "int64"}


def test_count_change_in_rows_and_percent():
    change = diff.CountChange(2000, 2400)
    assert (change.delta, change.percent) == (400, 20.0)
    assert change.text == "+400 rows (+20.0%)"
    assert diff.CountChange(None, 5).text == ""
    assert diff.CountChange(0, 5).percent is None
    assert diff.CountChange(10, 10).text == "same number of rows"


@pytest.mark.parametrize(("raw", "expected"), [(5, 5), ("12", 12), (3.0, 3), ("x", None), (True, None), (None, None)])
def test_as_count_reads_row_counts_from_json(raw, expected):
    assert diff.as_count(raw) == expected


def ref(id_, name, digest, rows=100, schema=None):
    return diff.DatasetRef(id=id_, name=name, digest=digest, num_rows=rows, schema=schema or SCHEMA)


def test_dataset_diff_per_context_with_schema_and_rows_against_the_baseline():
    train_a = ref(1, "train", "a" * 64, 1000)
    train_b = ref(2, "train", "b" * 64, 1200, SCHEMA[:2])
    test = ref(3, "test", "c" * 64)
    diffs = diff.dataset_diff(
        [
            [("training", train_a), ("test", test)],
            [("Training", train_b), ("test", test)],
        ]
    )
    assert [d.context for d in diffs] == ["training", "test"]
    training, testing = diffs
    assert not training.same and not training.evaluation
    assert training.cells[1].schema.removed == [("tenure", "int64")]
    assert training.cells[1].rows.delta == 200
    assert training.cells[1].compare_ids == (1, 2)
    assert testing.same and testing.evaluation
    assert testing.cells[1].compare_ids is None


def test_evaluation_warning_when_builds_were_evaluated_on_different_data():
    eval_a = ref(1, "holdout", "a1b2c3d4e5f6" + "0" * 52)
    eval_b = ref(2, "holdout", "ffeeddccbbaa" + "0" * 52)
    diffs = diff.dataset_diff([[("evaluation", eval_a)], [("evaluation", eval_b)], [("evaluation", eval_a)]])
    warnings = diff.evaluation_warnings(["v1", "v2", "v3"], diffs)
    assert warnings == [
        "Not a like-for-like comparison (evaluation data): v1 and v3 were evaluated on holdout (digest a1b2c3d4e5f6…), "
        "v2 on holdout (digest ffeeddccbbaa…)."
    ]


@pytest.mark.parametrize("context", ["evaluation", "eval", "test", "validation", "Test "])
def test_every_evaluation_context_is_checked(context):
    diffs = diff.dataset_diff([[(context, ref(1, "d", "a" * 64))], [(context, ref(2, "d", "b" * 64))]])
    assert len(diff.evaluation_warnings(["A", "B"], diffs)) == 1


def test_no_warning_for_same_evaluation_data_or_different_training_data():
    test = ref(3, "test", "c" * 64)
    diffs = diff.dataset_diff(
        [[("training", ref(1, "t", "a" * 64)), ("test", test)], [("training", ref(2, "t", "b" * 64)), ("test", test)]]
    )
    assert diff.evaluation_warnings(["A", "B"], diffs) == []


def test_warning_names_a_build_without_evaluation_data():
    diffs = diff.dataset_diff([[("validation", ref(1, "val", "a" * 64))], []])
    (warning,) = diff.evaluation_warnings(["A", "B"], diffs)
    assert "B on no logged validation dataset" in warning


# --- Dataset profiles side by side ------------------------------------------------------------------------------------


def test_profile_columns_follow_the_schema_and_tolerate_missing_statistics():
    profile = {
        "num_rows": 10,
        "columns": {
            "age": {"nulls": 1, "mean": 40.0, "histogram": {"bins": [0, 50, 100], "counts": [6, 3]}},
            "extra": {"nulls": 0, "top": [{"value": "x", "count": 10}], "distinct": 1},
            "bad": "not a dict",
        },
    }
    columns = {c.name: c for c in diff.profile_columns(SCHEMA, profile)}
    assert list(columns) == ["age", "plan", "tenure", "extra", "bad"]
    assert columns["age"].numeric and columns["age"].histogram == ([0.0, 50.0, 100.0], [6.0, 3.0])
    assert not columns["plan"].numeric and columns["plan"].stats == {} and columns["plan"].top == []
    assert columns["tenure"].numeric and columns["tenure"].histogram is None
    assert columns["extra"].top == [("x", 10.0)]
    assert diff.profile_columns(SCHEMA, None)[0].stats == {}


def test_histogram_must_have_one_more_edge_than_counts():
    column = diff.ColumnProfile("x", "float64", True, {"histogram": {"bins": [0, 1], "counts": [1, 2]}})
    assert column.histogram is None


def test_stats_side_by_side_marks_changes_and_deltas():
    old = diff.ColumnProfile("age", "float64", True, {"nulls": 0, "mean": 40.0, "max": 90})
    new = diff.ColumnProfile("age", "float64", True, {"nulls": 0, "mean": 43.0})
    rows = {r.stat: r for r in diff.stats_side_by_side(old, new)}
    assert not rows["nulls"].changed
    assert rows["mean"].changed and rows["mean"].delta == 3.0
    assert rows["max"].changed and rows["max"].delta is None
    assert rows["p50"].label == "median"


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "—"), (1234, "1,234"), (0.123456789, "0.123457"), (2.0, "2"), (math.nan, "NaN"), (-math.inf, "-∞")],
)
def test_format_number(value, text):
    assert diff.format_number(value) == text


# --- Reading which builds to compare ----------------------------------------------------------------------------------


def test_versions_split_on_the_last_colon_and_commas_inside_names_survive():
    found, invalid = parse_versions(["churn:3,team:model:12", "a,b:2"])
    assert found == [("churn", 3), ("team:model", 12), ("a,b", 2)]
    assert invalid == []


def test_versions_duplicates_collapse_and_unreadable_items_are_reported():
    found, invalid = parse_versions(["m:1,m:1, m:2 ", "m:x", "m:0", "nocolon", "m:99999999999", "m:²"])
    assert found == [("m", 1), ("m", 2)]
    assert invalid == ["m:x", "m:0", "nocolon", "m:99999999999", "m:²"]


def test_runs_are_32_hex_digits_case_insensitive():
    run_id = "ab" * 16
    found, invalid = parse_runs([f"{run_id.upper()},{run_id}", "nothex"])
    assert found == [run_id]
    assert invalid == ["nothex"]


def test_selection_counts_builds_of_both_kinds():
    selection = parse_selection(["m:1,m:2"], ["cd" * 16])
    assert selection.count == 3
    assert MAX_BUILDS == 4


@pytest.mark.parametrize("key", ["n_estimators", "learning_rate", "rows", "epoch"])
def test_a_name_that_does_not_say_has_no_direction(key):
    assert diff.guess_lower_is_better(key) is None
    assert not diff.metric_direction(key).known
    assert diff.best_indices([1.0, 2.0], lower_is_better=None) == frozenset()


@pytest.mark.parametrize(
    ("key", "delta", "expected"),
    [
        ("val_loss", -0.02, "better"),
        ("val_loss", 0.01, "worse"),
        ("accuracy", 0.0225, "better"),
        ("accuracy", -0.01, "worse"),
        ("accuracy", 0.0, "same"),
        ("n_estimators", 5.0, "unknown"),
        ("accuracy", None, "unknown"),
        ("accuracy", math.nan, "unknown"),
    ],
)
def test_a_change_is_judged_by_the_metrics_direction(key, delta, expected):
    assert diff.verdict(delta, diff.metric_direction(key)) == expected


def test_the_users_choice_gives_a_direction_to_any_metric():
    assert diff.verdict(3.0, diff.metric_direction("rows", higher={"rows"})) == "better"
    assert diff.signed(0.0225) == "+0.0225" and diff.signed(-0.013) == "−0.013" and diff.signed(None) == ""
