"""The training loop: ``train(TrainOptions, Reporter) -> RunResult``.

Reproducible: every epoch seeds its shuffling, augmentation and mix-up from ``(seed, epoch)``,
so a run resumed from ``last.pth`` continues exactly as an uninterrupted run would (on CPU with
deterministic kernels). Checkpoints follow the contract in ``segpipe.models``.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from segpipe.data.augment import save_transform
from segpipe.data.dataset import worker_init_fn
from segpipe.errors import CheckpointError
from segpipe.modelinfo import ModelInfo
from segpipe.models import (
    Checkpoint,
    Normalize,
    create_model,
    load_checkpoint,
    output_stride,
    preprocessing_params,
    resolve_arch,
    save_checkpoint,
)
from segpipe.options import TrainOptions
from segpipe.progress import Reporter
from segpipe.training.losses import SumLoss, mixed_loss, mixup
from segpipe.training.metrics import IoUMeter, SegMetrics
from segpipe.training.runlog import plot_curves, plot_val_samples, write_metrics_csv, write_options_yaml
from segpipe.training.setup import build_datasets, resolve_classes, resolve_run_dir
from segpipe.utils import check_divisible, ensure_dir, resolve_device


@dataclass
class RunResult:
    """What a training run produced."""

    run_dir: Path
    best_path: Path
    last_path: Path
    best_miou: float
    best_epoch: int
    epochs_done: int
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    final_metrics: SegMetrics | None = None


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's shuffling, augmentation and mix-up."""
    return (seed * 1_000_003 + epoch * 7919) % (2**31)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def labels_from_logits(logits: torch.Tensor, mode: str) -> torch.Tensor:
    """Class map N×H×W from network output (binary: logit > 0; else argmax)."""
    if mode == "binary":
        return (logits[:, 0] > 0).long()
    return logits.argmax(1)


