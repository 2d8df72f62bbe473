"""``segpipe benchmark``: flags -> BenchmarkOptions -> ``benchmark`` -> one rich table (and JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segpipe.cli.binder import Flags, command
from segpipe.cli.common import RichReporter, console, make_table, print_written, say
from segpipe.options.benchmark import BenchmarkOptions
from segpipe.options.flags import QuietFlag
from segpipe.options.inference import TtaFlag


@command(BenchmarkOptions, TtaFlag, QuietFlag)
def benchmark_command(flags: Flags) -> None:
    """Median latency with its spread, throughput and agreement with FP32 of models x backends, side by side."""
    from segpipe.benchmark import benchmark

    opts = flags.build(BenchmarkOptions, **TtaFlag.fields(flags.tta))
    if opts.report is not None:
        from segpipe.outpaths import check_output_file

        check_output_file(opts.report, "--report", opts.models, "report.json")
    render(benchmark(opts, RichReporter(quiet=flags.quiet)))
    if opts.report is not None:
        print_written(opts.report, "benchmark report")


def render(result: Any) -> None:
    """One table: a row per model."""
    from segpipe.benchmark import COLUMNS
    from segpipe.cli.common import SafeConsole

    title = (
        f"segpipe benchmark (warm-up until settled, at least {result.warmup} calls; {result.runs} "
        "rounds, interleaved; spread = IQR / median)"
    )
    rows = [bench.row() for bench in result.models]
    table = make_table(
        title, rows, COLUMNS, left=[c for c in COLUMNS if c.split()[0] in ("model", "backend", "input")]
    )
    # a terminal gets the table fitted to it; a pipe or a log (80 columns to rich) gets every figure whole
    out = (
        console
        if console.is_terminal
        else SafeConsole(
            highlight=False, markup=False, emoji=False, width=max(console.width, 160), quiet=console.quiet
        )
    )
    out.print(table)
    note = agreement_note(result)
    if note:
        say("note:", "yellow", f" {note}", out)
    render_ladder(result, out)


def agreement_note(result: Any) -> str:
    """A line for under the table when a row shows an INT8 file's gate figure beside its own: what
    each was measured on, so the two numbers explain each other ("" when no row has one)."""
    gates = {Path(m.model).name: m.gate for m in result.models if m.gate}
    if not gates:
        return ""
    return (
        f"argmax vs FP32 is measured on {result.agreement_on}, not photographs; (gate N%) is what "
        "segpipe quantize measured on real images and recorded in the file: "
        + "; ".join(f"{name}: {text}" for name, text in gates.items())
    )


def render_ladder(result: Any, out: Any = None) -> None:
    """The precision ladder (FP32, FP16, INT8 of one backend side by side), when there is one."""
    from segpipe.ladder import LADDER_COLUMNS, precision_ladder

    rows = precision_ladder(result)
    if rows:
        title = (
            "precision ladder (same backend; vs FP32: faster or slower by the median, argmax "
            "agreement on the timed batch of random pixels, mIoU points)"
        )
        (out or console).print(
            make_table(title, rows, LADDER_COLUMNS, left=("precision", "model", "backend"))
        )
