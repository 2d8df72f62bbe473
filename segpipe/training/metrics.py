"""Segmentation metrics accumulated over a dataset with ``smp.metrics``.

Per-class true/false positives and false negatives are summed over every image (dataset-level
IoU, as MMSegmentation reports it); classes absent from both prediction and ground truth get NaN
and are left out of the mean. Pixels equal to the ignore index are not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


@dataclass
class SegMetrics:
    """mIoU, per-class IoU and pixel accuracy."""

    miou: float
    iou: list[float]
    pixel_accuracy: float
    class_pixels: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "miou": self.miou,
            "iou": self.iou,
            "pixel_accuracy": self.pixel_accuracy,
            "class_pixels": self.class_pixels,
        }


class IoUMeter:
    """Accumulates ``smp.metrics.get_stats`` over batches of class maps."""

    def __init__(self, num_classes: int, ignore_index: int = 255, device: torch.device | str = "cpu") -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        # rows: tp, fp, fn, per class (a single tensor so it can be all-reduced across ranks)
        self.stats = torch.zeros(3, num_classes, dtype=torch.int64, device=device)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """``pred`` and ``target``: class maps N×H×W (integers)."""
        import segmentation_models_pytorch as smp

        tp, fp, fn, _ = smp.metrics.get_stats(
            pred.long(),
            target.long(),
            mode="multiclass",
            num_classes=self.num_classes,
            ignore_index=self.ignore_index,
        )
        self.stats[0] += tp.sum(0).to(self.stats.device)
        self.stats[1] += fp.sum(0).to(self.stats.device)
        self.stats[2] += fn.sum(0).to(self.stats.device)

    def compute(self) -> SegMetrics:
        import segmentation_models_pytorch as smp

        tp, fp, fn = (s.double().cpu() for s in self.stats)
        iou = smp.metrics.iou_score(
            tp, fp, fn, torch.zeros_like(tp), reduction="none", zero_division=math.nan
        )
        valid = [float(v) for v in iou.tolist()]
        present = [v for v in valid if not math.isnan(v)]
        labelled = float((tp + fn).sum())
        return SegMetrics(
            miou=sum(present) / len(present) if present else math.nan,
            iou=valid,
            pixel_accuracy=float(tp.sum()) / labelled if labelled else math.nan,
            class_pixels=[int(v) for v in (tp + fn).tolist()],
        )
