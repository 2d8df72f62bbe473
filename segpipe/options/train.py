"""Options of ``segpipe train``."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segpipe.errors import ConfigError
from segpipe.modelinfo import MODES
from segpipe.options.base import (
    ClassCount,
    Seed,
    Size,
    check_fields,
    check_ignore_index,
    to_plain,
)
from segpipe.schema import has_controls, printable, shown

LOSSES = ("ce", "dice", "focal", "lovasz", "bce")
OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULERS = ("cosine", "poly", "constant")
AMP_DTYPES = ("fp16", "bf16")
CLASS_WEIGHTS = ("none", "inverse", "sqrt-inverse")
LOGGERS = ("auto", "tensorboard", "mlflow", "none")
#: Largest per-class loss weight: beyond it a weighted loss overflows to infinity in FP16/FP32 sums.
MAX_CLASS_WEIGHT = 1e6


def parse_class_weights(value: Any) -> str | tuple[float, ...]:
    """``--class-weights``: a keyword of :data:`CLASS_WEIGHTS`, a file of one weight per class, or
    the weights themselves (``0.5,1,4``, or a list from options.yaml) -> a tuple of floats."""
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    elif isinstance(value, Path):
        return str(value)
    else:
        text = str(value).strip()
        if text.lower() in CLASS_WEIGHTS:
            return text.lower()
        items = [t for t in text.replace(";", ",").split(",") if t.strip()]
        try:
            [float(t) for t in items]
        except ValueError:
            return text  # a file, read when the classes are known (segpipe.training.losses)
    try:
        weights = tuple(float(t) for t in items)
    except ValueError:
        raise ConfigError(f"--class-weights {value}: not a list of numbers") from None
    if not weights or any(not 0 <= w <= MAX_CLASS_WEIGHT for w in weights):
        raise ConfigError(
            f"--class-weights {shown(value)}: give one weight from 0 to {MAX_CLASS_WEIGHT:,.0f} per class "
            "(larger weights overflow the loss)"
        )
    return weights


def parse_loss(spec: str) -> tuple[str, ...]:
    """``ce+dice`` -> ("ce", "dice"); aliases ``cross-entropy``/``crossentropy`` -> ``ce``."""
    aliases = {"cross-entropy": "ce", "crossentropy": "ce", "cross_entropy": "ce", "xent": "ce"}
    parts = tuple(aliases.get(p.strip().lower(), p.strip().lower()) for p in spec.split("+") if p.strip())
    bad = [p for p in parts if p not in LOSSES]
    if not parts or bad:
        raise ConfigError(f"--loss {spec!r}: use one of {', '.join(LOSSES)} or a sum like ce+dice")
    return parts


def _default_workers() -> int:
    return min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class TrainOptions:
    """Everything ``segpipe train`` needs. Sizes are (width, height) in pixels."""

    data_root: Path
    #: Number of classes in the masks (binary mode: 2). None: from --class-names or the checkpoint.
    num_classes: ClassCount | None = None
    #: Name the run and its checkpoints are saved under (run folder ``runs/<model_name>``).
    model_name: str = "model"
    #: Checkpoint to start from: a segpipe checkpoint resumes (model, optimizer, scheduler,
    #: epoch, best metric); a bare state_dict loads weights only. Missing file: warn, start fresh.
    model: Path | None = None
    #: Load only the weights of ``model`` (fine-tune) instead of resuming its run.
    finetune: bool = False
    #: ``seg`` (multiclass softmax), ``binary`` (one sigmoid channel) or ``multilabel``.
    mode: str = "seg"
    arch: str = "Unet"
    encoder: str = "efficientnet-b0"
    #: ``imagenet``, ``none`` or a path to an encoder weights file.
    encoder_weights: str = "imagenet"
    epochs: int = 50
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    scheduler: str = "cosine"
    size: Size = (512, 512)
    #: Fraction of the data held out for validation when ``val_root`` is not given (0: none).
    val_fraction: float = 0.2
    val_root: Path | None = None
    workers: int = field(default_factory=_default_workers)
    device: str = "auto"
    #: Mixed precision (CUDA only; ignored with a warning on CPU).
    amp: bool = False
    seed: Seed = 0
    #: Run folder; default ``runs/<model_name>`` (``-2``, ``-3``... if that already holds a run).
    output_dir: Path | None = None
    class_names: tuple[str, ...] | None = None
    #: Palette CSV for colour masks and pictures; default the colors.csv shipped with segpipe.
    colors: Path | None = None
    #: Mask value ignored by loss and metrics; default 255, or 65535 above 255 classes.
    ignore_index: int | None = None
    #: One of ce, dice, focal, lovasz (bce in binary/multilabel) or a sum such as ``ce+dice``.
    loss: str = "ce"
    #: ``none``, ``light``, ``heavy`` or a YAML albumentations pipeline.
    augment: str = "light"
    use_mixup: bool = False
    mixup_alpha: float = 0.4
    #: Stop after this many epochs without a better validation mIoU (0: never).
    patience: int = 0
    images_dir: str = "images"
    masks_dir: str = "indexes"
    mask_suffix: str = "_color_mask"
    #: ``auto``, ``index`` or ``color``.
    mask_type: str = "auto"
    class_map: Path | None = None
    #: Label format of ``data_root``: ``auto`` (detected) or a name of
    #: :data:`segpipe.data.formats.FORMATS` (seed, voc, cityscapes, ade20k, ultralytics, ...).
    format: str = "auto"
    #: MMSegmentation's reduce-zero-label for index masks: 0 -> ignore, others minus 1. None: the
    #: format's default (on for ADE20K, off elsewhere).
    reduce_zero_label: bool | None = None
    #: COCO crowd regions (``iscrowd: 1``): ``ignore`` (the ignore value where no object covers
    #: them) or ``class`` (drawn as their category).
    crowds: str = "ignore"
    #: A user's dataset class ``package.module:ClassName`` for other layouts. It imports and runs
    #: that Python code: the command line takes it from ``--dataset`` only, never from a config file.
    dataset: str | None = None
    # ---- scale and robustness (issue 5 of 5) ----
    #: Processes (one per GPU, or CPU processes with ``device="cpu"``) on this machine, launched
    #: through torch.distributed's elastic launcher. Under ``torchrun`` the world size comes from
    #: torchrun and this is ignored. ``batch_size`` is per process: the effective batch is
    #: ``batch_size * processes``; ``lr`` is used as given (not scaled).
    devices: int = 1
    #: Elastic restarts of all processes after a failure when launched with ``devices > 1``
    #: (torchrun: its own ``--max-restarts``); a restart resumes from the run's ``last.pth``.
    max_restarts: int = 0
    #: If the run folder already holds ``last.pth``, resume from it (else start as usual): makes a
    #: re-queued job pick up where it stopped. Needs ``output_dir`` or the default folder name.
    resume: bool = False
    #: Synchronised BatchNorm across processes (CUDA, more than one process).
    sync_bn: bool = False
    #: Mixed-precision type with ``amp``: ``fp16`` (with a gradient scaler) or ``bf16`` (none needed).
    amp_dtype: str = "fp16"
    #: ``torch.compile`` the model (opt-in; the first steps are slow while it compiles).
    compile: bool = False
    #: Channels-last memory layout for the model and its input batches: ``None`` (default) is
    #: channels-last on CUDA (faster convolutions, above all with AMP) and contiguous NCHW on the CPU
    #: (as fast or faster there, see benchmarks/bench_channels_last.py, and oneDNN's channels-last
    #: backward crashes some encoders on AVX-512 CPUs); True / False force one layout.
    channels_last: bool | None = None
    #: Keep data-loader worker processes alive between epochs (``workers > 0``); augmentation stays
    #: seeded per (seed, epoch, image), so resuming is exact either way.
    persistent_workers: bool = True
    #: Deterministic kernels on CUDA (no cudnn.benchmark): slower, repeatable to the bit.
    deterministic: bool = False
    #: Steps between progress-bar updates, each a host synchronisation; 0: every step on CPU, every
    #: 10 on CUDA. A stop signal or a non-finite loss is acted on at the next update.
    log_every: int = 0
    #: Skip batches whose loss is not finite (NaN/inf) instead of stopping the run (costs one host
    #: synchronisation per step).
    skip_nonfinite: bool = False
    #: Allow a ``model`` checkpoint that needs full unpickling (Python objects; can run code). The
    #: command line takes it from ``--trust-checkpoint`` only; options.yaml never records it.
    trust_checkpoint: bool = False
    # ---- training recipe (issue 6 of 6) ----
    #: Per-class loss weights: ``none``, ``inverse`` or ``sqrt-inverse`` (of each class's pixel
    #: share in the data), a file of one weight per class, or the weights (``0.5,1,4``). Resolved
    #: to the weights themselves once the data is scanned: options.yaml records the numbers.
    class_weights: str | tuple[float, ...] = "none"
    #: With ``inverse``/``sqrt-inverse``: no class weighs more than this many times the most
    #: frequent one.
    class_weight_cap: float = 10.0
    #: Exponential moving average of the weights (timm ModelEmaV3, decay warmed up):
    #: validation and best.pth use the averaged weights.
    ema: bool = False
    #: The EMA decay the warm-up ``1 - (1 + step) ** -0.75`` rises to.
    ema_decay: float = 0.9999
    #: Linear learning-rate warm-up over this many epochs (per step; fractions allowed), before
    #: the scheduler takes over.
    warmup_epochs: float = 0.0
    #: ``auto`` (TensorBoard when installed), ``tensorboard``, ``mlflow`` or ``none``; both log
    #: into the run folder, no network.
    logger: str = "auto"
    #: Write into a run folder (``output_dir``) that already holds a finished run, replacing its files.
    exist_ok: bool = False

    def __post_init__(self) -> None:
        check_fields(self)

        def bad(flag: str, value: Any, why: str) -> ConfigError:
            return ConfigError(f"--{flag} {value}: {why}")

        name = self.model_name
        if (
            not name
            or name in (".", "..")
            or "/" in name
            or "\\" in name
            or os.sep in name
            or has_controls(name)
        ):
            raise bad(
                "model-name",
                printable(name) if name else "''",
                "a run name, not a path (no / or \\); the run folder is runs/<model-name>, "
                "--output-dir puts it elsewhere",
            )
        if not 0 <= self.seed < 2**32:
            raise bad("seed", self.seed, f"must be within 0..{2**32 - 1}")
        if self.weight_decay < 0:
            raise bad("weight-decay", self.weight_decay, "must be >= 0")
        classes = (
            self.num_classes
            if self.num_classes is not None
            else (len(self.class_names) if self.class_names else None)
        )
        if self.ignore_index is None:
            object.__setattr__(self, "ignore_index", 65535 if classes is not None and classes > 255 else 255)
        if self.mode not in MODES:
            raise bad("mode", self.mode, f"use one of {', '.join(MODES)}")
        if self.num_classes is not None and self.num_classes < (2 if self.mode != "multilabel" else 1):
            raise bad(
                "num-classes",
                self.num_classes,
                "need at least 2 classes (binary: 2, background and foreground)",
            )
        if self.mode == "binary" and self.num_classes not in (None, 2):
            raise bad("num-classes", self.num_classes, "binary mode has exactly 2 classes (0 and 1)")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise bad(name.replace("_", "-"), getattr(self, name), "must be at least 1")
        if self.lr <= 0:
            raise bad("lr", self.lr, "must be positive")
        if len(self.size) != 2 or min(self.size) <= 0:
            raise bad("size", self.size, "give WIDTH HEIGHT, both positive")
        if not 0.0 <= self.val_fraction < 1.0:
            raise bad("val-fraction", self.val_fraction, "must be in [0, 1)")
        if self.workers < 0:
            raise bad("workers", self.workers, "must be >= 0")
        if self.mixup_alpha <= 0:
            raise bad("mixup-alpha", self.mixup_alpha, "must be positive")
        if self.patience < 0:
            raise bad("patience", self.patience, "must be >= 0")
        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", self.optimizer, f"use one of {', '.join(OPTIMIZERS)}")
        if self.scheduler not in SCHEDULERS:
            raise bad("scheduler", self.scheduler, f"use one of {', '.join(SCHEDULERS)}")
        if self.mask_type not in ("auto", "index", "color"):
            raise bad("mask-type", self.mask_type, "use auto, index or color")
        if self.crowds not in ("ignore", "class"):
            raise bad("crowds", self.crowds, "use ignore or class")
        if not 0 <= self.ignore_index <= 65535:  # type: ignore[operator]
            raise bad("ignore-index", self.ignore_index, "must be within 0..65535")
        if classes is not None and self.mode != "binary":
            check_ignore_index(self.ignore_index, classes)  # type: ignore[arg-type]
        losses = parse_loss(self.loss)
        if self.mode == "seg" and "bce" in losses:
            raise bad("loss", self.loss, "bce is for binary/multilabel modes; use ce in seg mode")
        if (
            self.class_names is not None
            and self.num_classes is not None
            and len(self.class_names) != self.num_classes
        ):
            raise bad(
                "class-names",
                ",".join(self.class_names),
                f"gives {len(self.class_names)} names for {self.num_classes} classes",
            )
        if self.dataset is not None and ":" not in self.dataset:
            raise bad("dataset", self.dataset, "use package.module:ClassName")
        for name, low in (("devices", 1), ("max_restarts", 0), ("log_every", 0)):
            if getattr(self, name) < low:
                raise bad(name.replace("_", "-"), getattr(self, name), f"must be at least {low}")
        if self.amp_dtype not in AMP_DTYPES:
            raise bad("amp-dtype", self.amp_dtype, f"use one of {', '.join(AMP_DTYPES)}")
        weights = parse_class_weights(self.class_weights)
        object.__setattr__(self, "class_weights", weights)
        if isinstance(weights, str) and weights not in CLASS_WEIGHTS and not Path(weights).is_file():
            raise bad(
                "class-weights", weights, f"use {', '.join(CLASS_WEIGHTS)}, weights like 0.5,1,4, or a file"
            )
        if weights != "none" and self.mode == "multilabel":
            raise bad("class-weights", self.class_weights, "not supported in multilabel mode")
        if isinstance(weights, tuple) and self.num_classes is not None and len(weights) != self.num_classes:
            raise bad(
                "class-weights",
                ",".join(f"{w:g}" for w in weights),
                f"gives {len(weights)} weights for {self.num_classes} classes",
            )
        if not self.class_weight_cap >= 1.0:
            raise bad("class-weight-cap", self.class_weight_cap, "must be at least 1")
        if not 0.0 < self.ema_decay < 1.0:
            raise bad("ema-decay", self.ema_decay, "must be in (0, 1)")
        if not 0.0 <= self.warmup_epochs < float("inf"):
            raise bad("warmup-epochs", self.warmup_epochs, "must be >= 0")
        if self.logger not in LOGGERS:
            raise bad("logger", self.logger, f"use one of {', '.join(LOGGERS)}")

    def replace(self, **changes: Any) -> TrainOptions:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain types (for options.yaml and the checkpoint), less ``trust_checkpoint``: trusting a
        pickle is decided on the command line each time, never recorded in a file."""
        plain = to_plain(self)
        plain.pop("trust_checkpoint", None)
        return plain
