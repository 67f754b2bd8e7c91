"""Real model files for the safety scan tests, malicious and benign, built here (no torch, no TensorFlow, no h5py).

The malicious ones do what attackers do: a `__reduce__` that calls os.system, in a plain pickle, inside joblib (after
a NumPy array, so the scanner must step over joblib's raw array bytes), as PyTorch's `data.pkl`, in a NumPy object
array; a Keras model with a Lambda layer, as a Keras 3 `.keras` zip and as a Keras 2 `.h5` (HDF5).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile


class Exploit:
    """Runs a shell command when unpickled."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/pwned",))


def malicious_pickle() -> bytes:
    return pickle.dumps(Exploit(), protocol=4)


def malicious_joblib() -> bytes:
    import joblib
    import numpy as np

    buffer = io.BytesIO()
    # The exploit comes after a NumPy array whose bytes joblib writes raw between the opcodes.
    joblib.dump({"weights": np.arange(1000, dtype="float64"), "hook": Exploit()}, buffer)
    return buffer.getvalue()


def benign_joblib() -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(demo_estimator(), buffer)
    return buffer.getvalue()


def torch_zip(payload: bytes) -> bytes:
    """The layout torch.save writes: <name>/data.pkl, <name>/data/<storage>, <name>/version, <name>/byteorder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/data/0", struct.pack("<4f", 1.0, 2.0, 3.0, 4.0))
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


def benign_torch_state_dict_pickle() -> bytes:
    """What torch.save(model.state_dict()) writes as data.pkl: an OrderedDict of tensors rebuilt by
    torch._utils._rebuild_tensor_v2 from persistent storage ids. Pickled with stand-ins for torch's modules, so the
    opcodes are the real ones without installing torch."""
    import collections
    import sys
    import types

    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):  # never called: the scanner does not load
        raise AssertionError

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    torch.FloatStorage, torch._utils, utils._rebuild_tensor_v2 = FloatStorage, utils, _rebuild_tensor_v2

    class Tensor:
        def __reduce__(self):
            storage = _Storage()
            return (_rebuild_tensor_v2, (storage, 0, (2, 2), (2, 1), False, collections.OrderedDict()))

    class _Storage:
        pass

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", FloatStorage, "0", "cpu", 4) if isinstance(obj, _Storage) else None

    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    try:
        buffer = io.BytesIO()
        Pickler(buffer, protocol=2).dump(collections.OrderedDict(weight=Tensor()))
        return buffer.getvalue()
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def keras_zip(with_lambda: bool) -> bytes:
    layers = [{"class_name": "Dense", "config": {"name": "dense", "units": 4}}]
    if with_lambda:
        layers.append(
            {
                "module": "keras.layers",
                "class_name": "Lambda",
                "config": {"name": "backdoor", "function": {"class_name": "__lambda__", "config": {"code": "4wEA"}}},
            }
        )
    config = {"module": "keras", "class_name": "Sequential", "config": {"name": "seq", "layers": layers}}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.6.0"}))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(64))
    return buffer.getvalue()


def keras_h5(with_lambda: bool) -> bytes:
    """An HDF5 file as Keras 2's model.save("m.h5") leaves it: the signature, then the model config as a JSON string
    attribute (`model_config`) among the binary structures."""
    layers = [{"class_name": "InputLayer", "config": {"name": "input"}}]
    if with_lambda:
        layers.append({"class_name": "Lambda", "config": {"name": "backdoor", "function": ["4wEAAAAA", None, None]}})
    config = json.dumps({"class_name": "Functional", "config": {"layers": layers}})
    return (
        b"\x89HDF\r\n\x1a\n"
        + bytes(range(256)) * 4
        + b"model_config\x00"
        + config.encode()
        + b"\x00keras_version\x002.15.0\x00"
        + bytes(512)
    )


def npy(array) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def safetensors() -> bytes:
    header = json.dumps({"weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}).encode()
    return struct.pack("<Q", len(header)) + header + struct.pack("<4f", 1, 2, 3, 4)


def onnx() -> bytes:
    return b"\x08\x07\x12\x07pytorch\x1a\x032.1:\x00"


def demo_estimator():
    """What the demo trains (registry/demo/recipes.py): a Pipeline of StandardScaler and an estimator."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    return Pipeline([("scaler", StandardScaler()), ("estimator", SGDClassifier(random_state=0))]).fit(X, y)


def demo_pickle() -> bytes:
    return pickle.dumps(demo_estimator(), protocol=4)
