"""Segmentation metrics from a confusion matrix: per-class IoU, mIoU, pixel accuracy.

A confusion matrix accumulated over a whole data set gives the "dataset-level" IoU per class,
``TP / (TP + FP + FN)`` summed over all pixels, the same figure as ``smp.metrics.iou_score`` on
summed statistics (``reduction="none"`` after adding tp/fp/fn over images) and what MMSegmentation
reports. A class absent from both the ground truth and the predictions has no IoU (NaN) and is
left out of the mean. Pixels labelled ``ignore_index`` (or outside 0..K-1) are not counted.
"""

from __future__ import annotations

import numpy as np


class ConfusionMatrix:
    """K×K pixel counts: rows are ground-truth classes, columns predicted classes."""

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        """Add one prediction / ground-truth pair (class maps of the same shape, any int dtype)."""
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {pred.shape} differs from target shape {target.shape}")
        k = self.num_classes
        t = target.ravel().astype(np.int64, copy=False)
        p = pred.ravel().astype(np.int64, copy=False)
        valid = (t >= 0) & (t < k) & (t != self.ignore_index)
        if not valid.all():
            t, p = t[valid], p[valid]
        p = np.clip(p, 0, k - 1)
        self.matrix += np.bincount(t * k + p, minlength=k * k).reshape(k, k)

    def merge(self, other: ConfusionMatrix) -> None:
        """Add another matrix of the same classes (e.g. from another worker)."""
        self.matrix += other.matrix

    @property
    def pixels(self) -> int:
        """Counted (non-ignored) pixels."""
        return int(self.matrix.sum())

    def iou(self) -> np.ndarray:
        """Per-class IoU, NaN for classes absent from both ground truth and predictions."""
        tp = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / union, np.nan)

    def miou(self) -> float:
        """Mean IoU over the classes that have one (NaN when nothing was counted)."""
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def pixel_accuracy(self) -> float:
        """Correct pixels / counted pixels."""
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else float("nan")

    def class_accuracy(self) -> np.ndarray:
        """Per-class recall ``TP / (TP + FN)``, NaN for classes absent from the ground truth."""
        gt = self.matrix.sum(1).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(gt > 0, np.diag(self.matrix) / gt, np.nan)

    def normalized(self) -> np.ndarray:
        """Rows divided by their sums (each ground-truth class sums to 1; empty rows stay 0)."""
        rows = self.matrix.sum(1, keepdims=True).astype(np.float64)
        return np.divide(self.matrix, rows, out=np.zeros(self.matrix.shape), where=rows > 0)
