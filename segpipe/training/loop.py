"""The training loop, :class:`Trainer`; the entry point ``train`` is in :mod:`segpipe.training.launch`.

Reproducible: shuffling, augmentation, mix-up and dropout are seeded from (seed, epoch, step,
image), never from how the run got there, so a run resumed from ``last.pth`` -- written at the end
of each epoch, or in the middle of one when a stop signal arrives -- continues exactly as an
uninterrupted run would (on CPU, or on CUDA with ``--deterministic``). Checkpoints follow the
contract in ``segpipe.models``.

Distributed: the same loop runs in every process torchrun (or ``--devices N``) starts, see
:mod:`segpipe.training.distributed`. Host synchronisation happens every ``log_every`` steps (the
progress bar), where stop requests and non-finite losses are also agreed on across ranks.
"""

from __future__ import annotations

import math
import re
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from segpipe.data.augment import save_transform
from segpipe.data.torchdata import worker_init_fn
from segpipe.models import save_checkpoint
from segpipe.options import TrainOptions
from segpipe.progress import Reporter
from segpipe.training.accel import make_optimizer, make_scheduler, wrap_model
from segpipe.training.distributed import DistEnv, ShardSampler
from segpipe.training.guard import (
    NonFiniteLoss,
    StopGuard,
    TrainingInterrupted,
    nonfinite_message,
    quiet_worker,
    resume_hint,
)
from segpipe.training.loggers import epoch_scalars, make_logger
from segpipe.training.losses import mixed_loss, mixup
from segpipe.training.metrics import IoUMeter, SegMetrics
from segpipe.training.outputs import (
    early_val_loss_note,
    epoch_line,
    prepare_run_dir,
    report_start,
    save_val_samples,
    table_per_class,
)
from segpipe.training.recipe import closing_logger, report_recipe
from segpipe.training.runlog import plot_curves, write_metrics_csv
from segpipe.training.sampling import EpochSampler, SeededDataset, step_seed
from segpipe.training.setup import resume_flags
from segpipe.training.state import (
    RunResult,
    TrainerSetup,
    deploy_state,
    labels_from_logits,
)

__all__ = [
    "RunResult",
    "Trainer",
    "labels_from_logits",
    "make_optimizer",
    "make_scheduler",
]


