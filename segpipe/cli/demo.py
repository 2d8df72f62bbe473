"""``segpipe demo``: flags -> :func:`segpipe.demo.run_demo`, each step's result drawn by the
renderer of the command that makes it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text

from segpipe.cli.binder import Flags, command
from segpipe.cli.common import RichReporter, console, say
from segpipe.options import flags as F
from segpipe.options.declare import flag

#: The word a demo line starts with, and its colour.
LEADS = {"wrote": "green", "trained": "bold green", "skipped": "yellow", "no INT8 rung": "yellow"}


# fmt: off
@dataclass(frozen=True)
class DemoFlags:
    """``segpipe demo``'s flags."""

    output_dir: Path = flag("--output-dir", Path("runs/demo"), "Where the demo writes everything.",
        metavar="DIR")
    epochs: int = flag("--epochs", 12, "Training epochs on the sample data.", metavar="N")
    device: str = F.DEVICE(panel=None)
    quiet: bool = flag("--quiet", "-q", False,
        "Only warnings, errors and the closing summary (no bars, no tables).")
# fmt: on


def show(kind: str, value: Any) -> None:
    """Draw one thing the demo hands over (:data:`segpipe.demo.Show`)."""
    from segpipe.cli.benchmark import render as render_benchmark
    from segpipe.cli.evaluate import print_result
    from segpipe.cli.export_onnx import render_result as render_export
    from segpipe.cli.quantize import render_result as render_int8

    renderers = {
        "evaluate": print_result,
        "export": render_export,
        "quantize": render_int8,
        "benchmark": render_benchmark,
    }
    if kind == "step":
        console.rule(Text(value, style="bold"))
    elif kind == "summary":
        console.quiet = False  # --quiet silenced the steps, not the closing summary
        console.rule(Text("demo finished", style="bold"))
        for line in value:
            console.print(line)
    elif kind in renderers:
        renderers[kind](value)
    else:
        lead = next((w for w in LEADS if value.startswith(w)), None)
        if lead is None:
            console.print(value)
        else:
            say(lead, LEADS[lead], value[len(lead) :])


@command(DemoFlags)
def demo_command(flags: Flags) -> None:
    """Run the pipeline end to end on the bundled sample data."""
    from segpipe import demo

    output_dir, moved = demo.fresh_output_dir(flags.output_dir)
    if moved:
        console.print(moved)  # before --quiet silences the steps: where everything goes
    console.quiet = flags.quiet  # every step's lines and tables; warnings and errors go to stderr still
    try:
        demo.run_demo(output_dir, flags.epochs, flags.device, RichReporter(quiet=flags.quiet), show)
    finally:
        console.quiet = False
