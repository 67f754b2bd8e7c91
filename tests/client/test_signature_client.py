"""The client infers a signature from a pandas frame or a numpy array and sends it when registering."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from registry_client.signature import as_signature, infer_signature

from registry.lib import signature as server_side


def test_a_frame_gives_named_columns_with_mlflow_types_and_an_example():
    frame = pd.DataFrame(
        {
            "age": np.array([41, 42], dtype="int64"),
            "income": [1.5, np.nan],
            "city": ["Oslo", "Rome"],
            "ok": [True, False],
        }
    )
    found = infer_signature(frame, np.array([0.1, 0.9], dtype="float32"))
    assert [(c["name"], c["type"]) for c in found["inputs"]] == [
        ("age", "long"),
        ("income", "double"),
        ("city", "string"),
        ("ok", "boolean"),
    ]
    assert found["outputs"] == [{"name": "", "type": "float32", "shape": [-1], "required": True}]
    assert found["input_example"] == {
        "columns": ["age", "income", "city", "ok"],
        "data": [[41, 1.5, "Oslo", True], [42, None, "Rome", False]],
    }
    # What the client sends is what the server accepts.
    assert server_side.normalise(found)["source"] == "client"


def test_an_array_is_one_tensor_and_a_pair_gives_both_sides():
    features = np.zeros((10, 4), dtype="float64")
    found = as_signature((features, np.zeros(10, dtype="int64")))
    assert found["inputs"] == [{"name": "", "type": "float64", "shape": [-1, 4], "required": True}]
    assert found["outputs"][0]["type"] == "int64"
    assert len(found["input_example"]) == 5


def test_a_dict_is_sent_as_given_and_other_things_are_refused():
    assert as_signature({"inputs": [{"name": "a", "type": "long"}]}) == {"inputs": [{"name": "a", "type": "long"}]}
    assert as_signature(None) is None
    with pytest.raises(TypeError):
        as_signature("not data")


def test_register_model_with_a_frame_stores_its_signature(registry, tmp_path):
    (tmp_path / "model.pkl").write_bytes(b"weights")
    frame = pd.DataFrame({"age": [41, 42], "income": [1.0, 2.0]})
    with registry.start_run(experiment="signatures") as run:
        run.log_artifact(tmp_path / "model.pkl", artifact_path="model")
        version = run.register_model("scored", signature=frame)
    assert [c["name"] for c in version["signature"]["inputs"]] == ["age", "income"]
    assert version["signature"]["source"] == "client"
    assert registry.http.get("/models/scored/versions/1")["signature"] == version["signature"]
