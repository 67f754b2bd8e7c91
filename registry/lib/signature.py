"""A model version's signature: the columns (or tensors) it takes and returns, and an input example.

One normalised form, whatever it came from (MLflow's `MLmodel` file, our client, the API):

    {"inputs": [{"name": "age", "type": "long", "shape": None, "required": True}, ...],
     "outputs": [...],
     "input_example": <any JSON value> | None,
     "source": "MLmodel" | "client" | "api"}

A tensor is a column with an empty name (or the tensor's name), its dtype as `type` and its `shape` (-1 for any
length). MLflow writes `inputs` and `outputs` as JSON *strings* inside YAML, with column specs
({"name", "type", "required"}) or tensor specs ({"type": "tensor", "tensor-spec": {"dtype", "shape"}}); both are read.

Bad input raises SignatureError naming the field (`signature.inputs[2].type`) so a surface can say what to fix.
Pure Python: no Django.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

COLUMNS_MAX = 2000
NAME_MAX = 256
TYPE_MAX = 128
SHAPE_DIMS_MAX = 16
EXAMPLE_MAX = 64 * 1024  # characters of JSON kept as the input example
MLMODEL_MAX = 1024 * 1024  # bytes of an MLmodel file worth reading
SOURCES = ("MLmodel", "client", "api")


class SignatureError(ValueError):
    """A signature that cannot be stored; `field` names where (e.g. "signature.inputs[2].type")."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _type_text(value: Any, field: str, depth: int = 0) -> str:
    """A column type as text: "double", or MLflow's complex types written out ("array<double>", "object")."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise SignatureError(field, "the type is empty; name one such as double, long, string.")
        if len(text) > TYPE_MAX:
            raise SignatureError(field, f"the type is longer than {TYPE_MAX} characters.")
        return text
    if isinstance(value, dict) and depth < 4:
        kind = value.get("type")
        if kind == "array" and "items" in value:
            return f"array<{_type_text(value['items'], field, depth + 1)}>"
        if kind == "map" and "values" in value:
            return f"map<{_type_text(value['values'], field, depth + 1)}>"
        if isinstance(kind, str) and kind:
            return _type_text(kind, field, depth + 1)
    raise SignatureError(field, "the type must be a string such as double, long, string or float32.")


def _shape(value: Any, field: str) -> list[int] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or len(value) > SHAPE_DIMS_MAX:
        raise SignatureError(field, f"the shape must be a list of at most {SHAPE_DIMS_MAX} integers (-1 for any).")
    dims = []
    for dim in value:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < -1:
            raise SignatureError(field, f"every dimension must be an integer ≥ -1 (-1 for any length), not {dim!r}.")
        dims.append(dim)
    return dims


def _column(spec: Any, field: str) -> dict:
    if not isinstance(spec, dict):
        raise SignatureError(field, "each column must be an object with at least a type.")
    name = spec.get("name", "")
    if name is None:
        name = ""
    if not isinstance(name, str):
        raise SignatureError(f"{field}.name", "the name must be a string.")
    if len(name) > NAME_MAX:
        raise SignatureError(f"{field}.name", f"the name is longer than {NAME_MAX} characters.")
    required = spec.get("required", True)
    if not isinstance(required, bool):
        raise SignatureError(f"{field}.required", "required must be true or false.")
    if spec.get("type") == "tensor" or "tensor-spec" in spec:
        tensor = spec.get("tensor-spec")
        if not isinstance(tensor, dict):
            raise SignatureError(f"{field}.tensor-spec", "a tensor needs a tensor-spec with dtype and shape.")
        return {
            "name": name,
            "type": _type_text(tensor.get("dtype"), f"{field}.tensor-spec.dtype"),
            "shape": _shape(tensor.get("shape"), f"{field}.tensor-spec.shape"),
            "required": required,
        }
    if "type" not in spec:
        raise SignatureError(f"{field}.type", "each column needs a type (double, long, string, float32, ...).")
    return {
        "name": name,
        "type": _type_text(spec["type"], f"{field}.type"),
        "shape": _shape(spec.get("shape"), f"{field}.shape"),
        "required": required,
    }


def _columns(value: Any, field: str) -> list[dict]:
    if value is None:
        return []
    if isinstance(value, str):  # MLflow's MLmodel keeps each side as a JSON string
        try:
            value = json.loads(value) if value.strip() else []
        except ValueError:
            raise SignatureError(field, "this is text but not JSON; give a list of columns.") from None
    if isinstance(value, dict) and "columns" in value:  # a schema object, as some exporters write
        value = value["columns"]
    if not isinstance(value, list):
        raise SignatureError(field, 'must be a list of columns, e.g. [{"name": "age", "type": "long"}].')
    if len(value) > COLUMNS_MAX:
        raise SignatureError(field, f"has {len(value)} columns; the limit is {COLUMNS_MAX}.")
    columns = [_column(spec, f"{field}[{i}]") for i, spec in enumerate(value)]
    seen: set[str] = set()
    for i, column in enumerate(columns):
        if column["name"] and column["name"] in seen:
            raise SignatureError(f"{field}[{i}].name", f"the column {column['name']!r} appears twice.")
        seen.add(column["name"])
    return columns


def _example(value: Any, field: str) -> Any:
    if value is None:
        return None
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise SignatureError(field, "the input example must be plain JSON (no NaN or infinity).") from None
    if len(text) > EXAMPLE_MAX:
        raise SignatureError(field, f"the input example is {len(text)} characters of JSON; the limit is {EXAMPLE_MAX}.")
    return value


def normalise(value: Any, *, source: str = "api", field: str = "signature") -> dict | None:
    """The stored form of `value` (ours or MLflow's), or None for no signature; SignatureError when malformed."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise SignatureError(field, "must be an object with inputs and outputs.")
    unknown = sorted(set(value) - {"inputs", "outputs", "input_example", "params", "source"})
    if unknown:
        raise SignatureError(f"{field}.{unknown[0]}", "unknown field; use inputs, outputs and input_example.")
    inputs = _columns(value.get("inputs"), f"{field}.inputs")
    outputs = _columns(value.get("outputs"), f"{field}.outputs")
    if not inputs and not outputs:
        raise SignatureError(f"{field}.inputs", "a signature needs at least one input or output column.")
    return {
        "inputs": inputs,
        "outputs": outputs,
        "input_example": _example(value.get("input_example"), f"{field}.input_example"),
        # A client may say where its signature came from ("client": inferred from a frame); anything else is ours.
        "source": value.get("source") if value.get("source") in SOURCES else source if source in SOURCES else "api",
    }


# libyaml's safe loader when PyYAML was built with it (ten times faster: registration reads every MLmodel), else the
# pure-Python one; both build only plain YAML types, never Python objects.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_mlmodel(text: str | bytes) -> dict:
    """An MLmodel file's content as a mapping (empty when the file holds something else); SignatureError when it is
    too large or not YAML."""
    if isinstance(text, bytes):
        if len(text) > MLMODEL_MAX:
            raise SignatureError("MLmodel", f"the file is larger than {MLMODEL_MAX} bytes.")
        text = text.decode("utf-8", errors="replace")
    try:
        document = yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader, see _SAFE_LOADER
    except yaml.YAMLError as exc:
        raise SignatureError("MLmodel", f"not valid YAML ({str(exc).splitlines()[0]}).") from None
    return document if isinstance(document, dict) else {}


def from_mlmodel(mlmodel: str | bytes | dict, *, input_example: Any = None) -> dict | None:
    """The signature an MLmodel file (its text, or read_mlmodel's mapping) declares, or None when it has none.

    A file that is not YAML, or whose signature is malformed, raises SignatureError (field "MLmodel" or
    "MLmodel.signature...")."""
    document = mlmodel if isinstance(mlmodel, dict) else read_mlmodel(mlmodel)
    if not document.get("signature"):
        return None
    signature = document["signature"]
    if not isinstance(signature, dict):
        raise SignatureError("MLmodel.signature", "must be a mapping with inputs and outputs.")
    parts = {"inputs": signature.get("inputs"), "outputs": signature.get("outputs")}
    if input_example is not None:
        parts["input_example"] = input_example
    return normalise(parts, source="MLmodel", field="MLmodel.signature")


def example_path(mlmodel: str | bytes | dict) -> str | None:
    """Where an MLmodel says its input example is (`saved_input_example_info.artifact_path`), if anywhere."""
    try:
        document = mlmodel if isinstance(mlmodel, dict) else read_mlmodel(mlmodel)
    except SignatureError:
        return None
    info = document.get("saved_input_example_info")
    path = info.get("artifact_path") if isinstance(info, dict) else None
    return path if isinstance(path, str) and path and ".." not in path and not path.startswith("/") else None


# --- Diff -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ColumnChange:
    key: str  # the column's name, or "#3" for the fourth unnamed column
    status: str  # "added", "removed", "retyped", "same"
    old: dict | None
    new: dict | None

    @property
    def old_type(self) -> str:
        return describe_type(self.old) if self.old else ""

    @property
    def new_type(self) -> str:
        return describe_type(self.new) if self.new else ""


@dataclass(frozen=True, slots=True)
class SignatureDiff:
    inputs: list[ColumnChange]
    outputs: list[ColumnChange]

    def changed(self, side: str = "") -> list[ColumnChange]:
        rows = self.inputs if side == "inputs" else self.outputs if side == "outputs" else self.inputs + self.outputs
        return [row for row in rows if row.status != "same"]

    @property
    def same(self) -> bool:
        return not self.changed()

    def problems(self) -> list[str]:
        """Why a caller of the old version may break on the new one; empty when compatible.

        Incompatible: an input column removed or retyped, a required input added (the caller does not send it), any
        output changed."""
        found = []
        for row in self.inputs:
            if row.status == "removed":
                found.append(f"input {row.key!r} was removed")
            elif row.status == "retyped":
                found.append(f"input {row.key!r} changed from {row.old_type} to {row.new_type}")
            elif row.status == "added" and row.new and row.new.get("required", True):
                found.append(f"input {row.key!r} ({row.new_type}) is new and required")
        for row in self.outputs:
            if row.status == "removed":
                found.append(f"output {row.key!r} was removed")
            elif row.status == "retyped":
                found.append(f"output {row.key!r} changed from {row.old_type} to {row.new_type}")
            elif row.status == "added":
                found.append(f"output {row.key!r} ({row.new_type}) is new")
        return found

    @property
    def compatible(self) -> bool:
        return not self.problems()


def describe_type(column: dict) -> str:
    shape = column.get("shape")
    dims = "" if shape is None else "[" + ", ".join("?" if d == -1 else str(d) for d in shape) + "]"
    return f"{column.get('type', '?')}{dims}"


def _keyed(columns: list[dict]) -> dict[str, dict]:
    return {column.get("name") or f"#{i}": column for i, column in enumerate(columns)}


def _side(old: list[dict], new: list[dict]) -> list[ColumnChange]:
    a, b = _keyed(old), _keyed(new)
    rows = []
    for key, column in a.items():
        if key not in b:
            rows.append(ColumnChange(key, "removed", column, None))
        else:
            other = b[key]
            same = describe_type(column) == describe_type(other)
            rows.append(ColumnChange(key, "same" if same else "retyped", column, other))
    rows.extend(ColumnChange(key, "added", None, column) for key, column in b.items() if key not in a)
    return rows


def diff(old: dict | None, new: dict | None) -> SignatureDiff:
    """Column by column, the new signature against the old (by name; unnamed columns by position)."""
    old, new = old or {}, new or {}
    return SignatureDiff(
        inputs=_side(old.get("inputs") or [], new.get("inputs") or []),
        outputs=_side(old.get("outputs") or [], new.get("outputs") or []),
    )


@dataclass(frozen=True, slots=True)
class SideBySideRow:
    key: str
    cells: list[tuple[str | None, str]]  # per signature: (type text or None when absent, status against the first)

    @property
    def same(self) -> bool:
        return all(status == "same" for _, status in self.cells)


def side_by_side(signatures: list[dict | None], side: str) -> list[SideBySideRow]:
    """One row per column of `side` ("inputs" or "outputs") in any of `signatures`, the first one's order first; each
    cell marked "same", "added", "removed" or "retyped" against the first signature ("absent" where neither has it)."""
    keyed = [_keyed((s or {}).get(side) or []) for s in signatures]
    keys: list[str] = []
    for columns in keyed:
        keys.extend(k for k in columns if k not in keys)
    base = keyed[0] if keyed else {}
    rows = []
    for key in keys:
        cells = []
        for columns in keyed:
            column, baseline = columns.get(key), base.get(key)
            text = describe_type(column) if column else None
            if column is None:
                status = "removed" if baseline is not None else "absent"
            elif baseline is None:
                status = "added"
            else:
                status = "same" if describe_type(baseline) == text else "retyped"
            cells.append((text, status))
        rows.append(SideBySideRow(key, cells))
    return rows
