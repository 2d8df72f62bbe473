"""One comparator over runners, for every check that two ways of running a model agree.

export-onnx's check (ONNX Runtime against the PyTorch module it was exported from), quantize's INT8
gate (the Q/DQ graph against the FP32 one, both run as written) and build-trt's check (the engine
against ONNX Runtime) all go through :class:`Comparator`, as Polygraphy's ``Comparator`` does for its
runners:

* :meth:`Comparator.run` feeds every runner the same batches (:class:`~segpipe.runtime.inputs.
  VerifyBatch`, built once by :mod:`segpipe.runtime.inputs`), one runner after the other, and keeps
  each runner's outputs per batch (its iteration results), the padding of a fixed-batch graph cut
  off; a runner that raises is one line naming it and the batch;
* :meth:`Comparator.compare_accuracy` compares two runners' outputs source by source (``random``,
  ``images``, ``held-out``...) with :func:`~segpipe.runtime.base.compare`: one
  :class:`CompareRow` per source, max/mean absolute difference and argmax agreement.

A runner is anything called with a batch N×H×W×C that returns the output array: a
:class:`~segpipe.runtime.base.Runner`, a :class:`~segpipe.runtime.onnxruntime.GraphRunner`, a
function around a module. Opening and closing it stays with the caller (``with``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from segpipe.errors import ExportError, SegpipeError, first_line
from segpipe.runtime.base import CompareResult, compare
from segpipe.runtime.inputs import VerifyBatch

#: What :meth:`Comparator.run` calls: a batch in, the (first) output array out.
RunnerFn = Callable[[np.ndarray], Any]


#: The header of :meth:`CompareRow.cells`: every check's table (export-onnx's, quantize's gate).
COMPARE_COLUMNS = ("inputs", "images", "max |diff|", "mean |diff|", "argmax agreement")


@dataclass(frozen=True)
class CompareRow:
    """Two runners compared on one source of images: how many, and the figures."""

    source: str
    images: int
    result: CompareResult

    def ok(self, min_agreement: float) -> bool:
        """True when the class maps agree on at least ``min_agreement`` of the pixels."""
        return self.result.ok(min_agreement)

    def cells(self) -> list[str]:
        """Table cells: source, images, max |diff|, mean |diff|, argmax agreement (%)."""
        r = self.result
        return [
            self.source,
            str(self.images),
            f"{r.max_abs_diff:.3g}",
            f"{r.mean_abs_diff:.3g}",
            f"{100 * r.argmax_agreement:.3f}%",
        ]


@dataclass(frozen=True)
class RunResults:
    """What :meth:`Comparator.run` returns: each runner's outputs, one per batch (``count`` images
    each), in the order the runners were given."""

    batches: tuple[VerifyBatch, ...]
    outputs: dict[str, list[np.ndarray]]


def worst(rows: Sequence[CompareRow]) -> CompareRow:
    """The row with the lowest argmax agreement."""
    return min(rows, key=lambda r: r.result.argmax_agreement)


class Comparator:
    """Runs runners over the same batches, then compares their outputs (Polygraphy's
    ``Comparator.run`` / ``compare_accuracy``, without its subprocesses, data loader or per-output
    tolerances: segpipe's models have one output, and its checks judge argmax agreement)."""

    @staticmethod
    def run(
        runners: Mapping[str, RunnerFn],
        batches: Sequence[VerifyBatch],
        *,
        where: object,
        dtype: Any = None,
        error: type[SegpipeError] = ExportError,
    ) -> RunResults:
        """Each runner (name -> callable) over every batch, cast once to ``dtype`` when given.

        A runner that raises anything but a :class:`SegpipeError` is one ``error`` line:
        ``{where}: {name} failed on a 1x64x64x3 float32 batch: {its first line}``.
        """
        feeds = [b.images if dtype is None else b.images.astype(dtype, copy=False) for b in batches]
        outputs: dict[str, list[np.ndarray]] = {}
        for name, runner in runners.items():
            outs = outputs[name] = []
            for b, x in zip(batches, feeds, strict=True):
                try:
                    y = runner(x)
                except SegpipeError:
                    raise
                except Exception as e:
                    what = f"a {'x'.join(map(str, x.shape))} {x.dtype} batch"
                    raise error(f"{where}: {name} failed on {what}: {first_line(e, 300, typed=False)}") from e
                outs.append(np.asarray(y)[: b.count])
        return RunResults(tuple(batches), outputs)

    @staticmethod
    def compare_accuracy(
        results: RunResults,
        reference: str,
        candidate: str,
        *,
        mode: str = "seg",
        output_kind: str = "logits",
        where: object,
        error: type[SegpipeError] = ExportError,
    ) -> list[CompareRow]:
        """``candidate`` against ``reference``, one :class:`CompareRow` per source of the batches
        (in the order they first come). Outputs of other shapes are one ``error`` line."""
        refs: dict[str, list[np.ndarray]] = {}
        cands: dict[str, list[np.ndarray]] = {}
        for b, r, c in zip(
            results.batches, results.outputs[reference], results.outputs[candidate], strict=True
        ):
            refs.setdefault(b.source, []).append(r)
            cands.setdefault(b.source, []).append(c)
        rows = []
        for source, parts in refs.items():
            ref, cand = np.concatenate(parts), np.concatenate(cands[source])
            if ref.shape != cand.shape:
                raise error(
                    f"{where}: {candidate} output shape {cand.shape} differs from {reference}'s {ref.shape}"
                )
            rows.append(CompareRow(source, len(ref), compare(ref, cand, mode, output_kind)))
        return rows
