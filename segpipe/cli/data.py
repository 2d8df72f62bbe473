"""``segpipe data``: look at a data set before training (no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import typer

from segpipe.cli.binder import Flags, command
from segpipe.cli.common import console, make_table, print_written, warn
from segpipe.options.data import DataOptions
from segpipe.options.declare import flag


def _list_formats() -> None:
    """``--formats``: every layout segpipe reads, with the files that identify it; then exit."""
    from rich.text import Text

    from segpipe.data.formats import formats_listing, refused_layouts

    console.print("Label formats (--format NAME; auto detects which one a folder holds and says which):")
    rows = formats_listing()
    width = max(len(name) for name, _, _ in rows)
    for name, description, layout in rows:
        console.print(Text(f"  {name:<{width}}  {description}"))
        console.print(Text(f"  {'':<{width}}  files: {layout}"))
    console.print("Recognised but not read (no masks; refused in one line saying what to do):")
    for what, files, instead in refused_layouts():
        console.print(Text(f"  {what}: {files} -> {instead}"))
    raise typer.Exit()


# fmt: off
@dataclass(frozen=True)
class FormatsFlag:
    """``segpipe data --formats``."""

    formats: bool = flag("--formats", False,
        "List every label layout segpipe reads and the files that identify it, then exit.",
        action=_list_formats)
# fmt: on


@command(DataOptions, FormatsFlag)
def data_command(flags: Flags) -> None:
    """Show a data set's format, splits, classes (names, colours, pixel shares) and problems."""
    from segpipe.cli.common import RichReporter
    from segpipe.data.build import format_line, open_reader
    from segpipe.data.inspect import export_masks, scan_data

    opts = flags.build(DataOptions)
    reporter = RichReporter()
    reader = open_reader(opts, opts.data_root, reporter=reporter)  # the root given: says nothing
    console.print(format_line(opts.data_root, reader))
    given = opts.ignore_index is not None
    report = scan_data(reader, opts.class_names or None, opts.num_classes, reporter, given, opts.colors)
    console.print("samples: " + ", ".join(f"{n} {split}" for split, n in report.splits.items()))
    table, unlisted = _classes_table(report)
    console.print(table)
    if unlisted:  # the full list goes to a file, never to a terminal
        where = (
            f"{opts.export_masks}/colors.csv"
            if opts.export_masks is not None
            else "DIR/colors.csv by --export-masks DIR"
        )
        console.print(f"{unlisted:,} classes not listed; every class is written to {where}")
    classes = report.classes
    for message in [classes.palette_warning, classes.hint, *report.notes, *report.problems[:20]]:
        if message:
            warn(message)
    if len(report.problems) > 20:
        warn(f"... and {len(report.problems) - 20} more problems")
    if not report.problems:
        console.print("no problems found")
    if opts.export_masks is not None:
        out = export_masks(reader, reader.samples(), report.classes, opts.export_masks, reporter)
        print_written(out, "seed layout")


def _classes_table(report: Any) -> tuple[Any, int]:
    """(table, classes it does not list): each class's id, name, a swatch of its colour and its
    share of the pixels, then the ignored share; above ``TABLE_ROWS`` classes only those with
    pixels (``inspect.table_ids``), the others' count and share in one row."""
    from rich.text import Text

    from segpipe.data.inspect import table_ids

    total = max(int(report.pixels.sum()) + report.ignored, 1)
    colors = report.classes.palette.colors
    ids = table_ids(report.pixels)
    rows = []
    for i in ids.tolist():
        swatch = Text("██ ", style="rgb({},{},{})".format(*colors[i])) + Text(f"{colors[i]}")
        rows.append((i, Text(report.classes.names[i]), swatch, f"{100 * report.pixels[i] / total:.2f}"))
    title = f"classes (names: {report.classes.source})"
    unlisted = len(report.pixels) - len(ids)
    if unlisted:
        hidden = int(report.pixels.sum() - report.pixels[ids].sum())
        rows.append(("", Text(f"({unlisted:,} more)"), Text(""), f"{100 * hidden / total:.2f}"))
        which = "those with pixels" if hidden == 0 else "the largest shares"
        title = title[:-1] + f"; {len(ids):,} of {len(report.pixels):,} listed: {which})"
    rows.append(("", Text("(ignored)"), Text(""), f"{100 * report.ignored / total:.2f}"))
    table = make_table(title, rows, ("id", "class", "colour", "pixels %"), left=("class", "colour"))
    return table, unlisted
