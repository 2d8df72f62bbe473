"""``segpipe evaluate``: mIoU, per-class IoU and pixel accuracy of any model file on a data set."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text

from segpipe.cli.binder import Flags, command
from segpipe.cli.common import console, make_table, print_written, warn
from segpipe.options.inference import EvaluateOptions, TtaFlag
from segpipe.units import size_text

if TYPE_CHECKING:
    from segpipe.evaluate import EvalResult


def print_result(result: EvalResult) -> None:
    """The per-class table and the summary line."""

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.2f}"

    how = f", {result.inference}" if result.inference else ""
    title = f"{result.model} ({result.backend}, {size_text(result.size)}, {result.images} images{how})"
    rows = [(cid, name, pct(iou), pct(acc), pixels) for cid, name, iou, acc, pixels in result.rows()]
    console.print(make_table(title, rows, ("id", "class", "IoU %", "accuracy %", "pixels"), left=("class",)))
    console.print(
        Text.assemble(
            (f"mIoU {100 * result.miou:.2f}%", "bold"),
            f"  pixel accuracy {100 * result.pixel_accuracy:.2f}%  ({result.seconds:.1f} s, "
            f"{1000 * result.seconds / max(result.images, 1):.0f} ms/image)",
        )
    )
    for message in result.warnings:  # again under the figures they qualify
        warn(message)


def _check_outputs(opts: Any) -> None:
    """--report and --confusion-matrix can be written, and are none of the files read."""
    from segpipe.outpaths import check_output_file

    inputs = (opts.model, opts.colors, opts.class_map)
    if opts.report is not None:
        check_output_file(opts.report, "--report", inputs, "report.json")
    if opts.confusion_matrix is not None:
        check_output_file(opts.confusion_matrix, "--confusion-matrix", inputs, "confusion.png")


@command(EvaluateOptions, TtaFlag)
def evaluate_command(flags: Flags) -> None:
    """Score a model (.pth, .onnx or .engine) on a labelled data set: mIoU, per-class IoU, accuracy."""
    from segpipe.cli.common import RichReporter
    from segpipe.evaluate import evaluate, plot_confusion, write_report

    opts = flags.build(EvaluateOptions, **TtaFlag.fields(flags.tta))
    _check_outputs(opts)
    result = evaluate(opts, RichReporter())
    print_result(result)
    if opts.report is not None:
        print_written(write_report(result, opts.report), "report")
    if opts.confusion_matrix is not None:
        print_written(plot_confusion(result, opts.confusion_matrix), "confusion matrix")
