"""``segpipe export-onnx``: a deployable, verified ONNX model from a checkpoint.

The graph is :class:`~segpipe.models.DeployModel` (DESIGN.md, ONNX contract): one input
``input_1``, NHWC RGB pixel values 0-255 (float32, or uint8), the checkpoint's normalisation
inside; one output ``output``: logits N×C×H×W, probabilities, or the class map N×H×W.

Steps, all inside one atomic write (a failed step never leaves a file at the output path):

1. load the checkpoint (a segpipe checkpoint describes itself; a bare state_dict needs flags),
   check the size for the model actually built (stride, then a shape-only forward pass; with
   ``dynamic_size`` a second size too, at which the graph is also verified);
2. export with the TorchScript exporter (``dynamo=False``: it honours any opset from 11, takes plain
   ``dynamic_axes`` and exports in a fraction of the dynamo exporter's time), falling back to the
   dynamo exporter (opset 18) with ``exporter="auto"`` when TorchScript cannot express the graph;
   PSPNet's and UPerNet's pyramid pooling is exported in fixed-size form (:func:`fixed_grid_pooling`);
   what the exporters print goes to ``OUT.export.log``, kept and named only when export fails;
3. ``--half``: the network runs in FP16 with casts at both ends, so the graph computes in FP16
   while its input and output stay FP32 (what TensorRT 11's strong typing needs);
4. onnx-simplifier (kept unsimplified, with one warning, if it fails);
5. the segpipe metadata props (:meth:`ModelInfo.to_metadata`);
6. verification (:mod:`segpipe.export.onnx_verify`): ``onnx.checker``, then ONNX Runtime against
   PyTorch on the same inputs.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segpipe import __version__
from segpipe.errors import ExportError, shorten
from segpipe.modelinfo import ModelInfo
from segpipe.options import OnnxExportOptions
from segpipe.progress import Reporter
from segpipe.utils import atomic_path, ensure_dir, file_size_mb

INPUT_NAME = "input_1"
OUTPUT_NAME = "output"


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape (ints, or names of dynamic axes) and element type of a graph input or output."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str

    def __str__(self) -> str:
        return f"{self.name} {'x'.join(str(d) for d in self.shape)} {self.dtype}"


@dataclass
class ExportResult:
    """What ``export_onnx`` wrote, with the figures of its summary."""

    path: Path
    info: ModelInfo
    size_mb: float
    opset: int
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    nodes_exported: int
    #: Node count after onnx-simplifier (``None``: not simplified, or the simplifier failed).
    nodes_simplified: int | None
    seconds: float
    #: ``None`` with ``verify=False``.
    verification: Any = None
    warnings: list[str] = field(default_factory=list)
    #: The exporter that wrote the graph (``torchscript`` or ``dynamo``).
    exporter: str = "torchscript"


# ---- the module to export ------------------------------------------------------------------------
def make_exportable(model: Any) -> Any:
    """Switch encoders with a memory-efficient swish to the exportable one (older smp EfficientNets).

    smp 0.6's EfficientNet encoders already use ``nn.SiLU`` (exported as Sigmoid and Mul);
    encoders built on ``efficientnet_pytorch`` have ``set_swish``, whose memory-efficient variant is
    a custom autograd function no exporter can trace.
    """
    encoder = getattr(model, "encoder", None)
    if encoder is not None and hasattr(encoder, "set_swish"):
        encoder.set_swish(memory_efficient=False)
    return model


def grid_pools(model: Any) -> list[tuple[int, int]]:
    """Output grids of the adaptive average poolings in ``model`` that pool to more than one cell
    (PSPNet's and UPerNet's pyramid pooling: 2x2, 3x3, 6x6). ONNX has no adaptive pooling; such
    a pooling exports for one input size only."""
    from torch import nn

    grids = []
    for m in model.modules():
        if isinstance(m, nn.AdaptiveAvgPool2d):
            size = m.output_size if isinstance(m.output_size, tuple) else (m.output_size, m.output_size)
            if any(v not in (1, None) for v in size):
                grids.append((int(size[0]), int(size[1])))
    return grids


def fixed_grid_pooling(model: Any) -> Any:
    """``model`` (changed in place) with every multi-cell adaptive average pooling written as
    plain average pooling over the windows PyTorch uses (``floor(i*n/k)`` to ``ceil((i+1)*n/k)``)
    for the size being traced: the TorchScript exporter expresses that at any size, exactly.

    PSPNet's blocks switch to ``F.interpolate(mode="area")`` while exporting (the same pooling,
    the same export failure); they get their ordinary forward back.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    class GridAvgPool2d(nn.Module):
        def __init__(self, output_size: tuple[int, int]) -> None:
            super().__init__()
            self.output_size = output_size

        def forward(self, x: Any) -> Any:
            h, w = int(x.shape[-2]), int(x.shape[-1])
            oh, ow = self.output_size
            if h % oh == 0 and w % ow == 0:
                return F.avg_pool2d(x, (h // oh, w // ow))
            rows = []
            for i in range(oh):
                h0, h1 = (i * h) // oh, -((-(i + 1) * h) // oh)
                cells = [
                    x[..., h0:h1, (j * w) // ow : -((-(j + 1) * w) // ow)].mean(dim=(-2, -1), keepdim=True)
                    for j in range(ow)
                ]
                rows.append(torch.cat(cells, dim=-1))
            return torch.cat(rows, dim=-2)

    class PlainPSPBlock(nn.Module):
        def __init__(self, pool: nn.Module) -> None:
            super().__init__()
            self.pool = pool

        def forward(self, x: Any) -> Any:
            height, width = x.shape[2:]
            return F.interpolate(self.pool(x), size=(height, width), mode="bilinear", align_corners=True)

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, nn.AdaptiveAvgPool2d):
                size = child.output_size if isinstance(child.output_size, tuple) else (child.output_size,) * 2
                if any(v not in (1, None) for v in size):
                    setattr(parent, name, GridAvgPool2d((int(size[0]), int(size[1]))))
                continue
            swap(child)
            if type(child).__name__ == "PSPBlock" and hasattr(child, "pool"):
                setattr(parent, name, PlainPSPBlock(child.pool))

    swap(model)
    return model


def _half_io_module(deploy: Any) -> Any:
    """``deploy`` in FP16 with FP32 input and output: casts at both ends of the graph."""
    from torch import nn

    class HalfWithFloatIO(nn.Module):
        """FP32 (or uint8) pixels in -> FP16 network -> FP32 logits/probs out (labels stay int64)."""

        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner.half()

        def forward(self, x: Any) -> Any:
            y = self.inner(x.half() if x.is_floating_point() else x)
            return y.float() if y.is_floating_point() else y

    return HalfWithFloatIO(deploy).eval()


def dynamic_axes(output_kind: str, dynamic_batch: bool, dynamic_size: bool) -> dict[str, dict[int, str]]:
    """The ``dynamic_axes`` of the graph: batch and/or H and W of the NHWC input and the output."""
    axes_in: dict[int, str] = {}
    axes_out: dict[int, str] = {}
    hw_out = (1, 2) if output_kind == "labels" else (2, 3)
    if dynamic_batch:
        axes_in[0] = axes_out[0] = "batch"
    if dynamic_size:
        axes_in[1], axes_in[2] = "height", "width"
        axes_out[hw_out[0]], axes_out[hw_out[1]] = "height", "width"
    return {INPUT_NAME: axes_in, OUTPUT_NAME: axes_out} if axes_in else {}


@contextlib.contextmanager
def captured_output(log_path: Path) -> Iterator[None]:
    """Everything written to stdout and stderr in the block, by Python and by C++ (file
    descriptors 1 and 2: the TorchScript exporter prints its "Torch IR graph at exception" dump
    from C++), goes to ``log_path`` instead of the terminal."""
    import os
    import sys

    def flush() -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None).fflush(None)

    with open(log_path, "w", encoding="utf-8", errors="replace") as log:
        flush()
        try:
            saved = [os.dup(1), os.dup(2)]
        except OSError:  # no file descriptors (embedded interpreter): Python-level only
            saved = []
        try:
            for fd in (1, 2) if saved else ():
                os.dup2(log.fileno(), fd)
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield
        finally:
            flush()
            for fd, old in zip((1, 2), saved, strict=False):
                os.dup2(old, fd)
                os.close(old)


def torch_to_onnx(
    module: Any,
    example: Any,
    path: Path,
    opset: int,
    axes: dict[str, dict[int, str]],
    exporter: str = "torchscript",
    log_path: Path | None = None,
) -> None:
    """Run ``torch.onnx.export``; one-line :class:`ExportError` when the exporter fails.

    Whatever the exporters print (the TorchScript exporter's deprecation notice and graph dumps,
    the dynamo exporter's progress lines) goes to ``log_path`` (default: beside ``path``, suffix
    ``.export.log``), which is removed after a successful export and named in the error otherwise.
    """
    import torch

    kwargs: dict[str, Any] = {
        "input_names": [INPUT_NAME],
        "output_names": [OUTPUT_NAME],
        "opset_version": opset,
        "dynamo": exporter == "dynamo",
    }
    if axes:
        kwargs["dynamic_axes"] = axes
    if exporter == "torchscript":
        kwargs["do_constant_folding"] = True
    else:
        kwargs["verbose"] = False
    log = log_path or path.with_suffix(".export.log")
    try:
        with warnings.catch_warnings(), captured_output(log), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), str(path), **kwargs)
    except Exception as e:
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        with contextlib.suppress(OSError), open(log, "a", encoding="utf-8") as f:
            import traceback

            f.write("\n" + "".join(traceback.format_exception(e)))
        raise ExportError(
            f"torch.onnx.export ({exporter} exporter, opset {opset}) failed: "
            f"{type(e).__name__}: {shorten(first, 300)} (exporter output in {log})"
        ) from e
    log.unlink(missing_ok=True)