def make_optimizer(opts: TrainOptions, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if opts.optimizer == "sgd":
        return torch.optim.SGD(params, lr=opts.lr, momentum=0.9, weight_decay=opts.weight_decay)
    if opts.optimizer == "adam":
        return torch.optim.Adam(params, lr=opts.lr, weight_decay=opts.weight_decay)
    return torch.optim.AdamW(params, lr=opts.lr, weight_decay=opts.weight_decay)


def make_scheduler(opts: TrainOptions, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per epoch."""
    if opts.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=opts.epochs, eta_min=opts.lr * 0.01)
    if opts.scheduler == "poly":
        return torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=opts.epochs, power=0.9)
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


class Trainer:
    """One training run. Build it, then :meth:`fit`. Split into steps so tests and benchmarks can
    drive single parts (``train_step``, ``validate``)."""

    def __init__(self, opts: TrainOptions, reporter: Reporter | None = None) -> None:
        self.opts = opts
        self.reporter = reporter or Reporter()
        self.device = resolve_device(opts.device)
        self.use_amp = bool(opts.amp and self.device.type == "cuda")
        if opts.amp and not self.use_amp:
            self.reporter.warn("--amp needs CUDA; training in float32 on the CPU")
        seed_everything(opts.seed)
        self.start_ckpt = self._start_checkpoint()
        self.resuming = bool(self.start_ckpt is not None and self.start_ckpt.train_state and not opts.finetune)
        num, names, palette = resolve_classes(opts, self.start_ckpt, self.reporter)
        self.palette = palette
        arch = resolve_arch(opts.arch)
        if self.start_ckpt is not None and self.start_ckpt.info is not None:
            src = self.start_ckpt.info
            if (src.arch.lower(), src.encoder) != (arch.lower(), opts.encoder) and self.resuming:
                self.reporter.info(f"resuming {src.arch}/{src.encoder} from {self.start_ckpt.path} (ignoring --arch/--encoder)")
            arch, encoder, mode = src.arch, src.encoder, src.mode
        else:
            encoder, mode = opts.encoder, opts.mode
        self.info = ModelInfo(
            arch=arch, encoder=encoder, num_classes=num, mode=mode, input_size=tuple(opts.size),
            class_names=names, colors=palette.colors, ignore_index=opts.ignore_index,
        )
        weights = None if self.start_ckpt is not None else opts.encoder_weights
        self.model = create_model(self.info, encoder_weights=weights)
        stride = output_stride(self.model)
        check_divisible(*opts.size, stride)
        if self.start_ckpt is not None and self.start_ckpt.info is not None:
            mean, std = self.start_ckpt.info.mean, self.start_ckpt.info.std
        else:
            mean, std = preprocessing_params(encoder, weights)
        self.info = self.info.replace(output_stride=stride, mean=mean, std=std)
        if self.start_ckpt is not None:
            self._load_weights(self.start_ckpt)
        self.train_set, self.val_set, self.stats = build_datasets(opts, num, palette, self.reporter)
        self.model.to(self.device)
        self.normalize = Normalize(self.info.mean, self.info.std).to(self.device)
        self.criterion = SumLoss(opts.loss, mode, num, opts.ignore_index).to(self.device)
        self.optimizer = make_optimizer(opts, self.model)
        self.scheduler = make_scheduler(opts, self.optimizer)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.start_epoch = 0
        self.best_miou = -math.inf
        self.best_epoch = 0
        self.history: list[dict[str, Any]] = []
        if self.resuming:
            self._restore_train_state(self.start_ckpt.train_state)  # type: ignore[union-attr, arg-type]
        self.run_dir = resolve_run_dir(opts, self.start_ckpt.path if self.resuming else None)  # type: ignore[union-attr]

    # ---- start / resume ----------------------------------------------------------------------
    def _start_checkpoint(self) -> Checkpoint | None:
        if self.opts.model is None:
            return None
        path = Path(self.opts.model)
        if not path.exists():
            self.reporter.warn(f"checkpoint {path} does not exist; training from scratch")
            return None
        return load_checkpoint(path)

    def _load_weights(self, ckpt: Checkpoint) -> None:
        try:
            self.model.load_state_dict(ckpt.state_dict, strict=True)
        except RuntimeError as e:
            raise CheckpointError(
                f"{ckpt.path}: weights do not fit {self.info.arch}/{self.info.encoder} with "
                f"{self.info.out_channels} outputs; pass --arch/--encoder/--num-classes matching them"
            ) from e
        kind = "resuming run" if self.resuming else "loaded weights"
        self.reporter.info(f"{kind} from {ckpt.path}")

    def _restore_train_state(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scheduler"):
            self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler") and self.use_amp:
            self.scaler.load_state_dict(state["scaler"])
        self.start_epoch = int(state["epoch"])
        self.best_miou = float(state.get("best_metric", -math.inf))
        self.best_epoch = int(state.get("best_epoch", 0))
        self.history = list(state.get("history", []))
        if self.start_epoch >= self.opts.epochs:
            raise CheckpointError(
                f"{self.start_ckpt.path} already trained {self.start_epoch} epochs; pass --epochs "  # type: ignore[union-attr]
                f"greater than {self.start_epoch} to go on, or --finetune to start a new run from its weights"
            )

    def train_state(self, epoch: int) -> dict[str, Any]:
        """Everything needed to resume after ``epoch`` completed epochs (torch-safe types only)."""
        return {
            "epoch": epoch,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.use_amp else None,
            "best_metric": self.best_miou,
            "best_epoch": self.best_epoch,
            "history": self.history,
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
                "python": random.getstate()[1],
            },
        }

    # ---- data --------------------------------------------------------------------------------
    def loader(self, dataset: Dataset, epoch: int, shuffle: bool) -> DataLoader:
        """A fresh loader per epoch, seeded from (seed, epoch): shuffling and worker seeds repeat."""
        g = torch.Generator()
        g.manual_seed(epoch_seed(self.opts.seed, epoch))
        if self.opts.workers == 0 and hasattr(dataset, "reseed"):
            dataset.reseed(epoch_seed(self.opts.seed, epoch))
        return DataLoader(
            dataset,
            batch_size=self.opts.batch_size,
            shuffle=shuffle,
            drop_last=shuffle and len(dataset) > self.opts.batch_size,
            num_workers=self.opts.workers,
            generator=g,
            worker_init_fn=worker_init_fn,
            pin_memory=self.device.type == "cuda",
        )

    def to_device(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 N×H×W×3 -> normalised float N×3×H×W on the device; masks -> long."""
        x = self.normalize(images.to(self.device, non_blocking=True))
        return x, masks.to(self.device, non_blocking=True).long()

    # ---- steps -------------------------------------------------------------------------------
    def train_step(self, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        """One optimisation step on a device batch; returns the loss (a tensor, no host sync)."""
        self.model.train()
        perm = None
        if self.opts.use_mixup and rng is not None and x.shape[0] > 1:
            x, perm, lam = mixup(x, rng, self.opts.mixup_alpha)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.use_amp):
            logits = self.model(x)
            loss = self.criterion(logits, y) if perm is None else mixed_loss(self.criterion, logits, y, perm, lam)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach()

    @torch.no_grad()
    def validate(self, epoch: int) -> tuple[float, SegMetrics]:
        """Validation loss and metrics over the whole validation set."""
        meter = IoUMeter(self.info.num_classes, self.opts.ignore_index, self.device)
        self.model.eval()
        total, batches = torch.zeros((), device=self.device), 0
        loader = self.loader(self.val_set, epoch, shuffle=False)  # type: ignore[arg-type]
        with self.reporter.task("  validating", total=len(loader)) as task:
            for images, masks in loader:
                x, y = self.to_device(images, masks)
                with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.use_amp):
                    logits = self.model(x)
                total += self.criterion(logits, y).float()
                batches += 1
                meter.update(labels_from_logits(logits, self.info.mode), y)
                task.advance()
        return float(total) / max(batches, 1), meter.compute()

    def train_epoch(self, epoch: int) -> float:
        """One epoch over the training set; returns the mean loss."""
        rng = np.random.default_rng(epoch_seed(self.opts.seed, epoch))
        torch.manual_seed(epoch_seed(self.opts.seed, epoch))
        loader = self.loader(self.train_set, epoch, shuffle=True)
        total, steps = torch.zeros((), device=self.device), 0
        lr = self.optimizer.param_groups[0]["lr"]
        with self.reporter.task(f"epoch {epoch + 1}/{self.opts.epochs}", total=len(loader)) as task:
            for images, masks in loader:
                x, y = self.to_device(images, masks)
                loss = self.train_step(x, y, rng)
                total += loss
                steps += 1
                task.advance(loss=float(loss), lr=lr)  # one host sync per step, for the bar
        return float(total) / max(steps, 1)

    # ---- outputs -----------------------------------------------------------------------------
    def _save_val_samples(self, path: Path, count: int = 4) -> None:
        if self.val_set is None or len(self.val_set) == 0:
            return
        images, truths, preds = [], [], []
        self.model.eval()
        with torch.no_grad():
            for i in range(min(count, len(self.val_set))):
                image, mask = self.val_set[i]
                x = self.normalize(image.unsqueeze(0).to(self.device))
                pred = labels_from_logits(self.model(x), self.info.mode)[0].cpu().numpy()
                images.append(image.numpy())
                truths.append(mask.numpy())
                preds.append(pred)
        plot_val_samples(images, truths, preds, self.palette.array(), self.info.class_names, path, self.opts.ignore_index)

    def fit(self) -> RunResult:
        """Train from ``start_epoch`` to ``opts.epochs``; writes the run folder; returns the result."""
        opts, rep = self.opts, self.reporter
        run = ensure_dir(self.run_dir)
        write_options_yaml({**opts.to_dict(), "resolved_num_classes": self.info.num_classes}, run / "options.yaml")
        if hasattr(self.train_set, "transform") and self.train_set.transform is not None:
            save_transform(self.train_set.transform, run / "augment.yaml")
        rep.info(
            f"training {self.info.arch}/{self.info.encoder} ({self.info.num_classes} classes, mode {self.info.mode}) "
            f"on {len(self.train_set)} images, validating on {len(self.val_set) if self.val_set else 0}, "
            f"size {opts.size[0]}x{opts.size[1]}, device {self.device}; run folder {run}"
        )
        best_path, last_path = run / "best.pth", run / "last.pth"
        stopped_early, metrics = False, None
        for epoch in range(self.start_epoch, opts.epochs):
            t0 = time.perf_counter()
            lr = self.optimizer.param_groups[0]["lr"]
            train_loss = self.train_epoch(epoch)
            if self.val_set is not None and len(self.val_set):
                val_loss, metrics = self.validate(epoch)
                score = metrics.miou
            else:
                val_loss, metrics, score = math.nan, None, -train_loss
            self.scheduler.step()
            row = {
                "epoch": epoch + 1, "time_s": time.perf_counter() - t0, "train_loss": train_loss, "val_loss": val_loss,
                "miou": metrics.miou if metrics else math.nan,
                "pixel_accuracy": metrics.pixel_accuracy if metrics else math.nan,
                "iou": metrics.iou if metrics else [], "lr": lr,
            }
            self.history.append(row)
            improved = not math.isnan(score) and score > self.best_miou
            if improved:
                self.best_miou, self.best_epoch = score, epoch + 1
            state = self.train_state(epoch + 1)
            save_checkpoint(last_path, self.model, self.info, state, opts.to_dict())
            if improved:
                save_checkpoint(best_path, self.model, self.info, state, opts.to_dict())
                self._save_val_samples(run / "val_samples.png")
            write_metrics_csv(self.history, run / "metrics.csv", self.info.class_names)
            plot_curves(self.history, run / "curves.png")
            rep.table(
                f"epoch {epoch + 1}/{opts.epochs}",
                ["train loss", "val loss", "mIoU", "pixel acc", "lr", "time s", "best"],
                [[train_loss, val_loss, row["miou"], row["pixel_accuracy"], lr, row["time_s"], "*" if improved else ""]],
            )
            if opts.patience and epoch + 1 - self.best_epoch >= opts.patience:
                rep.info(f"early stopping: no better mIoU for {opts.patience} epochs (best {self.best_miou:.4f} at epoch {self.best_epoch})")
                stopped_early = True
                break
        if not best_path.exists() and last_path.exists():
            save_checkpoint(best_path, self.model, self.info, self.train_state(len(self.history)), opts.to_dict())
        if self.history and self.history[-1].get("iou"):
            best_row = next((r for r in self.history if r["epoch"] == self.best_epoch), self.history[-1])
            rep.table(
                f"per-class IoU at the best epoch ({self.best_epoch})",
                ["class", "IoU", "pixels"],
                [[n, v, p] for n, v, p in zip(self.info.class_names, best_row["iou"],
                                             (self.stats.class_pixels.tolist() if self.stats else [""] * len(best_row["iou"])), strict=False)],
            )
        return RunResult(run, best_path, last_path, self.best_miou, self.best_epoch, len(self.history),
                         self.history, stopped_early, metrics)


def train(opts: TrainOptions, reporter: Reporter | None = None) -> RunResult:
    """Train a segmentation model as ``opts`` says; see :class:`TrainOptions`."""
    return Trainer(opts, reporter).fit()
