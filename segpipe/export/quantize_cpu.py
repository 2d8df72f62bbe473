"""INT8 for CPUs (``segpipe quantize --target cpu``): U8S8 with 7-bit weights (``reduce_range``).

segpipe's INT8 file (``segpipe quantize``) is shaped for TensorRT: signed symmetric activations and
full 8-bit weights (S8S8). ONNX Runtime's quantization guide advises another shape for x86-64 CPUs
without VNNI, whose ``vpmaddubsw`` sums two u8 x s8 products into a saturating 16-bit value:
unsigned asymmetric activations (U8) and weights quantized to 7 bits (``reduce_range``), so that no
pair of products can overflow. ``--target cpu`` makes that file from the same FP32 model through
the same stage (calibration, parts kept in FP32, the gate's emulation, metadata, atomic write):
only the quantizer below differs. Measured (benchmarks/bench_cpu.py, README "CPU inference"): as
accurate as the S8S8 file, and the only INT8 file that stays accurate on AVX2 kernels (ONNX
Runtime's and OpenVINO's); ONNX Runtime runs it 1.7x faster than FP32 where the S8S8 file runs
slower than FP32. TensorRT needs the S8S8 file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def quantize_ort_cpu(
    src: Path, dst: Path, io_: Any, calib: np.ndarray, method: str, exclude: list[str]
) -> str:
    """ONNX Runtime ``quantize_static`` in QDQ format, U8 asymmetric activations, S8 symmetric
    per-channel weights in 7 bits; the signature of :func:`segpipe.export.calibrate.quantize_ort`."""
    from segpipe.export.calibrate import quantize_ort

    described = quantize_ort(src, dst, io_, calib, method, exclude, activation="uint8", reduce_range=True)
    return f"{described} (U8S8, reduce_range)"
