"""A training run up to its first step, and what its checkpoints hold.

:class:`TrainerSetup` resolves everything a run needs -- where it starts (a checkpoint, an
elastic restart's own ``last.pth``), where it writes, the classes, the data, the model, the
optimizer -- checking the input before anything is written; :meth:`TrainerSetup.train_state` is
the resumable state a checkpoint carries. The loop itself is :class:`segpipe.training.loop.Trainer`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segpipe.data.build import build_data
from segpipe.errors import CheckpointError, ConfigError
from segpipe.modelinfo import ModelInfo
from segpipe.models import (
    Checkpoint,
    Normalize,
    check_model_size,
    create_model,
    load_checkpoint,
    output_stride,
    preprocessing_params,
    resolve_arch,
)
from segpipe.options import TrainOptions
from segpipe.progress import Reporter
from segpipe.training.accel import (
    LaidOutNormalize,
    amp_dtype,
    configure_backends,
    make_optimizer,
    make_scheduler,
    memory_format,
    prepare_model,
)
from segpipe.training.distributed import DistEnv
from segpipe.training.ema import LinearWarmup, WeightEma
from segpipe.training.loggers import resolve_logger
from segpipe.training.losses import SumLoss, resolve_class_weights
from segpipe.training.metrics import SegMetrics
from segpipe.training.runlock import RunLock
from segpipe.training.setup import auto_resume_path, claim_run_dir, earlier_run_note, resumable
from segpipe.utils import resolve_device


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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def deploy_state(state: dict[str, Any]) -> dict[str, Any]:
    """What ``best.pth`` keeps of a run's state: where it stands and its scores, no optimizer,
    scheduler or scaler state (``best.pth`` is for deployment; ``last.pth`` resumes)."""
    return {k: state[k] for k in ("epoch", "best_metric", "best_epoch", "history") if k in state}


def labels_from_logits(logits: torch.Tensor, mode: str) -> torch.Tensor:
    """Class map N×H×W from network output (binary: logit > 0; else argmax)."""
    if mode == "binary":
        return (logits[:, 0] > 0).long()
    return logits.argmax(1)


class TrainerSetup:
    """The construction of a :class:`~segpipe.training.loop.Trainer` and its resumable state.

    ``net`` is the bare smp model (what checkpoints hold), on its device, ready to wrap. In a
    distributed run, rank 0 plans (start checkpoint, run folder) and every rank builds its part,
    so bad input on any rank stops all of them with one line.
    """

    def __init__(
        self, opts: TrainOptions, reporter: Reporter | None = None, env: DistEnv | None = None
    ) -> None:
        self.env = env or DistEnv(device=resolve_device(opts.device))
        self.reporter = reporter or Reporter()
        self.device = self.env.device
        self.start_ckpt: Checkpoint | None = None
        self.run_lock: RunLock | None = None  # rank 0: the run folder is ours while we train
        # rank 0 decides where the run starts and writes; the others follow (one broadcast)
        self.opts, self.run_dir = self.env.decide(lambda: self._plan(opts))
        # every rank builds its part; bad input on any rank stops them all with one line
        try:
            self.env.agree(self._build)
        except BaseException:
            self.release_run_dir()
            raise

    def release_run_dir(self) -> None:
        """Unlock the run folder (rank 0; the end of the process does it too)."""
        if self.run_lock is not None:
            self.run_lock.release()
            self.run_lock = None

    # ---- start / resume ----------------------------------------------------------------------
    def _plan(self, opts: TrainOptions) -> tuple[TrainOptions, Path]:
        """(options, run folder); runs on rank 0. An elastic restart or ``--resume`` switches the
        start checkpoint to the run's own ``last.pth``."""
        auto, why = auto_resume_path(opts)
        if auto is not None:
            self.reporter.info(f"{why}: resuming from {auto}")
            opts = opts.replace(model=auto, finetune=False)
        self.start_ckpt = self._start_checkpoint(opts)
        resuming = resumable(self.start_ckpt) and not opts.finetune
        run, self.run_lock = claim_run_dir(opts, self.start_ckpt.path if resuming else None)  # type: ignore[union-attr]
        if opts.output_dir is None and not resuming:
            note = earlier_run_note(opts, run)
            if note is not None:
                (self.reporter.warn if note[0] else self.reporter.info)(note[1])
        return opts, run

    def _start_checkpoint(self, opts: TrainOptions) -> Checkpoint | None:
        if opts.model is None:
            return None
        path = Path(opts.model)
        if not path.exists():
            self.reporter.warn(f"checkpoint {path} does not exist; training from scratch")
            return None
        return load_checkpoint(path, trust=opts.trust_checkpoint)

    def _build(self) -> None:
        """Everything of one rank that needs no other rank: model, data, optimizer, state."""
        opts, env = self.opts, self.env
        configure_backends(opts, self.device)
        self.autocast_dtype = amp_dtype(opts, self.device, self.reporter)
        self.use_amp = self.autocast_dtype is not None
        seed_everything(opts.seed)
        if self.start_ckpt is None and opts.model is not None and Path(opts.model).exists():
            self.start_ckpt = self._start_checkpoint(opts)  # ranks other than 0
        self.resuming = resumable(self.start_ckpt) and not opts.finetune
        if (
            self.start_ckpt is not None
            and self.start_ckpt.train_state
            and not self.resuming
            and not opts.finetune
        ):
            self.reporter.info(
                f"{self.start_ckpt.path} holds no optimizer state (best.pth is for deployment; "
                "last.pth resumes a run): starting a new run from its weights"
            )
        arch = resolve_arch(opts.arch)
        # the data first: a wrong folder is reported before any weights are downloaded
        self.logger_kind = resolve_logger(opts.logger)
        # --class-weights inverse: every rank scans (the counts are the same on all of them)
        by_frequency = opts.class_weights in ("inverse", "sqrt-inverse")
        data = build_data(opts, self.reporter, self.start_ckpt, scan=env.is_main or by_frequency)
        num, names, self.palette = data.num_classes, data.names, data.palette
        self.train_set, self.val_set, self.stats = data.train, data.val, data.stats
        if self.start_ckpt is not None and self.start_ckpt.info is not None:
            src = self.start_ckpt.info
            if (src.arch.lower(), src.encoder) != (arch.lower(), opts.encoder) and self.resuming:
                self.reporter.info(
                    f"resuming {src.arch}/{src.encoder} from {self.start_ckpt.path} "
                    "(ignoring --arch/--encoder)"
                )
            arch, encoder, mode = src.arch, src.encoder, src.mode
        else:
            encoder, mode = opts.encoder, opts.mode
        self.info = ModelInfo(
            arch=arch,
            encoder=encoder,
            num_classes=num,
            mode=mode,
            input_size=tuple(opts.size),
            class_names=names,
            colors=self.palette.colors,
            ignore_index=opts.ignore_index,
            data_split=data.split,  # evaluate reads the held-out images back
        )
        self.class_weights = resolve_class_weights(
            opts.class_weights, num, data.train_pixels, opts.class_weight_cap, names
        )
        self.class_weights_from = opts.class_weights if isinstance(opts.class_weights, str) else "given"
        if self.class_weights is not None:  # options.yaml and checkpoints record the numbers
            self.opts = opts = opts.replace(class_weights=self.class_weights)
        if len(self.train_set) < env.world_size:  # type: ignore[arg-type]
            raise ConfigError(
                f"{opts.data_root}: {len(self.train_set)} training images for {env.world_size} processes"  # type: ignore[arg-type]
            )
        weights = None if self.start_ckpt is not None else opts.encoder_weights
        net = create_model(self.info, encoder_weights=weights)
        stride = output_stride(net)
        check_model_size(net, self.info, tuple(opts.size))  # the model's own rule, shape-only
        if self.start_ckpt is not None and self.start_ckpt.info is not None:
            mean, std = self.start_ckpt.info.mean, self.start_ckpt.info.std
        else:
            mean, std = preprocessing_params(encoder, weights)
        self.info = self.info.replace(output_stride=stride, mean=mean, std=std)
        if self.start_ckpt is not None:
            self._load_weights(net, self.start_ckpt)
        self.memory_format = memory_format(opts, self.device)
        self.net = prepare_model(net, opts, env, self.reporter)
        self.normalize = LaidOutNormalize(Normalize(self.info.mean, self.info.std), self.memory_format)
        self.normalize = self.normalize.to(self.device)
        self.criterion = SumLoss(opts.loss, mode, num, opts.ignore_index, self.class_weights).to(self.device)
        self.optimizer = make_optimizer(opts, self.net, self.device)
        self.scheduler = make_scheduler(opts, self.optimizer)
        self.warmup = LinearWarmup(self.optimizer, self.scheduler, opts.warmup_epochs)
        self.ema = WeightEma(self.net, opts.ema_decay) if opts.ema else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16)
        self.start_epoch, self.start_step, self.partial = 0, 0, (0.0, 0)
        self.best_miou, self.best_epoch = -math.inf, 0
        self.history: list[dict[str, Any]] = []
        self.last_saved: str | None = None  # what the run folder's last.pth holds, for messages
        if self.resuming:
            self._restore_train_state(self.start_ckpt.train_state)  # type: ignore[union-attr, arg-type]

    def _load_weights(self, net: torch.nn.Module, ckpt: Checkpoint) -> None:
        try:
            net.load_state_dict(ckpt.state_dict, strict=True)
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
        if state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.start_epoch = int(state["epoch"])
        self.start_step = int(state.get("step", 0))
        loss_sum, loss_steps = state.get("partial_loss") or (0.0, 0)
        self.partial = (float(loss_sum), int(loss_steps))
        self.best_miou = float(state.get("best_metric", -math.inf))
        self.best_epoch = int(state.get("best_epoch", 0))
        self.history = list(state.get("history", []))
        if self.ema is not None:
            if state.get("ema"):
                self.ema.load_state_dict(state["ema"])
            else:
                self.reporter.warn(
                    f"{self.start_ckpt.path} holds no EMA weights; --ema starts averaging from its weights"  # type: ignore[union-attr]
                )
        self.last_saved = f"epoch {self.start_epoch}" + (
            f", step {self.start_step}" if self.start_step else ""
        )
        same = (state.get("world_size", 1), state.get("batch_size", self.opts.batch_size)) == (
            self.env.world_size,
            self.opts.batch_size,
        )
        if self.start_step and not same:
            self.reporter.warn(
                f"{self.start_ckpt.path} stopped in epoch {self.start_epoch + 1} with "  # type: ignore[union-attr]
                f"{state.get('world_size', 1)} process(es) of batch {state.get('batch_size')}; with "
                f"{self.env.world_size} of batch {self.opts.batch_size} that epoch starts again "
                "from its beginning"
            )
            self.start_step, self.partial = 0, (0.0, 0)
        if self.start_epoch >= self.opts.epochs:
            raise CheckpointError(
                f"{self.start_ckpt.path} already trained {self.start_epoch} epochs; pass --epochs "  # type: ignore[union-attr]
                f"greater than {self.start_epoch} to go on, or --finetune to start a new run from its weights"
            )

    def train_state(self, epoch: int, step: int = 0, partial: tuple[float, int] = (0.0, 0)) -> dict[str, Any]:
        """Everything needed to resume after ``epoch`` completed epochs and ``step`` steps of the
        next one (torch-safe types only)."""
        return {
            "epoch": epoch,
            "step": step,
            "partial_loss": [float(partial[0]), int(partial[1])],
            "world_size": self.env.world_size,
            "batch_size": self.opts.batch_size,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "best_metric": self.best_miou,
            "best_epoch": self.best_epoch,
            "history": self.history,
            "ema": self.ema.state_dict() if self.ema is not None else None,
        }

    @property
    def eval_net(self) -> torch.nn.Module:
        """The weights validation, best.pth and the sample pictures use: the EMA with ``--ema``."""
        return self.ema.module if self.ema is not None else self.net
