"""Losses from ``smp.losses``, summed as ``--loss ce+dice`` asks, for the three training modes,
and the per-class weights of ``--class-weights`` (:func:`resolve_class_weights`).

Which losses take class weights: cross-entropy (torch's, ``weight=``), focal (smp's
``class_weights``; binary mode: its ``alpha`` = w1 / (w0 + w1)), dice (smp's ``class_weights``,
seg mode) and binary cross-entropy (``pos_weight`` = w1 / w0). Lovasz takes none, nor does dice in
binary mode (one channel); multilabel mode takes none (refused by the options).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from segpipe.errors import ConfigError
from segpipe.options.train import MAX_CLASS_WEIGHT, parse_class_weights, parse_loss

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


# ---- class weights --------------------------------------------------------------------------------
def frequency_weights(class_pixels: Sequence[int], kind: str, cap: float) -> tuple[float, ...]:
    """Weights from pixel counts: ``inverse`` (1 / share) or ``sqrt-inverse`` (1 / sqrt(share)),
    capped at ``cap`` times the most frequent class's weight, then scaled so that the average
    weight of a pixel is 1. A class with no pixels gets the cap."""
    counts = np.asarray(class_pixels, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return tuple(1.0 for _ in counts)
    share = counts / total
    present = share > 0
    raw = np.full(counts.shape, np.inf)
    raw[present] = 1.0 / (share[present] if kind == "inverse" else np.sqrt(share[present]))
    raw = np.minimum(raw, raw[present].min() * cap)
    raw /= float((share * raw).sum())
    return tuple(round(float(w), 6) for w in raw)


def read_class_weights(
    path: Path, num_classes: int, class_names: Sequence[str] | None = None
) -> tuple[float, ...]:
    """One weight per class from a text file, ``#`` comments and blank lines skipped; errors name
    the file, the line and the value.

    Plain lines (one number each) give the weights in class order. Lines ``name,weight`` (or
    ``name weight``) are matched to ``class_names`` in any order: a name that is not a class, a
    class named twice or a class left out is refused. Without ``class_names`` names are not checked.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--class-weights {path}: cannot read it ({type(e).__name__})") from None
    weights: list[float] = []
    named: dict[str, tuple[int, float]] = {}
    plain_line = 0
    for i, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "," in line or ";" in line:
            name, _, token = line.replace(";", ",").rpartition(",")
        else:
            name, _, token = line.rpartition(" ")
        name, token = name.strip(), token.strip()
        try:
            w = float(token)
        except ValueError:
            raise ConfigError(f"{path} line {i}: {token!r} is not a number") from None
        if not (0.0 <= w <= MAX_CLASS_WEIGHT):
            raise ConfigError(f"{path} line {i}: weight {token} must be from 0 to {MAX_CLASS_WEIGHT:,.0f}")
        weights.append(w)
        if name:
            if name in named:
                raise ConfigError(
                    f"{path} line {i}: class {name!r} already has a weight (line {named[name][0]})"
                )
            named[name] = (i, w)
        elif not plain_line:
            plain_line = i
    if named and class_names is not None:
        if plain_line:
            raise ConfigError(
                f"{path} line {plain_line}: a weight without a class name in a file of name,weight lines"
            )
        index = {n: k for k, n in enumerate(class_names)}
        for name, (i, _) in named.items():
            if name not in index:
                raise ConfigError(
                    f"{path} line {i}: {name!r} is not a class (classes: {', '.join(class_names)})"
                )
        missing = [n for n in class_names if n not in named]
        if missing:
            raise ConfigError(
                f"{path}: no weight for class {missing[0]!r} (every class needs a name,weight line)"
            )
        return tuple(named[n][1] for n in class_names)
    if len(weights) != num_classes:
        raise ConfigError(f"{path}: {len(weights)} weights for {num_classes} classes (one per line)")
    return tuple(weights)


