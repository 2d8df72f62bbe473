"""``segpipe benchmark``: flags -> BenchmarkOptions -> ``benchmark`` -> one rich table (and JSON)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from segpipe.cli.common import (
    HARDWARE_PANEL,
    INFERENCE_PANEL,
    MODEL_PANEL,
    ArchOpt,
    DeviceOpt,
    EncoderOpt,
    InputLayoutOpt,
    MeanOpt,
    NumClassesOpt,
    OverlapOpt,
    ReportOpt,
    RichReporter,
    SizeOpt,
    StdOpt,
    TileOpt,
    TrustCheckpointOpt,
    TtaOpt,
    console,
    print_written,
    run_guarded,
)
from segpipe.options import BenchmarkOptions

_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(BenchmarkOptions) if f.default is not dataclasses.MISSING
}
RUN = "Run"


def benchmark_command(
    models: Annotated[
        list[Path],
        typer.Option(
            "--model",
            "-m",
            help="A model file (.pth, .onnx, .engine); repeat to compare several.",
            rich_help_panel=MODEL_PANEL,
        ),
    ],
    size: SizeOpt = None,
    batch: Annotated[int, typer.Option("--batch", "--batch-size", help="Images per call.")] = _DEFAULTS[
        "batch"
    ],
    warmup: Annotated[
        int,
        typer.Option(
            "--warmup",
            help="Untimed calls first: at least this many, then until the timings settle (0: none).",
            rich_help_panel=RUN,
        ),
    ] = _DEFAULTS["warmup"],
    runs: Annotated[
        int,
        typer.Option(
            "--runs", help="Timed rounds: one call of every model and backend each.", rich_help_panel=RUN
        ),
    ] = _DEFAULTS["runs"],
    device: DeviceOpt = _DEFAULTS["device"],
    runtime: Annotated[
        str,
        typer.Option(
            "--runtime",
            metavar="NAMES",
            help="Backends that run each model, side by side: auto (the fastest available for the file "
            "on this device), names joined by commas (onnxruntime,openvino: each that reads the file) "
            "or all (every installed one that reads it).",
            rich_help_panel=HARDWARE_PANEL,
        ),
    ] = _DEFAULTS["runtime"],
    threads: Annotated[
        int,
        typer.Option(
            "--threads",
            help="CPU threads of PyTorch and ONNX Runtime (0: one per core).",
            rich_help_panel=HARDWARE_PANEL,
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
    report: ReportOpt = None,
    num_classes: NumClassesOpt = None,
    arch: ArchOpt = None,
    encoder: EncoderOpt = None,
    trust_checkpoint: TrustCheckpointOpt = False,
    mean: MeanOpt = None,
    std: StdOpt = None,
    input_layout: InputLayoutOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the table.")] = False,
    tile: TileOpt = None,
    overlap: OverlapOpt = _DEFAULTS["overlap"],
    tta: TtaOpt = None,
    image_size: Annotated[
        tuple[int, int] | None,
        typer.Option(
            "--image-size",
            metavar="W H",
            help="With --tile/--tta: time whole images of this size (default twice the network's "
            "width and height); --batch is then windows per call.",
            show_default=False,
            rich_help_panel=INFERENCE_PANEL,
        ),
    ] = None,
) -> None:
    """Median latency with its spread, throughput and agreement with FP32 of models x backends, side by side."""
    from segpipe.benchmark import benchmark
    from segpipe.options import parse_tta

    def build() -> BenchmarkOptions:
        flip, scales = parse_tta(tta)
        return BenchmarkOptions(
            models=tuple(models),
            size=tuple(size) if size else None,
            batch=batch,
            warmup=warmup,
            runs=runs,
            device=device,
            runtime=runtime,
            threads=threads,
            data_root=data_root,
            report=report,
            num_classes=num_classes,
            arch=arch,
            encoder=encoder,
            trust_checkpoint=trust_checkpoint,
            tile=tuple(tile) if tile else None,
            overlap=overlap,
            tta_flip=flip,
            tta_scales=scales,
            image_size=tuple(image_size) if image_size else None,
            mean=mean,
            std=std,
            input_layout=input_layout,
        )

    opts = run_guarded(build)
    if report is not None:
        from segpipe.outpaths import check_output_file

        run_guarded(check_output_file, report, "--report", tuple(models), "report.json")
    result = run_guarded(benchmark, opts, RichReporter(quiet=quiet))
    render(result)
    if report is not None:
        print_written(report, "benchmark report")


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
    """
    from segpipe.units import speed_text

    by_backend: dict[str, list[Any]] = {}
    for m in result.models:
        by_backend.setdefault(m.backend, []).append(m)
    rows: list[list[str]] = []
    for backend, models in by_backend.items():
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
                    backend,
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
