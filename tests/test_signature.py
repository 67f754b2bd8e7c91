"""registry.lib.signature: reading MLflow's MLmodel, checking what clients send, and diffing two signatures."""

from __future__ import annotations

import pytest

from registry.lib import signature as sig

# As mlflow.sklearn.log_model(..., signature=infer_signature(X, y)) writes it for a frame of two columns.
MLMODEL = """\
artifact_path: model
flavors:
  python_function:
    env:
      conda: conda.yaml
    loader_module: mlflow.sklearn
    python_version: 3.11.9
  sklearn:
    pickled_model: model.pkl
    sklearn_version: 1.5.2
mlflow_version: 2.16.2
model_uuid: 3b4c0e0f5a4e4e7c8c6a2d9e4d4f5b0a
saved_input_example_info:
  artifact_path: input_example.json
  pandas_orient: split
  type: dataframe
signature:
  inputs: '[{"type": "double", "name": "sepal length (cm)", "required": true}, {"type":
    "long", "name": "petals", "required": false}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
  params: null
"""


def test_reads_mlflow_columns_and_tensors():
    found = sig.from_mlmodel(MLMODEL, input_example={"columns": ["sepal length (cm)", "petals"], "data": [[5.1, 2]]})
    assert found == {
        "inputs": [
            {"name": "sepal length (cm)", "type": "double", "shape": None, "required": True},
            {"name": "petals", "type": "long", "shape": None, "required": False},
        ],
        "outputs": [{"name": "", "type": "int64", "shape": [-1], "required": True}],
        "input_example": {"columns": ["sepal length (cm)", "petals"], "data": [[5.1, 2]]},
        "source": "MLmodel",
    }
    assert sig.example_path(MLMODEL) == "input_example.json"


def test_an_mlmodel_without_signature_has_none():
    assert sig.from_mlmodel("flavors: {}\n") is None
    assert sig.from_mlmodel(b"artifact_path: model\n") is None


def test_an_mlmodel_is_read_safely():
    # yaml.safe_load refuses Python object tags instead of building the object.
    with pytest.raises(sig.SignatureError) as raised:
        sig.from_mlmodel("signature: !!python/object/apply:os.system ['echo hi']\n")
    assert raised.value.field == "MLmodel"
    with pytest.raises(sig.SignatureError):
        sig.from_mlmodel("signature: {inputs: '[not json'}\n")


def test_complex_mlflow_types_read_as_text():
    found = sig.normalise({"inputs": [{"name": "tags", "type": {"type": "array", "items": {"type": "string"}}}]})
    assert found["inputs"][0]["type"] == "array<string>"


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ([], "signature"),
        ({"inputs": "nope"}, "signature.inputs"),
        ({"inputs": [{"name": "a"}]}, "signature.inputs[0].type"),
        ({"inputs": [{"name": "a", "type": ""}]}, "signature.inputs[0].type"),
        ({"inputs": [{"name": "a", "type": 3}]}, "signature.inputs[0].type"),
        ({"inputs": [{"name": 5, "type": "double"}]}, "signature.inputs[0].name"),
        ({"inputs": [{"name": "a", "type": "double"}, {"name": "a", "type": "long"}]}, "signature.inputs[1].name"),
        ({"outputs": [{"type": "double", "shape": [-2]}]}, "signature.outputs[0].shape"),
        ({"outputs": [{"type": "tensor", "tensor-spec": {"shape": [1]}}]}, "signature.outputs[0].tensor-spec.dtype"),
        ({"inputs": [{"type": "double", "required": "yes"}]}, "signature.inputs[0].required"),
        ({"inputs": [], "outputs": []}, "signature.inputs"),
        ({"inputs": [{"type": "double"}], "input_example": float("nan")}, "signature.input_example"),
        ({"inputs": [{"type": "double"}], "colour": "red"}, "signature.colour"),
    ],
)
def test_malformed_signatures_name_the_field(value, field):
    with pytest.raises(sig.SignatureError) as raised:
        sig.normalise(value)
    assert raised.value.field == field
    assert str(raised.value).startswith(field)


def _columns(*specs):
    return [{"name": n, "type": t, "shape": None, "required": r} for n, t, r in specs]


def test_diff_marks_added_removed_and_retyped_columns():
    old = {
        "inputs": _columns(("age", "long", True), ("city", "string", True)),
        "outputs": _columns(("p", "double", True)),
    }
    new = {"inputs": _columns(("age", "double", True), ("income", "double", False)), "outputs": old["outputs"]}
    result = sig.diff(old, new)
    assert [(c.key, c.status) for c in result.inputs] == [("age", "retyped"), ("city", "removed"), ("income", "added")]
    assert [c.status for c in result.outputs] == ["same"]
    assert result.problems() == ["input 'age' changed from long to double", "input 'city' was removed"]
    assert not result.compatible


def test_optional_new_inputs_stay_compatible_but_required_ones_and_new_outputs_do_not():
    old = {"inputs": _columns(("age", "long", True)), "outputs": _columns(("p", "double", True))}
    optional = {"inputs": [*old["inputs"], *_columns(("x", "double", False))], "outputs": old["outputs"]}
    assert sig.diff(old, optional).compatible
    required = {"inputs": [*old["inputs"], *_columns(("x", "double", True))], "outputs": old["outputs"]}
    assert sig.diff(old, required).problems() == ["input 'x' (double) is new and required"]
    more_outputs = {"inputs": old["inputs"], "outputs": [*old["outputs"], *_columns(("q", "double", True))]}
    assert sig.diff(old, more_outputs).problems() == ["output 'q' (double) is new"]


def test_tensors_compare_by_position_dtype_and_shape():
    old = {"inputs": [{"name": "", "type": "float32", "shape": [-1, 4], "required": True}]}
    new = {"inputs": [{"name": "", "type": "float32", "shape": [-1, 5], "required": True}]}
    [change] = sig.diff(old, new).inputs
    assert (change.key, change.status, change.old_type, change.new_type) == (
        "#0",
        "retyped",
        "float32[?, 4]",
        "float32[?, 5]",
    )


def test_side_by_side_marks_each_cell_against_the_first():
    a = {"inputs": _columns(("age", "long", True), ("city", "string", True))}
    b = {"inputs": _columns(("age", "double", True), ("zip", "string", True))}
    rows = sig.side_by_side([a, b, None], "inputs")
    assert [(r.key, r.cells) for r in rows] == [
        ("age", [("long", "same"), ("double", "retyped"), (None, "removed")]),
        ("city", [("string", "same"), (None, "removed"), (None, "removed")]),
        ("zip", [(None, "absent"), ("string", "added"), (None, "absent")]),
    ]
