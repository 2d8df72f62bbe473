"""``segpipe quantize MODEL.onnx --calib-images DIR``: an INT8 Q/DQ graph, calibrated and gated.

A command of its own (``export-onnx --int8`` chains export and this same step): it works on any
FP32 graph segpipe exported, without PyTorch or the checkpoint, and the FP32 ONNX model it reads
is both the calibration subject and the reference of the accuracy gate.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from segpipe.cli.common import RichReporter, console, print_written, run_guarded
from segpipe.export.qdq_emulate import EMULATION_SHORT
from segpipe.options import INT8_MIN_AGREEMENT, QuantizeOptions
from segpipe.outpaths import check_output_file
from segpipe.units import human_bytes

_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(QuantizeOptions) if f.default is not dataclasses.MISSING
}
CALIB, GATE = "Calibration", "Accuracy gate"

CalibImagesOpt = Annotated[
    Path | None,
    typer.Option(
        "--calib-images",
        help="Folder of calibration images (any size: resized to the model's input; some held out for the gate).",
        rich_help_panel=CALIB,
        show_default=False,
    ),
]
CalibCountOpt = Annotated[
    int,
    typer.Option("--calib-count", help="Most images calibrated on.", rich_help_panel=CALIB),
]
MethodOpt = Annotated[
    str,
    typer.Option("--calib-method", help="minmax, entropy or percentile (99.999th).", rich_help_panel=CALIB),
]
QuantizerOpt = Annotated[
    str,
    typer.Option(
        "--quantizer",
        help="ort (ONNX Runtime quantize_static) or modelopt (NVIDIA ModelOpt ONNX PTQ, if installed).",
        rich_help_panel=CALIB,
    ),
]
KeepFp32Opt = Annotated[
    str,
    typer.Option(
        "--keep-fp32",
        help="Parts left in FP32: input (normalisation), head (last conv, Resize, Softmax/ArgMax), input,head or none.",
        rich_help_panel=CALIB,
    ),
]
Int8MinAgreementOpt = Annotated[
    float | None,
    typer.Option(
        "--int8-min-agreement",
        help=f"Smallest argmax agreement of INT8 with FP32 accepted (default {INT8_MIN_AGREEMENT}).",
        rich_help_panel=GATE,
        show_default=False,
    ),
]


def parse_parts(value: str) -> tuple[str, ...]:
    """``input,head`` -> ("input", "head"); ``none`` -> () (QuantizeOptions checks the names)."""
    parts = tuple(p.strip().lower() for p in value.split(",") if p.strip())
    return () if parts == ("none",) else parts


def quantize_command(
    model: Annotated[Path, typer.Argument(help="The FP32 .onnx model (as segpipe export-onnx writes it).")],
    calib_images: CalibImagesOpt = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="INT8 file to write (default NAME.int8.onnx).", show_default=False
        ),
    ] = None,
    calib_count: CalibCountOpt = _DEFAULTS["calib_count"],
    holdout: Annotated[
        int,
        typer.Option("--holdout", help="Calibration images held out for the gate.", rich_help_panel=GATE),
    ] = _DEFAULTS["holdout"],
    verify_images: Annotated[
        Path | None,
        typer.Option(
            "--verify-images",
            help="More images to compare INT8 with FP32 on.",
            rich_help_panel=GATE,
            show_default=False,
        ),
    ] = None,
    data_root: Annotated[
        Path | None,
        typer.Option(
            "--data-root",
            "--data_root",
            help="Labelled data set: mIoU of FP32 and INT8.",
            rich_help_panel=GATE,
            show_default=False,
        ),
    ] = None,
    min_agreement: Annotated[
        float | None,
        typer.Option(
            "--min-agreement",
            help=f"Smallest argmax agreement with the FP32 model accepted (default {INT8_MIN_AGREEMENT}).",
            rich_help_panel=GATE,
            show_default=False,
        ),
    ] = None,
    max_miou_drop: Annotated[
        float,
        typer.Option(
            "--max-miou-drop",
            help="With --data-root: largest mIoU loss of INT8 vs FP32 accepted, in points.",
            rich_help_panel=GATE,
        ),
    ] = _DEFAULTS["max_miou_drop"],
    method: MethodOpt = _DEFAULTS["method"],
    quantizer: QuantizerOpt = _DEFAULTS["quantizer"],
    keep_fp32: KeepFp32Opt = ",".join(_DEFAULTS["keep_fp32"]),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary.")] = False,
) -> None:
    """Quantize an FP32 ONNX model to INT8 (Q/DQ, for TensorRT 10/11) and check it against FP32."""
    from segpipe.errors import ConfigError
    from segpipe.export.quantize import quantize

    def build() -> QuantizeOptions:
        if calib_images is None:
            raise ConfigError(
                "--calib-images DIR is required: a folder of images like the ones the model will see"
            )
        return QuantizeOptions(
            model=model,
            calib_images=calib_images,
            output=output,
            calib_count=calib_count,
            holdout=holdout,
            verify_images=verify_images,
            data_root=data_root,
            min_agreement=min_agreement,
            max_miou_drop=max_miou_drop,
            method=method,
            quantizer=quantizer,
            keep_fp32=parse_parts(keep_fp32),
        )

    opts = run_guarded(build)
    run_guarded(check_output_file, opts.resolved_output, "--output", (opts.model,), "model.int8.onnx")
    result = run_guarded(quantize, opts, RichReporter(quiet=quiet))
    render_result(result)


def render_result(result: Any) -> None:
    """The summary: file, sizes, calibration, Q/DQ counts, the gate's figures."""
    from rich.table import Table

    cal = result.calibration
    table = Table(
        show_header=False,
        title=f"INT8 quantization of {result.info.arch}/{result.info.encoder}",
        title_justify="left",
    )
    table.add_column(style="bold")
    table.add_column()
    table.add_row("file", escape(str(result.path)))
    table.add_row(
        "size", f"{human_bytes(result.size_mb * 1e6)} (FP32 {human_bytes(result.fp32_size_mb * 1e6)})"
    )
    table.add_row("quantizer", escape(cal["quantizer"]))
    table.add_row(
        "calibration",
        escape(
            f"{cal['method']} on {cal['images']} images of {cal['source']}/ "
            f"({cal['held_out']} held out), {cal['seconds']:.1f} s"
        ),
    )
    table.add_row(
        "Q/DQ",
        f"{result.quantize_linear} QuantizeLinear, {result.dequantize_linear} DequantizeLinear; "
        "int8 symmetric, per-channel weights",
    )
    table.add_row("kept FP32", escape(", ".join(cal["float_nodes"])) or "nothing")
    table.add_row("time", f"{result.seconds:.1f} s")
    console.print(table)
    gt = Table(
        title=f"accuracy gate (min agreement {result.min_agreement:g}): INT8 vs FP32, {EMULATION_SHORT}",
        title_justify="left",
    )
    for col in ("images", "count", "max |diff|", "mean |diff|", "argmax agreement"):
        gt.add_column(col, justify="left" if col == "images" else "right")
    for row in result.gate:
        r = row.result
        gt.add_row(
            row.source,
            str(row.images),
            f"{r.max_abs_diff:.3g}",
            f"{r.mean_abs_diff:.3g}",
            f"{100 * r.argmax_agreement:.3f}%",
        )
    console.print(gt)
    if result.miou_fp32 is not None:
        delta = 100 * (result.miou_int8 - result.miou_fp32)
        console.print(
            f"mIoU on --data-root: FP32 {100 * result.miou_fp32:.2f}%, INT8 {100 * result.miou_int8:.2f}% "
            f"({delta:+.2f} points)"
        )
    console.print(
        f"[green]passed[/]: argmax agreement {100 * result.worst.result.argmax_agreement:.3f}% "
        f">= {100 * result.min_agreement:g}%",
        markup=True,
    )
    print_written(result.path, "INT8 ONNX model")
