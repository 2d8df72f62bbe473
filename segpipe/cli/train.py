"""``segpipe train``: flags (original and modern spellings) -> TrainOptions -> ``train``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segpipe.cli.binder import Flags, command
from segpipe.cli.common import is_debug, process_rank, say, warn
from segpipe.errors import SegpipeError
from segpipe.options.train import RUN, TrainOptions


# fmt: off
@dataclass(frozen=True)
class ConfigFlag:
    """``--config FILE.yaml``: TrainOptions from a file, the flags typed on the command line win."""

    config: Path | None = RUN.flag("--config", None, "YAML file of options; flags on the command line "
        "win. It cannot set --trust-checkpoint or --dataset (they run code).", metavar="FILE")
# fmt: on


@command(TrainOptions, ConfigFlag, interrupted="interrupted before training started; nothing was written")
def train_command(flags: Flags) -> None:
    """Train a segmentation model on DATA_ROOT, any label format (see --format)."""
    rank = process_rank()
    try:
        opts = build_options(flags)
        if rank == 0:
            _check_run_folder(opts)
    except SegpipeError as e:
        e.reported = e.reported or rank > 0  # every rank parses the same flags: rank 0 speaks for all
        raise
    if opts.devices > 1 and is_debug():
        os.environ["SEGPIPE_DEBUG"] = "1"  # the launched processes show tracebacks too
    result = _train(opts)
    from segpipe.training.launch import LAUNCHED_ENV

    if rank == 0 and not os.environ.get(LAUNCHED_ENV):
        say("done:", "bold green", f" {summary(result)}")


def build_options(flags: Flags) -> TrainOptions:
    """TrainOptions from ``--config`` (if any) overlaid with every flag typed on the command line."""
    from segpipe.options.train_config import train_options

    return train_options(flags.config, flags.fields_of(TrainOptions, only_given=True), warn)


def _check_run_folder(opts: Any) -> None:
    """--output-dir (or the default runs/ folder) can be written, before anything starts."""
    from segpipe.outpaths import check_output_dir

    if opts.output_dir is not None:
        check_output_dir(opts.output_dir, "--output-dir")
    elif opts.model is None and not opts.resume:  # else the run folder may be the checkpoint's own
        check_output_dir(Path("runs"), "--output-dir", default=True)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def summary(result: Any) -> str:
    """The closing line: epochs, what "best" means here, the files the run folder holds."""
    import math

    history = result.history or []
    validated = any(not math.isnan(float(r.get("miou", math.nan))) for r in history)
    epochs = _plural(result.epochs_done, "epoch")
    if validated:
        best = f"best mIoU {result.best_miou:.4f} at epoch {result.best_epoch}"
    else:
        row = next((r for r in history if r.get("epoch") == result.best_epoch), None)
        loss = f" {float(row['train_loss']):.4g}" if row else ""
        best = f"no validation data: best.pth is epoch {result.best_epoch}, the lowest training loss{loss}"
    names = ("best.pth", "last.pth", "metrics.csv", "curves.png", "val_samples.png")
    files = ", ".join(n for n in names if (result.run_dir / n).exists())
    return f"{epochs} trained; {best}; run folder {result.run_dir} ({files})"


def _train(opts: TrainOptions) -> Any:
    """Train; a lost connection to the other processes of a distributed run is said in one line
    (every other failure is a SegpipeError the command line's one handler reports)."""
    from segpipe.cli.common import RichReporter
    from segpipe.training import train
    from segpipe.training.distributed import is_comm_error
    from segpipe.utils import under_elastic

    try:
        return train(opts, RichReporter())
    except RuntimeError as e:
        if not (under_elastic() and is_comm_error(e)):
            raise
        raise SegpipeError(
            f"lost contact with the other training processes ({type(e).__name__}): one of them "
            "probably failed, see its error above (--debug for the traceback)"
        ) from e
