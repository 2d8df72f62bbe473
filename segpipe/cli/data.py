"""``segpipe data``: look at a data set before training (no torch)."""

from __future__ import annotations

from dataclasses import dataclass

import typer

from segpipe.cli.binder import Flags, command
from segpipe.cli.common import console, print_written, warn
from segpipe.options.data import DataOptions
from segpipe.options.declare import flag


def _list_formats() -> None:
    """``--formats``: every layout segpipe reads, with the files that identify it; then exit."""
    from rich.text import Text

    from segpipe.data.formats import formats_listing, refused_layouts

    console.print("Label formats (--format NAME; auto tries them in this order and says which it chose):")
    rows = formats_listing()
    width = max(len(name) for name, _, _ in rows)
    for name, description, layout in rows:
        console.print(Text(f"  {name:<{width}}  {description}"))
        console.print(Text(f"  {'':<{width}}  files: {layout}"))
    console.print("Recognised but not read (no masks; refused in one line saying what to do):")
    for what, files, instead in refused_layouts():
        console.print(Text(f"  {what}: {files} -> {instead}"))
    raise typer.Exit()


@dataclass(frozen=True)
class FormatsFlag:
    """``segpipe data --formats``."""

    formats: bool = flag(
        "--formats",
        default=False,
        help="List every label layout segpipe reads and the files that identify it, then exit.",
        action=_list_formats,
    )


@command(DataOptions, FormatsFlag)
def data_command(flags: Flags) -> None:
    """Show a data set's format, splits, classes (names, colours, pixel shares) and problems."""
    from rich.table import Table
    from rich.text import Text

    from segpipe.cli.common import RichReporter
    from segpipe.data.formats import open_dataset
    from segpipe.data.inspect import export_masks as do_export
    from segpipe.data.inspect import scan_data
    from segpipe.palette import load_palette

    opts = flags.build(DataOptions)
    reporter = RichReporter()
    reader = open_dataset(
        opts.data_root,
        opts.format,
        reduce_zero_label=opts.reduce_zero_label,
        crowds=opts.crowds,
        ignore_index=opts.ignore_index,
        reporter=reporter,
        images_dir=opts.images_dir,
        masks_dir=opts.masks_dir,
        mask_suffix=opts.mask_suffix,
        palette=load_palette(opts.colors) if opts.colors is not None else None,
    )
    console.print(f"{opts.data_root}: {reader.name} format ({reader.detected})")
    names, has_ignore = opts.class_names or None, opts.ignore_index is not None
    report = scan_data(reader, names, opts.num_classes, reporter, has_ignore)
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
    if opts.export_masks is not None:
        out = do_export(reader, reader.samples(), report.classes, opts.export_masks, reporter)
        print_written(out, "seed layout")
