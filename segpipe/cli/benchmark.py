"""``segpipe benchmark``: flags -> BenchmarkOptions -> ``benchmark`` -> one rich table (and JSON)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from segpipe.cli.common import RichReporter, console, print_written, run_guarded
from segpipe.options import BenchmarkOptions

_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(BenchmarkOptions) if f.default is not dataclasses.MISSING
}
MODEL, RUN = "Model", "Run"


def benchmark_command(
    models: Annotated[
        list[Path],
        typer.Option("--model", "-m", help="A model file (.pth, .onnx, .engine); repeat to compare several."),
    ],
    size: Annotated[
        tuple[int, int] | None,
        typer.Option("--size", help="WIDTH HEIGHT (default: each model's own).", show_default=False),
    ] = None,
    batch: Annotated[int, typer.Option("--batch", "--batch-size", help="Images per call.")] = _DEFAULTS[
        "batch"
    ],
    warmup: Annotated[
        int, typer.Option("--warmup", help="Untimed calls first.", rich_help_panel=RUN)
    ] = _DEFAULTS["warmup"],
    runs: Annotated[int, typer.Option("--runs", help="Timed calls.", rich_help_panel=RUN)] = _DEFAULTS[
        "runs"
    ],
    device: Annotated[
        str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.", rich_help_panel=RUN)
    ] = _DEFAULTS["device"],
    threads: Annotated[
        int,
        typer.Option(
            "--threads",
            help="CPU threads of PyTorch and ONNX Runtime (0: one per core).",
            rich_help_panel=RUN,
        ),
    ] = _DEFAULTS["threads"],
    data_root: Annotated[
        Path | None,
        typer.Option(
            "--data-root",
            "--data_root",
            help="Also compute each model's mIoU on this data set.",
            show_default=False,
        ),
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write the figures as JSON here.", show_default=False)
    ] = None,
    num_classes: Annotated[
        int | None,
        typer.Option(
            "--num-classes",
            "--num_classes",
            help="For a bare state_dict or foreign ONNX.",
            rich_help_panel=MODEL,
            show_default=False,
        ),
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(
            "--arch", help="Architecture of a bare state_dict.", rich_help_panel=MODEL, show_default=False
        ),
    ] = None,
    encoder: Annotated[
        str | None,
        typer.Option(
            "--encoder",
            "--backend",
            help="Encoder of a bare state_dict.",
            rich_help_panel=MODEL,
            show_default=False,
        ),
    ] = None,
    trust_checkpoint: Annotated[
        bool, typer.Option("--trust-checkpoint", help="Allow full unpickling (trusted files only).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the table.")] = False,
) -> None:
    """Latency (mean, p50, p90, p99), throughput and peak memory of model files, any backend."""
    from segpipe.benchmark import benchmark

    def build() -> BenchmarkOptions:
        return BenchmarkOptions(
            models=tuple(models),
            size=tuple(size) if size else None,
            batch=batch,
            warmup=warmup,
            runs=runs,
            device=device,
            threads=threads,
            data_root=data_root,
            report=report,
            num_classes=num_classes,
            arch=arch,
            encoder=encoder,
            trust_checkpoint=trust_checkpoint,
        )

    opts = run_guarded(build)
    result = run_guarded(benchmark, opts, RichReporter(quiet=quiet))
    render(result)
    if report is not None:
        print_written(report, "benchmark report")


def render(result: Any) -> None:
    """One table: a row per model."""
    from rich.console import Console
    from rich.table import Table

    from segpipe.benchmark import COLUMNS

    table = Table(
        title=f"segpipe benchmark ({result.warmup} warm-up + {result.runs} timed calls per model)",
        title_justify="left",
    )
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("model", "backend", "input") else "right")
    for bench in result.models:
        table.add_row(*(str(v) for v in bench.row()))
    # a terminal gets the table fitted to it; a pipe or a log (80 columns to rich) gets every figure whole
    out = console if console.is_terminal else Console(highlight=False, width=max(console.width, 160))
    out.print(table)
