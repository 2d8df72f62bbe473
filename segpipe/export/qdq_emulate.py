"""What the INT8 gate measures: a Q/DQ graph run *as written*, independent of the CPU.

TensorRT builds an explicitly quantized (Q/DQ) graph into INT8 kernels that multiply INT8 and
accumulate in INT32 without saturation, then scale. A Q/DQ graph evaluated as written, each
QuantizeLinear rounding (half to even) and clamping to [-128, 127], each DequantizeLinear
multiplying back, every Conv/Add/Relu in FP32 between them, computes the same thing up to float
rounding: this is the arithmetic the gate emulates.

ONNX Runtime with its default graph optimizations does something else on the CPU: it fuses
DequantizeLinear -> Conv -> QuantizeLinear into ``QLinearConv`` (and friends), whose S8S8 kernels
saturate their 16-bit intermediate sums on CPUs without AVX-512 VNNI / AVX-VNNI (ONNX Runtime's
quantization documentation says so for AVX2). A gate run that way measures the accidents of the
CPU it runs on, not the model TensorRT will run: 75% agreement on an AVX2 machine where a VNNI
machine measured over 90%. The gate's runners (:func:`gate_graph_runner`, :func:`gate_runner`)
therefore turn ONNX Runtime's graph optimizations off (``ORT_DISABLE_ALL``): no node is fused, no integer kernel runs (:func:`integer_ops` shows
which ops a session runs). And since a float convolution's sum depends on the order a CPU's kernel
adds in, which moves values across INT8 rounding steps (the tests' tiny model: 99.42% agreement
between numpy's and ONNX Runtime's float sums of the same Q/DQ graph), each INT8 convolution is
rewritten to sum its integers, exact in float32 in any order, and scale after
(:func:`integer_convolutions`): the same figure comes out on any x86 or ARM CPU.

A ``segpipe quantize --target cpu`` file (U8S8: uint8 activations with a zero point, 7-bit weights)
is meant for ONNX Runtime's and OpenVINO's CPU kernels, which also accumulate exactly in int32 (the
7-bit weights keep ``vpmaddubsw`` from saturating without VNNI): the gate runs it the same way,
each activation's zero point subtracted before the integer sums, and says it emulates those
kernels, not TensorRT (:func:`emulation`).

:func:`gate_graph_runner` and :func:`gate_runner` are meant to be reused wherever an INT8 Q/DQ
model must be run for its accuracy rather than its speed on this CPU. Their sessions are opened by
:mod:`segpipe.runtime.onnxruntime` like every other (only the options differ).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

#: One line saying what the gate's figures emulate for a TensorRT file (S8S8: ``segpipe quantize``;
#: printed by ``quantize``, recorded in metadata).
EMULATION = (
    "Q/DQ graph run as written in ONNX Runtime with graph optimizations off, each INT8 convolution "
    "summed over its integers then scaled (TensorRT's INT8 arithmetic: exact int32 accumulation, no "
    "saturation); no CPU integer kernels, the same figure on any CPU"
)
#: The same for a CPU file (U8S8, 7-bit weights: ``segpipe quantize --target cpu``).
EMULATION_CPU = (
    "Q/DQ graph run as written in ONNX Runtime with graph optimizations off, each INT8 convolution "
    "summed over its integers (activation minus its zero point, times the 7-bit weight) then scaled "
    "(the arithmetic of ONNX Runtime's and OpenVINO's U8S8 CPU kernels: exact int32 accumulation, "
    "which 7-bit weights keep from saturating without VNNI); no CPU integer kernels, the same figure "
    "on any CPU"
)

#: Short forms for table titles.
EMULATION_SHORT = "Q/DQ emulated as TensorRT computes INT8 (exact integer sums), no CPU integer kernels"
EMULATION_CPU_SHORT = (
    "Q/DQ emulated as ONNX Runtime's / OpenVINO's U8S8 CPU kernels compute INT8 (exact integer "
    "sums, 7-bit weights), no CPU integer kernels"
)


def emulation(target: str) -> tuple[str, str]:
    """(what the gate emulates, its short form) for a ``--target`` (``tensorrt`` or ``cpu``)."""
    return (EMULATION_CPU, EMULATION_CPU_SHORT) if target == "cpu" else (EMULATION, EMULATION_SHORT)


#: Op types of ONNX Runtime's fused integer kernels (what the gate must never run).
INTEGER_OPS = frozenset(
    {
        "ConvInteger",
        "MatMulInteger",
        "QLinearConv",
        "QLinearMatMul",
        "QLinearAdd",
        "QLinearMul",
        "QLinearConcat",
        "QLinearSigmoid",
        "QLinearLeakyRelu",
        "QLinearAveragePool",
        "QLinearGlobalAveragePool",
        "QLinearSoftmax",
        "QLinearReduceMean",
        "QLinearWhere",
        "QGemm",
        "DynamicQuantizeMatMul",
        "MatMulIntegerToFloat",
    }
)


def integer_convolutions(proto: Any) -> tuple[Any, int]:
    """(``proto`` with each INT8 convolution computed as integer kernels compute it, how many).

    ``DQ(q_a; s_a, z_a) -> Conv <- DQ(q_w; s_w per channel)`` becomes ``Conv(float(q_a) - z_a,
    float(q_w))`` times ``s_a * s_w`` per output channel, plus the bias: the same function, but the
    convolution now sums products of integers, which float32 holds exactly (below 2**24) in any
    order. That is TensorRT's INT8 arithmetic for a symmetric S8S8 file (``z_a`` = 0) and that of
    ONNX Runtime's / OpenVINO's U8S8 CPU kernels for a ``--target cpu`` file (uint8 ``z_a``; its
    padding, float 0, is ``q_a = z_a``, an integer 0 after the subtraction, as Conv pads). So the
    values every following QuantizeLinear rounds do not depend on how this CPU's float kernels
    order their sums (AVX2 or AVX-512), and neither does the gate's figure. Convolutions whose
    weights have a non-zero zero point, or whose operands are not both dequantized, are left as
    they are, and so are quantized MatMul/Gemm (transformer encoders): those still sum in float.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    proto = onnx.ModelProto.FromString(proto.SerializeToString())  # the caller's graph stays
    graph = proto.graph
    init = {i.name: i for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    uses.update({o.name: uses.get(o.name, 0) + 1 for o in graph.output})

    def array(name: str) -> Any:  # an initializer, also behind Identity nodes (the exporter's dedup)
        while name not in init and name in producer and producer[name].op_type == "Identity":
            name = producer[name].input[0]
        return numpy_helper.to_array(init[name]) if name in init else None

    def dq_parts(name: str, symmetric: bool) -> tuple[Any, Any, Any, float] | None:
        """(quantized input, scale array, DQ node, zero point) of an 8-bit DequantizeLinear: a
        symmetric INT8 one, or (``symmetric=False``: activations) one with a single zero point."""
        dq = producer.get(name)
        if dq is None or dq.op_type != "DequantizeLinear" or len(dq.input) < 2:
            return None
        scale = array(dq.input[1])
        zp = array(dq.input[2]) if len(dq.input) > 2 and dq.input[2] else np.zeros((), np.uint8)
        if scale is None or zp is None or zp.dtype not in (np.int8, np.uint8):
            return None
        if symmetric:
            return (
                None if zp.dtype != np.int8 or zp.any() else (dq.input[0], scale.astype(np.float32), dq, 0.0)
            )
        if zp.size != 1:
            return None
        return dq.input[0], scale.astype(np.float32), dq, float(zp.reshape(()))

    new_nodes, removed, count = [], set(), 0
    for original in graph.node:
        node = onnx.NodeProto()
        node.CopyFrom(original)
        a = dq_parts(node.input[0], symmetric=False) if node.op_type == "Conv" else None
        w = dq_parts(node.input[1], symmetric=True) if a is not None and len(node.input) > 1 else None
        q_w = array(w[0]) if w is not None else None
        bias = array(node.input[2]) if w is not None and len(node.input) > 2 and node.input[2] else None
        if (
            a is None
            or w is None
            or q_w is None
            or a[1].size != 1
            or w[1].size not in (1, q_w.shape[0])
            or (len(node.input) > 2 and node.input[2] and bias is None)
        ):
            new_nodes.append(node)
            continue
        count += 1
        stem = f"{node.name or node.output[0]}__int"
        channels = q_w.shape[0]
        scale = (a[1].reshape(()) * np.broadcast_to(w[1].reshape(-1), (channels,))).astype(np.float32)
        graph.initializer.extend(
            [
                numpy_helper.from_array(q_w.astype(np.float32), f"{stem}_w"),
                numpy_helper.from_array(scale.reshape(1, channels, 1, 1), f"{stem}_scale"),
            ]
        )
        conv = helper.make_node("Conv", [f"{stem}_x", f"{stem}_w"], [f"{stem}_acc"], name=f"{stem}_conv")
        conv.attribute.extend(node.attribute)
        tail = [node.output[0]] if bias is None else [f"{stem}_scaled"]
        x = [helper.make_node("Cast", [a[0]], [f"{stem}_x"], name=f"{stem}_cast", to=onnx.TensorProto.FLOAT)]
        if a[3]:  # an asymmetric activation (U8S8): the integer is q - zero point, 0 where Conv pads
            x[0].output[0] = f"{stem}_q"
            graph.initializer.append(numpy_helper.from_array(np.array(a[3], np.float32), f"{stem}_zp"))
            x.append(helper.make_node("Sub", [f"{stem}_q", f"{stem}_zp"], [f"{stem}_x"], name=f"{stem}_sub"))
        new_nodes += [
            *x,
            conv,
            helper.make_node("Mul", [f"{stem}_acc", f"{stem}_scale"], tail, name=f"{stem}_mul"),
        ]
        if bias is not None:
            graph.initializer.append(
                numpy_helper.from_array(bias.astype(np.float32).reshape(1, channels, 1, 1), f"{stem}_b")
            )
            new_nodes.append(
                helper.make_node("Add", tail + [f"{stem}_b"], [node.output[0]], name=f"{stem}_add")
            )
        uses[node.input[1]] -= 1
        if uses[node.input[1]] == 0:
            removed.add(w[2].output[0])
    del graph.node[:]
    graph.node.extend(
        n for n in new_nodes if not (n.op_type == "DequantizeLinear" and n.output[0] in removed)
    )
    return proto, count


def emulated_graph(path: str | Path) -> bytes | None:
    """``path``'s graph with its INT8 convolutions summed over integers (:func:`integer_convolutions`),
    serialized; ``None`` when it has none (an FP32 graph runs as it is)."""
    import onnx

    proto, count = integer_convolutions(onnx.load(str(path)))
    return proto.SerializeToString() if count else None


def gate_graph_runner(path: str | Path, threads: int = 0) -> Any:
    """A :class:`~segpipe.runtime.onnxruntime.GraphRunner` of ``path`` as the gate runs it: the
    graph as written (no fusion, so a Q/DQ graph never reaches the CPU's integer kernels), its INT8
    convolutions summed over integers. Used for the FP32 reference too (which has none), so both
    sides of the gate run the same way."""
    from segpipe.runtime.onnxruntime import GraphRunner

    return GraphRunner(path, graph=emulated_graph(path), optimize="none", threads=threads)


def gate_runner(path: str | Path, threads: int = 0, reporter: Any = None) -> Any:
    """An :class:`~segpipe.runtime.onnxruntime.OnnxRunner` of ``path`` (metadata, pre-processing,
    batching as usual) running the graph as :func:`gate_graph_runner` does: ``evaluate`` on it gives
    the mIoU TensorRT's INT8 arithmetic would give, on any CPU."""
    from segpipe.runtime.onnxruntime import OnnxRunner

    graph = emulated_graph(path)
    return OnnxRunner(path, device="cpu", threads=threads, reporter=reporter, graph=graph, optimize="none")


def integer_ops(path: str | Path, emulated: bool = True) -> list[str]:
    """The integer-kernel op types (:data:`INTEGER_OPS`) in the graph ONNX Runtime actually runs
    for ``path``: with the gate's options (``emulated``), or with ORT's fusions on (``ORT_ENABLE_EXTENDED``,
    where the Q/DQ -> QLinear* fusions happen)."""
    import onnx

    from segpipe.runtime.onnxruntime import open_session, session_options

    with tempfile.TemporaryDirectory(prefix="segpipe-ortopt-") as tmp:
        saved = Path(tmp) / "optimized.onnx"
        # the graph gate_graph_runner runs, or the file with ORT's fusions
        graph = emulated_graph(path) if emulated else None
        open_session(graph or path, session_options(1, "none" if emulated else "extended", saved))
        proto = onnx.load(str(saved), load_external_data=False)
    return sorted({n.op_type for n in proto.graph.node if n.op_type in INTEGER_OPS})
