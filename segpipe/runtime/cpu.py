"""What this CPU does with INT8, in one place: the VNNI detection and what follows from it.

ONNX Runtime's CPU provider fuses a Q/DQ graph into integer kernels (QLinearConv, MatMulInteger).
On x86-64 without VNNI (AVX2, AVX-512 before Cascade Lake) those kernels multiply u8 x s8 pairs
with ``vpmaddubsw``, whose 16-bit sums saturate: a graph quantized for TensorRT (S8S8, full 8-bit
weights) then comes out less accurate than the model is (ONNX Runtime's quantization guide, "When
and why do I need to try U8U8?" / reduce_range). With VNNI (``avx512_vnni``, ``avx_vnni``) the
products accumulate in 32 bits and nothing saturates; ARM's kernels widen without saturating.

So for a CPU run of a Q/DQ model, :func:`ort_int8_settings` keeps ONNX Runtime's integer kernels
where they are exact and, where they saturate, runs the Q/DQ nodes as written (``session.
disable_quant_qdq``: convolutions in float on the quantized values, the arithmetic TensorRT
performs) and says so in one line. OpenVINO's INT8 kernels saturate the same way without VNNI
(measured with its AVX2 kernels, benchmarks/bench_cpu.py --isa AVX2), so :func:`auto_onnx_runtime`
gives it an S8S8 file only where VNNI is present; the file ``segpipe quantize --target cpu`` writes
(U8S8, 7-bit weights) cannot saturate and is the fast INT8 everywhere.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path
from typing import Any

#: CPU flags (``/proc/cpuinfo`` spelling) of the instructions that accumulate u8 x s8 products in
#: 32 bits without an intermediate 16-bit saturation.
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
#: The flags worth naming when saying which CPU a figure comes from.
SHOWN_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
_X86 = ("x86_64", "amd64", "i386", "i686", "x86")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags, lower case, ``/proc/cpuinfo`` spelling (``avx2``, ``avx512_vnni``).

    Linux: the ``flags`` (x86) or ``Features`` (ARM) line of ``/proc/cpuinfo``; elsewhere numpy's
    own dispatch detection, renamed to the same spelling. Empty when neither tells.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip().lower() in ("flags", "features"):
                    return frozenset(value.lower().split())
    except OSError:
        pass
    try:  # macOS, Windows: numpy detects the same features for its own SIMD dispatch
        from numpy._core._multiarray_umath import __cpu_features__ as feats  # type: ignore
    except Exception:
        return frozenset()
    names = {"AVX2": "avx2", "AVX512F": "avx512f", "AVX512VNNI": "avx512_vnni"}
    return frozenset(flag for key, flag in names.items() if feats.get(key))


def is_x86() -> bool:
    return platform.machine().lower() in _X86


def has_vnni() -> bool:
    """True when the CPU has VNNI (AVX-512 VNNI, AVX-VNNI or AMX-INT8)."""
    return any(flag in cpu_flags() for flag in VNNI_FLAGS)


def int8_kernels_saturate() -> bool:
    """True on x86-64 without VNNI, where ONNX Runtime's fused S8S8 kernels lose accuracy."""
    return is_x86() and not has_vnni()


def cpu_summary() -> str:
    """The CPU's name and its INT8-relevant flags, for figures and messages."""
    flags = cpu_flags()
    shown = [f for f in SHOWN_FLAGS if f in flags]
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            name = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), name)
    except OSError:
        pass
    return f"{name} ({' '.join(shown) or 'no AVX2/AVX-512/VNNI flags'})"


#: ``target`` of the calibration record of segpipe.export.quantize_cpu's files.
CPU_TARGET = "cpu-onnxruntime (U8S8, 7-bit weights: no saturation without VNNI)"
#: The ``segpipe.*`` metadata key holding how an INT8 graph was calibrated (JSON object).
CALIBRATION_KEY = "segpipe.calibration"
#: What the calibration record says of a ``quantize --target cpu`` file (over the S8S8 defaults).
CPU_RECORD = {
    "activations": "uint8 asymmetric per-tensor",
    "weights": "int8 symmetric per-channel, 7-bit range (reduce_range)",
    "target": CPU_TARGET,
}


def qdq_precision(path: str | Path) -> str | None:
    """``"int8"`` when the ONNX file holds QuantizeLinear/DequantizeLinear nodes (a Q/DQ model),
    ``"int8-cpu"`` when it is one quantized for CPUs without VNNI (``quantize_cpu``), else
    ``None``; ``None`` too for a file ONNX cannot parse (the runtime then says why)."""
    try:
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
    except Exception:
        return None
    ops = {n.op_type for n in proto.graph.node}
    if not ops & {"QuantizeLinear", "DequantizeLinear"}:
        return None
    from segpipe.modelinfo import metadata_value

    record = metadata_value({p.key: p.value for p in proto.metadata_props}, CALIBRATION_KEY, dict) or {}
    return "int8-cpu" if record.get("target") == CPU_TARGET else "int8"


