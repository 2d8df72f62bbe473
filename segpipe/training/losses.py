"""Losses from ``smp.losses``, summed as ``--loss ce+dice`` asks, for the three training modes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from segpipe.options import parse_loss

SMP_MODES = {"seg": "multiclass", "binary": "binary", "multilabel": "multilabel"}


def make_target(target: torch.Tensor, mode: str, num_classes: int, ignore_index: int) -> torch.Tensor:
    """Turn a class map N×H×W into the target each mode's losses expect.

    ``seg``: the long class map; ``binary``: float N×1×H×W (1 where class 1, ignore kept);
    ``multilabel``: one-hot float N×C×H×W (ignored pixels hold the ignore value in every channel).
    """
    target = target.long()
    if mode == "seg":
        return target
    ignored = target == ignore_index
    if mode == "binary":
        out = (target == 1).float()
        out[ignored] = float(ignore_index)
        return out.unsqueeze(1)
    onehot = (
        torch.nn.functional.one_hot(target.clamp(0, num_classes - 1), num_classes).permute(0, 3, 1, 2).float()
    )
    return torch.where(ignored.unsqueeze(1), torch.full_like(onehot, float(ignore_index)), onehot)


class SumLoss(nn.Module):
    """The sum of several smp losses, applied to (logits, class map)."""

    def __init__(self, spec: str, mode: str, num_classes: int, ignore_index: int = 255) -> None:
        super().__init__()
        import segmentation_models_pytorch as smp

        self.mode = mode
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        smp_mode = SMP_MODES[mode]
        losses: list[nn.Module] = []
        for name in parse_loss(spec):
            if name in ("ce", "bce"):
                losses.append(
                    smp.losses.SoftCrossEntropyLoss(smooth_factor=0.0, ignore_index=ignore_index)
                    if mode == "seg"
                    else smp.losses.SoftBCEWithLogitsLoss(ignore_index=ignore_index)
                )
            elif name == "dice":
                losses.append(smp.losses.DiceLoss(smp_mode, ignore_index=ignore_index))
            elif name == "focal":
                # smp's multilabel focal loss mis-indexes its ignore mask (N×C×H×W vs N×H×W);
                # its binary mode computes the same per-element focal loss over all channels.
                focal_mode = "binary" if mode == "multilabel" else smp_mode
                losses.append(smp.losses.FocalLoss(focal_mode, ignore_index=ignore_index))
            elif name == "lovasz":
                losses.append(smp.losses.LovaszLoss(smp_mode, ignore_index=ignore_index))
        self.losses = nn.ModuleList(losses)
        self.names = parse_loss(spec)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        y = make_target(target, self.mode, self.num_classes, self.ignore_index)
        logits = logits.float()
        total = self.losses[0](logits, y)
        for loss in self.losses[1:]:
            total = total + loss(logits, y)
        return total


def mixup(
    images: torch.Tensor, rng: np.random.Generator, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mix-up of each sample with another of the batch: ``lam * x + (1 - lam) * x[perm]``.

    Returns the mixed batch, the permutation and ``lam`` (drawn from Beta(alpha, alpha) with
    ``rng``, so a resumed run draws the same values). The loss is mixed with the same weight:
    ``lam * L(out, y) + (1 - lam) * L(out, y[perm])``.
    """
    lam = float(rng.beta(alpha, alpha))
    perm = torch.from_numpy(rng.permutation(images.shape[0])).to(images.device)
    return lam * images + (1.0 - lam) * images[perm], perm, lam


def mixed_loss(
    criterion: Callable[..., torch.Tensor],
    logits: torch.Tensor,
    target: torch.Tensor,
    perm: torch.Tensor,
    lam: float,
) -> torch.Tensor:
    """The loss of a mixed-up batch, mixed by the same weight ``lam``."""
    return lam * criterion(logits, target) + (1.0 - lam) * criterion(logits, target[perm])
