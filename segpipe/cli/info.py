"""``segpipe info FILE...``: what a ``.pth``, ``.onnx`` or ``.engine`` file holds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segpipe.cli.binder import Flags, command
from segpipe.cli.common import console, make_table, say
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
    from rich.text import Text

    info = desc.info
    rows = [("kind", desc.kind), ("size", human_bytes(desc.size_mb * 1e6))]
    if info is not None:
        rows += _model_rows(desc.kind, info)
    if desc.opset is not None:
        rows.append(("opset", desc.opset))
    in_layout = info.layout if info is not None else None
    out_layout = output_layout(info.output_kind) if info is not None else None
    rows += [("graph input", tensor_text(s.name, s.shape, s.dtype, in_layout)) for s in desc.inputs]
    rows += [("graph output", tensor_text(s.name, s.shape, s.dtype, out_layout)) for s in desc.outputs]
    rows += [(k, f"{v:.4g}" if isinstance(v, float) else v) for k, v in desc.details.items()]
    console.print(make_table(str(desc.path), rows))
    if info is not None and info.num_classes:
        classes = []
        for i in range(info.num_classes):
            name = info.class_names[i] if i < len(info.class_names) else f"class_{i}"
            if i < len(info.colors):
                r, g, b = info.colors[i]
                classes.append((i, name, Text("      ", style=f"on rgb({r},{g},{b})"), f"{r},{g},{b}"))
            else:
                classes.append((i, name, "", "?"))
        console.print(
            make_table("classes", classes, ("id", "name", "colour", "rgb"), left=("name", "colour", "rgb"))
        )
    for note in desc.notes:
        say("note:", "yellow", f" {note}")


def _model_rows(kind: str, info: Any) -> list[tuple[str, Any]]:
    """What the model description says: architecture, classes, input, normalisation, output."""
    from segpipe.info import normalisation_text

    if kind in ("segpipe checkpoint", "bare state_dict"):
        feed = f"NCHW normalised, {info.in_channels} channels (runners and export take NHWC RGB 0-255)"
    else:
        feed = f"{info.layout}, RGB 0-255, {info.input_dtype}, {info.in_channels} channels"
    return [
        ("architecture", info.arch),
        ("encoder", info.encoder),
        ("classes", f"{info.num_classes} ({info.mode} mode)"),
        ("input size", size_text(info.input_size)),
        ("input", feed),
        ("normalisation", normalisation_text(info)),
        ("output stride", info.output_stride),
        ("precision", info.precision),
        ("output", info.output_kind),
        ("segpipe version", info.segpipe_version),
    ]
