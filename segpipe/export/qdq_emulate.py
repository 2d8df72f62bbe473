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
machine measured over 90%. :func:`gate_session` therefore turns ONNX Runtime's graph optimizations
off (``ORT_DISABLE_ALL``): no node is fused, no integer kernel runs (:func:`integer_ops` shows
which ops a session runs), and the same figure comes out on any x86 or ARM CPU.

Engineer note: :func:`gate_session` and :func:`gate_runner` are meant to be reused wherever an INT8
Q/DQ model must be run for its accuracy rather than its speed on this CPU.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

#: One line saying what the gate's figures emulate (printed by ``quantize``, recorded in metadata).
EMULATION = (
    "Q/DQ graph run as written in ONNX Runtime with graph optimizations off: QuantizeLinear/"
    "DequantizeLinear as the ONNX spec says, convolutions in FP32 between them (TensorRT's INT8 "
    "arithmetic: int32 accumulation, no saturation), no CPU integer kernels"
)

#: Short form for table titles.
EMULATION_SHORT = "Q/DQ emulated in FP32 (TensorRT's INT8 arithmetic, no CPU integer kernels)"

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


def _options(ort: Any, threads: int, optimized: Path | None = None) -> Any:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = int(threads)
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if optimized is not None:
        so.optimized_model_filepath = str(optimized)
    return so


def gate_session(path: str | Path, threads: int = 0) -> Any:
    """An ONNX Runtime CPU session of ``path`` that runs the graph as written (no fusion, so a
    Q/DQ graph never reaches the CPU's integer kernels). Used for the FP32 reference too, so both
    sides of the gate run the same way."""
    import onnxruntime as ort

    return ort.InferenceSession(str(path), _options(ort, threads), providers=["CPUExecutionProvider"])


def gate_runner(path: str | Path, threads: int = 0, reporter: Any = None) -> Any:
    """A :class:`~segpipe.runtime.onnxruntime.OnnxRunner` of ``path`` (metadata, pre-processing,
    batching as usual) whose session is :func:`gate_session`'s: ``evaluate`` on it gives the mIoU
    TensorRT's INT8 arithmetic would give, on any CPU."""
    from segpipe.runtime.onnxruntime import OnnxRunner

    runner = OnnxRunner(path, device="cpu", threads=threads, reporter=reporter)
    runner.session = gate_session(path, threads)
    return runner


def integer_ops(path: str | Path, emulated: bool = True) -> list[str]:
    """The integer-kernel op types (:data:`INTEGER_OPS`) in the graph ONNX Runtime actually runs
    for ``path``: with the gate's options (``emulated``), or with ORT's fusions on (``ORT_ENABLE_EXTENDED``,
    where the Q/DQ -> QLinear* fusions happen)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="segpipe-ortopt-") as tmp:
        saved = Path(tmp) / "optimized.onnx"
        so = _options(ort, 1, saved)
        if not emulated:
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        proto = onnx.load(str(saved), load_external_data=False)
    return sorted({n.op_type for n in proto.graph.node if n.op_type in INTEGER_OPS})
