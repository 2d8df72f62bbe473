"""``segpipe evaluate``: mIoU, per-class IoU and pixel accuracy of any model file on a data set."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from segpipe.cli.common import (
    ArchOpt,
    BatchSizeOpt,
    DeviceOpt,
    EncoderOpt,
    InputLayoutOpt,
    MeanOpt,
    ModelFileOpt,
    ModeOpt,
    NumClassesOpt,
    OverlapOpt,
    ReportOpt,
    RuntimeOpt,
    SizeOpt,
    StdOpt,
    TileOpt,
    TrustCheckpointOpt,
    TtaOpt,
    WorkersOpt,
    console,
    print_written,
    run_guarded,
    warn,
)
from segpipe.cli.dataflags import (
    CrowdsOpt,
    FormatOpt,
    ImagesDirOpt,
    MasksDirOpt,
    MaskSuffixOpt,
    ReduceZeroLabelOpt,
    SplitOpt,
)
from segpipe.units import size_text

if TYPE_CHECKING:
    from segpipe.evaluate import EvalResult

_DATA_PANEL = "Dataset"


def print_result(result: EvalResult) -> None:
    """The per-class table and the summary line."""
    from rich.table import Table

    table = Table(
        title=f"{result.model} ({result.backend}, {size_text(result.size)}, {result.images} images"
        + (f", {result.inference})" if result.inference else ")"),
        title_justify="left",
    )
    for col in ("id", "class", "IoU %", "accuracy %", "pixels"):
        table.add_column(col, justify="left" if col == "class" else "right")

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.2f}"

    for cid, name, iou, acc, pixels in result.rows():
        table.add_row(str(cid), name, pct(iou), pct(acc), str(pixels))
    console.print(table)
    console.print(
        f"[bold]mIoU {100 * result.miou:.2f}%[/]  pixel accuracy {100 * result.pixel_accuracy:.2f}%  "
        f"({result.seconds:.1f} s, {1000 * result.seconds / max(result.images, 1):.0f} ms/image)",
        markup=True,
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


def evaluate_command(
    data_root: Annotated[
        Path,
        typer.Option(
            "--data-root",
            "--data_root",
            help="Data set folder, any label format (see --format).",
            show_default=False,
        ),
    ],
    model: ModelFileOpt,
    size: SizeOpt = None,
    report: ReportOpt = None,
    confusion_matrix: Annotated[
        Path | None,
        typer.Option(
            "--confusion-matrix", help="Draw the normalised confusion matrix (PNG) here.", show_default=False
        ),
    ] = None,
    num_classes: NumClassesOpt = None,
    colors: Annotated[
        Path | None,
        typer.Option(
            "--colors",
            help="Palette CSV (id,name,r,g,b) decoding colour masks; default: DATA_ROOT/colors.csv, "
            "else the model's colours, else the colors.csv shipped with segpipe.",
            show_default=False,
        ),
    ] = None,
    class_map: Annotated[
        Path | None,
        typer.Option(
            "--class-map",
            help="Class remapping file (as in training).",
            show_default=False,
            rich_help_panel=_DATA_PANEL,
        ),
    ] = None,
    ignore_index: Annotated[
        int | None,
        typer.Option(
            "--ignore-index",
            help="Label left out of the metrics (default: the model's, 255).",
            show_default=False,
            rich_help_panel=_DATA_PANEL,
        ),
    ] = None,
    format_: FormatOpt = "auto",
    split: SplitOpt = None,
    reduce_zero_label: ReduceZeroLabelOpt = None,
    crowds: CrowdsOpt = "ignore",
    images_dir: ImagesDirOpt = "images",
    masks_dir: MasksDirOpt = "indexes",
    mask_suffix: MaskSuffixOpt = "_color_mask",
    mask_type: Annotated[
        str, typer.Option("--mask-type", help="auto, index or color.", rich_help_panel=_DATA_PANEL)
    ] = "auto",
    batch_size: BatchSizeOpt = 4,
    device: DeviceOpt = "auto",
    runtime: RuntimeOpt = "auto",
    workers: WorkersOpt = 2,
    arch: ArchOpt = None,
    encoder: EncoderOpt = None,
    mode: ModeOpt = "seg",
    trust_checkpoint: TrustCheckpointOpt = False,
    tile: TileOpt = None,
    overlap: OverlapOpt = 0.25,
    tta: TtaOpt = None,
    mean: MeanOpt = None,
    std: StdOpt = None,
    input_layout: InputLayoutOpt = None,
) -> None:
    """Score a model (.pth, .onnx or .engine) on a labelled data set: mIoU, per-class IoU, accuracy."""
    from segpipe.cli.common import RichReporter
    from segpipe.evaluate import evaluate, plot_confusion, write_report
    from segpipe.options import EvaluateOptions, parse_tta

    tta_flags = run_guarded(parse_tta, tta)
    opts = run_guarded(
        EvaluateOptions,
        data_root=data_root,
        model=model,
        size=size,
        num_classes=num_classes,
        colors=colors,
        class_map=class_map,
        ignore_index=ignore_index,
        images_dir=images_dir,
        masks_dir=masks_dir,
        mask_suffix=mask_suffix,
        mask_type=mask_type,
        format=format_,
        split=split,
        reduce_zero_label=reduce_zero_label,
        crowds=crowds,
        report=report,
        confusion_matrix=confusion_matrix,
        batch_size=batch_size,
        device=device,
        runtime=runtime,
        workers=workers,
        arch=arch,
        encoder=encoder,
        mode=mode,
        trust_checkpoint=trust_checkpoint,
        tile=tile,
        overlap=overlap,
        tta_flip=tta_flags[0],
        tta_scales=tta_flags[1],
        mean=mean,
        std=std,
        input_layout=input_layout,
    )
    run_guarded(_check_outputs, opts)
    result = run_guarded(evaluate, opts, RichReporter())
    print_result(result)
    if opts.report is not None:
        print_written(run_guarded(write_report, result, opts.report), "report")
    if opts.confusion_matrix is not None:
        print_written(run_guarded(plot_confusion, result, opts.confusion_matrix), "confusion matrix")