#: ONNX Runtime's session config key that keeps Q/DQ nodes unfused (quantized values, float maths).
DISABLE_QDQ_FUSION = "session.disable_quant_qdq"


def ort_int8_settings(session_options: Any, path: str | Path) -> str:
    """Set up a CPU session of ``path`` so an INT8 Q/DQ model keeps its accuracy on this CPU.

    Where the integer kernels saturate (x86-64 without VNNI) and the file is a Q/DQ model, Q/DQ
    fusion is turned off (every other optimisation stays) and the returned line says so and what
    is faster; otherwise (a file quantized for such CPUs included: its 7-bit weights cannot
    saturate) nothing changes and ``""`` is returned.
    """
    if not int8_kernels_saturate() or qdq_precision(path) != "int8":
        return ""
    session_options.add_session_config_entry(DISABLE_QDQ_FUSION, "1")
    return (
        f"{path}: this CPU has no VNNI (avx512_vnni/avx_vnni), so ONNX Runtime's fused INT8 kernels "
        "would saturate and lose accuracy; its Q/DQ nodes run as written instead (accurate, slower "
        "than FP32); for INT8 speed on this CPU: segpipe quantize FP32.onnx --calib-images DIR "
        "--target cpu (7-bit weights, no saturation)"
    )


def _cuda_wanted(device: str) -> bool | None:
    """True for ``--device cuda[:N]``, False for ``cpu``, None for ``auto``."""
    spec = (device or "auto").strip().lower()
    if spec == "cuda" or spec.startswith("cuda:"):
        return True
    return False if spec == "cpu" else None


def auto_onnx_runtime(path: str | Path, device: str = "auto") -> tuple[str, str]:
    """``--runtime auto`` for an ONNX model: (runtime name, why, in a few words).

    The rule, from benchmarks/bench_cpu.py's figures (README, "CPU inference"): on a CUDA device
    ONNX Runtime (its CUDA provider). On the CPU an FP32 (or FP16) model runs on ONNX Runtime:
    OpenVINO FP32 measured 0.69-1.27x of it, no steady gain. An INT8 Q/DQ model runs on OpenVINO
    when it is installed: 1.8-5x faster than ONNX Runtime FP32, with the accuracy of the gate's
    emulation; except a TensorRT-shaped (S8S8) file on a CPU without VNNI, where OpenVINO's integer
    kernels saturate like ONNX Runtime's (measured with its AVX2 kernels: 98.90% agreement with FP32
    where the emulation gives 99.83%): that file runs on ONNX Runtime with Q/DQ unfused
    (:func:`ort_int8_settings`: accurate, slower), and ``quantize --target cpu`` makes the fast one.
    """
    from segpipe._optional import available

    cuda = _cuda_wanted(device)
    if cuda:
        return "onnxruntime", f"--device {device}"
    if cuda is None and available("onnxruntime"):
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            return "onnxruntime", "its CUDA provider is available"
    precision = qdq_precision(path)
    if precision is None:
        return "onnxruntime", "not INT8: OpenVINO is no faster on FP32 models (benchmarks/bench_cpu.py)"
    what = {"int8": "INT8 Q/DQ model", "int8-cpu": "INT8 model quantized for CPUs"}[precision]
    if precision == "int8" and int8_kernels_saturate():
        return "onnxruntime", (
            f"{what} on a CPU without VNNI, whose INT8 kernels saturate in OpenVINO and ONNX Runtime "
            "alike: Q/DQ run unfused for accuracy"
        )
    if not available("openvino"):
        return (
            "onnxruntime",
            f"{what} on the CPU, openvino not installed; pip install openvino runs it faster",
        )
    return (
        "openvino",
        f"{what} on the CPU: OpenVINO runs it in INT8, faster than FP32 (benchmarks/bench_cpu.py)",
    )


def openvino_int8_note(path: str | Path) -> str:
    """The warning for OpenVINO running a TensorRT-shaped INT8 file where its kernels saturate."""
    if not int8_kernels_saturate() or qdq_precision(path) != "int8":
        return ""
    return (
        f"{path}: this CPU has no VNNI, so OpenVINO's INT8 kernels saturate on this S8S8 (TensorRT) "
        "file and the masks lose accuracy; --runtime onnxruntime runs it accurately (slower), or: "
        "segpipe quantize FP32.onnx --calib-images DIR --target cpu (7-bit weights, no saturation)"
    )
