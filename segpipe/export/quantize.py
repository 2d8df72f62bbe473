"""``segpipe quantize``: an explicitly quantized (Q/DQ) INT8 ONNX model, calibrated and gated.

The input is an FP32 ONNX model as ``segpipe export-onnx`` writes it (NHWC RGB 0-255 pixels in,
normalisation inside). The output is the same graph with QuantizeLinear/DequantizeLinear pairs:

* signed INT8 activations and weights, symmetric (every zero point 0), weights per output channel,
  biases left in FP32 (TensorRT's DequantizeLinear takes INT8, not INT32);
* the tail of the network, from the segmentation head's last convolution to the output (Resize,
  Softmax / Sigmoid / ArgMax), and the input normalisation before the first convolution, left in
  FP32 (``keep_fp32``; measured in the README);
* the opset of the FP32 graph (at least 13, where per-channel Q/DQ begins), which TensorRT 10 and
  11 parse and build strongly typed, with no precision flag.

The quantizer is ONNX Runtime's ``quantize_static`` (QDQ format, ``ActivationSymmetric`` and
``WeightSymmetric``); NVIDIA ModelOpt's ONNX PTQ (``modelopt.onnx.quantization.quantize``,
``calibration_eps=["cpu"]``) is the alternative behind ``quantizer="modelopt"``.

Calibration images come from a folder, in the deployed layout (NHWC pixels 0-255, resized to the
model's input). Some are held out of the calibration, and the accuracy gate compares the INT8
graph with the FP32 graph on them (argmax agreement), on ``verify_images`` and, with a labelled
``data_root``, by mIoU. Below ``min_agreement`` (or losing more than ``max_miou_drop`` mIoU
points) nothing is written at the output path.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segpipe.errors import ConfigError, DataError, ExportError
from segpipe.export.calibrate import (
    image_files,
    load_images,
    quantize_modelopt,
    quantize_ort,
    split_holdout,
)
from segpipe.export.int8_gate import GateRow, check_gate, gate, gate_record, miou
from segpipe.export.qdq_emulate import emulation
from segpipe.export.qdq_graph import (
    MIN_OPSET,
    Q_OPS,
    TAIL_OPS,
    GraphIO,
    check_not_quantized,
    ensure_node_names,
    ensure_opset,
    graph_io,
    head_nodes,
    input_nodes,
    qdq_counts,
)
from segpipe.modelinfo import ModelInfo, metadata_value
from segpipe.options import QuantizeOptions
from segpipe.progress import Reporter
from segpipe.runtime.cpu import CALIBRATION_KEY, CPU_RECORD
from segpipe.utils import disk_full_error, file_size_mb, new_file_mode, temp_dir_beside, tempdir_default

#: Names other modules and tests import from here (the graph helpers live in
#: :mod:`segpipe.export.qdq_graph`, the images and quantizers in :mod:`segpipe.export.calibrate`).
__all__ = [
    "CALIBRATION_KEY",
    "MIN_OPSET",
    "Q_OPS",
    "TAIL_OPS",
    "GateRow",
    "GraphIO",
    "QuantizeResult",
    "check_not_quantized",
    "ensure_node_names",
    "ensure_opset",
    "gate",
    "graph_io",
    "head_nodes",
    "image_files",
    "input_nodes",
    "load_images",
    "qdq_counts",
    "quantize",
    "quantize_modelopt",
    "quantize_ort",
    "read_calibration",
    "split_holdout",
]


@dataclass
class QuantizeResult:
    """What ``quantize`` wrote, with the figures of its summary."""

    path: Path
    info: ModelInfo
    size_mb: float
    fp32_size_mb: float
    calibration: dict[str, Any]
    gate: list[GateRow]
    min_agreement: float
    #: mIoU on ``data_root`` (``None`` without one).
    miou_fp32: float | None = None
    miou_int8: float | None = None
    quantize_linear: int = 0
    dequantize_linear: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    #: ``--target``: what the file is shaped for and the gate emulates (``tensorrt`` or ``cpu``).
    target: str = "tensorrt"

    @property
    def worst(self) -> GateRow:
        """The gate source with the lowest agreement."""
        return min(self.gate, key=lambda r: r.result.argmax_agreement)


# ---- the stage -----------------------------------------------------------------------------------
def _read_model(opts: QuantizeOptions) -> tuple[Any, ModelInfo, GraphIO]:
    """The FP32 graph, its description and input; one line for anything that is not one."""
    import onnx

    src, out = opts.model, opts.resolved_output
    if src.suffix.lower() != ".onnx":
        raise ConfigError(
            f"{src}: segpipe quantize takes an FP32 .onnx model (segpipe export-onnx writes one)"
        )
    if not src.is_file():
        raise ConfigError(f"model file {src} does not exist")
    if src.stat().st_size == 0:
        raise ConfigError(f"{src} is an empty file (0 bytes), not an ONNX model")
    if out.suffix.lower() != ".onnx":
        raise ConfigError(f"--output {out}: the file name must end in .onnx")
    if out.resolve() == src.resolve():
        raise ConfigError(f"--output {out}: would overwrite the FP32 model it quantizes; name another file")
    try:
        proto = onnx.load(str(src))
    except Exception as e:
        raise ConfigError(f"{src} is not a readable ONNX model ({type(e).__name__})") from e
    check_not_quantized(proto, src)
    info = ModelInfo.from_metadata({p.key: p.value for p in proto.metadata_props}, f"{src}: metadata")
    io_ = graph_io(proto, info, src)
    if info is None:
        raise ConfigError(
            f"{src}: no segpipe metadata (class count, mode); export it with segpipe export-onnx"
        )
    return proto, info, io_


def _images(
    opts: QuantizeOptions, io_: GraphIO, notes: list[str]
) -> tuple[np.ndarray, list[Path], list[Path], dict[str, np.ndarray], int]:
    """(calibration images, their files, the held-out files, the gate's sources of images, how
    many images the folder holds)."""
    files = image_files(opts.calib_images, "--calib-images")
    calib_files, held_files = split_holdout(files, opts.holdout, opts.calib_count, opts.seed)
    if len(files) - len(held_files) < opts.calib_count:
        notes.append(
            f"--calib-images {opts.calib_images} holds {len(files)} images: calibrating on "
            f"{len(calib_files)} (fewer than --calib-count {opts.calib_count}), "
            f"{len(held_files)} held out for the accuracy gate"
        )
    calib, resized = load_images(calib_files, io_.size, "--calib-images")
    held, resized_held = load_images(held_files, io_.size, "--calib-images") if held_files else (None, 0)
    width, height = io_.size
    if resized + resized_held:
        notes.append(
            f"{resized + resized_held} calibration images are not {width}x{height}; resized to the "
            "model's input"
        )
    sources: dict[str, np.ndarray] = {}
    if held is not None:
        sources["held-out"] = held
    if opts.verify_images is not None:
        vfiles = image_files(opts.verify_images, "--verify-images")[: opts.verify_max_images]
        sources["verify-images"] = load_images(vfiles, io_.size, "--verify-images")[0]
    if not sources:
        sources["calibration"] = calib
        notes.append(
            "nothing held out (one calibration image) and no --verify-images: the gate compares "
            "on the calibration image itself"
        )
    return calib, calib_files, held_files, sources, len(files)


def _run_quantizer(
    opts: QuantizeOptions, named: Path, cand: Path, io_: GraphIO, calib: np.ndarray, exclude: list[str]
) -> str:
    """The chosen quantizer on ``named`` -> ``cand``; its temporary files go into ``cand``'s folder
    (cleaned with it); a full disk and any other failure are one line."""
    try:
        fn = quantize_modelopt if opts.quantizer == "modelopt" else quantize_ort
        if opts.target == "cpu":  # U8S8 with 7-bit weights (export/quantize_cpu.py)
            from segpipe.export.quantize_cpu import quantize_ort_cpu as fn
        with tempdir_default(cand.parent):
            return fn(named, cand, io_, calib, opts.method, exclude)
    except (ConfigError, DataError):
        raise
    except Exception as e:
        full = disk_full_error(opts.resolved_output, e)
        if full is not None:
            raise full from e
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise ExportError(
            f"quantizing {opts.model} ({opts.quantizer}) failed: {type(e).__name__}: {first[:300]}"
        ) from e


def quantize(opts: QuantizeOptions, reporter: Reporter | None = None) -> QuantizeResult:
    """Calibrate, quantize, gate and write ``opts.model`` as an INT8 Q/DQ graph, atomically.

    Raises a one-line :class:`~segpipe.errors.SegpipeError` on bad input and :class:`ExportError`
    when the quantized graph agrees with the FP32 one below ``min_agreement`` (nothing is then
    written at the output path). The work happens in a scratch folder beside the output (ONNX
    Runtime's own temporary files too), removed on every way out, SIGTERM and SIGHUP included.
    """
    import onnx

    from segpipe.export.graph import set_metadata

    reporter = reporter or Reporter()
    start = time.perf_counter()
    src, out = opts.model, opts.resolved_output
    proto, info, io_ = _read_model(opts)
    notes: list[str] = []
    calib, calib_files, held_files, sources, n_files = _images(opts, io_, notes)
    if opts.data_root is not None and not Path(opts.data_root).is_dir():
        raise ConfigError(f"--data-root {opts.data_root}: folder does not exist")
    for n in notes:
        reporter.warn(n)

    proto = ensure_opset(proto, src, notes, reporter)
    ensure_node_names(proto)
    exclude = (input_nodes(proto) if "input" in opts.keep_fp32 else []) + (
        head_nodes(proto) if "head" in opts.keep_fp32 else []
    )
    steps = 3 + int(opts.data_root is not None)
    with (
        reporter.task(f"quantize {src.name} (INT8, {opts.quantizer})", total=steps) as task,
        temp_dir_beside(out) as work,
    ):
        named, cand = work / "fp32.onnx", work / out.name
        try:
            onnx.save(proto, str(named))
        except (OSError, ValueError) as e:
            raise (disk_full_error(out, e) or ExportError(f"cannot write {named}: {e}")) from e
        t_q = time.perf_counter()
        tool = _run_quantizer(opts, named, cand, io_, calib, exclude)
        quant_seconds = time.perf_counter() - t_q
        task.advance(step="calibrated")
        q = onnx.load(str(cand))
        counts = qdq_counts(q)
        calibration = {
            "method": opts.method,
            "quantizer": tool,
            "images": len(calib_files),
            "source": Path(opts.calib_images).resolve().name,
            "held_out": len(held_files),
            "activations": "int8 symmetric per-tensor",
            "weights": "int8 symmetric per-channel",
            **(CPU_RECORD if opts.target == "cpu" else {}),
            "float_nodes": exclude,
            "gate": emulation(opts.target)[0],
        }
        qinfo = info.replace(precision="int8")
        set_metadata(q, qinfo)
        _write_calibration(q, calibration, cand, out)
        rows = gate(src, cand, io_, info, sources, out)
        task.advance(step="gated")
        miou_fp32 = miou_int8 = None
        if opts.data_root is not None:
            miou_fp32 = miou(src, opts.data_root, Reporter())
            miou_int8 = miou(cand, opts.data_root, Reporter())
            task.advance(step="mIoU")
        check_gate(opts, rows, (miou_fp32, miou_int8), len(calib_files), n_files)
        # the figures the gate measured, in the file (benchmark and info show them beside theirs)
        calibration["gate_figures"] = gate_record(rows, miou_fp32, miou_int8)
        _write_calibration(q, calibration, cand, out)
        os.chmod(cand, new_file_mode(out))
        os.replace(cand, out)
        task.advance(step="written")
    return QuantizeResult(
        path=out,
        info=qinfo,
        size_mb=file_size_mb(out),
        fp32_size_mb=file_size_mb(src),
        calibration={**calibration, "seconds": round(quant_seconds, 2)},
        gate=rows,
        min_agreement=opts.resolved_min_agreement,
        miou_fp32=miou_fp32,
        miou_int8=miou_int8,
        quantize_linear=counts["QuantizeLinear"],
        dequantize_linear=counts["DequantizeLinear"],
        seconds=time.perf_counter() - start,
        notes=notes,
        target=opts.target,
    )


def _write_calibration(q: Any, calibration: dict[str, Any], cand: Path, out: Path) -> None:
    """Set the calibration record of ``q`` and save it at ``cand``; one line when it cannot."""
    import onnx

    entry = next((p for p in q.metadata_props if p.key == CALIBRATION_KEY), None) or q.metadata_props.add()
    entry.key, entry.value = CALIBRATION_KEY, json.dumps(calibration)
    try:
        onnx.save(q, str(cand))
    except (OSError, ValueError) as e:
        raise (disk_full_error(out, e) or ExportError(f"cannot write {cand}: {e}")) from e


def read_calibration(props: dict[str, str]) -> dict[str, Any] | None:
    """The calibration record of an INT8 graph's metadata props (``None`` when absent or damaged)."""
    return metadata_value(props, CALIBRATION_KEY, dict)
