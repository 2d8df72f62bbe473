"""What a run reports and writes besides checkpoints and metrics: the run folder's set-up, the
opening lines (sizes, batch, learning rate, speed switches), validation pictures, the per-class
table. Rank 0 only: the other ranks' reporters are silent and they never call the writers."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import torch

from segpipe.training.runlog import plot_val_samples, write_options_yaml
from segpipe.training.setup import ELASTIC_MARKER, elastic_key
from segpipe.training.state import labels_from_logits
from segpipe.units import size_text
from segpipe.utils import atomic_write_text, ensure_dir


def prepare_run_dir(run: Path, options: dict[str, Any]) -> None:
    """Create the folder, drop temporary files a killed save left, write options.yaml and, in a
    torch elastic job, the marker a restarted attempt finds its folder by."""
    ensure_dir(run)
    for stale in run.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()
    write_options_yaml(options, run / "options.yaml")
    key = elastic_key()
    if key is not None:
        atomic_write_text(run / ELASTIC_MARKER, key + "\n")


def report_start(trainer: Any) -> None:
    """The opening lines: model, data, device, run folder; batch and learning rate (effective over
    all processes); speed switches on CUDA; where a resumed run starts."""
    t, opts, env, rep = trainer, trainer.opts, trainer.env, trainer.reporter
    n_val = len(t.val_set) if t.val_set is not None else 0
    rep.info(
        f"training {t.info.arch}/{t.info.encoder} ({t.info.num_classes} classes, mode {t.info.mode}) "
        f"on {len(t.train_set)} images, validating on {n_val}, size {size_text(opts.size)}, "
        f"device {t.device}; run folder {t.run_dir}"
    )
    if env.distributed:
        rep.info(
            f"distributed: {env.world_size} processes ({env.backend}), batch {opts.batch_size} per process, "
            f"effective batch {opts.batch_size * env.world_size}; lr {opts.lr:g} "
            "(as given: not scaled with the effective batch)"
        )
    else:
        rep.info(f"batch {opts.batch_size} (effective batch {opts.batch_size}); lr {opts.lr:g}")
    if t.device.type == "cuda":
        switches = [
            f"AMP {opts.amp_dtype}" if t.use_amp else "float32",
            "channels-last" if t.memory_format == torch.channels_last else "channels-first",
            "deterministic" if opts.deterministic else "cudnn.benchmark",
        ]
        if opts.compile:
            switches.append("torch.compile")
        if opts.sync_bn and env.distributed:
            switches.append("SyncBatchNorm")
        rep.info(f"speed: {', '.join(switches)}; progress every {t.log_every} steps")
    if n_val == 0:
        rep.warn(
            f"no validation data ({len(t.train_set)} training image(s); give --val-root DIR, or more images "
            "with --val-fraction > 0): no mIoU is measured, and best.pth is the epoch with the lowest "
            "training loss"
        )
    if t.resuming:
        where = f"epoch {t.start_epoch + 1} of {opts.epochs}"
        if t.start_step:
            where += f", after the {t.start_step} step(s) of it already done"
        rep.info(f"going on at {where}")


def _loss(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:.4f}" if abs(v) < 100 else f"{v:.4g}"


def epoch_line(row: dict[str, Any], epochs: int, improved: bool) -> str:
    """The one line each epoch prints (as Ultralytics and MMSegmentation do), e.g.
    ``epoch  3/12  train loss 0.4213  val loss 0.3820  mIoU 0.6120  pixel acc 0.8801  lr 0.003  4.1 s  new best``.
    """
    parts = [f"epoch {row['epoch']:>{len(str(epochs))}}/{epochs}", f"train loss {_loss(row['train_loss'])}"]
    if not math.isnan(row.get("val_loss", math.nan)):
        parts += [
            f"val loss {_loss(row['val_loss'])}",
            f"mIoU {row['miou']:.4f}",
            f"pixel acc {row['pixel_accuracy']:.4f}",
        ]
    parts += [f"lr {row['lr']:.3g}", f"{row['time_s']:.1f} s"]
    if improved:
        parts.append("new best")
    return "  ".join(parts)


def save_val_samples(trainer: Any, path: Path, count: int = 4, caption: str = "") -> None:
    """A few validation images with ground truth and prediction, in the palette's colours."""
    t = trainer
    if t.val_set is None or len(t.val_set) == 0:
        return
    images, truths, preds = [], [], []
    net = getattr(t, "eval_net", t.net)  # the EMA weights with --ema
    net.eval()
    with torch.no_grad():
        for i in range(min(count, len(t.val_set))):
            image, mask = t.val_set[i]
            x = t.normalize(image.unsqueeze(0).to(t.device))
            pred = labels_from_logits(net(x), t.info.mode)[0].cpu().numpy()
            images.append(image.numpy())
            truths.append(mask.numpy())
            preds.append(pred)
    plot_val_samples(
        images, truths, preds, t.palette.array(), t.info.class_names, path, t.opts.ignore_index, caption
    )


def table_per_class(trainer: Any, metrics: Any = None) -> None:
    """Per-class IoU at the best epoch, beside each class's pixels in the validation images (the
    pixels its IoU was measured on; the same at every epoch)."""
    t = trainer
    if not (t.history and t.history[-1].get("iou")):
        return
    best_row = next((r for r in t.history if r["epoch"] == t.best_epoch), t.history[-1])
    pixels = list(getattr(metrics, "class_pixels", None) or [""] * len(best_row["iou"]))
    t.reporter.table(
        f"per-class IoU at the best epoch ({t.best_epoch})",
        ["class", "IoU", "validation pixels"],
        [[n, v, p] for n, v, p in zip(t.info.class_names, best_row["iou"], pixels, strict=False)],
    )


#: The validation loss is "far above" the training loss from this ratio on (453 vs 1.2 in the field).
EARLY_VAL_RATIO = 10.0


def early_val_loss_note(row: dict[str, Any]) -> str | None:
    """One line explaining a validation loss far above the training loss in the first epochs
    (BatchNorm running statistics not settled yet), or None when the row shows nothing of the kind."""
    val, train = row.get("val_loss", math.nan), row.get("train_loss", math.nan)
    if row.get("epoch", 99) > 5 or not (math.isfinite(val) and math.isfinite(train)) or train <= 0:
        return None
    if val < EARLY_VAL_RATIO * train:
        return None
    return (
        f"note: validation loss {_loss(val)} is far above the training loss {_loss(train)}: usual in "
        "the first epochs, while BatchNorm's running statistics (used in validation) have not "
        "settled; it comes down within a few epochs"
    )
