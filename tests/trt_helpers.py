"""Tiny ONNX models for the TensorRT tests (built with ``onnx.helper``, no torch needed).

``make_seg_onnx`` writes a segpipe-contract model: input ``input_1`` N×H×W×3 RGB 0-255 (float32
or uint8), normalisation inside the graph, a 1×1 convolution to ``classes`` channels, output
``output`` (logits N×C×H×W, or the class map N×H×W). ``half=True`` computes in FP16 with FP32 I/O,
as ``segpipe export-onnx --half`` does. ``reference_logits`` computes the same thing with numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from segpipe._optional import available
from segpipe.modelinfo import ModelInfo

HAS_TRT = available("tensorrt")
no_trt = pytest.mark.skipif(HAS_TRT, reason="tensorrt is installed here; these check the message without it")


def one_line(exc: pytest.ExceptionInfo) -> str:
    """The exception's message, asserted to be one line."""
    text = str(exc.value)
    assert "\n" not in text, text
    return text

WEIGHT_SEED = 1


def weights(classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The 1×1 conv weight (C×3×1×1) and bias (C) the tiny model uses."""
    rng = np.random.default_rng(WEIGHT_SEED)
    return rng.normal(size=(classes, 3, 1, 1)).astype(np.float32), rng.normal(size=(classes,)).astype(
        np.float32
    )


def make_seg_onnx(
    path: str | Path,
    dims: tuple[int | str, ...] = ("batch", "height", "width", 3),
    classes: int = 4,
    size: tuple[int, int] = (64, 32),
    half: bool = False,
    metadata: bool = True,
    input_dtype: str = "float32",
    output_kind: str = "logits",
    opset: int = 17,
    int8: bool = False,
) -> Path:
    """Write the tiny segmentation model to ``path`` and return it (``size`` is (W, H)).

    ``int8=True`` quantizes the convolution explicitly, as an INT8 export does: QuantizeLinear /
    DequantizeLinear on the activation (per-tensor) and on the weight (per-channel, axis 0), signed
    INT8, zero points 0; the metadata is left at ``fp32`` so the Q/DQ nodes alone mark it INT8.
    """
    elem_in = TensorProto.UINT8 if input_dtype == "uint8" else TensorProto.FLOAT
    compute = TensorProto.FLOAT16 if half else TensorProto.FLOAT
    np_compute = np.float16 if half else np.float32
    w, b = weights(classes)
    inits = [
        numpy_helper.from_array(np.float32(255.0).reshape(()), "scale"),
        numpy_helper.from_array(w.astype(np_compute), "W"),
        numpy_helper.from_array(b.astype(np_compute), "B"),
    ]
    nodes = [
        helper.make_node("Cast", ["input_1"], ["x_f"], to=TensorProto.FLOAT, name="cast_in"),
        helper.make_node("Div", ["x_f", "scale"], ["x_n"], name="normalize"),
        helper.make_node("Transpose", ["x_n"], ["x_nchw"], perm=[0, 3, 1, 2], name="to_nchw"),
        helper.make_node("Cast", ["x_nchw"], ["x_c"], to=compute, name="cast_compute"),
    ]
    conv_in, conv_w = "x_c", "W"
    if int8:
        w_scale = (np.abs(w).reshape(classes, -1).max(axis=1) / 127).astype(np.float32)
        w_q = np.clip(np.round(w / w_scale[:, None, None, None]), -127, 127).astype(np.int8)
        inits = [i for i in inits if i.name != "W"] + [
            numpy_helper.from_array(w_q, "W_q"),
            numpy_helper.from_array(w_scale, "W_scale"),
            numpy_helper.from_array(np.zeros(classes, np.int8), "W_zp"),
            numpy_helper.from_array(np.float32(1 / 127), "x_scale"),
            numpy_helper.from_array(np.int8(0), "x_zp"),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", ["x_c", "x_scale", "x_zp"], ["x_q"], name="x_quant"),
            helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zp"], ["x_dq"], name="x_dequant"),
            helper.make_node("DequantizeLinear", ["W_q", "W_scale", "W_zp"], ["W_dq"], axis=0, name="w_dq"),
        ]
        conv_in, conv_w = "x_dq", "W_dq"
    nodes += [
        helper.make_node("Conv", [conv_in, conv_w, "B"], ["y_c"], name="head_conv"),
        helper.make_node("Cast", ["y_c"], ["logits"], to=TensorProto.FLOAT, name="cast_out"),
    ]
    batch, height, width = dims[0], dims[1], dims[2]
    if output_kind == "labels":
        nodes.append(helper.make_node("ArgMax", ["logits"], ["output"], axis=1, keepdims=0, name="argmax"))
        out = helper.make_tensor_value_info("output", TensorProto.INT64, [batch, height, width])
    else:
        nodes.append(helper.make_node("Identity", ["logits"], ["output"], name="out"))
        out = helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, classes, height, width])
    graph = helper.make_graph(
        nodes, "tiny_seg", [helper.make_tensor_value_info("input_1", elem_in, list(dims))], [out], inits
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="segpipe-tests"
    )
    model.ir_version = 8
    if metadata:
        info = ModelInfo(
            arch="Unet",
            encoder="tiny",
            num_classes=classes,
            input_size=size,
            layout="NHWC",
            input_dtype=input_dtype,
            precision="fp16" if half else "fp32",
            output_kind=output_kind,
            class_names=tuple(f"c{i}" for i in range(classes)),
        )
        helper.set_model_props(model, info.to_metadata())
    onnx.checker.check_model(model)
    p = Path(path)
    onnx.save(model, str(p))
    return p


def reference_logits(images: np.ndarray, classes: int = 4) -> np.ndarray:
    """What the tiny model computes, in numpy (N×H×W×3 -> N×C×H×W)."""
    w, b = weights(classes)
    x = images.astype(np.float32) / 255.0
    return np.einsum("nhwc,kc->nkhw", x, w[:, :, 0, 0]) + b[None, :, None, None]
