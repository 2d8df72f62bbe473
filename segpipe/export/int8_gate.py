"""The accuracy gate of ``segpipe quantize``: the INT8 graph against the FP32 one, run as the Q/DQ
emulation runs them (:mod:`segpipe.export.qdq_emulate`), and, when it refuses, what to try next.

Units: argmax agreement in percent of pixels, mIoU in percent and its changes in points (the same
scale), flags as they are typed (``--int8-min-agreement`` is a fraction, ``--max-miou-drop`` points).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from segpipe.errors import ExportError, first_line
from segpipe.export.qdq_emulate import gate_graph_runner, gate_runner
from segpipe.export.qdq_graph import GraphIO
from segpipe.modelinfo import ModelInfo, metadata_value
from segpipe.options.quantize import FP32_PARTS, QUANT_METHODS, QUANTIZERS, QuantizeOptions
from segpipe.progress import Reporter
from segpipe.runtime.comparator import Comparator, CompareRow
from segpipe.runtime.cpu import CALIBRATION_KEY, CPU_TARGET
from segpipe.runtime.inputs import fixed_batches

#: The INT8 graph against the FP32 one on one source of images (``source``, ``images``, ``result``).
GateRow = CompareRow


def gate(
    fp32: Path, int8: Path, io_: GraphIO, info: ModelInfo, sources: dict[str, np.ndarray], shown: Path
) -> list[GateRow]:
    """Argmax agreement of the INT8 graph with the FP32 graph on each source of images, both run
    as written (:func:`~segpipe.export.qdq_emulate.gate_graph_runner`: Q/DQ in FP32, TensorRT's
    INT8 arithmetic, the same figure on every CPU), through :class:`~segpipe.runtime.comparator.
    Comparator` on batches of the graph's batch size."""
    batches = [b for source, images in sources.items() for b in fixed_batches(source, images, io_.batch)]
    with gate_graph_runner(fp32) as ref:
        try:
            cand = gate_graph_runner(int8)
        except Exception as e:
            raise ExportError(
                f"{shown}: ONNX Runtime cannot load the quantized graph: {first_line(e, 300, typed=False)}"
            ) from e
        with cand:
            runs = Comparator.run({"FP32": ref, "INT8": cand}, batches, where=shown, dtype=io_.dtype)
    return Comparator.compare_accuracy(
        runs, "FP32", "INT8", mode=info.mode, output_kind=info.output_kind, where=shown
    )


def gate_record(rows: list[GateRow], miou_fp32: float | None, miou_int8: float | None) -> dict[str, Any]:
    """The gate's figures as the file records them (``gate_figures`` in its calibration record):
    per source the images compared and the argmax agreement (0..1); mIoU (0..1) when measured."""
    record: dict[str, Any] = {
        "rows": [
            {"source": r.source, "images": r.images, "argmax_agreement": round(r.result.argmax_agreement, 6)}
            for r in rows
        ]
    }
    if miou_fp32 is not None and miou_int8 is not None:
        record.update(miou_fp32=round(miou_fp32, 6), miou_int8=round(miou_int8, 6))
    return record


class RecordedGate(NamedTuple):
    """One source of the gate's figures as an INT8 file records them: its name (``held-out``,
    ``verify-images``), how many images, the argmax agreement with FP32 (0..1)."""

    source: str
    images: int
    argmax_agreement: float

    def text(self) -> str:
        """``99.88% on 3 held-out images``, ``99.5% on 10 images of --verify-images`` (two digits)."""
        n, s = self.images, "s" * (self.images != 1)
        where = (
            f"{n} image{s} of --verify-images"
            if self.source == "verify-images"
            else f"{n} {self.source} image{s}"
        )
        return f"{_pct(self.argmax_agreement)} on {where}"


def recorded_gate(calibration: dict[str, Any] | None) -> list[RecordedGate]:
    """The gate figures of a calibration record (:func:`segpipe.export.quantize.read_calibration`);
    ``[]`` when it has none (a file quantized before they were recorded) or they are damaged: the
    figures only describe, so a damaged entry reads as missing."""
    figures = (calibration or {}).get("gate_figures")
    rows = figures.get("rows") if isinstance(figures, dict) else None
    out = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            return []
        source, images, agreement = row.get("source"), row.get("images"), row.get("argmax_agreement")
        if (
            not isinstance(source, str)
            or not re.fullmatch(r"[a-z][a-z0-9-]{0,39}", source)  # held-out, verify-images...
            or type(images) is not int
            or not 0 < images < 1 << 31
            or not isinstance(agreement, (int, float))
            or isinstance(agreement, bool)
            or not 0.0 <= agreement <= 1.0
        ):
            return []
        out.append(RecordedGate(source, images, float(agreement)))
    return out


