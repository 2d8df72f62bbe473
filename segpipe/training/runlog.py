"""What a run leaves in its folder besides checkpoints: metrics.csv, curves.png, val_samples.png,
options.yaml. Every file is written atomically, so a crash never leaves half a file."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from segpipe.palette import IGNORE_COLOR, colorize
from segpipe.utils import atomic_path, atomic_write_text


def _cell(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return v


def write_metrics_csv(history: Sequence[dict[str, Any]], path: Path, class_names: Sequence[str]) -> Path:
    """One row per epoch: epoch, time, losses, mIoU, pixel accuracy, per-class IoU, lr."""
    columns = ["epoch", "time_s", "train_loss", "val_loss", "miou", "pixel_accuracy"]
    columns += [f"iou_{n}" for n in class_names] + ["lr"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in history:
        ious = list(row.get("iou") or [math.nan] * len(class_names))
        writer.writerow(
            [_cell(row.get(c, math.nan)) for c in columns[:6]]
            + [_cell(float(v)) for v in ious]
            + [_cell(row.get("lr", math.nan))]
        )
    return atomic_write_text(path, buf.getvalue())


def write_options_yaml(options: dict[str, Any], path: Path) -> Path:
    return atomic_write_text(path, yaml.safe_dump(options, sort_keys=False))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: Sequence[dict[str, Any]], path: Path) -> Path:
    """Loss (train and val) and validation mIoU per epoch, side by side."""
    plt = _pyplot()
    fig = curves_figure(history)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def curves_figure(history: Sequence[dict[str, Any]]) -> Any:
    """The matplotlib figure of :func:`plot_curves` (the caller closes it)."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, [r.get("train_loss", math.nan) for r in history], "o-", label="train")
    ax1.plot(epochs, [r.get("val_loss", math.nan) for r in history], "o-", label="val")
    ax1.set(title="loss (log scale)", xlabel="epoch", yscale="log")
    ax1.legend()
    ax1.grid(alpha=0.3)
    mious = [r.get("miou", math.nan) for r in history]
    ax2.plot(epochs, mious, "o-", color="tab:green")
    ax2.set(title="validation mIoU", xlabel="epoch", ylim=(0, 1))
    ax2.grid(alpha=0.3)
    finite = [
        (m, -e)
        for m, e in zip(mious, epochs, strict=True)
        if isinstance(m, (int, float)) and math.isfinite(m)
    ]
    if finite:  # the epoch best.pth comes from (the first epoch that reached the highest mIoU)
        best_miou, neg_epoch = max(finite)
        best_epoch = -neg_epoch
        ax2.plot(
            [best_epoch], [best_miou], "*", color="tab:red", markersize=14, label=f"best: epoch {best_epoch}"
        )
        ax2.legend(loc="lower right")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        if epochs and len(epochs) <= 10:  # a short run: one tick per epoch, not 0.945 ... 1.050
            ax.set_xticks(sorted(set(epochs)))
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    plain_log_ticks(ax1)
    fig.tight_layout()
    return fig


def plain_log_ticks(ax: Any) -> None:
    """Decimal tick labels on a log y axis (``0.8``, ``2``, ``300``), never ``8x10^-1``.

    On a short run the losses span less than a decade: matplotlib then labels the minor ticks in
    scientific notation. Minor ticks keep a label only while the axis spans under a decade.
    """
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda v, _pos: f"{v:.3g}" if v > 0 else "")
    ax.yaxis.set_major_formatter(plain)
    low, high = ax.get_ylim()
    short = low > 0 and high / low < 10
    ax.yaxis.set_minor_formatter(plain if short else NullFormatter())


def plot_val_samples(
    images: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    preds: Sequence[np.ndarray],
    colors: np.ndarray,
    class_names: Sequence[str],
    path: Path,
    ignore_index: int = 255,
    caption: str = "",
) -> Path:
    """A grid: one row per validation image with image, ground truth and prediction; ``caption``
    says where the predictions come from (e.g. ``best.pth, epoch 7``). Cells take the images' own
    aspect ratio, so non-square images leave no white gaps."""
    plt = _pyplot()
    rows = max(1, len(images))
    h, w = images[0].shape[:2] if len(images) else (1, 1)
    cell_w = 3.0
    cell_h = cell_w * h / max(w, 1)
    present = sorted({int(v) for m in (*truths, *preds) for v in np.unique(m) if int(v) < len(colors)})
    ignored = (
        0 <= ignore_index and ignore_index >= len(colors) and any((t == ignore_index).any() for t in truths)
    )
    entries = len(present) + int(ignored)
    ncol = min(6, max(entries, 1))
    # room below the grid for every legend row (0.26 in each), so the legend never covers a picture
    legend_h = 0.26 * math.ceil(entries / ncol) + 0.2 if entries else 0.0
    fig_h = cell_h * rows + 0.6 + legend_h
    fig, axes = plt.subplots(rows, 3, figsize=(3 * cell_w, fig_h), squeeze=False)
    for r, (img, gt, pr) in enumerate(zip(images, truths, preds, strict=True)):
        for c, (pic, title) in enumerate(
            (
                (img, "image"),
                (colorize(gt, colors, ignore_index), "ground truth"),
                (colorize(pr, colors, ignore_index), "prediction"),
            )
        ):
            axes[r][c].imshow(pic)
            axes[r][c].set_axis_off()
            if r == 0:
                axes[r][c].set_title(f"prediction ({caption})" if caption and c == 2 else title)
    handles = [
        plt.Rectangle(
            (0, 0),
            1,
            1,
            color=np.asarray(colors[i]) / 255.0,
            label=class_names[i] if i < len(class_names) else str(i),
        )
        for i in present
    ]
    if ignored:
        handles.append(
            plt.Rectangle(
                (0, 0), 1, 1, color=np.asarray(IGNORE_COLOR) / 255.0, label="ignored (ground truth)"
            )
        )
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=ncol, frameon=False)
    fig.tight_layout(rect=(0, legend_h / fig_h, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return path