class Trainer(TrainerSetup):
    """One training run (one process of it, in a distributed run): build it, then :meth:`fit`.
    Split into steps so tests and benchmarks can drive single parts (``train_step``, ``validate``).

    ``net`` is the bare smp model (what checkpoints hold); ``model`` what trains (DDP and/or
    torch.compile around ``net``); ``eval_model`` what validates (never DDP).
    """

    def __init__(
        self, opts: TrainOptions, reporter: Reporter | None = None, env: DistEnv | None = None
    ) -> None:
        super().__init__(opts, reporter, env)
        self.model, self.eval_model = wrap_model(self.net, self.opts, self.env)
        if self.ema is not None:
            self.eval_model = self.ema.module  # validation and best.pth use the averaged weights
        self.log_every = self.opts.log_every or (10 if self.device.type == "cuda" else 1)
        self.guard = StopGuard(announce=False)
        self._loaders: dict[tuple[int, bool], tuple[DataLoader, Any]] = {}
        self.batches_run = 0  # by this process in the last epoch (none: resumed after its last step)

    # ---- data --------------------------------------------------------------------------------
    def loader(self, dataset: Dataset, epoch: int, shuffle: bool, skip: int = 0) -> DataLoader:
        """This rank's loader for ``epoch``, built once (its workers may persist between epochs).

        Training (``shuffle``): this rank's shard of a DistributedSampler set to ``epoch``, less
        its first ``skip`` batches; each image augmented from (seed, epoch, index). Validation:
        each image on exactly one rank, none repeated.
        """
        key = (id(dataset), shuffle)
        if key not in self._loaders:
            opts, env = self.opts, self.env
            sampler: EpochSampler | ShardSampler
            if shuffle:
                sampler = EpochSampler(dataset, env.rank, env.world_size, opts.seed)
                source: Dataset = SeededDataset(dataset, opts.seed)
                shard = sampler.shard_length
            else:
                sampler = ShardSampler(len(dataset), env.rank, env.world_size)  # type: ignore[arg-type]
                source, shard = dataset, len(sampler)
            g = torch.Generator()
            g.manual_seed(opts.seed)
            loader = DataLoader(
                source,
                batch_size=opts.batch_size,
                sampler=sampler,
                drop_last=shuffle and shard > opts.batch_size,
                num_workers=opts.workers,
                generator=g,
                worker_init_fn=quiet_worker(worker_init_fn),  # workers leave signals to us
                pin_memory=self.device.type == "cuda",
                persistent_workers=opts.workers > 0 and opts.persistent_workers,
            )
            self._loaders[key] = (loader, sampler)
        loader, sampler = self._loaders[key]
        if shuffle:
            sampler.set_epoch(epoch, skip * self.opts.batch_size)
        return loader

    def close_loaders(self) -> None:
        """Shut the loader workers down now (they ignore group stop signals, see
        :func:`~segpipe.training.guard.quiet_worker`), not at interpreter exit, where
        multiprocessing would terminate them while torch still watches them."""
        for loader, _ in self._loaders.values():
            iterator = getattr(loader, "_iterator", None)
            shutdown = getattr(iterator, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()
            loader._iterator = None  # type: ignore[attr-defined]
        self._loaders.clear()

    def to_device(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 N×H×W×3 -> normalised float N×3×H×W on the device, in the run's memory layout
        (:func:`~segpipe.training.accel.memory_format`); masks -> long."""
        x = self.normalize(images.to(self.device, non_blocking=True))
        return x, masks.to(self.device, non_blocking=True).long()

    def autocast(self) -> torch.autocast:
        return torch.autocast(
            self.device.type, dtype=self.autocast_dtype or torch.float16, enabled=self.use_amp
        )

    # ---- steps -------------------------------------------------------------------------------
    def train_step(
        self, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator | None = None
    ) -> torch.Tensor:
        """One optimisation step on a device batch; returns the loss (a tensor, no host sync,
        except with ``skip_nonfinite``, which checks the loss before stepping)."""
        self.model.train()
        perm = None
        if self.opts.use_mixup and rng is not None and x.shape[0] > 1:
            x, perm, lam = mixup(x, rng, self.opts.mixup_alpha)
        with self.autocast():
            logits = self.model(x)
            loss = (
                self.criterion(logits, y)
                if perm is None
                else mixed_loss(self.criterion, logits, y, perm, lam)
            )
        self.optimizer.zero_grad(set_to_none=True)
        if self.opts.skip_nonfinite and self.env.any(not bool(torch.isfinite(loss))):
            return loss.detach()  # every rank skips this batch together (no backward: DDP stays in step)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.net)
        return loss.detach()

    @torch.no_grad()
    def validate(self, epoch: int) -> tuple[float, SegMetrics]:
        """Validation loss (per image) and metrics over the whole validation set, every image
        counted once however many ranks share it."""
        meter = IoUMeter(self.info.num_classes, self.opts.ignore_index, self.device)
        self.env.sync_buffers(self.net)  # every rank validates the model rank 0 saves
        if self.ema is not None:
            self.env.sync_buffers(self.ema.module)
        self.eval_model.eval()
        sums = torch.zeros(2, dtype=torch.float64, device=self.device)  # loss * images, images
        loader = self.loader(self.val_set, epoch, shuffle=False)  # type: ignore[arg-type]
        with self.reporter.task("  validating", total=len(loader), transient=True) as task:
            for images, masks in loader:
                x, y = self.to_device(images, masks)
                with self.autocast():
                    logits = self.eval_model(x)
                n = torch.tensor(float(x.shape[0]), dtype=torch.float64, device=self.device)
                sums += torch.stack([self.criterion(logits, y).double() * n, n])
                meter.update(labels_from_logits(logits, self.info.mode), y)
                task.advance()
        self.env.all_reduce(meter.stats)
        self.env.all_reduce(sums)
        total, count = sums.tolist()
        return (total / count if count else math.nan), meter.compute()

    def train_epoch(self, epoch: int) -> float:
        """One epoch over this rank's shard; returns the mean loss over all ranks' steps.

        Raises :class:`TrainingInterrupted` (after writing ``last.pth``) when a stop signal
        arrived, :class:`NonFiniteLoss` when the loss became NaN/inf (unless ``skip_nonfinite``).
        """
        opts, env, dev = self.opts, self.env, self.device
        resumed = epoch == self.start_epoch
        skip = self.start_step if resumed else 0
        loss_sum, loss_steps = self.partial if resumed else (0.0, 0)
        loader = self.loader(self.train_set, epoch, shuffle=True, skip=skip)
        steps, self.batches_run = skip + len(loader), len(loader)
        lr = self.scheduler.get_last_lr()[0]
        acc = torch.zeros(3, dtype=torch.float64, device=dev)  # finite-loss sum, finite steps, others
        first_bad = torch.full((), steps, dtype=torch.int64, device=dev)
        step, pending, skipped = skip, 0, 0
        with self.reporter.task(f"epoch {epoch + 1}/{opts.epochs}", total=steps, transient=True) as task:
            if skip:
                task.advance(skip)
            for images, masks in loader:
                x, y = self.to_device(images, masks)
                seed = step_seed(opts.seed, epoch, step, env.rank)
                torch.manual_seed(seed)
                self.warmup.apply(epoch, step, steps)
                loss = self.train_step(x, y, np.random.default_rng(seed)).double()
                finite = torch.isfinite(loss)
                acc += torch.stack([torch.where(finite, loss, 0.0), finite.double(), (~finite).double()])
                first_bad = torch.where(~finite & (first_bad == steps), step, first_bad)
                step, pending = step + 1, pending + 1
                if pending < self.log_every and step < steps:
                    continue
                # host sync: progress bar, non-finite check, stop requests (all agreed across ranks)
                stop = torch.tensor([1.0 if self.guard.requested else 0.0], dtype=torch.float64, device=dev)
                total = env.all_reduce(torch.cat([acc, stop])).tolist()
                loss_sum, loss_steps = loss_sum + total[0], loss_steps + int(total[1])
                if total[2] and not opts.skip_nonfinite:
                    bad = int(env.all_reduce(first_bad.clone(), "min"))
                    raise NonFiniteLoss(
                        nonfinite_message(
                            epoch + 1,
                            bad + 1,
                            steps,
                            opts.lr,
                            self.run_dir / "last.pth",
                            self.last_saved,
                            opts.class_weights,
                        )
                    )
                skipped += int(total[2])
                task.advance(pending, loss=total[0] / total[1] if total[1] else math.nan, lr=lr)
                acc.zero_()
                pending = 0
                if total[3]:
                    self._stop(epoch, step, steps, (loss_sum, loss_steps))
        self.warmup.restore()
        if skipped:
            self.reporter.warn(
                f"epoch {epoch + 1}: skipped {skipped} batch(es) with a non-finite loss (--skip-nonfinite)"
            )
        return loss_sum / loss_steps if loss_steps else math.nan

    def _stop(self, epoch: int, step: int, steps: int, partial: tuple[float, int]) -> None:
        """Write ``last.pth`` mid-epoch (rank 0), wait for every rank, raise TrainingInterrupted."""
        last = self.run_dir / "last.pth"
        if self.env.is_main:
            save_checkpoint(
                last, self.net, self.info, self.train_state(epoch, step, partial), self.opts.to_dict()
            )
        self.env.barrier()
        raise self._interrupted(f"at epoch {epoch + 1}, step {step} of {steps}", last)

    def _interrupted(self, where: str, last: Path) -> TrainingInterrupted:
        cause = self.guard.signal_name if self.guard.requested else "a stop signal to another process"
        hint = resume_hint(
            last, self.run_dir / "options.yaml", self.opts.dataset, resume_flags(self.opts, self.run_dir)
        )
        return TrainingInterrupted(
            f"interrupted by {cause} {where}; saved {last}; {hint}", self.guard.exit_code, last
        )

    def step_scheduler(self) -> None:
        """The per-epoch scheduler step. An epoch resumed from a stop after its last step runs no
        batch here: its optimizer steps were taken by the stopped process, whose scheduler state
        (with its step count) was restored, so this is the step the uninterrupted run takes here
        (tests/test_rerun.py compares metrics.csv's lr). torch's warning that the scheduler stepped
        before the optimizer only sees this process's optimizer; it is benign, so ignored there."""
        if self.batches_run:
            self.scheduler.step()
            return
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()` before"))
            self.scheduler.step()

    # ---- the run -----------------------------------------------------------------------------
    def fit(self) -> RunResult:
        """Train from where the run stands to ``opts.epochs``; rank 0 writes the run folder."""
        try:
            return self._fit()
        finally:  # the run folder and the loader workers are let go however the run ends
            self.close_loaders()
            self.release_run_dir()

    def _fit(self) -> RunResult:
        opts, rep, env = self.opts, self.reporter, self.env
        run = self.run_dir
        if env.is_main:
            prepare_run_dir(run, {**opts.to_dict(), "num_classes": self.info.num_classes})
            if getattr(self.train_set, "transform", None) is not None:
                save_transform(self.train_set.transform, run / "augment.yaml")  # type: ignore[attr-defined]
        report_start(self)
        report_recipe(self)
        best_path, last_path = run / "best.pth", run / "last.pth"
        stopped_early, metrics, explained = False, None, False
        self.guard.announce = env.is_main
        logger = make_logger(
            self.logger_kind if env.is_main else "none", run, self.start_epoch, opts.to_dict()
        )
        with self.guard, closing_logger(logger, run):  # a stop already requested still counts
            for epoch in range(self.start_epoch, opts.epochs):
                t0 = time.perf_counter()
                lr = self.scheduler.get_last_lr()[0]  # not the optimizer's: last.pth may hold a warm-up value
                train_loss = self.train_epoch(epoch)
                if self.val_set is not None and len(self.val_set):  # type: ignore[arg-type]
                    val_loss, metrics = self.validate(epoch)
                    score = metrics.miou
                else:
                    val_loss, metrics, score = math.nan, None, -train_loss
                self.step_scheduler()
                row = {
                    "epoch": epoch + 1,
                    "time_s": time.perf_counter() - t0,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "miou": metrics.miou if metrics else math.nan,
                    "pixel_accuracy": metrics.pixel_accuracy if metrics else math.nan,
                    "iou": metrics.iou if metrics else [],
                    "lr": lr,
                }
                self.history.append(row)
                improved = not math.isnan(score) and score > self.best_miou
                if improved:
                    self.best_miou, self.best_epoch = score, epoch + 1
                if env.is_main:
                    state = self.train_state(epoch + 1)
                    save_checkpoint(last_path, self.net, self.info, state, opts.to_dict())
                    if improved:  # for deployment: weights and description, no optimizer state
                        save_checkpoint(
                            best_path, self.eval_net, self.info, deploy_state(state), opts.to_dict()
                        )
                        save_val_samples(
                            self, run / "val_samples.png", caption=f"best.pth, epoch {epoch + 1}"
                        )
                    write_metrics_csv(self.history, run / "metrics.csv", self.info.class_names)
                    plot_curves(self.history, run / "curves.png")
                    figure = (
                        (lambda p, e=epoch + 1: save_val_samples(self, p, caption=f"epoch {e}"))
                        if metrics is not None
                        else None
                    )
                    logger.epoch(epoch + 1, epoch_scalars(row, self.info.class_names), figure)
                self.last_saved = f"epoch {epoch + 1}"
                rep.info(epoch_line(row, opts.epochs, improved))
                note = None if explained else early_val_loss_note(row)
                if note:  # once per run, where it happens
                    rep.info(note)
                    explained = True
                if opts.patience and epoch + 1 - self.best_epoch >= opts.patience:
                    rep.info(
                        f"early stopping: no better mIoU for {opts.patience} epochs "
                        f"(best {self.best_miou:.4f} at epoch {self.best_epoch})"
                    )
                    stopped_early = True
                    break
                if epoch + 1 < opts.epochs and env.any(self.guard.requested):
                    env.barrier()
                    raise self._interrupted(f"after epoch {epoch + 1}", last_path)
        if env.is_main and not best_path.exists() and last_path.exists():
            state = deploy_state(self.train_state(len(self.history)))
            save_checkpoint(best_path, self.eval_net, self.info, state, opts.to_dict())
        table_per_class(self, metrics)
        validated = any(not math.isnan(r["miou"]) for r in self.history)
        return RunResult(
            run,
            best_path,
            last_path,
            self.best_miou if validated else math.nan,  # else best is -(train loss): no mIoU
            self.best_epoch,
            len(self.history),
            self.history,
            stopped_early,
            metrics,
        )