def gate_summary(calibration: dict[str, Any] | None) -> tuple[float, str] | None:
    """(the lowest argmax agreement quantize's gate recorded, its figures in words with the
    arithmetic it emulated: ``99.88% on 2 held-out images (TensorRT INT8 emulated)``); ``None``
    when the record holds no figures."""
    gate = recorded_gate(calibration)
    if not gate or calibration is None:
        return None
    kernels = "U8S8 CPU kernels" if calibration.get("target") == CPU_TARGET else "TensorRT INT8"
    return min(g.argmax_agreement for g in gate), f"{', '.join(g.text() for g in gate)} ({kernels} emulated)"


def file_gate_summary(path: str | Path) -> tuple[float, str] | None:
    """:func:`gate_summary` of an ONNX file's calibration record (``segpipe quantize`` writes it);
    ``None`` for other files, files without one, and files ONNX cannot read."""
    if Path(path).suffix.lower() != ".onnx":
        return None
    try:
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
    except Exception:
        return None
    return gate_summary(metadata_value({p.key: p.value for p in proto.metadata_props}, CALIBRATION_KEY, dict))


def miou(model: Path, data_root: Path, reporter: Reporter) -> float:
    """mIoU (0..1) of ``model`` on ``data_root``, run as the gate runs it (no CPU integer kernels)."""
    from segpipe.evaluate import evaluate
    from segpipe.options import EvaluateOptions

    opts = EvaluateOptions(data_root=data_root, model=model, device="cpu")
    with gate_runner(model, reporter=reporter) as runner:
        return float(evaluate(opts, reporter, runner).miou)


def _pct(fraction: float, digits: int = 2) -> str:
    return f"{100 * fraction:.{digits}f}%"


def next_steps(opts: QuantizeOptions, n_calib: int, n_files: int, accept: str) -> str:
    """What to try when the gate refuses: the flags of ``segpipe quantize`` on the FP32 model, as
    one sentence (``accept``: the setting that would accept the measured figure)."""
    tries = []
    if n_files < opts.calib_count + opts.holdout:
        tries.append(f"more images like the deployed ones in --calib-images ({n_calib} calibrated now)")
    else:
        tries.append(
            f"--calib-count above {opts.calib_count} (the folder holds {n_files}) or other images "
            "closer to the deployed ones"
        )
    methods = ("minmax", "entropy") if opts.quantizer == "modelopt" else QUANT_METHODS
    others = [m for m in methods if m != opts.method]
    if others:
        tries.append(f"--calib-method {' or '.join(others)} (now {opts.method})")
    missing = [p for p in FP32_PARTS if p not in opts.keep_fp32]
    if missing:
        now = ",".join(opts.keep_fp32) or "none"
        tries.append(f"--keep-fp32 {','.join(FP32_PARTS)} (now {now}: {' and '.join(missing)} quantized)")
    tries.append(
        " or ".join(
            f"--quantizer {q}" + (" (if installed)" if q == "modelopt" else "")
            for q in QUANTIZERS
            if q != opts.quantizer
        )
    )
    return (
        f"To try next (segpipe quantize {opts.model}): {'; '.join(tries)}; or, if this loss is "
        f"acceptable, {accept}"
    )


def check_gate(
    opts: QuantizeOptions,
    rows: list[GateRow],
    miou_pair: tuple[float | None, float | None],
    n_calib: int,
    n_files: int,
) -> None:
    """ExportError (nothing written) when the INT8 graph fails the accuracy gate; the line says the
    measured figures, the limit, and what to try next."""
    out, min_agreement = opts.resolved_output, opts.resolved_min_agreement
    bad = [r for r in rows if not r.result.ok(min_agreement)]
    where = f"calibrated ({opts.method}) on {n_calib} images of {opts.calib_images}; nothing was written"
    if bad:
        worst = min(r.result.argmax_agreement for r in rows)
        what = ", ".join(
            f"{_pct(r.result.argmax_agreement, 3)} on {r.source} ({r.images} images)" for r in bad
        )
        accept = math.floor(worst * 10000) / 10000
        raise ExportError(
            f"INT8 gate failed for {out}: argmax agreement with the FP32 model {what}, below "
            f"--int8-min-agreement {min_agreement:g} ({_pct(min_agreement)}); {where}. "
            + next_steps(
                opts, n_calib, n_files, f"--int8-min-agreement {accept:.4f} ({_pct(accept)}) accepts it"
            )
        )
    fp32, int8 = miou_pair
    if fp32 is not None and int8 is not None and 100 * (fp32 - int8) > opts.max_miou_drop:
        drop = 100 * (fp32 - int8)
        accept = math.ceil(drop * 100) / 100
        raise ExportError(
            f"INT8 gate failed for {out}: mIoU on --data-root {opts.data_root} fell from {_pct(fp32)} "
            f"(FP32) to {_pct(int8)} (INT8), {drop:.2f} points, more than --max-miou-drop "
            f"{opts.max_miou_drop:g} points; {where}. "
            + next_steps(opts, n_calib, n_files, f"--max-miou-drop {accept:.2f} accepts it")
        )