def expected_output_shape(info: ModelInfo, batch: int, axes: dict[str, dict[int, str]]) -> list[int | str]:
    """The output's shape: N×C×H×W (logits, probs) or N×H×W (labels); dynamic axes by name."""
    width, height = info.input_size
    dims: list[int | str] = (
        [batch, height, width] if info.output_kind == "labels" else [batch, info.out_channels, height, width]
    )
    for index, name in axes.get(OUTPUT_NAME, {}).items():
        dims[index] = name
    return dims


def declare_output_shape(proto: Any, dims: list[int | str]) -> None:
    """Write the output's shape into the graph.

    The exporters' shape inference loses or garbles some axes (with a dynamic batch the TorchScript
    exporter declares logits ``batch×C×batch×Convoutput_dim_3``; dynamo writes expressions like
    ``32*((height - 1)//32) + 32``). The shape is known, and verification checks it against PyTorch.
    """
    out = next(o for o in proto.graph.output if o.name == OUTPUT_NAME)
    shape = out.type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        entry = shape.dim.add()
        if isinstance(d, str):
            entry.dim_param = d
        else:
            entry.dim_value = int(d)


def simplify(proto: Any) -> tuple[Any, str | None]:
    """onnx-simplifier; returns ``(model, None)``, or ``(the model unchanged, why)`` when it fails."""
    try:
        import onnxsim

        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            simplified, ok = onnxsim.simplify(proto)
    except Exception as e:  # the simplifier is an optimisation: keep the graph that works
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
        return proto, f"{type(e).__name__}: {shorten(first)}"
    if not ok:
        return proto, "its check of the simplified graph failed"
    return simplified, None


