"""``segpipe export-onnx``: flags (original and modern spellings) -> OnnxExportOptions -> ``export_onnx``.

One name for the file, ``--output/-o FILE``, and one for what the graph returns, ``--output-kind
logits|probs|labels``. The original tool's spellings keep working without being advertised:
``--model_out FILE`` (a hidden alias of ``--output``) and ``--output labels`` (a kind given to
``--output``: the two never clash, since a file must end in ``.onnx``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from segpipe.cli.common import (
    MODEL_PANEL,
    ArchOpt,
    EncoderOpt,
    ModeOpt,
    NumClassesOpt,
    RichReporter,
    TrustCheckpointOpt,
    console,
    print_written,
    run_guarded,
)
from segpipe.cli.quantize import CalibCountOpt, CalibImagesOpt, Int8MinAgreementOpt, MethodOpt, QuantizerOpt
from segpipe.errors import ConfigError
from segpipe.options import ONNX_OUTPUT_KINDS, OnnxExportOptions, QuantizeOptions
from segpipe.outpaths import check_output_file
from segpipe.units import human_bytes, output_layout, tensor_text

_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(OnnxExportOptions) if f.default is not dataclasses.MISSING
}

MODEL, GRAPH, VERIFY, INT8 = MODEL_PANEL, "Graph", "Verification", "INT8 (Q/DQ for TensorRT)"
_QDEFAULTS = {
    f.name: f.default for f in dataclasses.fields(QuantizeOptions) if f.default is not dataclasses.MISSING
}


def _d(name: str) -> Any:
    """The default shown in --help, read from OnnxExportOptions (defaults live there only)."""
    return _DEFAULTS[name]


def split_output_values(
    values: list[str], model_out: Path | None, output_kind: str | None
) -> tuple[Path | None, str]:
    """Sort the ``--output`` values into the file path and the output kind; one-line error on a clash."""
    kinds = [v for v in values if v.lower() in ONNX_OUTPUT_KINDS]
    paths = [Path(v) for v in values if v.lower() not in ONNX_OUTPUT_KINDS]
    for p in paths:
        if p.suffix.lower() != ".onnx":
            raise ConfigError(
                f"--output {p}: give {', '.join(ONNX_OUTPUT_KINDS)} (what the graph returns) "
                "or a file ending in .onnx"
            )
    if model_out is not None:
        paths.append(model_out)
    if output_kind is not None:
        kinds.append(output_kind)
    if len({str(p) for p in paths}) > 1:
        raise ConfigError(f"--output: two output files given ({', '.join(map(str, paths))})")
    if len({k.lower() for k in kinds}) > 1:
        raise ConfigError(f"--output/--output-kind: two output kinds given ({', '.join(kinds)})")
    return (paths[0] if paths else None), (kinds[0].lower() if kinds else _d("output_kind"))


def export_onnx_command(
    model: Annotated[
        Path,
        typer.Option(
            "--model",
            "--model_in",
            "--model-in",
            "-m",
            help="Checkpoint to export (.pth).",
            rich_help_panel=MODEL,
        ),
    ],
    output: Annotated[
        list[str] | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="ONNX file to write (default: beside the checkpoint, .onnx). The original "
            "--output logits|probs|labels still works, as --output-kind.",
            show_default=False,
        ),
    ] = None,
    output_kind: Annotated[
        str | None,
        typer.Option(
            "--output-kind",
            metavar="KIND",
            help="What the graph returns: logits (N x C x H x W, the default), probs, or labels "
            "(the N x H x W class map, argmax inside the graph).",
            show_default=False,
            rich_help_panel=GRAPH,
        ),
    ] = None,
    model_out: Annotated[
        Path | None,
        typer.Option(
            "--model-out", "--model_out", hidden=True, help="The original spelling of --output FILE."
        ),
    ] = None,
    num_classes: NumClassesOpt = None,
    encoder: EncoderOpt = None,
    arch: ArchOpt = None,
    mode: ModeOpt = _d("mode"),
    trust_checkpoint: TrustCheckpointOpt = False,
    class_names: Annotated[
        str | None,
        typer.Option(
            "--class-names",
            help="Comma-separated class names for the ONNX metadata (default: the checkpoint's; "
            "class_0... for a bare state_dict).",
            rich_help_panel=MODEL,
            show_default=False,
        ),
    ] = None,
    colors: Annotated[
        Path | None,
        typer.Option(
            "--colors",
            help="Palette CSV (as train's) whose colours, and names unless --class-names, the ONNX "
            "metadata carries (default: the checkpoint's).",
            rich_help_panel=MODEL,
            show_default=False,
        ),
    ] = None,
    size: Annotated[
        tuple[int, int] | None,
        typer.Option(
            "--size",
            help="WIDTH HEIGHT of the graph (default: the training size in the checkpoint).",
            rich_help_panel=GRAPH,
            show_default=False,
        ),
    ] = None,
    input_dtype: Annotated[
        str,
        typer.Option("--input-dtype", help="float32 (pixels 0-255) or uint8.", rich_help_panel=GRAPH),
    ] = _d("input_dtype"),
    batch: Annotated[
        int,
        typer.Option("--batch", help="Batch size of the graph.", rich_help_panel=GRAPH),
    ] = _d("batch"),
    dynamic_batch: Annotated[
        bool,
        typer.Option("--dynamic-batch", help="Dynamic batch axis.", rich_help_panel=GRAPH),
    ] = False,
    dynamic_size: Annotated[
        bool,
        typer.Option("--dynamic-size", help="Dynamic H and W axes.", rich_help_panel=GRAPH),
    ] = False,
    opset: Annotated[
        int | None,
        typer.Option(
            "--opset",
            help="ONNX opset (default 17; 18 with --exporter dynamo).",
            rich_help_panel=GRAPH,
            show_default=False,
        ),
    ] = None,
    half: Annotated[
        bool,
        typer.Option(
            "--half",
            help="FP16 graph with FP32 input and output (for TensorRT FP16 engines).",
            rich_help_panel=GRAPH,
        ),
    ] = False,
    simplify: Annotated[
        bool,
        typer.Option("--simplify/--no-simplify", help="Run onnx-simplifier.", rich_help_panel=GRAPH),
    ] = _d("simplify"),
    exporter: Annotated[
        str,
        typer.Option(
            "--exporter",
            help="auto (TorchScript; dynamo where TorchScript cannot express the graph), "
            "torchscript or dynamo.",
            rich_help_panel=GRAPH,
        ),
    ] = _d("exporter"),
    verify: Annotated[
        bool,
        typer.Option(
            "--verify/--no-verify",
            help="Check and compare ONNX Runtime with PyTorch before keeping the file.",
            rich_help_panel=VERIFY,
        ),
    ] = _d("verify"),
    verify_images: Annotated[
        Path | None,
        typer.Option(
            "--verify-images",
            help="Folder of real images to verify on too.",
            rich_help_panel=VERIFY,
            show_default=False,
        ),
    ] = None,
    verify_random: Annotated[
        int,
        typer.Option("--verify-random", help="Random images to verify on.", rich_help_panel=VERIFY),
    ] = _d("verify_random"),
    min_agreement: Annotated[
        float | None,
        typer.Option(
            "--min-agreement",
            help="Smallest argmax agreement accepted (default 0.999; 0.99 with --half).",
            rich_help_panel=VERIFY,
            show_default=False,
        ),
    ] = None,
    int8: Annotated[
        bool,
        typer.Option(
            "--int8",
            help="Also write NAME.int8.onnx: INT8 Q/DQ, calibrated on --calib-images, gated against the FP32 graph.",
            rich_help_panel=INT8,
        ),
    ] = False,
    calib_images: CalibImagesOpt = None,
    calib_count: CalibCountOpt = _QDEFAULTS["calib_count"],
    calib_method: MethodOpt = _QDEFAULTS["method"],
    quantizer: QuantizerOpt = _QDEFAULTS["quantizer"],
    int8_min_agreement: Int8MinAgreementOpt = None,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="Only the summary."),
    ] = False,
) -> None:
    """Export a checkpoint to a deployable, verified ONNX model (NHWC RGB 0-255 in, normalisation inside)."""

    def build() -> OnnxExportOptions:
        out, kind = split_output_values(list(output or []), model_out, output_kind)
        return OnnxExportOptions(
            model=model,
            output=out,
            num_classes=num_classes,
            arch=arch,
            encoder=encoder,
            mode=mode,
            size=tuple(size) if size else None,
            input_dtype=input_dtype,
            output_kind=kind,
            batch=batch,
            dynamic_batch=dynamic_batch,
            dynamic_size=dynamic_size,
            opset=opset,
            half=half,
            simplify=simplify,
            verify=verify,
            verify_images=verify_images,
            verify_random=verify_random,
            min_agreement=min_agreement,
            exporter=exporter,
            trust_checkpoint=trust_checkpoint,
            class_names=(
                tuple(n.strip() for n in class_names.split(",") if n.strip())
                if class_names is not None
                else None
            ),
            colors=colors,
        )

    from segpipe.export.onnx import export_onnx

    def build_int8(opts: OnnxExportOptions) -> QuantizeOptions:
        """The INT8 step's options, checked before the export starts (a typo costs no export)."""
        from segpipe.export.quantize import image_files

        if not int8:
            raise ConfigError("--calib-images is for --int8; add --int8 (or drop --calib-images)")
        if calib_images is None:
            raise ConfigError(
                "--int8 needs --calib-images DIR: a folder of images like the ones the model will see"
            )
        if opts.half:
            raise ConfigError("--int8 with --half: an INT8 graph is quantized from the FP32 one; drop --half")
        image_files(calib_images, "--calib-images")
        return QuantizeOptions(
            model=opts.resolved_output,
            calib_images=calib_images,
            calib_count=calib_count,
            verify_images=opts.verify_images,
            min_agreement=int8_min_agreement,
            method=calib_method,
            quantizer=quantizer,
        )

    opts = run_guarded(build)
    run_guarded(check_output_file, opts.resolved_output, "--output", (opts.model, opts.colors), "model.onnx")
    qopts = run_guarded(build_int8, opts) if int8 or calib_images is not None else None
    if qopts is not None:
        run_guarded(check_output_file, qopts.resolved_output, "--output", (opts.model,), "model.int8.onnx")
    result = run_guarded(export_onnx, opts, RichReporter(quiet=quiet))
    render_result(result)
    if qopts is not None:
        from segpipe.cli.quantize import render_result as render_int8
        from segpipe.export.quantize import quantize

        render_int8(run_guarded(quantize, qopts.replace(model=result.path), RichReporter(quiet=quiet)))


