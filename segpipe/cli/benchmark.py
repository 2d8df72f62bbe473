"""``segpipe benchmark``: flags -> BenchmarkOptions -> ``benchmark`` -> one rich table (and JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segpipe.cli.binder import Flags, command
from segpipe.cli.common import RichReporter, console, print_written
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
    from rich.table import Table

    from segpipe.benchmark import COLUMNS
    from segpipe.cli.common import SafeConsole

    table = Table(
        title=f"segpipe benchmark (warm-up until settled, at least {result.warmup} calls; {result.runs} "
        "rounds, interleaved; spread = IQR / median)",
        title_justify="left",
    )
    for col in COLUMNS:
        table.add_column(col, justify="left" if col.split()[0] in ("model", "backend", "input") else "right")
    for bench in result.models:
        table.add_row(*(str(v) for v in bench.row()))
    # a terminal gets the table fitted to it; a pipe or a log (80 columns to rich) gets every figure whole
    out = (
        console
        if console.is_terminal
        else SafeConsole(
            highlight=False, markup=False, emoji=False, width=max(console.width, 160), quiet=console.quiet
        )
    )
    out.print(table)
    render_ladder(result, out)


# ---- the precision ladder ------------------------------------------------------------------------
PRECISION_ORDER = ("fp32", "fp16", "int8")
#: Header of :func:`precision_ladder` rows.
LADDER_COLUMNS = [
    "precision", "model", "backend", "size MB", "median ms", "vs FP32", "argmax vs FP32", "mIoU", "mIoU vs FP32",
]  # fmt: skip


def precision_ladder(result: Any) -> list[list[str]]:
    """FP32, FP16 and INT8 models of one backend side by side: size, latency and mIoU, each also
    relative to the FP32 model of the same backend (speed-up, mIoU points).

    Empty unless some backend has models of two or more precisions (the ladder compares those).
    ONNX files that ``--runtime auto`` sent to two CPU runtimes (FP32 on ONNX Runtime, INT8 on
    OpenVINO) form one ladder: what each file gives on the runtime segpipe runs it on.
    """
    from segpipe.units import speed_text

    by_backend: dict[str, list[Any]] = {}
    for m in result.models:
        by_backend.setdefault(m.backend, []).append(m)
    onnx = [b for b in ("onnxruntime", "openvino") if b in by_backend]
    if len(onnx) == 2 and all(len({m.precision for m in by_backend[b]}) < 2 for b in onnx):
        by_backend["onnx"] = [m for m in result.models if m.backend in onnx]
        for b in onnx:
            del by_backend[b]
    rows: list[list[str]] = []
    for models in by_backend.values():
        if len({m.precision for m in models}) < 2:
            continue
        models = sorted(
            models, key=lambda m: PRECISION_ORDER.index(m.precision) if m.precision in PRECISION_ORDER else 9
        )
        base = next((m for m in models if m.precision == "fp32"), None)
        for m in models:
            if base is None:
                speed = "-"
            elif m is base:
                speed = "reference"
            elif not (m.steady and base.steady):
                speed = "unsteady"
            else:
                speed = speed_text(base.p50_ms, m.p50_ms)
            if m.miou is None:
                miou = delta = "-"
            else:
                miou = f"{m.miou:.4f}"
                delta = "-" if base is None or base.miou is None else f"{100 * (m.miou - base.miou):+.2f} pt"
            rows.append(
                [
                    m.precision.upper(),
                    Path(m.model).name,
                    m.backend,
                    f"{m.size_mb:.2f}",
                    m.latency_text(),
                    speed,
                    m.agreement_text(),
                    miou,
                    delta,
                ]
            )
    return rows


def render_ladder(result: Any, out: Any = None) -> None:
    """The precision ladder (FP32, FP16, INT8 of one backend side by side), when there is one."""
    from rich.table import Table

    rows = precision_ladder(result)
    if not rows:
        return
    table = Table(
        title="precision ladder (same backend; vs FP32: faster or slower by the median, argmax "
        "agreement on the timed batch, mIoU points)",
        title_justify="left",
    )
    for col in LADDER_COLUMNS:
        table.add_column(col, justify="left" if col in ("precision", "model", "backend") else "right")
    for row in rows:
        table.add_row(*row)
    (out or console).print(table)
