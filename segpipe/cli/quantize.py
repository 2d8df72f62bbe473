"""``segpipe quantize MODEL.onnx --calib-images DIR``: an INT8 Q/DQ graph, calibrated and gated.

A command of its own (``export-onnx --int8`` chains export and this same step): it works on any
FP32 graph segpipe exported, without PyTorch or the checkpoint, and the FP32 ONNX model it reads
is both the calibration subject and the reference of the accuracy gate.
"""

from __future__ import annotations

from typing import Any

from segpipe.cli.binder import Flags, command
from segpipe.cli.common import RichReporter, console, make_table, print_written, say
from segpipe.export.qdq_emulate import emulation
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
    cal = result.calibration
    # the record's own words: a --target cpu file is U8S8 (uint8 asymmetric activations)
    activations = cal.get("activations", "int8 symmetric per-tensor")
    weights = cal.get("weights", "int8 symmetric per-channel")
    rows = [
        ("file", str(result.path)),
        ("size", f"{human_bytes(result.size_mb * 1e6)} (FP32 {human_bytes(result.fp32_size_mb * 1e6)})"),
        ("quantizer", cal["quantizer"]),
        (
            "calibration",
            f"{cal['method']} on {cal['images']} images of {cal['source']}/ "
            f"({cal['held_out']} held out), {cal['seconds']:.1f} s",
        ),
        (
            "Q/DQ",
            f"{result.quantize_linear} QuantizeLinear, {result.dequantize_linear} DequantizeLinear; "
            f"activations {activations}, weights {weights}",
        ),
        ("kept FP32", ", ".join(cal["float_nodes"]) or "nothing"),
        ("time", f"{result.seconds:.1f} s"),
    ]
    console.print(make_table(f"INT8 quantization of {result.info.arch}/{result.info.encoder}", rows))
    from segpipe.runtime.comparator import COMPARE_COLUMNS

    title = (
        f"accuracy gate (min agreement {result.min_agreement:g}): INT8 vs FP32, {emulation(result.target)[1]}"
    )
    gate = [row.cells() for row in result.gate]
    console.print(make_table(title, gate, COMPARE_COLUMNS, left=COMPARE_COLUMNS[:1]))
    if result.miou_fp32 is not None:
        delta = 100 * (result.miou_int8 - result.miou_fp32)
        console.print(
            f"mIoU on --data-root: FP32 {100 * result.miou_fp32:.2f}%, INT8 {100 * result.miou_int8:.2f}% "
            f"({delta:+.2f} points)"
        )
    agreement = 100 * result.worst.result.argmax_agreement
    say("passed", "green", f": argmax agreement {agreement:.3f}% >= {100 * result.min_agreement:g}%")
    print_written(result.path, "INT8 ONNX model")
