"""Small model files built without training, for the schema, bounds and escapes tests: an ONNX graph
(NHWC input ``input_1``, one Transpose to N×C×H×W ``output``) with any metadata props, an engine
stand-in with any sidecar, a checkpoint with any ``model_info``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from segpipe.modelinfo import ModelInfo

#: A valid description of the tiny graph below: 3 classes, 32x32, NHWC.
GOOD = ModelInfo(
    arch="Unet",
    encoder="resnet18",
    num_classes=3,
    input_size=(32, 32),
    class_names=("bg", "a", "b"),
    colors=((0, 0, 0), (255, 0, 0), (0, 255, 0)),
    layout="NHWC",
)


def write_onnx(path: Path, props: Mapping[str, str]) -> Path:
    """A 3-channel NHWC -> NCHW Transpose graph whose ``metadata_props`` are ``props``."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Transpose", ["input_1"], ["output"], perm=[0, 3, 1, 2])],
        "tiny",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, [1, 32, 32, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 32, 32])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def good_sidecar() -> dict[str, Any]:
    """A complete, valid sidecar for an engine built from :data:`GOOD`."""
    return {
        "format": "segpipe-engine/1",
        "engine": "m.engine",
        "onnx": "m.onnx",
        "metadata": GOOD.to_metadata(),
        "tensorrt_version": "10.5.0",
        "gpu_name": "NVIDIA H200",
        "compute_capability": "9.0",
        "precision": "fp16",
        "onnx_precision": "fp32",
        "fp16_method": "builder-flag",
        "strongly_typed": False,
        "profile": {"input_1": {"min": [1, 32, 32, 3], "opt": [1, 32, 32, 3], "max": [1, 32, 32, 3]}},
        "inputs": [{"name": "input_1", "dtype": "float32", "dims": [1, 32, 32, 3]}],
        "outputs": [{"name": "output", "dtype": "float32", "dims": [1, 3, 32, 32]}],
        "workspace_mib": 1024,
        "opt_level": 3,
        "builder": "python",
        "segpipe_version": "0.1.0",
        "created": "2026-01-01T00:00:00+00:00",
    }


def write_engine(folder: Path, sidecar: Any | None = None, raw: str | bytes | None = None) -> Path:
    """``folder/m.engine`` (a few bytes: never deserialized here) and its sidecar, given as data
    (``sidecar``, JSON-encoded) or as the file's exact text (``raw``)."""
    engine = folder / "m.engine"
    engine.write_bytes(b"not a real plan")
    side = folder / "m.engine.json"
    if raw is not None:
        side.write_bytes(raw if isinstance(raw, bytes) else raw.encode())
    elif sidecar is not None:
        side.write_text(json.dumps(sidecar))
    return engine
