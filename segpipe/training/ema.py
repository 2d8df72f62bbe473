"""``--ema``: an exponential moving average of the weights, and ``--warmup-epochs``: a linear
learning-rate warm-up, per step, before the (per-epoch) scheduler.

The EMA is timm's :class:`~timm.utils.model_ema.ModelEmaV3` of the bare network (never the DDP or
compiled wrapper), its decay warmed up as ``1 - (1 + step) ** -0.75`` (timm's setting for runs
under ~100k steps) up to ``--ema-decay``. Every rank updates its own copy from identical weights
(DDP keeps them equal), so every rank validates the same averaged model; rank 0 writes it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

EMA_WARMUP_POWER = 0.75


class WeightEma:
    """The averaged copy of ``net`` and the number of updates it has had (what resuming needs)."""

    def __init__(self, net: nn.Module, decay: float) -> None:
        from timm.utils.model_ema import ModelEmaV3

        self.ema = ModelEmaV3(net, decay=decay, use_warmup=True, warmup_power=EMA_WARMUP_POWER)
        for p in self.ema.module.parameters():
            p.requires_grad_(False)
        self.updates = 0

    @property
    def module(self) -> nn.Module:
        return self.ema.module

    @property
    def decay(self) -> float:
        """The decay the last update used."""
        return float(self.ema.get_decay(self.updates))

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        self.updates += 1
        self.ema.update(net, step=self.updates)

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.ema.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ema.module.load_state_dict(state["weights"], strict=True)
        self.updates = int(state["updates"])


class LinearWarmup:
    """Scales the scheduler's learning rate by ``(i + 1) / N`` at global step ``i`` of the first
    ``N = round(epochs * steps_per_epoch)`` steps. The scheduler's own value is put back at the end
    of each epoch, before it steps, so chainable schedulers (cosine) see their own numbers, and a
    resumed run recomputes the factor from (epoch, step): resuming stays exact."""

    def __init__(self, optimizer: torch.optim.Optimizer, scheduler: Any, epochs: float) -> None:
        self.optimizer, self.scheduler, self.epochs = optimizer, scheduler, float(epochs)

    def total_steps(self, steps_per_epoch: int) -> int:
        return max(1, round(self.epochs * steps_per_epoch))

    def apply(self, epoch: int, step: int, steps_per_epoch: int) -> None:
        """Before optimisation step ``step`` of ``epoch`` (both from 0)."""
        if self.epochs <= 0:
            return
        total = self.total_steps(steps_per_epoch)
        i = epoch * steps_per_epoch + step
        if i > total:
            return
        factor = min(1.0, (i + 1) / total)
        for group, base in zip(self.optimizer.param_groups, self.scheduler.get_last_lr(), strict=True):
            group["lr"] = base * factor

    def restore(self) -> None:
        """The scheduler's own learning rate back in the optimizer (end of an epoch)."""
        if self.epochs <= 0:
            return
        for group, base in zip(self.optimizer.param_groups, self.scheduler.get_last_lr(), strict=True):
            group["lr"] = base
