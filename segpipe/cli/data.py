"""``segpipe data``: look at a data set before training (no torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segpipe.cli.common import console, print_written, run_guarded, warn
from segpipe.cli.dataflags import (
    CrowdsOpt,
    FormatOpt,
    ImagesDirOpt,
    MasksDirOpt,
    MaskSuffixOpt,
    ReduceZeroLabelOpt,
)


def _list_formats(value: bool) -> None:
    """``--formats``: every layout segpipe reads, with the files that identify it; then exit."""
    if not value:
        return
    from rich.text import Text

    from segpipe.data.formats import formats_listing

    console.print("Label formats (--format NAME; auto tries them in this order and says which it chose):")
    for name, description, layout in formats_listing():
        console.print(Text(f"  {name:<12} {description}"))
        console.print(Text(f"  {'':<12} files: {layout}"))
    raise typer.Exit()


def data_command(
    data_root: Annotated[
        Path, typer.Argument(help="The data set folder, any label format.", show_default=False)
    ],
    format_: FormatOpt = "auto",
    class_names: Annotated[
        str | None, typer.Option("--class-names", help="Comma-separated class names.", show_default=False)
    ] = None,
    num_classes: Annotated[
        int | None,
        typer.Option("--num-classes", help="Class count (default: the data's).", show_default=False),
    ] = None,
    colors: Annotated[
        Path | None, typer.Option("--colors", help="Palette CSV id,name,r,g,b.", show_default=False)
    ] = None,
    reduce_zero_label: ReduceZeroLabelOpt = None,
    crowds: CrowdsOpt = "ignore",
    ignore_index: Annotated[
        int | None,
        typer.Option(
            "--ignore-index",
            help="Mask value of ignored pixels (written as such by --export-masks). "
            "Default: 255 (65535 above 255 classes).",
            min=0,
            max=65535,
            show_default=False,
        ),
    ] = None,
    images_dir: ImagesDirOpt = "images",
    masks_dir: MasksDirOpt = "indexes",
    mask_suffix: MaskSuffixOpt = "_color_mask",
    export_masks: Annotated[
        Path | None,
        typer.Option(
            "--export-masks",
            help="Write the seed layout (images/, indexes/ index masks, colors.csv) to this new folder.",
            show_default=False,
        ),
    ] = None,
    formats: Annotated[
        bool,
        typer.Option(
            "--formats",
            help="List every label layout segpipe reads and the files that identify it, then exit.",
            callback=_list_formats,
            is_eager=True,
            expose_value=False,
        ),
    ] = False,
) -> None:
    """Show a data set's format, splits, classes (names, colours, pixel shares) and problems."""
    from rich.table import Table
    from rich.text import Text

    from segpipe.cli.common import RichReporter
    from segpipe.data.formats import open_dataset
    from segpipe.data.inspect import export_masks as do_export
    from segpipe.data.inspect import scan_data
    from segpipe.palette import load_palette

    reporter = RichReporter()
    names = tuple(n.strip() for n in class_names.split(",") if n.strip()) if class_names else None
    reader = run_guarded(
        open_dataset,
        data_root,
        format_,
        reduce_zero_label=reduce_zero_label,
        crowds=crowds,
        ignore_index=ignore_index,
        reporter=reporter,
        images_dir=images_dir,
        masks_dir=masks_dir,
        mask_suffix=mask_suffix,
        palette=run_guarded(load_palette, colors) if colors is not None else None,
    )
    console.print(f"{data_root}: {reader.name} format ({reader.detected})")
    report = run_guarded(scan_data, reader, names, num_classes, reporter, ignore_index is not None)
    console.print("samples: " + ", ".join(f"{n} {split}" for split, n in report.splits.items()))
    total = max(int(report.pixels.sum()) + report.ignored, 1)
    table = Table(title=f"classes (names: {report.classes.source})", title_justify="left")
    for col in ("id", "class", "colour", "pixels %"):
        table.add_column(col, justify="left" if col in ("class", "colour") else "right")
    for i, name in enumerate(report.classes.names):
        rgb = report.classes.palette.colors[i]
        swatch = Text("██ ", style=f"rgb({rgb[0]},{rgb[1]},{rgb[2]})") + Text(f"{rgb}")
        table.add_row(str(i), Text(name), swatch, f"{100 * report.pixels[i] / total:.2f}")
    table.add_row("", Text("(ignored)"), Text(""), f"{100 * report.ignored / total:.2f}")
    console.print(table)
    if report.classes.hint:
        warn(report.classes.hint)
    for note in report.notes:
        warn(note)
    for problem in report.problems[:20]:
        warn(problem)
    if len(report.problems) > 20:
        warn(f"... and {len(report.problems) - 20} more problems")
    if not report.problems:
        console.print("no problems found")
    if export_masks is not None:
        out = run_guarded(do_export, reader, reader.samples(), report.classes, export_masks, reporter)
        print_written(out, "seed layout")