def set_metadata(proto: Any, info: ModelInfo) -> None:
    """Write ``info`` as the model's ``metadata_props``.

    Older segpipe keys are replaced; onnx-simplifier's bookkeeping props (``onnxsim.*``: lists of
    every node it removed, kilobytes of text) are dropped, other props are kept.
    """
    props = info.to_metadata()
    keep = [
        (p.key, p.value)
        for p in proto.metadata_props
        if p.key not in props and not p.key.startswith("onnxsim.")
    ]
    del proto.metadata_props[:]
    for key, value in [*keep, *props.items()]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "segpipe"
    proto.producer_version = __version__
    proto.doc_string = (
        f"segpipe {info.arch}/{info.encoder}, {info.num_classes} classes; input {INPUT_NAME} "
        f"{info.layout} RGB 0-255 {info.input_dtype}; output {OUTPUT_NAME} {info.output_kind}"
    )


_ONNX_TYPES = {1: "float32", 2: "uint8", 6: "int32", 7: "int64", 10: "float16", 11: "float64", 9: "bool"}


def tensor_specs(values: Any) -> list[TensorSpec]:
    """TensorSpecs of ``graph.input`` / ``graph.output`` value infos."""
    specs = []
    for v in values:
        tt = v.type.tensor_type
        shape = tuple(d.dim_param if d.dim_param else int(d.dim_value) for d in tt.shape.dim)
        specs.append(TensorSpec(v.name, shape, _ONNX_TYPES.get(tt.elem_type, str(tt.elem_type))))
    return specs


def graph_inputs(proto: Any) -> list[Any]:
    """The real inputs of a graph (older exporters also list the initializers as inputs)."""
    init = {i.name for i in proto.graph.initializer}
    return [i for i in proto.graph.input if i.name not in init]


