"""Describe a table the way the registry stores a dataset: a schema, a profile and a content digest.

Pure Python. numpy and pandas are never imported here: arrays and DataFrames are read through their own methods
(`tolist()`, `dtype.kind`), so this module works on a machine that has neither.

The output is plain JSON: numbers are Python ints and floats, and a missing or non-finite statistic is `None`
(never NaN), so it can be stored in any JSON column as it is.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import numbers
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Any

DEFAULT_BINS = 20
DEFAULT_TOP = 10

FLOAT = "float64"
INT = "int64"
BOOL = "bool"
STRING = "string"
NUMERIC_TYPES = (FLOAT, INT)

# Cells of a CSV file read as missing values (the tokens pandas.read_csv treats as NA by default, minus a few exotic).
CSV_NULLS = frozenset({"", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "null", "NULL", "None", "<NA>", "#N/A"})

# Bumped if the canonical serialisation ever changes, so that old and new digests can never collide by accident.
_DIGEST_PREFIX = b"registry-dataset-v1\n"


@dataclass(frozen=True, slots=True)
class DatasetProfile:
    """What the registry keeps about a dataset: `schema`, `profile` and `digest` (sha256 hex of the content)."""

    schema: list[dict[str, str]]
    profile: dict[str, Any]
    digest: str

    @property
    def num_rows(self) -> int:
        return self.profile["num_rows"]

    def as_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "profile": self.profile, "digest": self.digest}


def profile_table(
    columns: Mapping[str, Sequence[Any]],
    *,
    types: Mapping[str, str] | None = None,
    bins: int = DEFAULT_BINS,
    top: int = DEFAULT_TOP,
) -> DatasetProfile:
    """Profile a table given as {column name: values}, all columns of the same length.

    Column types are inferred from the values ("bool", "int64", "float64", else "string") unless `types` names
    them. None, NaN and pandas' NA are missing values: they count as `nulls` and are left out of every statistic.
    Numeric columns get mean, std (sample), min, quartiles, max and a histogram of `bins` bins (one bin per value
    for integer columns with fewer distinct possible values); the others get the distinct count and the `top`
    most frequent values. The digest depends on column names, types, order and values, and on nothing else.
    """
    if bins < 1 or top < 0:
        raise ValueError("bins must be at least 1 and top must not be negative.")
    types = dict(types or {})
    unknown = set(types) - set(columns)
    if unknown:
        raise ValueError(f"Types given for columns that are not in the table: {', '.join(sorted(map(str, unknown)))}.")
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"All columns must have the same length (got lengths {sorted(lengths)}).")
    num_rows = lengths.pop() if lengths else 0

    digest = hashlib.sha256(_DIGEST_PREFIX)
    schema: list[dict[str, str]] = []
    stats: dict[str, dict[str, Any]] = {}
    for raw_name, raw_values in columns.items():
        name = str(raw_name)
        if name in stats:
            raise ValueError(f"Column {name!r} appears twice.")
        values = [_python_value(v) for v in raw_values]
        column_type = types.get(raw_name) or _infer_type(values)
        values = _coerce(values, column_type, name)
        schema.append({"name": name, "type": column_type})
        if column_type in NUMERIC_TYPES:
            stats[name] = _numeric_stats(values, integer=column_type == INT, bins=bins)
        else:
            stats[name] = _categorical_stats(values, top=top)
        digest.update(_canonical(name, column_type, values))
    return DatasetProfile(
        schema=schema,
        profile={"num_rows": num_rows, "columns": stats},
        digest=digest.hexdigest(),
    )


def profile_array(
    array: Any,
    column_names: Sequence[str] | None = None,
    *,
    bins: int = DEFAULT_BINS,
    top: int = DEFAULT_TOP,
) -> DatasetProfile:
    """Profile a 2-D numpy array (a 1-D array is one column). Columns are named `column_0`, ... unless named."""
    shape = getattr(array, "shape", None)
    if shape is None or not hasattr(array, "tolist"):
        raise TypeError("profile_array expects a numpy array; use profile_table for plain lists.")
    if len(shape) == 1:
        array = array.reshape(-1, 1)
        shape = array.shape
    if len(shape) != 2:
        raise ValueError(f"profile_array expects a 2-D array (got {len(shape)} dimensions).")
    names = [f"column_{i}" for i in range(shape[1])] if column_names is None else [str(n) for n in column_names]
    if len(names) != shape[1]:
        raise ValueError(f"Got {len(names)} column names for {shape[1]} columns.")
    column_type = _type_of_dtype(array.dtype)
    columns = {name: array[:, i].tolist() for i, name in enumerate(names)}
    types = dict.fromkeys(names, column_type) if column_type else None
    return profile_table(columns, types=types, bins=bins, top=top)


def profile_dataframe(frame: Any, *, bins: int = DEFAULT_BINS, top: int = DEFAULT_TOP) -> DatasetProfile:
    """Profile a pandas DataFrame (its index is not part of the data)."""
    if not hasattr(frame, "columns") or not hasattr(frame, "dtypes"):
        raise TypeError("profile_dataframe expects a pandas DataFrame.")
    columns: dict[str, list] = {}
    types: dict[str, str] = {}
    for label in frame.columns:
        name = str(label)
        if name in columns:
            raise ValueError(f"Column {name!r} appears twice.")
        series = frame[label]
        columns[name] = series.tolist()
        column_type = _type_of_dtype(series.dtype)
        if column_type:
            types[name] = column_type
    return profile_table(columns, types=types, bins=bins, top=top)


def profile_csv(
    path: str | PathLike[str],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    null_values: Iterable[str] = CSV_NULLS,
    bins: int = DEFAULT_BINS,
    top: int = DEFAULT_TOP,
) -> DatasetProfile:
    """Profile a CSV file with a header row, with the csv module only.

    A column whose non-missing cells all parse as integers is "int64", as numbers "float64", as true/false "bool",
    otherwise "string". Cells in `null_values` are missing.
    """
    nulls = frozenset(null_values)
    with open(path, newline="", encoding=encoding) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return profile_table({}, bins=bins, top=top)
        cells: list[list[str | None]] = [[] for _ in header]
        for line_number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) > len(header):
                raise ValueError(f"{path}: line {line_number} has {len(row)} cells but the header has {len(header)}.")
            row = row + [""] * (len(header) - len(row))
            for column, cell in zip(cells, row, strict=True):
                column.append(None if cell.strip() in nulls else cell)
    columns = {}
    types = {}
    for name, raw in zip(header, cells, strict=True):
        if name in columns:
            raise ValueError(f"{path}: column {name!r} appears twice in the header.")
        types[name], columns[name] = _parse_csv_column(raw)
    return profile_table(columns, types=types, bins=bins, top=top)


# --- Values and types -----------------------------------------------------------------------------------------------


def _python_value(value: Any) -> Any:
    """A plain Python value for `value`: numpy scalars become int/float/bool, pandas' NA and NaT become None.

    NaN stays NaN until the column's type is known: a column of NaN only is a float column.
    """
    if value is None:
        return None
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas.NA and pandas.NaT, recognised without pandas
        return None
    if not isinstance(value, str | bytes | bool | int | float) and hasattr(value, "item"):
        with contextlib.suppress(TypeError, ValueError):
            value = value.item()  # a numpy scalar
    return value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _infer_type(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return STRING
    if all(isinstance(v, bool) for v in present):
        return BOOL
    if all(_is_int(v) for v in present):
        return INT
    if all(_is_number(v) for v in present):
        return FLOAT
    return STRING


def _coerce(values: list[Any], column_type: str, name: str) -> list[Any]:
    values = [None if _missing(v) else v for v in values]
    if column_type == FLOAT:
        try:
            # Adding 0.0 turns -0.0 into 0.0, so that equal numbers always serialise alike.
            return [None if v is None else float(v) + 0.0 for v in values]
        except (TypeError, ValueError):
            raise ValueError(f"Column {name!r} is declared float64 but holds non-numbers.") from None
    if column_type == INT:
        if not all(v is None or _is_int(v) or (isinstance(v, float) and v.is_integer()) for v in values):
            raise ValueError(f"Column {name!r} is declared int64 but holds non-integers.")
        return [None if v is None else int(v) for v in values]
    if column_type == BOOL:
        return [None if v is None else bool(v) for v in values]
    if column_type == STRING:
        return [None if v is None else _text(v) for v in values]
    raise ValueError(f"Unknown column type {column_type!r}; use one of float64, int64, bool, string.")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _type_of_dtype(dtype: Any) -> str | None:
    """The profile type of a numpy or pandas dtype, or None to infer it from the values."""
    kind = getattr(dtype, "kind", None)
    if kind == "b":
        return BOOL
    if kind in ("i", "u"):
        return INT
    if kind == "f":
        return FLOAT
    if kind in ("U", "S"):
        return STRING
    return None


def _parse_csv_column(cells: list[str | None]) -> tuple[str, list[Any]]:
    present = [c.strip() for c in cells if c is not None]
    if not present:
        return STRING, cells
    for column_type, parse in ((INT, int), (FLOAT, float)):
        try:
            parsed = [None if c is None else parse(c.strip()) for c in cells]
        except ValueError:
            continue
        return column_type, parsed
    if all(c.lower() in ("true", "false") for c in present):
        return BOOL, [None if c is None else c.strip().lower() == "true" for c in cells]
    return STRING, cells


# --- Statistics -----------------------------------------------------------------------------------------------------


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _numeric_stats(values: list[Any], *, integer: bool, bins: int) -> dict[str, Any]:
    present = [v for v in values if v is not None]
    finite = sorted(v for v in present if math.isfinite(v))
    stats: dict[str, Any] = {
        "nulls": len(values) - len(present),
        "infinite": len(present) - len(finite),
        "mean": None,
        "std": None,
        "min": None,
        "p25": None,
        "p50": None,
        "p75": None,
        "max": None,
        "histogram": {"bins": [], "counts": []},
    }
    if not finite:
        return stats
    n = len(finite)
    mean = math.fsum(finite) / n
    stats["mean"] = _finite_or_none(mean)
    if n > 1:
        stats["std"] = _finite_or_none(math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (n - 1)))
    stats["min"], stats["max"] = finite[0], finite[-1]
    stats["p25"], stats["p50"], stats["p75"] = (_quantile(finite, q) for q in (0.25, 0.5, 0.75))
    stats["histogram"] = _histogram(finite, integer=integer, bins=bins)
    return stats


def _quantile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks, as numpy.percentile does by default."""
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    fraction = position - below
    return ordered[below] + (ordered[above] - ordered[below]) * fraction


