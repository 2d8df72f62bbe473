"""Verification of an exported ONNX model: ``onnx.checker``, then ONNX Runtime against PyTorch.

Both backends get the very same pixels (random images and, optionally, real ones from a folder,
:mod:`segpipe.runtime.inputs`) and are compared by :class:`~segpipe.runtime.comparator.Comparator`,
as quantize's gate and ``build-trt`` are: max / mean absolute difference and argmax agreement. The
reference is always the FP32 PyTorch :class:`~segpipe.models.DeployModel`, so an FP16 graph is
measured against what it approximates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segpipe.errors import ExportError, first_line
from segpipe.modelinfo import ModelInfo
from segpipe.runtime.base import CompareResult
from segpipe.runtime.comparator import Comparator, CompareRow, worst
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
    """The figures of a verification: one :class:`CompareRow` per source (``random``, ``images``)."""

    min_agreement: float
    table: list[CompareRow] = field(default_factory=list)
    checker: str = "passed"

    @property
    def results(self) -> dict[str, CompareResult]:
        """Source -> its figures."""
        return {r.source: r.result for r in self.table}

    @property
    def images(self) -> dict[str, int]:
        """Source -> how many images it compared."""
        return {r.source: r.images for r in self.table}

    @property
    def passed(self) -> bool:
        """True when every source agrees on at least ``min_agreement`` of the pixels."""
        return all(r.ok(self.min_agreement) for r in self.table)

    @property
    def worst(self) -> CompareResult:
        """The source with the lowest agreement."""
        return worst(self.table).result

    def rows(self) -> list[list[Any]]:
        """Table rows: source, images, max |diff|, mean |diff|, agreement (%)."""
        return [r.cells() for r in self.table]


def check_graph(path: Path, shown_path: Path | None = None) -> None:
    """``onnx.checker.check_model``; one-line ExportError naming the file when it rejects the graph."""
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except Exception as e:
        raise ExportError(
            f"{shown_path or path}: onnx.checker rejected the graph: {first_line(e, 300, typed=False)}"
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

    from segpipe.runtime.onnxruntime import GraphRunner

    shown = shown_path or path
    check_graph(path, shown)
    try:
        session = GraphRunner(path)
    except Exception as e:
        raise ExportError(
            f"{shown}: ONNX Runtime cannot load the exported graph: {first_line(e, 300, typed=False)}"
        ) from e

    def pytorch(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return reference(torch.from_numpy(x)).cpu().numpy()

    dtype = np.uint8 if info.input_dtype == "uint8" else np.float32
    with session:
        runs = Comparator.run(
            {"ONNX Runtime": session, "PyTorch": pytorch}, batches, where=shown, dtype=dtype
        )
    table = Comparator.compare_accuracy(
        runs, "PyTorch", "ONNX Runtime", mode=info.mode, output_kind=info.output_kind, where=shown
    )
    result = VerifyResult(min_agreement=min_agreement, table=table)
    if not result.passed:
        bad = "; ".join(f"{r.source}: {r.result}" for r in table if not r.ok(min_agreement))
        raise ExportError(
            f"verification of {shown} failed: ONNX Runtime and PyTorch agree below --min-agreement "
            f"{min_agreement:g} ({bad}); the file was not written"
        )
    return result
