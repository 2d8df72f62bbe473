"""``segpipe export-onnx``: a deployable, verified ONNX model from a checkpoint.

The graph is :class:`~segpipe.models.DeployModel` (ARCHITECTURE.md, contracts): one input
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

import copy
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segpipe import __version__
from segpipe.errors import ExportError
from segpipe.export.graph import (
    INPUT_NAME,
    OUTPUT_NAME,
    TensorSpec,
    declare_output_shape,
    dynamic_axes,
    expected_output_shape,
    graph_inputs,
    set_metadata,
    simplify,
    tensor_specs,
)
from segpipe.export.torch_export import (
    _half_io_module,
    captured_output,
    fixed_grid_pooling,
    grid_pools,
    make_exportable,
    torch_to_onnx,
)
from segpipe.modelinfo import ModelInfo
from segpipe.options import OnnxExportOptions
from segpipe.progress import Reporter
from segpipe.utils import atomic_path, ensure_dir, file_size_mb

#: The names other modules and tests import from here (the graph and PyTorch helpers live in
#: :mod:`segpipe.export.graph` and :mod:`segpipe.export.torch_export`).
__all__ = [
    "INPUT_NAME",
    "OUTPUT_NAME",
    "ExportResult",
    "TensorSpec",
    "captured_output",
    "declare_output_shape",
    "dynamic_axes",
    "expected_output_shape",
    "export_onnx",
    "fixed_grid_pooling",
    "graph_inputs",
    "grid_pools",
    "make_exportable",
    "second_size",
    "set_metadata",
    "simplify",
    "tensor_specs",
    "torch_to_onnx",
]


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
                torch_to_onnx(exported, example, tmp, opset, axes, exporter, log, out)
            except ExportError as e:
                if opts.exporter != "auto":
                    raise
                why = str(e).split(" failed: ", 1)[-1].split(" (exporter output in ")[0][:160]
                exporter, opset = "dynamo", max(opset, 18)
                if opts.dynamic_batch and opts.batch == 1:  # torch.export fixes axes of size 1
                    example = torch.cat([example, example])
                torch_to_onnx(exported, example, tmp, opset, axes, exporter, log, out)
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
