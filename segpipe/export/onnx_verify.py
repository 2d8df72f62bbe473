"""Verification of an exported ONNX model: ``onnx.checker``, then ONNX Runtime against PyTorch.

Both backends get the very same pixels (random images and, optionally, real ones from a folder)
and are compared with :func:`segpipe.runtime.base.compare`, the comparison the tests and
``build-trt`` use: max / mean absolute difference and argmax agreement. The reference is always
the FP32 PyTorch :class:`~segpipe.models.DeployModel`, so an FP16 graph is measured against what
it approximates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segpipe.errors import ExportError, shorten
from segpipe.modelinfo import ModelInfo
from segpipe.runtime.base import CompareResult, compare
from segpipe.runtime.inputs import VerifyBatch, folder_images, random_images, verification_inputs

__all__ = [
    "VerifyBatch",
    "VerifyResult",
    "folder_images",
    "random_images",
    "verification_inputs",
    "verify_onnx",
]


@dataclass
class VerifyResult:
    """The figures of a verification: one :class:`CompareResult` per source (``random``, ``images``)."""

    min_agreement: float
    results: dict[str, CompareResult] = field(default_factory=dict)
    images: dict[str, int] = field(default_factory=dict)
    checker: str = "passed"

    @property
    def passed(self) -> bool:
        """True when every source agrees on at least ``min_agreement`` of the pixels."""
        return all(r.ok(self.min_agreement) for r in self.results.values())

    @property
    def worst(self) -> CompareResult:
        """The source with the lowest agreement."""
        return min(self.results.values(), key=lambda r: r.argmax_agreement)

    def rows(self) -> list[list[Any]]:
        """Table rows: source, images, max |diff|, mean |diff|, agreement (%)."""
        return [
            [
                src,
                self.images[src],
                f"{r.max_abs_diff:.3g}",
                f"{r.mean_abs_diff:.3g}",
                f"{100 * r.argmax_agreement:.3f}%",
            ]
            for src, r in self.results.items()
        ]


def _session(path: Path) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def check_graph(path: Path, shown_path: Path | None = None) -> None:
    """``onnx.checker.check_model``; one-line ExportError naming the file when it rejects the graph."""
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except Exception as e:
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise ExportError(
            f"{shown_path or path}: onnx.checker rejected the graph: {shorten(first, 300)}"
        ) from e


def verify_onnx(
    path: Path,
    reference: Any,
    batches: list[VerifyBatch],
    info: ModelInfo,
    min_agreement: float,
    shown_path: Path | None = None,
) -> VerifyResult:
    """Check the graph, run ONNX Runtime and the PyTorch ``reference`` on ``batches`` and compare.

    ``info`` says the input dtype, mode and output kind. Raises a one-line ExportError when the
    checker rejects the graph, ONNX Runtime cannot run it, or the argmax agreement of any source is
    below ``min_agreement``; returns the figures otherwise.
    """
    import torch

    shown = shown_path or path
    check_graph(path, shown)
    try:
        session = _session(path)
    except Exception as e:
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise ExportError(
            f"{shown}: ONNX Runtime cannot load the exported graph: {shorten(first, 300)}"
        ) from e
    in_name = session.get_inputs()[0].name
    dtype = np.uint8 if info.input_dtype == "uint8" else np.float32
    refs: dict[str, list[np.ndarray]] = {}
    cands: dict[str, list[np.ndarray]] = {}
    for b in batches:
        x = b.images.astype(dtype)
        try:
            cand = session.run(None, {in_name: x})[0]
        except Exception as e:
            first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
            what = f"a {'x'.join(map(str, x.shape))} {x.dtype} batch"
            raise ExportError(f"{shown}: ONNX Runtime failed on {what}: {shorten(first, 300)}") from e
        with torch.no_grad():
            ref = reference(torch.from_numpy(x)).cpu().numpy()
        refs.setdefault(b.source, []).append(ref[: b.count])
        cands.setdefault(b.source, []).append(np.asarray(cand)[: b.count])
    result = VerifyResult(min_agreement=min_agreement)
    for source in refs:
        ref_all, cand_all = np.concatenate(refs[source]), np.concatenate(cands[source])
        if ref_all.shape != cand_all.shape:
            raise ExportError(
                f"{shown}: ONNX output shape {cand_all.shape} differs from PyTorch's {ref_all.shape}"
            )
        result.results[source] = compare(ref_all, cand_all, info.mode, info.output_kind)
        result.images[source] = len(ref_all)
    if not result.passed:
        bad = "; ".join(f"{src}: {r}" for src, r in result.results.items() if not r.ok(min_agreement))
        raise ExportError(
            f"verification of {shown} failed: ONNX Runtime and PyTorch agree below --min-agreement "
            f"{min_agreement:g} ({bad}); the file was not written"
        )
    return result
