"""The client's dataset profiler: schema, profile and digest from plain columns, CSV files, numpy and pandas."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from registry_client.profiling import profile_array, profile_csv, profile_dataframe, profile_table

ROOT = Path(__file__).resolve().parent.parent


def strict_json(value) -> str:
    """Serialise as the database will: NaN or infinities anywhere would raise."""
    return json.dumps(value, allow_nan=False)


def test_the_client_package_imports_neither_django_nor_numpy_nor_pandas():
    code = (
        "import sys; sys.path.insert(0, 'client'); import registry_client.profiling; "
        "print(sorted(m for m in ('django', 'numpy', 'pandas') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_types_are_inferred_from_values():
    result = profile_table(
        {
            "age": [31, 45, None, 27],
            "height": [1.8, 1.65, 1.7, float("nan")],
            "city": ["Oslo", "Lima", "Oslo", None],
            "member": [True, False, True, True],
        }
    )
    assert result.schema == [
        {"name": "age", "type": "int64"},
        {"name": "height", "type": "float64"},
        {"name": "city", "type": "string"},
        {"name": "member", "type": "bool"},
    ]
    assert result.num_rows == 4
    assert set(result.profile["columns"]) == {"age", "height", "city", "member"}


def test_numeric_columns_get_summary_statistics_and_a_histogram():
    values = [float(v) for v in range(1, 101)] + [None, float("nan")]
    stats = profile_table({"x": values}).profile["columns"]["x"]
    present = [v for v in values if v is not None and not math.isnan(v)]

    assert stats["nulls"] == 2
    assert stats["mean"] == pytest.approx(statistics.mean(present))
    assert stats["std"] == pytest.approx(statistics.stdev(present))
    assert (stats["min"], stats["max"]) == (1.0, 100.0)
    assert (stats["p25"], stats["p50"], stats["p75"]) == pytest.approx((25.75, 50.5, 75.25))
    histogram = stats["histogram"]
    assert len(histogram["counts"]) == 20
    assert len(histogram["bins"]) == 21
    assert (histogram["bins"][0], histogram["bins"][-1]) == (1.0, 100.0)
    assert sum(histogram["counts"]) == 100
    assert histogram["counts"] == [5] * 20


def test_integer_columns_with_few_values_get_one_bin_per_value():
    stats = profile_table({"rooms": [1, 2, 2, 3, 3, 3, 5]}).profile["columns"]["rooms"]
    assert stats["histogram"] == {"bins": [0.5, 1.5, 2.5, 3.5, 4.5, 5.5], "counts": [1, 2, 3, 0, 1]}
    assert (stats["min"], stats["max"]) == (1, 5)


def test_categorical_columns_get_distinct_count_and_top_values():
    colours = ["red"] * 5 + ["blue"] * 3 + ["green"] * 3 + [f"rare-{i}" for i in range(12)] + [None, None]
    stats = profile_table({"colour": colours}).profile["columns"]["colour"]
    assert stats["nulls"] == 2
    assert stats["distinct"] == 15
    assert len(stats["top"]) == 10
    # Most frequent first, ties by value so that the profile is stable.
    assert stats["top"][:3] == [
        {"value": "red", "count": 5},
        {"value": "blue", "count": 3},
        {"value": "green", "count": 3},
    ]


def test_nulls_and_infinities_never_reach_the_output():
    result = profile_table(
        {
            "x": [float("nan"), float("inf"), -float("inf"), 2.0, None],
            "empty": [None] * 5,
            "only_nan": [float("nan")] * 5,
        }
    )
    strict_json(result.as_dict())
    x = result.profile["columns"]["x"]
    assert (x["nulls"], x["infinite"]) == (2, 2)
    assert x["mean"] == x["min"] == x["max"] == 2.0
    assert x["std"] is None  # one finite value
    assert result.profile["columns"]["empty"]["nulls"] == 5
    assert result.profile["columns"]["only_nan"]["mean"] is None


def test_columns_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="same length"):
        profile_table({"a": [1, 2], "b": [1]})


def test_the_digest_depends_on_the_content_only():
    def table():
        return {"x": [1.0, 2.5, None], "label": ["a", "b", "a"]}

    digest = profile_table(table()).digest
    assert len(digest) == 64
    assert profile_table(table()).digest == digest
    # The same numbers written another way are the same data.
    assert profile_table({"x": [1, 2.5, float("nan")], "label": ["a", "b", "a"]}, types={"x": "float64"}).digest == (
        digest
    )
    assert profile_table({"x": [-0.0, 1.0]}).digest == profile_table({"x": [0.0, 1.0]}).digest

    changed_value = {"x": [1.0, 2.5000001, None], "label": ["a", "b", "a"]}
    renamed = {"y": [1.0, 2.5, None], "label": ["a", "b", "a"]}
    reordered = {"label": ["a", "b", "a"], "x": [1.0, 2.5, None]}
    null_vs_text = {"x": [1.0, 2.5, None], "label": ["a", "b", "None"]}
    others = {profile_table(t).digest for t in (changed_value, renamed, reordered, null_vs_text)}
    assert len(others) == 4
    assert digest not in others


def test_csv_is_read_without_pandas(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(
        "id,score,name,active,note\n1,0.5,Ann,true,\n2,NA,Bob,false,x\n3,1.5,,TRUE,y\n4,2,Dee,false,\n",
        encoding="utf-8",
    )
    result = profile_csv(path)
    assert [c["type"] for c in result.schema] == ["int64", "float64", "string", "bool", "string"]
    columns = result.profile["columns"]
    assert result.num_rows == 4
    assert columns["score"]["nulls"] == 1
    assert columns["score"]["mean"] == pytest.approx((0.5 + 1.5 + 2) / 3)
    assert columns["name"]["nulls"] == 1
    assert columns["active"]["top"] == [{"value": False, "count": 2}, {"value": True, "count": 2}]
    assert columns["note"] == {
        "nulls": 2,
        "distinct": 2,
        "top": [{"value": "x", "count": 1}, {"value": "y", "count": 1}],
    }
    strict_json(result.as_dict())


def test_csv_rows_longer_than_the_header_are_refused(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2,3\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        profile_csv(path)


def test_numpy_arrays_are_profiled_with_plain_python_numbers():
    np = pytest.importorskip("numpy")
    array = np.array([[1.0, 10.0], [2.0, np.nan], [3.0, 30.0], [4.0, 40.0]])
    result = profile_array(array, ["a", "b"])
    assert result.schema == [{"name": "a", "type": "float64"}, {"name": "b", "type": "float64"}]
    b = result.profile["columns"]["b"]
    assert b["nulls"] == 1
    assert b["p50"] == pytest.approx(float(np.nanpercentile(array[:, 1], 50)))
    assert b["p25"] == pytest.approx(float(np.nanpercentile(array[:, 1], 25)))
    assert type(b["mean"]) is float
    strict_json(result.as_dict())

    integers = profile_array(np.arange(6, dtype=np.int32).reshape(3, 2))
    assert integers.schema == [{"name": "column_0", "type": "int64"}, {"name": "column_1", "type": "int64"}]
    assert type(integers.profile["columns"]["column_0"]["min"]) is int

    with pytest.raises(ValueError, match="column names"):
        profile_array(array, ["only-one"])
    with pytest.raises(ValueError, match="2-D"):
        profile_array(np.zeros((2, 2, 2)))


def test_an_array_and_its_csv_export_have_the_same_digest(tmp_path):
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(0)
    array = rng.normal(size=(50, 3))
    path = tmp_path / "export.csv"
    lines = ["a,b,c"] + [",".join(repr(float(v)) for v in row) for row in array]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert profile_csv(path).digest == profile_array(array, ["a", "b", "c"]).digest


def test_pandas_dataframes_keep_their_dtypes_and_nulls():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "price": [1.5, None, 3.0],
            "count": pd.array([1, None, 3], dtype="Int64"),
            "label": ["a", None, "b"],
            "flag": [True, False, True],
        }
    )
    result = profile_dataframe(frame)
    assert [c["type"] for c in result.schema] == ["float64", "int64", "string", "bool"]
    columns = result.profile["columns"]
    assert columns["price"]["nulls"] == columns["count"]["nulls"] == columns["label"]["nulls"] == 1
    assert columns["price"]["mean"] == pytest.approx(frame["price"].mean())
    strict_json(result.as_dict())
    same = {"price": [1.5, None, 3.0], "count": [1, None, 3], "label": ["a", None, "b"], "flag": [True, False, True]}
    assert result.digest == profile_table(same).digest
