"""``segpipe info FILE...``: what a ``.pth``, ``.onnx`` or ``.engine`` file holds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segpipe.cli.binder import Flags, command
from segpipe.cli.common import console
from segpipe.options import flags as F
from segpipe.options.declare import flag
from segpipe.units import human_bytes, output_layout, size_text, tensor_text


@dataclass(frozen=True)
class InfoFlags:
    """``segpipe info``'s flags: the model files (positional, or ``--model`` repeated)."""

    models: tuple[Path, ...] = F.MODEL(
        argument=True,
        argument_name="FILE",
        cli_type=list[Path],
        help="Model files: .pth, .onnx or .engine (a folder: the model files in it).",
    )
    as_json: bool = flag("--json", default=False, help="Print JSON instead of tables.")
    trust_checkpoint: bool = F.TRUST_CHECKPOINT()


@command(InfoFlags)
def info_command(flags: Flags) -> None:
    """Show a model file's architecture, encoder, classes (names, colours), input, precision, I/O."""
    from segpipe.info import describe_model

    descriptions = [describe_model(p, trust=flags.trust_checkpoint) for p in flags.models]
    if flags.as_json:
        data: Any = [d.to_dict() for d in descriptions]
        console.print_json(json.dumps(data[0] if len(data) == 1 else data, default=str))
        return
    for desc in descriptions:
        render(desc)


def render(desc: Any) -> None:
    """Tables for one :class:`~segpipe.info.ModelDescription`."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from segpipe.info import normalisation_text

    table = Table(show_header=False, title=str(desc.path), title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("kind", desc.kind)
    table.add_row("size", human_bytes(desc.size_mb * 1e6))
    info = desc.info
    if info is not None:
        table.add_row("architecture", info.arch)
        table.add_row("encoder", info.encoder)
        table.add_row("classes", f"{info.num_classes} ({info.mode} mode)")
        table.add_row("input size", size_text(info.input_size))
        if desc.kind in ("segpipe checkpoint", "bare state_dict"):
            feed = f"NCHW normalised, {info.in_channels} channels (runners and export take NHWC RGB 0-255)"
        else:
            feed = f"{info.layout}, RGB 0-255, {info.input_dtype}, {info.in_channels} channels"
        table.add_row("input", feed)
        table.add_row("normalisation", normalisation_text(info))
        table.add_row("output stride", str(info.output_stride))
        table.add_row("precision", info.precision)
        table.add_row("output", info.output_kind)
        table.add_row("segpipe version", info.segpipe_version)
    if desc.opset is not None:
        table.add_row("opset", str(desc.opset))
    in_layout = info.layout if info is not None else None
    out_layout = output_layout(info.output_kind) if info is not None else None
    for spec in desc.inputs:
        table.add_row("graph input", tensor_text(spec.name, spec.shape, spec.dtype, in_layout))
    for spec in desc.outputs:
        table.add_row("graph output", tensor_text(spec.name, spec.shape, spec.dtype, out_layout))
    for key, value in desc.details.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
    if info is not None and info.num_classes:
        classes = Table(title="classes", title_justify="left")
        for col in ("id", "name", "colour", "rgb"):
            classes.add_column(col, justify="right" if col == "id" else "left")
        for i in range(info.num_classes):
            name = info.class_names[i] if i < len(info.class_names) else f"class_{i}"
            if i < len(info.colors):
                r, g, b = info.colors[i]
                swatch, rgb = Text("      ", style=f"on rgb({r},{g},{b})"), f"{r},{g},{b}"
            else:
                swatch, rgb = "", "?"
            classes.add_row(str(i), name, swatch, rgb)
        console.print(classes)
    for note in desc.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", markup=True)
