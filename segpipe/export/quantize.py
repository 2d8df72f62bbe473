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

import contextlib
import io
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segpipe.errors import ConfigError, DataError, ExportError
from segpipe.modelinfo import ModelInfo
from segpipe.options import QuantizeOptions
from segpipe.progress import Reporter
from segpipe.runtime.base import CompareResult, compare
from segpipe.utils import ensure_dir, file_size_mb

#: The ``segpipe.*`` metadata key holding how the graph was calibrated (JSON object).
CALIBRATION_KEY = "segpipe.calibration"
#: Op types that end a segmentation network and lose accuracy in INT8 (kept in FP32 with the head).
TAIL_OPS = ("Resize", "Softmax", "Sigmoid", "ArgMax", "Upsample")
Q_OPS = ("QuantizeLinear", "DequantizeLinear")


@dataclass
class GateRow:
    """The INT8 graph against the FP32 one on one source of images."""

    source: str
    images: int
    result: CompareResult


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

    @property
    def worst(self) -> GateRow:
        """The gate source with the lowest agreement."""
        return min(self.gate, key=lambda r: r.result.argmax_agreement)


# ---- inputs --------------------------------------------------------------------------------------
def image_files(folder: Path, flag: str) -> list[Path]:
    """The images of ``folder`` (recursively, sorted); one-line error when it is missing or empty."""
    from segpipe.data.dataset import IMAGE_EXTS

    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{flag} {folder}: folder does not exist")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise ConfigError(f"{flag} {folder}: no images ({', '.join(IMAGE_EXTS)}) in it")
    return files


def load_images(files: list[Path], size: tuple[int, int], flag: str) -> tuple[np.ndarray, int]:
    """RGB uint8 N×H×W×3 at (W, H) ``size`` and how many images had to be resized.

    An unreadable file is a one-line error naming it (a calibration set with a broken file is
    more likely a wrong folder than something to skip silently).
    """
    import cv2

    from segpipe.data.dataset import read_image

    width, height = size
    out = np.empty((len(files), height, width, 3), dtype=np.uint8)
    resized = 0
    for i, f in enumerate(files):
        try:
            img = read_image(f)
        except DataError as e:
            raise DataError(f"{flag}: {e}") from e
        if img.shape[:2] != (height, width):
            img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
            resized += 1
        out[i] = img
    return out, resized