def resolve_class_weights(
    spec: str | tuple[float, ...] | list[float],
    num_classes: int,
    class_pixels: Sequence[int] | None,
    cap: float = 10.0,
    class_names: Sequence[str] | None = None,
) -> tuple[float, ...] | None:
    """``--class-weights`` -> one weight per class (None: ``none``). ``inverse`` and
    ``sqrt-inverse`` need the pixel counts of the dataset scan; a file of ``name,weight`` lines is
    matched to ``class_names`` (:func:`read_class_weights`)."""
    spec = parse_class_weights(spec)
    if spec == "none":
        return None
    if isinstance(spec, tuple):
        if len(spec) != num_classes:
            raise ConfigError(
                f"--class-weights {','.join(f'{w:g}' for w in spec)}: {len(spec)} weights for {num_classes} classes"
            )
        weights = spec
    elif spec in ("inverse", "sqrt-inverse"):
        if class_pixels is None:
            raise ConfigError(
                f"--class-weights {spec}: needs the pixel counts of segpipe's dataset scan, which a "
                "--dataset class skips; give one weight per class instead (a file, or 0.5,1,4)"
            )
        weights = frequency_weights(class_pixels, spec, cap)
    else:
        weights = read_class_weights(Path(spec), num_classes, class_names)
    if not any(w > 0 for w in weights):
        raise ConfigError(f"--class-weights {spec}: every weight is 0")
    return weights


def _takes(cls: type, arg: str) -> bool:
    return arg in inspect.signature(cls.__init__).parameters


class SumLoss(nn.Module):
    """The sum of several smp losses, applied to (logits, class map); ``class_weights`` (one per
    class) go to each loss that takes them (:attr:`weighted` names those)."""

    def __init__(
        self,
        spec: str,
        mode: str,
        num_classes: int,
        ignore_index: int = 255,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        import segmentation_models_pytorch as smp

        self.mode = mode
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        smp_mode = SMP_MODES[mode]
        w = None if class_weights is None else [float(v) for v in class_weights]
        binary_w = w is not None and mode == "binary" and len(w) == 2
        losses: list[nn.Module] = []
        self.weighted: list[str] = []
        self.unweighted: list[str] = []
        for name in parse_loss(spec):
            took = False
            if name in ("ce", "bce"):
                if mode == "seg" and w is not None:
                    loss: nn.Module = nn.CrossEntropyLoss(weight=torch.tensor(w), ignore_index=ignore_index)
                    took = True
                elif mode == "seg":
                    loss = smp.losses.SoftCrossEntropyLoss(smooth_factor=0.0, ignore_index=ignore_index)
                elif binary_w and w[0] > 0:  # type: ignore[index]
                    pos = torch.tensor([w[1] / w[0]])  # type: ignore[index]
                    loss = smp.losses.SoftBCEWithLogitsLoss(ignore_index=ignore_index, pos_weight=pos)
                    took = True
                else:
                    loss = smp.losses.SoftBCEWithLogitsLoss(ignore_index=ignore_index)
            elif name == "dice":
                kw = {}
                if w is not None and mode == "seg" and _takes(smp.losses.DiceLoss, "class_weights"):
                    kw, took = {"class_weights": w}, True
                loss = smp.losses.DiceLoss(smp_mode, ignore_index=ignore_index, **kw)
            elif name == "focal":
                # smp's multilabel focal loss mis-indexes its ignore mask (N×C×H×W vs N×H×W);
                # its binary mode computes the same per-element focal loss over all channels.
                focal_mode = "binary" if mode == "multilabel" else smp_mode
                kw = {}
                if w is not None and mode == "seg" and _takes(smp.losses.FocalLoss, "class_weights"):
                    kw, took = {"class_weights": w}, True
                elif binary_w and sum(w) > 0:  # type: ignore[arg-type]
                    kw, took = {"alpha": w[1] / (w[0] + w[1])}, True  # type: ignore[index]
                loss = smp.losses.FocalLoss(focal_mode, ignore_index=ignore_index, **kw)
            else:  # lovasz
                loss = smp.losses.LovaszLoss(smp_mode, ignore_index=ignore_index)
            losses.append(loss)
            if w is not None:
                (self.weighted if took else self.unweighted).append(name)
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