# ---- the stage -----------------------------------------------------------------------------------
def _describe(opts: OnnxExportOptions, info: ModelInfo, stride: int) -> ModelInfo:
    """The ModelInfo the ONNX file carries: the checkpoint's, as deployed; ``--class-names`` and
    ``--colors`` replace its names and colours (a bare state_dict has none)."""
    from segpipe.errors import ConfigError
    from segpipe.palette import fit_palette, load_palette

    size = tuple(opts.size) if opts.size is not None else tuple(info.input_size)
    changes: dict[str, Any] = {
        "input_size": size,
        "layout": "NHWC",
        "input_dtype": opts.input_dtype,
        "precision": "fp16" if opts.half else "fp32",
        "output_kind": opts.output_kind,
        "output_stride": stride,
        "segpipe_version": __version__,
    }
    names = info.class_names
    if opts.class_names is not None:
        if len(opts.class_names) != info.num_classes:
            raise ConfigError(
                f"--class-names {','.join(opts.class_names)}: gives {len(opts.class_names)} names for "
                f"the {info.num_classes} classes of {opts.model}"
            )
        names = tuple(opts.class_names)
    if opts.colors is not None:
        palette = load_palette(opts.colors)
        if len(palette) < info.num_classes:
            raise ConfigError(
                f"--colors {opts.colors}: {len(palette)} colours for the {info.num_classes} classes "
                f"of {opts.model}"
            )
        palette = palette.truncated(info.num_classes)
        changes["colors"] = palette.colors
        if opts.class_names is None and (len(names) != info.num_classes or not info.class_names):
            names = palette.names
    changes["class_names"] = names
    if len(names) != info.num_classes:
        changes["class_names"] = tuple(f"class_{i}" for i in range(info.num_classes))
    if "colors" not in changes and len(info.colors) != info.num_classes:
        changes["colors"] = fit_palette(load_palette(), info.num_classes)[0].colors
    return info.replace(**changes)


def second_size(width: int, height: int, stride: int) -> tuple[int, int]:
    """Another size a dynamic-size graph is verified at: larger by two strides in width and one in
    height (larger, so a minimum side never refuses it; different in each axis, so a swapped H/W
    shows)."""
    return width + 2 * stride, height + stride


def _check_sizes(
    model: Any, info: ModelInfo, opts: OnnxExportOptions
) -> tuple[list[tuple[int, int]], ModelInfo]:
    """The sizes the graph is verified at, each checked for the model actually built (shape-only
    forward pass), before anything is written, and ``info`` with the smallest side a dynamic-size
    graph takes. ``--dynamic-size`` on a model that takes one size only is refused."""
    from segpipe.errors import ConfigError
    from segpipe.models import check_model_size, model_label, output_stride, size_problem, size_rule

    width, height = info.input_size
    check_model_size(model, info, (width, height))
    sizes = [(width, height)]
    grids = sorted(set(grid_pools(model)))
    if opts.dynamic_size and grids:
        raise ConfigError(
            f"--dynamic-size: {model_label(info)} pools to fixed grids (adaptive average pooling to "
            f"{', '.join(f'{a}x{b}' for a, b in grids)}), which an ONNX graph computes for one input "
            "size only; export without --dynamic-size, at each --size you deploy"
        )
    if opts.dynamic_size:
        rule = size_rule(model, info.in_channels)
        if rule.fixed is None and rule.min_side > rule.stride:
            info = info.replace(min_side=rule.min_side)  # runners check it before ONNX Runtime does
        other = second_size(width, height, output_stride(model))
        problem = size_problem(model, *other, info.in_channels)
        if problem is not None:
            rule = size_rule(model, info.in_channels)
            raise ConfigError(
                f"--dynamic-size: {model_label(info)} takes {rule.describe()} (at {other[0]}x{other[1]}: "
                f"{problem}); export it without --dynamic-size"
            )
        sizes.append(other)
    return sizes, info


