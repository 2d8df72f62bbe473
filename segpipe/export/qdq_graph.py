"""The FP32 graph ``segpipe quantize`` starts from: its input, whether it is already quantized, the
nodes left in FP32 (input normalisation, segmentation head), opset and node names the quantizers need.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segpipe.errors import ConfigError
from segpipe.export.graph import graph_inputs
from segpipe.imagesize import check_pixels
from segpipe.modelinfo import ModelInfo
from segpipe.progress import Reporter

#: Op types that end a segmentation network and lose accuracy in INT8 (kept in FP32 with the head).
TAIL_OPS = ("Resize", "Softmax", "Sigmoid", "ArgMax", "Upsample")
Q_OPS = ("QuantizeLinear", "DequantizeLinear")


@dataclass(frozen=True)
class GraphIO:
    """What the quantizer needs to know about the FP32 graph's input."""

    name: str
    batch: int
    size: tuple[int, int]
    dtype: Any


def qdq_counts(proto: Any) -> dict[str, int]:
    """How many QuantizeLinear and DequantizeLinear nodes a graph holds."""
    counts = dict.fromkeys(Q_OPS, 0)
    for node in proto.graph.node:
        if node.op_type in counts:
            counts[node.op_type] += 1
    return counts


def check_not_quantized(proto: Any, path: Path) -> None:
    """One-line error when ``proto`` already is a quantized graph."""
    props = {p.key: p.value for p in proto.metadata_props}
    n = sum(qdq_counts(proto).values())
    integer_ops = [nd.op_type for nd in proto.graph.node if nd.op_type.startswith(("QLinear", "ConvInteger"))]
    if n or integer_ops or props.get("segpipe.precision") == json.dumps("int8"):
        what = f"{n} Q/DQ nodes" if n else (integer_ops[0] if integer_ops else "precision int8 metadata")
        raise ConfigError(
            f"{path} is already quantized ({what}); quantize the FP32 model segpipe export-onnx writes"
        )
    if props.get("segpipe.precision") == json.dumps("fp16") or any(
        i.data_type == 10 for i in proto.graph.initializer
    ):
        raise ConfigError(f"{path} is an FP16 graph; quantize the FP32 model (export-onnx without --half)")


def graph_io(proto: Any, info: ModelInfo | None, path: Path) -> GraphIO:
    """Input name, batch, (W, H) and dtype of the graph; dynamic axes take the metadata's size."""

    inputs = graph_inputs(proto)
    if len(inputs) != 1:
        raise ConfigError(f"{path}: the graph has {len(inputs)} inputs; segpipe models have one")
    inp = inputs[0]
    tt = inp.type.tensor_type
    dims = [d.dim_value if d.dim_value > 0 else None for d in tt.shape.dim]
    if len(dims) != 4:
        raise ConfigError(f"{path}: input {inp.name} has {len(dims)} axes; expected N×H×W×3")
    nhwc = dims[3] == 3 or (info is not None and info.layout == "NHWC")
    if not nhwc:
        raise ConfigError(f"{path}: input {inp.name} is not NHWC (N×H×W×3) as segpipe export-onnx writes it")
    if info is not None:
        width, height = info.input_size
    else:
        width, height = dims[2], dims[1]
    width = dims[2] or width
    height = dims[1] or height
    if not width or not height:
        raise ConfigError(
            f"{path}: input {inp.name} has dynamic H and W and no segpipe metadata says the size"
        )
    check_pixels(int(width), int(height), f"{path}: input {inp.name} declares")  # before allocating
    dtype = {1: np.float32, 2: np.uint8}.get(tt.elem_type)
    if dtype is None:
        raise ConfigError(f"{path}: input {inp.name} is neither float32 nor uint8 pixels")
    return GraphIO(inp.name, dims[0] or 1, (int(width), int(height)), dtype)


