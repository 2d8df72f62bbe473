"""``segpipe demo``: the whole pipeline on the sample data shipped inside the package.

Each step is the same library call the corresponding command makes; the demo only chains them.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated

import typer

from segpipe.cli.common import RichReporter, console, run_guarded

DEMO_ENCODER = "resnet18"
DEMO_SIZE = (128, 128)


def demo_command(
    output_dir: Annotated[Path, typer.Option("--output-dir", help="Where the demo writes everything.")] = Path("runs/demo"),
    epochs: Annotated[int, typer.Option("--epochs", help="Training epochs on the sample data.")] = 12,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or tables.")] = False,
) -> None:
    """Run the pipeline end to end on the bundled sample data (about a minute on 2 CPU cores)."""
    from segpipe.data.dataset import sample_data_root
    from segpipe.options import TrainOptions
    from segpipe.training import train

    reporter = RichReporter(quiet=quiet)
    data = sample_data_root()
    if output_dir.exists():
        shutil.rmtree(output_dir / "train", ignore_errors=True)
    t0 = time.perf_counter()

    # 1. train ---------------------------------------------------------------------------------
    console.rule("[bold]1. train")
    opts = run_guarded(
        TrainOptions,
        data_root=data,
        colors=data / "colors.csv",
        num_classes=4,
        model_name="demo",
        encoder=DEMO_ENCODER,
        encoder_weights="none",  # offline-safe; real runs use ImageNet weights (the default)
        epochs=epochs,
        batch_size=8,
        lr=3e-3,
        size=DEMO_SIZE,
        val_fraction=0.2,
        workers=0,
        device=device,
        output_dir=output_dir / "train",
        seed=0,
    )
    result = run_guarded(train, opts, reporter)
    console.print(
        f"[bold green]trained[/] {result.epochs_done} epochs; validation mIoU {result.best_miou:.3f} "
        f"(best epoch {result.best_epoch}); run folder {result.run_dir}"
    )

    console.rule("[bold]demo finished")
    console.print(f"everything is in {output_dir} ({time.perf_counter() - t0:.0f} s)")