def export_onnx(opts: OnnxExportOptions, reporter: Reporter | None = None) -> ExportResult:
    """Export ``opts.model`` to ONNX, simplify, stamp the metadata and verify, atomically.

    Returns an :class:`ExportResult`; raises a one-line :class:`~segpipe.errors.SegpipeError` for
    bad input and :class:`ExportError` when the export or the verification fails (the output path
    is then left as it was). With ``exporter="auto"`` a graph the TorchScript exporter cannot
    express is exported with the dynamo exporter (opset 18 at least), with a note saying so.
    """
    import onnx
    import torch

    from segpipe.export.onnx_verify import verification_inputs, verify_onnx
    from segpipe.models import DeployModel, load_model, model_label, output_stride

    reporter = reporter or Reporter()
    start = time.perf_counter()
    notes: list[str] = []
    out = opts.resolved_output
    if out.suffix.lower() != ".onnx":
        raise ExportError(f"--model_out {out}: the file name must end in .onnx")
    # everything that can fail on bad input happens before the progress bar starts
    model, ckpt_info, _ = load_model(
        opts.model,
        arch=opts.arch,
        encoder=opts.encoder,
        num_classes=opts.num_classes,
        mode=opts.mode,
        trust=opts.trust_checkpoint,
        device="cpu",
    )
    make_exportable(model)
    stride = output_stride(model)
    info = _describe(opts, ckpt_info, stride)
    width, height = info.input_size
    sizes, info = _check_sizes(model, info, opts)
    batches = []
    if opts.verify:
        batches = verification_inputs(
            (width, height),
            opts.batch,
            opts.verify_random,
            opts.verify_images,
            opts.verify_max_images,
            opts.seed,
        )
        for w, h in sizes[1:]:  # a dynamic-size graph: random images at the other size too
            more = verification_inputs(
                (w, h),
                opts.batch,
                max(1, opts.verify_random // 2),
                None,
                opts.verify_max_images,
                opts.seed + 1,
            )
            batches += [dataclasses.replace(b, source=f"random {w}x{h}") for b in more]
    ensure_dir(out.parent)

    reference = DeployModel(model, info, opts.output_kind).eval()
    exported = reference
    if grid_pools(model):  # PSPNet, UPerNet: their pooling in fixed-size form (exact)
        exported = DeployModel(fixed_grid_pooling(copy.deepcopy(model)), info, opts.output_kind).eval()
    if opts.half:
        exported = _half_io_module(copy.deepcopy(exported))
    dtype = torch.uint8 if opts.input_dtype == "uint8" else torch.float32
    example = torch.randint(0, 256, (opts.batch, height, width, info.in_channels), dtype=torch.uint8)
    example = example.to(dtype)
    axes = dynamic_axes(opts.output_kind, opts.dynamic_batch, opts.dynamic_size)
    opset = opts.resolved_opset
    exporter = "torchscript" if opts.exporter == "auto" else opts.exporter
    log = out.with_suffix(".export.log")
    steps = 3 + int(opts.simplify) + int(opts.verify)
    with reporter.task(f"export-onnx {opts.model.name}", total=steps) as task:
        with atomic_path(out) as tmp:
            try:
                torch_to_onnx(exported, example, tmp, opset, axes, exporter, log)
            except ExportError as e:
                if opts.exporter != "auto":
                    raise
                why = str(e).split(" failed: ", 1)[-1].split(" (exporter output in ")[0][:160]
                exporter, opset = "dynamo", max(opset, 18)
                if opts.dynamic_batch and opts.batch == 1:  # torch.export fixes axes of size 1
                    example = torch.cat([example, example])
                torch_to_onnx(exported, example, tmp, opset, axes, exporter, log)
                msg = (
                    f"the TorchScript exporter cannot express {model_label(info)} at {width}x{height} "
                    f"({why}); exported with the dynamo exporter (opset {opset}) instead"
                )
                reporter.info(msg)
                notes.append(msg)
            proto = onnx.load(str(tmp))
            nodes_exported = len(proto.graph.node)
            task.advance(step="exported")
            nodes_simplified = None
            if opts.simplify:
                proto, why = simplify(proto)
                if why is None:
                    nodes_simplified = len(proto.graph.node)
                else:
                    msg = f"onnx-simplifier failed on {out.name} ({why}); keeping the unsimplified graph"
                    reporter.warn(msg)
                    notes.append(msg)
                task.advance(step="simplified")
            declare_output_shape(proto, expected_output_shape(info, opts.batch, axes))
            set_metadata(proto, info)
            onnx.save(proto, str(tmp))
            task.advance(step="metadata")
            verification = None
            if opts.verify:
                verification = verify_onnx(
                    tmp,
                    reference,
                    batches,
                    info,
                    opts.resolved_min_agreement,
                    shown_path=out,
                )
                task.advance(step="verified")
            final_inputs = tensor_specs(graph_inputs(proto))
            final_outputs = tensor_specs(proto.graph.output)
        task.advance(step="written")
    return ExportResult(
        path=out,
        info=info,
        size_mb=file_size_mb(out),
        opset=opset,
        inputs=final_inputs,
        outputs=final_outputs,
        nodes_exported=nodes_exported,
        nodes_simplified=nodes_simplified,
        seconds=time.perf_counter() - start,
        verification=verification,
        warnings=notes,
        exporter=exporter,
    )