def head_nodes(proto: Any) -> list[str]:
    """Names of the nodes from the last convolution before the output to the output.

    That is the segmentation head (its 1×1 or 3×3 convolution giving class scores) and what
    follows it (Resize, Softmax, Sigmoid, ArgMax, Transpose, Cast...). Walks back from the graph's
    output through single producers until a Conv.
    """
    producer = {out: node for node in proto.graph.node for out in node.output}
    names: list[str] = []
    seen: set[str] = set()
    stack = [o.name for o in proto.graph.output]
    while stack:
        node = producer.get(stack.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        names.append(node.name)
        if node.op_type == "Conv":
            continue  # the head's convolution: stop here on this path
        stack.extend(i for i in node.input if i in producer)
        if len(names) > 50:  # no convolution near the output: not a segmentation head
            return [n.name for n in proto.graph.node if n.op_type in TAIL_OPS]
    return names


def input_nodes(proto: Any) -> list[str]:
    """Names of the nodes between the graph's input and the first convolutions: the normalisation
    (``x * 1/(255 std) - mean/std``) and the NHWC -> NCHW transpose, with the constants they read.

    Left in FP32, the first Q/DQ pair sits on the normalised tensor that the first convolution
    reads, instead of on the 0-255 pixels (which symmetric INT8 would round to steps of 2) and on
    the per-channel mean/std constants (which per-tensor INT8 would round by up to half a percent).
    """
    consumers: dict[str, list[Any]] = {}
    for node in proto.graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    producer = {out: node for node in proto.graph.node for out in node.output}

    names: list[str] = []
    stack = [i.name for i in graph_inputs(proto)]
    seen: set[str] = set()
    while stack:
        for node in consumers.get(stack.pop(), []):
            if node.op_type == "Conv" or node.name in seen:
                continue
            seen.add(node.name)
            names.append(node.name)
            if len(names) > 20:  # no convolution near the input: leave the graph as it is
                return []
            stack.extend(node.output)
            names.extend(
                producer[i].name
                for i in node.input
                if i in producer and producer[i].op_type == "Constant" and producer[i].name not in names
            )
    return names


#: Per-channel QuantizeLinear/DequantizeLinear (their ``axis`` attribute) begin at opset 13.
MIN_OPSET = 13


def ensure_opset(proto: Any, path: Path, notes: list[str], reporter: Reporter) -> Any:
    """``proto`` at opset 13 or later: an older graph is converted (and the note says so)."""
    import onnx
    from onnx import version_converter

    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), MIN_OPSET)
    if opset >= MIN_OPSET:
        return proto
    try:
        converted = version_converter.convert_version(proto, MIN_OPSET)
        onnx.checker.check_model(converted)
    except Exception as e:
        raise ConfigError(
            f"{path}: opset {opset} has no per-channel Q/DQ and converting it to {MIN_OPSET} failed "
            f"({type(e).__name__}); re-export with segpipe export-onnx --opset 13 or later (default 17)"
        ) from e
    msg = f"{path.name} is opset {opset}; converted to opset {MIN_OPSET} (per-channel Q/DQ needs it)"
    notes.append(msg)
    reporter.warn(msg)
    return converted


def ensure_node_names(proto: Any) -> None:
    """Give every unnamed node a unique name (the quantizers select nodes by name)."""
    used = {n.name for n in proto.graph.node if n.name}
    for i, node in enumerate(proto.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in used:
                name += "_"
            node.name = name
            used.add(name)


def quantized_for(proto: Any) -> str | None:
    """What a Q/DQ graph was quantized for, in words, read from the graph itself (zero-point types
    and values, weight scales per channel or per tensor); ``None`` for a graph without Q/DQ."""
    from onnx import numpy_helper

    init = {i.name: i for i in proto.graph.initializer}
    producer = {out: node for node in proto.graph.node for out in node.output}
    # what the convolutions read as weights (through a DQ, or a Q -> DQ pair)
    conv_weights = {n.input[1] for n in proto.graph.node if n.op_type in ("Conv", "ConvTranspose", "Gemm")}
    dq_of = {n.input[0]: n.output[0] for n in proto.graph.node if n.op_type == "DequantizeLinear"}
    acts: set[str] = set()
    weights: set[str] = set()
    symmetric, per_channel, per_tensor = True, 0, 0
    for node in proto.graph.node:
        if node.op_type not in Q_OPS:
            continue
        source = node.input[0]
        is_weight = source in init or (
            node.op_type == "QuantizeLinear" and source in producer and producer[source].op_type == "Constant"
        )
        if node.op_type == "DequantizeLinear" and source in producer and producer[source].op_type in Q_OPS:
            continue  # the DQ of an activation's Q pair: its Q says it
        if node.op_type == "DequantizeLinear" and source not in init:
            continue
        zp = (
            numpy_helper.to_array(init[node.input[2]])
            if len(node.input) > 2 and node.input[2] in init
            else None
        )
        kind = str(zp.dtype) if zp is not None else "uint8"  # ONNX: no zero point means uint8
        symmetric = symmetric and (zp is None or not zp.any()) and kind != "uint8"
        (weights if is_weight else acts).add(kind)
        feeds_conv = node.output[0] in conv_weights or dq_of.get(node.output[0]) in conv_weights
        if is_weight and feeds_conv and len(node.input) > 1 and node.input[1] in init:
            if numpy_helper.to_array(init[node.input[1]]).size > 1:
                per_channel += 1
            else:
                per_tensor += 1
    if not acts and not weights:
        return None
    if per_channel and per_tensor:
        w_scale = "per output channel (some per tensor)"
    else:
        w_scale = "per output channel" if per_channel else "per tensor"
    if acts <= {"int8"} and weights <= {"int8"} and symmetric:
        return (
            "TensorRT 10/11 (explicit Q/DQ, built strongly typed): S8S8, signed INT8 activations and "
            f"weights, symmetric (every zero point 0), weights {w_scale}"
        )
    if "uint8" in acts:
        return (
            "ONNX Runtime on the CPU: U8S8, unsigned asymmetric INT8 activations, signed weights "
            f"{w_scale}; not TensorRT, which takes signed symmetric INT8 only"
        )
    return f"INT8 Q/DQ: activations {', '.join(sorted(acts)) or '-'}, weights {', '.join(sorted(weights)) or '-'} {w_scale}"
