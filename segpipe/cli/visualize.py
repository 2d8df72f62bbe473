"""``segpipe visualize``: colour masks (and overlays, side-by-side pictures, label PNGs) of any model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
from segpipe.errors import some

_OUT_PANEL = "Outputs"


def visualize_command(
    images: Annotated[
        Path,
        typer.Option(
            "--images", "--images_path", "-i", help="One image or a folder of images.", show_default=False
        ),
    ],
    model: ModelFileOpt,
    output_dir: Annotated[
        Path, typer.Option("--output-dir", "--output_dir", "-o", help="Folder the pictures are written to.")
    ] = Path("runs/visualize"),
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
            help="Also write the mask blended on the image (opacity 0-1).",
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
    recursive: Annotated[
        bool,
        typer.Option("--recursive", "-r", help="Read sub-folders too; keep their structure in the output."),
    ] = False,
    batch_size: BatchSizeOpt = 4,
    device: DeviceOpt = "auto",
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
    """Run a model over images and write colour masks at each image's own size, plus a legend."""
    from segpipe.options import VisualizeOptions, parse_tta
    from segpipe.visualize import visualize

    tta_flags = run_guarded(parse_tta, tta)
    opts = run_guarded(
        VisualizeOptions,
        images=images,
        model=model,
        output_dir=output_dir,
        num_classes=num_classes,
        size=size,
        colors=colors,
        overlay=overlay,
        side_by_side=side_by_side,
        save_labels=save_labels,
        recursive=recursive,
        batch_size=batch_size,
        device=device,
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
    result = run_guarded(visualize, opts, RichReporter())
    total = result.images + len(result.failed)
    how = f"{result.backend} at {result.size[0]}x{result.size[1]}" + (
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
        f"[green]wrote[/] {result.files} file(s) to {escape(str(result.output_dir))}"
        + (f" (legend: {escape(str(result.legend))})" if result.legend else ""),
        markup=True,
    )
    if result.failed:
        raise fail(
            f"{len(result.failed)} of {total} image(s) could not be read: "
            + some(str(p) for p, _ in result.failed)
        )