def split_holdout(
    files: list[Path], holdout: int, calib_count: int, seed: int
) -> tuple[list[Path], list[Path]]:
    """(calibration files, held-out files): ``holdout`` images drawn at random are kept out of the
    calibration (at most a quarter of the folder; none when it holds one image), then at most
    ``calib_count`` of the others calibrate."""
    n = len(files)
    k = 0 if n < 2 or holdout == 0 else max(1, min(holdout, n // 4))
    order = np.random.default_rng(seed).permutation(n)
    held = sorted(files[i] for i in order[:k])
    calib = sorted(files[i] for i in order[k:])[:calib_count]
    return calib, held


# ---- the graph -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class GraphIO:
    """What the quantizer needs to know about the FP32 graph's input."""

    name: str
    batch: int
    size: tuple[int, int]
    dtype: Any


def qdq_counts(proto: Any) -> dict[str, int]:
    """How many QuantizeLinear and DequantizeLinear nodes a graph holds."""
    counts = dict.fromkeys(Q_OPS, 0)
    for node in proto.graph.node:
        if node.op_type in counts:
            counts[node.op_type] += 1
    return counts


def check_not_quantized(proto: Any, path: Path) -> None:
    """One-line error when ``proto`` already is a quantized graph."""
    props = {p.key: p.value for p in proto.metadata_props}
    n = sum(qdq_counts(proto).values())
    integer_ops = [nd.op_type for nd in proto.graph.node if nd.op_type.startswith(("QLinear", "ConvInteger"))]
    if n or integer_ops or props.get("segpipe.precision") == json.dumps("int8"):
        what = f"{n} Q/DQ nodes" if n else (integer_ops[0] if integer_ops else "precision int8 metadata")
        raise ConfigError(
            f"{path} is already quantized ({what}); quantize the FP32 model segpipe export-onnx writes"
        )
    if props.get("segpipe.precision") == json.dumps("fp16") or any(
        i.data_type == 10 for i in proto.graph.initializer
    ):
        raise ConfigError(f"{path} is an FP16 graph; quantize the FP32 model (export-onnx without --half)")


def graph_io(proto: Any, info: ModelInfo | None, path: Path) -> GraphIO:
    """Input name, batch, (W, H) and dtype of the graph; dynamic axes take the metadata's size."""
    from segpipe.export.onnx import graph_inputs

    inputs = graph_inputs(proto)
    if len(inputs) != 1:
        raise ConfigError(f"{path}: the graph has {len(inputs)} inputs; segpipe models have one")
    inp = inputs[0]
    tt = inp.type.tensor_type
    dims = [d.dim_value if d.dim_value > 0 else None for d in tt.shape.dim]
    if len(dims) != 4:
        raise ConfigError(f"{path}: input {inp.name} has {len(dims)} axes; expected N×H×W×3")
    nhwc = dims[3] == 3 or (info is not None and info.layout == "NHWC")
    if not nhwc:
        raise ConfigError(f"{path}: input {inp.name} is not NHWC (N×H×W×3) as segpipe export-onnx writes it")
    if info is not None:
        width, height = info.input_size
    else:
        width, height = dims[2], dims[1]
    width = dims[2] or width
    height = dims[1] or height
    if not width or not height:
        raise ConfigError(
            f"{path}: input {inp.name} has dynamic H and W and no segpipe metadata says the size"
        )
    dtype = {1: np.float32, 2: np.uint8}.get(tt.elem_type)
    if dtype is None:
        raise ConfigError(f"{path}: input {inp.name} is neither float32 nor uint8 pixels")
    return GraphIO(inp.name, dims[0] or 1, (int(width), int(height)), dtype)


def head_nodes(proto: Any) -> list[str]:
    """Names of the nodes from the last convolution before the output to the output.

    That is the segmentation head (its 1×1 or 3×3 convolution giving class scores) and what
    follows it (Resize, Softmax, Sigmoid, ArgMax, Transpose, Cast...). Walks back from the graph's
    output through single producers until a Conv.
    """
    producer = {out: node for node in proto.graph.node for out in node.output}
    names: list[str] = []
    seen: set[str] = set()
    stack = [o.name for o in proto.graph.output]
    while stack:
        node = producer.get(stack.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        names.append(node.name)
        if node.op_type == "Conv":
            continue  # the head's convolution: stop here on this path
        stack.extend(i for i in node.input if i in producer)
        if len(names) > 50:  # no convolution near the output: not a segmentation head
            return [n.name for n in proto.graph.node if n.op_type in TAIL_OPS]
    return names


def input_nodes(proto: Any) -> list[str]:
    """Names of the nodes between the graph's input and the first convolutions: the normalisation
    (``x * 1/(255 std) - mean/std``) and the NHWC -> NCHW transpose, with the constants they read.

    Left in FP32, the first Q/DQ pair sits on the normalised tensor that the first convolution
    reads, instead of on the 0-255 pixels (which symmetric INT8 would round to steps of 2) and on
    the per-channel mean/std constants (which per-tensor INT8 would round by up to half a percent).
    """
    consumers: dict[str, list[Any]] = {}
    for node in proto.graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    producer = {out: node for node in proto.graph.node for out in node.output}
    from segpipe.export.onnx import graph_inputs

    names: list[str] = []
    stack = [i.name for i in graph_inputs(proto)]
    seen: set[str] = set()
    while stack:
        for node in consumers.get(stack.pop(), []):
            if node.op_type == "Conv" or node.name in seen:
                continue
            seen.add(node.name)
            names.append(node.name)
            if len(names) > 20:  # no convolution near the input: leave the graph as it is
                return []
            stack.extend(node.output)
            names.extend(
                producer[i].name
                for i in node.input
                if i in producer and producer[i].op_type == "Constant" and producer[i].name not in names
            )
    return names


#: Per-channel QuantizeLinear/DequantizeLinear (their ``axis`` attribute) begin at opset 13.
MIN_OPSET = 13


def ensure_opset(proto: Any, path: Path, notes: list[str], reporter: Reporter) -> Any:
    """``proto`` at opset 13 or later: an older graph is converted (and the note says so)."""
    import onnx
    from onnx import version_converter

    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), MIN_OPSET)
    if opset >= MIN_OPSET:
        return proto
    try:
        converted = version_converter.convert_version(proto, MIN_OPSET)
        onnx.checker.check_model(converted)
    except Exception as e:
        raise ConfigError(
            f"{path}: opset {opset} has no per-channel Q/DQ and converting it to {MIN_OPSET} failed "
            f"({type(e).__name__}); re-export with segpipe export-onnx --opset 13 or later (default 17)"
        ) from e
    msg = f"{path.name} is opset {opset}; converted to opset {MIN_OPSET} (per-channel Q/DQ needs it)"
    notes.append(msg)
    reporter.warn(msg)
    return converted


def ensure_node_names(proto: Any) -> None:
    """Give every unnamed node a unique name (the quantizers select nodes by name)."""
    used = {n.name for n in proto.graph.node if n.name}
    for i, node in enumerate(proto.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in used:
                name += "_"
            node.name = name
            used.add(name)


# ---- calibration readers and quantizers ----------------------------------------------------------
def batches(images: np.ndarray, batch: int, dtype: Any) -> Iterator[tuple[np.ndarray, int]]:
    """``(batch array, real count)``: fixed-size batches; the last is padded with repeats."""
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        count = len(chunk)
        if count < batch:
            chunk = np.concatenate([chunk, np.resize(chunk, (batch - count, *chunk.shape[1:]))])
        yield chunk.astype(dtype), count


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep the quantizers' logging, warnings and prints off the terminal (the core never prints)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    sink = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink):
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def quantize_ort(
    src: Path,
    dst: Path,
    io_: GraphIO,
    calib: np.ndarray,
    method: str,
    exclude: list[str],
    activation: str = "int8",
) -> str:
    """ONNX Runtime ``quantize_static`` in QDQ format; returns a description of the quantizer.

    ``activation="uint8"`` makes the U8S8 variant (asymmetric unsigned activations) for CPU
    comparisons only: TensorRT needs signed symmetric INT8.
    """
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{io_.name: b} for b, _ in batches(calib, io_.batch, io_.dtype)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    symmetric = activation == "int8"
    with _quiet():
        quantize_static(
            str(src),
            str(dst),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=False,
            activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude,
            calibrate_method=methods[method],
            extra_options={
                "ActivationSymmetric": symmetric,
                "WeightSymmetric": True,
                "QuantizeBias": False,
                "CalibPercentile": 99.999,
            },
        )
    return f"onnxruntime {ort.__version__} quantize_static"


def quantize_modelopt(
    src: Path, dst: Path, io_: GraphIO, calib: np.ndarray, method: str, exclude: list[str]
) -> str:
    """NVIDIA ModelOpt ONNX PTQ (``quantize_mode="int8"``, ``calibration_eps=["cpu"]``)."""
    from segpipe.errors import DependencyError

    try:
        import modelopt
        import modelopt.onnx.quantization as mq
    except ImportError as e:
        raise DependencyError(
            f"--quantizer modelopt needs NVIDIA ModelOpt's ONNX PTQ ({e}): pip install nvidia-modelopt "
            "onnx-graphsurgeon onnxslim polygraphy (its [onnx] extra pins onnx and onnxruntime-gpu: see README), "
            "or use --quantizer ort"
        ) from e

    methods = {"minmax": "max", "entropy": "entropy"}
    if method not in methods:
        raise ConfigError(f"--method {method}: ModelOpt calibrates with minmax or entropy")
    data = np.concatenate([b for b, _ in batches(calib, io_.batch, io_.dtype)])
    with _quiet():
        mq.quantize(
            str(src),
            quantize_mode="int8",
            calibration_data={io_.name: data},
            calibration_method=methods[method],
            calibration_eps=["cpu"],
            nodes_to_exclude=exclude,
            output_path=str(dst),
            high_precision_dtype="fp32",
            log_level="ERROR",
        )
    return f"nvidia-modelopt {modelopt.__version__} onnx PTQ"


# ---- the gate ------------------------------------------------------------------------------------
def _session(path: Path, threads: int = 0) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def run_all(session: Any, io_: GraphIO, images: np.ndarray) -> np.ndarray:
    """The first output of ``session`` on every image, in fixed-size batches."""
    outs = []
    for b, count in batches(images, io_.batch, io_.dtype):
        outs.append(np.asarray(session.run(None, {io_.name: b})[0])[:count])
    return np.concatenate(outs)


def gate(
    fp32: Path, int8: Path, io_: GraphIO, info: ModelInfo, sources: dict[str, np.ndarray], shown: Path
) -> list[GateRow]:
    """Argmax agreement of the INT8 graph with the FP32 graph on each source of images."""
    ref_s = _session(fp32)
    try:
        cand_s = _session(int8)
    except Exception as e:
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise ExportError(f"{shown}: ONNX Runtime cannot load the quantized graph: {first[:300]}") from e
    rows = []
    for source, images in sources.items():
        ref = run_all(ref_s, io_, images)
        cand = run_all(cand_s, io_, images)
        rows.append(GateRow(source, len(images), compare(ref, cand, info.mode, info.output_kind)))
    return rows


def _miou(model: Path, data_root: Path, reporter: Reporter) -> float:
    from segpipe.evaluate import evaluate
    from segpipe.options import EvaluateOptions

    return float(evaluate(EvaluateOptions(data_root=data_root, model=model, device="cpu"), reporter).miou)


# ---- the stage -----------------------------------------------------------------------------------
def quantize(opts: QuantizeOptions, reporter: Reporter | None = None) -> QuantizeResult:
    """Calibrate, quantize, gate and write ``opts.model`` as an INT8 Q/DQ graph, atomically.

    Raises a one-line :class:`~segpipe.errors.SegpipeError` on bad input and :class:`ExportError`
    when the quantized graph agrees with the FP32 one below ``min_agreement`` (nothing is then
    written at the output path).
    """
    import onnx

    from segpipe.export.onnx import set_metadata

    reporter = reporter or Reporter()
    start = time.perf_counter()
    src, out = opts.model, opts.resolved_output
    if src.suffix.lower() != ".onnx":
        raise ConfigError(
            f"{src}: segpipe quantize takes an FP32 .onnx model (segpipe export-onnx writes one)"
        )
    if not src.is_file():
        raise ConfigError(f"model file {src} does not exist")
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
    notes: list[str] = []

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
    if opts.data_root is not None and not Path(opts.data_root).is_dir():
        raise ConfigError(f"--data-root {opts.data_root}: folder does not exist")
    for n in notes:
        reporter.warn(n)

    proto = ensure_opset(proto, src, notes, reporter)
    ensure_node_names(proto)
    exclude = (input_nodes(proto) if "input" in opts.keep_fp32 else []) + (
        head_nodes(proto) if "head" in opts.keep_fp32 else []
    )
    min_agreement = opts.resolved_min_agreement
    ensure_dir(out.parent)
    steps = 3 + int(opts.data_root is not None)
    with (
        reporter.task(f"quantize {src.name} (INT8, {opts.quantizer})", total=steps) as task,
        tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as work,
    ):
        named = Path(work) / "fp32.onnx"
        onnx.save(proto, str(named))
        cand = Path(work) / out.name
        t_q = time.perf_counter()
        try:
            fn = quantize_modelopt if opts.quantizer == "modelopt" else quantize_ort
            tool = fn(named, cand, io_, calib, opts.method, exclude)
        except (ConfigError, DataError):
            raise
        except Exception as e:
            first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
            raise ExportError(
                f"quantizing {src} ({opts.quantizer}) failed: {type(e).__name__}: {first[:300]}"
            ) from e
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
            "float_nodes": exclude,
        }
        qinfo = info.replace(precision="int8")
        set_metadata(q, qinfo)
        entry = q.metadata_props.add()
        entry.key, entry.value = CALIBRATION_KEY, json.dumps(calibration)
        onnx.save(q, str(cand))
        rows = gate(src, cand, io_, info, sources, out)
        task.advance(step="gated")
        miou_fp32 = miou_int8 = None
        if opts.data_root is not None:
            miou_fp32 = _miou(src, opts.data_root, Reporter())
            miou_int8 = _miou(cand, opts.data_root, Reporter())
            task.advance(step="mIoU")
        bad = [r for r in rows if not r.result.ok(min_agreement)]
        if bad:
            what = "; ".join(
                f"{r.source} ({r.images} images): {100 * r.result.argmax_agreement:.2f}%" for r in bad
            )
            raise ExportError(
                f"INT8 gate failed for {out}: argmax agreement with the FP32 model below --min-agreement "
                f"{min_agreement:g} ({what}); calibrated on {len(calib_files)} images of "
                f"{opts.calib_images}; nothing was written"
            )
        if (
            miou_fp32 is not None
            and miou_int8 is not None
            and 100 * (miou_fp32 - miou_int8) > opts.max_miou_drop
        ):
            raise ExportError(
                f"INT8 gate failed for {out}: mIoU on --data-root {opts.data_root} fell from {miou_fp32:.4f} "
                f"(FP32) to {miou_int8:.4f}, more than --max-miou-drop {opts.max_miou_drop:g} points; "
                f"calibrated on {len(calib_files)} images of {opts.calib_images}; nothing was written"
            )
        os.replace(cand, out)
        task.advance(step="written")
    return QuantizeResult(
        path=out,
        info=qinfo,
        size_mb=file_size_mb(out),
        fp32_size_mb=file_size_mb(src),
        calibration={**calibration, "seconds": round(quant_seconds, 2)},
        gate=rows,
        min_agreement=min_agreement,
        miou_fp32=miou_fp32,
        miou_int8=miou_int8,
        quantize_linear=counts["QuantizeLinear"],
        dequantize_linear=counts["DequantizeLinear"],
        seconds=time.perf_counter() - start,
        notes=notes,
    )


def read_calibration(props: dict[str, str]) -> dict[str, Any] | None:
    """The calibration record of an INT8 graph's metadata props (``None`` when absent or damaged)."""
    raw = props.get(CALIBRATION_KEY)
    if raw is None or len(raw) > 1 << 20:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
