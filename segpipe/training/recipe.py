"""The opening lines of the training recipe (class weights, EMA, warm-up, logger) and the
logger's lifetime around the epochs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from segpipe.training.ema import EMA_WARMUP_POWER
from segpipe.training.loggers import RunLogger


def report_recipe(trainer: Any) -> None:
    """Class weights (per class, and which losses take them), EMA, warm-up, logger."""
    t, opts, rep = trainer, trainer.opts, trainer.reporter
    if t.class_weights is not None:
        how = t.class_weights_from
        if how in ("inverse", "sqrt-inverse"):
            how = f"{how} pixel share of the training images, capped at {opts.class_weight_cap:g}x"
        pairs = ", ".join(f"{n} {w:.3g}" for n, w in zip(t.info.class_names, t.class_weights, strict=False))
        used = ", ".join(t.criterion.weighted) or "none"
        line = f"class weights ({how}): {pairs}; applied to {used}"
        if t.criterion.unweighted:
            line += f" (not to {', '.join(t.criterion.unweighted)}: it takes no class weights)"
        rep.info(line)
    if t.ema is not None:
        rep.info(
            f"EMA of the weights: decay 1 - (1 + step)^-{EMA_WARMUP_POWER:g} up to {opts.ema_decay:g}; "
            "validation and best.pth use the averaged weights, last.pth the trained ones and the average"
        )
    if opts.warmup_epochs > 0:
        rep.info(f"learning-rate warm-up: linear over {opts.warmup_epochs:g} epoch(s), per step")
    if t.env.is_main and t.logger_kind != "none":
        where = "mlruns/" if t.logger_kind == "mlflow" else "event files"
        rep.info(f"logging to {t.logger_kind} in {t.run_dir} ({where})")


@contextlib.contextmanager
def closing_logger(logger: RunLogger, run_dir: Path) -> Iterator[RunLogger]:
    """Close (flush) the logger however the epochs end."""
    try:
        yield logger
    finally:
        logger.close(run_dir)
