"""A model's signature (the columns it takes and returns, and an input example) inferred from sample data, in the
registry's form (the server's registry/lib/signature.py): `{"inputs": [...], "outputs": [...], "input_example": ...}`.

Types follow MLflow's names so that signatures read from MLmodel files compare with inferred ones: a pandas column
of int64 is `long`, float64 `double`, float32 `float`, bool `boolean`, text `string`, datetimes `datetime`; a numpy
array is one tensor with its dtype and shape (-1 for the rows).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from typing import Any

EXAMPLE_ROWS = 5

_NUMPY_TO_MLFLOW = {
    "int8": "integer",
    "int16": "integer",
    "int32": "integer",
    "int64": "long",
    "uint8": "integer",
    "uint16": "integer",
    "uint32": "long",
    "uint64": "long",
    "float16": "float",
    "float32": "float",
    "float64": "double",
    "bool": "boolean",
}


def _column_type(dtype: Any) -> str:
    name = str(dtype)
    if name in _NUMPY_TO_MLFLOW:
        return _NUMPY_TO_MLFLOW[name]
    kind = getattr(dtype, "kind", "")
    if name.startswith("datetime") or kind == "M":
        return "datetime"
    if kind in ("U", "S", "O") or name in ("string", "str", "object", "category"):
        return "string"
    if name.lower().startswith(("int", "uint")):  # pandas' nullable Int64 and friends
        return "long"
    if name.lower().startswith("float"):
        return "double"
    if name == "boolean":
        return "boolean"
    return name


def _plain(value: Any) -> Any:
    """A JSON-safe copy of a cell: numpy scalars as Python numbers, NaN as None, anything else as text."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        with contextlib.suppress(ValueError, TypeError):
            value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def _is_frame(data: Any) -> bool:
    return hasattr(data, "columns") and hasattr(data, "dtypes")


def _is_array(data: Any) -> bool:
    return hasattr(data, "shape") and hasattr(data, "dtype") and hasattr(data, "tolist")


def _columns(data: Any, what: str) -> list[dict]:
    if _is_frame(data):
        return [
            {"name": str(label), "type": _column_type(data[label].dtype), "required": True} for label in data.columns
        ]
    if _is_array(data):
        if len(data.shape) == 1 and data.dtype.names is None:
            return [{"name": "", "type": str(data.dtype), "shape": [-1], "required": True}]
        return [{"name": "", "type": str(data.dtype), "shape": [-1, *data.shape[1:]], "required": True}]
    if hasattr(data, "name") and hasattr(data, "dtype"):  # a pandas Series: one column
        return [{"name": str(data.name or ""), "type": _column_type(data.dtype), "required": True}]
    raise TypeError(f"Cannot infer the {what} signature from {type(data).__name__}; pass a DataFrame or an array.")


def _example(data: Any) -> Any:
    if _is_frame(data):
        head = data.head(EXAMPLE_ROWS)
        return {
            "columns": [str(c) for c in head.columns],
            "data": [[_plain(v) for v in row] for row in head.itertuples(index=False, name=None)],
        }
    if _is_array(data):
        return _plain(data[:EXAMPLE_ROWS].tolist())
    return None


def infer_signature(model_input: Any, model_output: Any = None, *, example: bool = True) -> dict:
    """The signature of a model that takes `model_input` (a pandas DataFrame, Series or numpy array) and returns
    `model_output` (optional), with the first rows of the input as the example."""
    signature: dict[str, Any] = {"inputs": _columns(model_input, "input"), "outputs": [], "source": "client"}
    if model_output is not None:
        signature["outputs"] = _columns(model_output, "output")
    if example:
        signature["input_example"] = _example(model_input)
    return signature


def as_signature(value: Any, input_example: Any = None) -> dict | None:
    """What `register_model(signature=...)` sends: a dict as given (checked by the server), or one inferred from a
    DataFrame or array. An `input_example` frame or array replaces the example."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        signature = dict(value)
    elif isinstance(value, tuple) and len(value) == 2:
        signature = infer_signature(value[0], value[1])
    else:
        signature = infer_signature(value)
    if input_example is not None:
        signature["input_example"] = (
            _example(input_example) if (_is_frame(input_example) or _is_array(input_example)) else input_example
        )
    json.dumps(signature, allow_nan=False)  # fail here, not on the server, on values JSON cannot carry
    return signature
