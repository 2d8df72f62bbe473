"""The precision ladder: FP32, FP16 and INT8 models of one backend side by side (``segpipe
benchmark`` draws it under its table when the models it timed form one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segpipe.units import speed_text

PRECISION_ORDER = ("fp32", "fp16", "int8")
#: Header of :func:`precision_ladder` rows.
LADDER_COLUMNS = [
    "precision", "model", "backend", "size MB", "median ms", "vs FP32", "argmax vs FP32", "mIoU", "mIoU vs FP32",
]  # fmt: skip


def precision_ladder(result: Any) -> list[list[str]]:
    """FP32, FP16 and INT8 models of one backend side by side: size, latency and mIoU, each also
    relative to the FP32 model of the same backend (speed-up, mIoU points).

    Empty unless some backend has models of two or more precisions (the ladder compares those).
    ONNX files that ``--runtime auto`` sent to two CPU runtimes (FP32 and FP16 on ONNX Runtime, INT8
    on OpenVINO) form one ladder, unless a precision ran on both (``--runtime all``): what each file
    gives on the runtime segpipe runs it on.
    """
    by_backend: dict[str, list[Any]] = {}
    for m in result.models:
        by_backend.setdefault(m.backend, []).append(m)
    onnx = [b for b in ("onnxruntime", "openvino") if b in by_backend]
    kinds = [{m.precision for m in by_backend[b]} for b in onnx]
    if len(onnx) == 2 and not kinds[0] & kinds[1]:  # each precision on one of them: one ladder
        by_backend["onnx"] = [m for m in result.models if m.backend in onnx]
        for b in onnx:
            del by_backend[b]
    rows: list[list[str]] = []
    for models in by_backend.values():
        if len({m.precision for m in models}) < 2:
            continue
        models = sorted(
            models, key=lambda m: PRECISION_ORDER.index(m.precision) if m.precision in PRECISION_ORDER else 9
        )
        base = next((m for m in models if m.precision == "fp32"), None)
        for m in models:
            if base is None:
                speed = "-"
            elif m is base:
                speed = "reference"
            elif not (m.steady and base.steady):
                speed = "unsteady"
            else:
                speed = speed_text(base.p50_ms, m.p50_ms)
            if m.miou is None:
                miou = delta = "-"
            else:
                miou = f"{m.miou:.4f}"
                delta = "-" if base is None or base.miou is None else f"{100 * (m.miou - base.miou):+.2f} pt"
            rows.append(
                [
                    m.precision.upper(),
                    Path(m.model).name,
                    m.backend,
                    f"{m.size_mb:.2f}",
                    m.latency_text(),
                    speed,
                    m.agreement_text(),
                    miou,
                    delta,
                ]
            )
    return rows