def _histogram(ordered: list[float], *, integer: bool, bins: int) -> dict[str, list]:
    low, high = ordered[0], ordered[-1]
    if integer and high - low < bins:
        # One bin per possible integer value, centred on it.
        edges = [low - 0.5 + i for i in range(int(high - low) + 2)]
        counts = [0] * (len(edges) - 1)
        for v in ordered:
            counts[int(v - low)] += 1
        return {"bins": edges, "counts": counts}
    if low == high:
        low, high = low - 0.5, high + 0.5
    width = high / bins - low / bins  # divided first so that the extremes of float64 cannot overflow
    edges = [low + i * width for i in range(bins)] + [high]
    counts = [0] * bins
    for v in ordered:
        counts[min(int((v - low) / width), bins - 1)] += 1
    return {"bins": edges, "counts": counts}


def _categorical_stats(values: list[Any], *, top: int) -> dict[str, Any]:
    counter = Counter(v for v in values if v is not None)
    present = sum(counter.values())
    # Most frequent first; ties in a stable order so that the same data always gives the same profile.
    ranked = sorted(counter.items(), key=lambda item: (-item[1], str(item[0])))
    return {
        "nulls": len(values) - present,
        "distinct": len(counter),
        "top": [{"value": value, "count": count} for value, count in ranked[:top]],
    }


# --- Digest ---------------------------------------------------------------------------------------------------------


def _canonical(name: str, column_type: str, values: list[Any]) -> bytes:
    """One column as bytes: a JSON header line, then a JSON array of its values (None for missing)."""
    header = json.dumps([name, column_type, len(values)], ensure_ascii=False, separators=(",", ":"))
    # float repr round-trips exactly; the infinities become the tokens Infinity and -Infinity (allow_nan).
    body = json.dumps(values, ensure_ascii=False, separators=(",", ":"), allow_nan=True)
    return f"{header}\n{body}\n".encode()
