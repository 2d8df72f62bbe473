"""``segpipe quantize MODEL.onnx --calib-images DIR``: an INT8 Q/DQ graph, calibrated and gated.

A command of its own (``export-onnx --int8`` chains export and this same step): it works on any
FP32 graph segpipe exported, without PyTorch or the checkpoint, and the FP32 ONNX model it reads
is both the calibration subject and the reference of the accuracy gate.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from segpipe.cli.binder import Flags, command
from segpipe.cli.common import RichReporter, console, print_written
from segpipe.export.qdq_emulate import EMULATION_SHORT
from segpipe.options.flags import QuietFlag
from segpipe.options.quantize import QuantizeOptions
from segpipe.outpaths import check_output_file
from segpipe.units import human_bytes


@command(QuantizeOptions, QuietFlag)
def quantize_command(flags: Flags) -> None:
    """Quantize an FP32 ONNX model to INT8 (Q/DQ, for TensorRT 10/11) and check it against FP32."""
    from segpipe.export.quantize import quantize

    opts = flags.build(QuantizeOptions)
    check_output_file(opts.resolved_output, "--output", (opts.model,), "model.int8.onnx")
    render_result(quantize(opts, RichReporter(quiet=flags.quiet)))


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
        # the record's own words: a --target cpu file is U8S8 (uint8 asymmetric activations)
        + escape(
            f"activations {cal.get('activations', 'int8 symmetric per-tensor')}, "
            f"weights {cal.get('weights', 'int8 symmetric per-channel')}"
        ),
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