def render_result(result: Any) -> None:
    """The summary: file, size, opset, shapes, node counts, verification figures, time."""
    from rich.table import Table

    info = result.info
    nodes = str(result.nodes_exported)
    if result.nodes_simplified is not None:
        nodes += f" -> {result.nodes_simplified} (simplified)"
    table = Table(show_header=False, title=f"ONNX export of {info.arch}/{info.encoder}", title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("file", str(result.path))
    table.add_row("size", human_bytes(result.size_mb * 1e6))
    table.add_row("opset", f"{result.opset} ({getattr(result, 'exporter', 'torchscript')} exporter)")
    for spec in result.inputs:
        table.add_row("input", tensor_text(spec.name, spec.shape, spec.dtype, info.layout))
    for spec in result.outputs:
        out = tensor_text(spec.name, spec.shape, spec.dtype, output_layout(info.output_kind))
        table.add_row("output", f"{out} ({info.output_kind})")
    table.add_row("precision", info.precision)
    table.add_row("classes", f"{info.num_classes} ({info.mode})")
    table.add_row("nodes", nodes)
    table.add_row("time", f"{result.seconds:.1f} s")
    console.print(table)
    ver = result.verification
    if ver is None:
        console.print("[yellow]not verified[/] (--no-verify)", markup=True)
    else:
        vt = Table(
            title=f"verification: ONNX Runtime vs PyTorch (min agreement {ver.min_agreement:g})",
            title_justify="left",
        )
        for col in ("inputs", "images", "max |diff|", "mean |diff|", "argmax agreement"):
            vt.add_column(col, justify="left" if col == "inputs" else "right")
        for row in ver.rows():
            vt.add_row(*(str(v) for v in row))
        console.print(vt)
        console.print(
            f"[green]verified[/]: onnx.checker {ver.checker}; argmax agreement "
            f"{100 * ver.worst.argmax_agreement:.3f}% >= {100 * ver.min_agreement:g}%",
            markup=True,
        )
    print_written(result.path, "ONNX model")
