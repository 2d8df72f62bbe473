"""``segpipe visualize``: colour masks (and overlays, side-by-side pictures, label PNGs) of any model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

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
    RichReporter,
    RuntimeOpt,
    SizeOpt,
    StdOpt,
    TileOpt,
    TrustCheckpointOpt,
    TtaOpt,
    WorkersOpt,
    console,
    fail,
    run_guarded,
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
from segpipe.errors import some
from segpipe.units import size_text

_OUT_PANEL = "Outputs"
_DEFAULT_OUT = Path("runs/visualize")


def _check_output_dir(opts: Any, exist_ok: bool) -> None:
    """--output-dir can be written and is not the folder of the images read (unless --exist-ok)."""
    from segpipe.outpaths import check_not_over_inputs, check_output_dir

    check_output_dir(opts.output_dir, "--output-dir", default=opts.output_dir == _DEFAULT_OUT)
    if not exist_ok and opts.images is not None:
        check_not_over_inputs(opts.output_dir, opts.images, "--output-dir", "--exist-ok")


def visualize_command(
    model: ModelFileOpt,
    images: Annotated[
        Path | None,
        typer.Option(
            "--images", "--images_path", "-i", help="One image or a folder of images.", show_default=False
        ),
    ] = None,
    data_root: Annotated[
        Path | None,
        typer.Option(
            "--data-root",
            help="A labelled data set (any --format) instead of --images: its val images, ground truth "
            "beside the prediction with --side-by-side.",
            show_default=False,
        ),
    ] = None,
    format_: FormatOpt = "auto",
    split: SplitOpt = None,
    reduce_zero_label: ReduceZeroLabelOpt = None,
    crowds: CrowdsOpt = "ignore",
    images_dir: ImagesDirOpt = "images",
    masks_dir: MasksDirOpt = "indexes",
    mask_suffix: MaskSuffixOpt = "_color_mask",
    output_dir: Annotated[
        Path, typer.Option("--output-dir", "--output_dir", "-o", help="Folder the pictures are written to.")
    ] = _DEFAULT_OUT,
    num_classes: NumClassesOpt = None,
    size: SizeOpt = None,
    colors: Annotated[
        Path | None,
        typer.Option(
            "--colors",
            help="Palette CSV (id,name,r,g,b); default: the model's colours, "
            "else the colors.csv shipped with segpipe.",
            show_default=False,
        ),
    ] = None,
    overlay: Annotated[
        float | None,
        typer.Option(
            "--overlay",
            metavar="ALPHA",
            help="Also write the mask blended on the image (opacity 0-1), legend beside it; the "
            "background class (0) stays as the photo.",
            show_default=False,
            rich_help_panel=_OUT_PANEL,
        ),
    ] = None,
    side_by_side: Annotated[
        bool,
        typer.Option(
            "--side-by-side", help="Also write image and mask next to each other.", rich_help_panel=_OUT_PANEL
        ),
    ] = False,
    save_labels: Annotated[
        bool,
        typer.Option("--save-labels", help="Also write the class-index PNG.", rich_help_panel=_OUT_PANEL),
    ] = False,
    overlay_background: Annotated[
        bool,
        typer.Option(
            "--overlay-background",
            help="Overlays blend the background class too.",
            rich_help_panel=_OUT_PANEL,
        ),
    ] = False,
    outline: Annotated[
        bool,
        typer.Option(
            "--outline", help="Overlays outline each region in its class colour.", rich_help_panel=_OUT_PANEL
        ),
    ] = False,
    legend_per_image: Annotated[
        bool,
        typer.Option(
            "--legend-per-image",
            help="Also write NAME_legend.png per image (one legend.png per run is always written).",
            rich_help_panel=_OUT_PANEL,
        ),
    ] = False,
    recursive: Annotated[
        bool,
        typer.Option("--recursive", "-r", help="Read sub-folders too; keep their structure in the output."),
    ] = False,
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
    exist_ok: Annotated[
        bool,
        typer.Option(
            "--exist-ok",
            help="Write into an --output-dir that is (or lies inside) the --images folder; "
            "an input file is never written over.",
            rich_help_panel=_OUT_PANEL,
        ),
    ] = False,
) -> None:
    """Run a model over images and write colour masks at each image's own size, plus a legend."""
    from segpipe.options import VisualizeOptions, parse_tta
    from segpipe.visualize import visualize

    tta_flags = run_guarded(parse_tta, tta)
    if (images is None) == (data_root is None):
        raise fail("give --images (pictures of any images) or --data-root (a labelled data set), one of them")
    opts = run_guarded(
        VisualizeOptions,
        images=images if images is not None else data_root,
        data_root=data_root,
        format=format_,
        split=split,
        reduce_zero_label=reduce_zero_label,
        crowds=crowds,
        images_dir=images_dir,
        masks_dir=masks_dir,
        mask_suffix=mask_suffix,
        model=model,
        output_dir=output_dir,
        num_classes=num_classes,
        size=size,
        colors=colors,
        overlay=overlay,
        side_by_side=side_by_side,
        overlay_background=overlay_background,
        outline=outline,
        legend_per_image=legend_per_image,
        save_labels=save_labels,
        recursive=recursive,
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
    run_guarded(_check_output_dir, opts, exist_ok)
    result = run_guarded(visualize, opts, RichReporter())
    total = result.images + len(result.failed)
    how = f"{result.backend} at {size_text(result.size)}" + (
        f" ({result.inference})" if result.inference else ""
    )
    if total:
        console.print(
            f"visualized {result.images} of {total} image(s) with {how} in "
            f"{result.seconds - result.video_seconds:.1f} s ({result.images_per_second:.1f} images/s)"
        )
    if result.videos:
        console.print(
            f"visualized {result.frames} frame(s) of {len(result.videos)} video(s) with {how} in "
            f"{result.video_seconds:.1f} s ({result.frames_per_second:.1f} frames/s)"
        )
    for video in result.videos:
        console.print(f"[green]wrote[/] video {escape(str(video))}", markup=True)
    if result.class_pixels:
        console.print("classes present: " + ", ".join(result.class_pixels))
    console.print(
        f"[green]wrote[/] {escape(result.where())}"
        + (f" (legend: {escape(str(result.legend))})" if result.legend else ""),
        markup=True,
    )
    if result.failed:
        raise fail(
            f"{len(result.failed)} of {total} image(s) could not be read: "
            + some(str(p) for p, _ in result.failed)
        )
