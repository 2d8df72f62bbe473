"""Typed, frozen options for every stage. Defaults live here and nowhere else.

Each stage is a plain function of one of these (``train(TrainOptions)``, ...). ``__post_init__``
validates values and raises :class:`~segpipe.errors.ConfigError` with one line naming the option
and the value. The CLI builds them from flags (and ``--config FILE.yaml``: flags win).
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from segpipe.errors import ConfigError, close_matches
from segpipe.modelinfo import MODES

LOSSES = ("ce", "dice", "focal", "lovasz", "bce")
OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULERS = ("cosine", "poly", "constant")
AMP_DTYPES = ("fp16", "bf16")
CLASS_WEIGHTS = ("none", "inverse", "sqrt-inverse")
LOGGERS = ("auto", "tensorboard", "mlflow", "none")


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
    if not weights or any(not (w >= 0 and w < float("inf")) for w in weights):
        raise ConfigError(f"--class-weights {value}: give one finite weight >= 0 per class")
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
    num_classes: int | None = None
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
    size: tuple[int, int] = (512, 512)
    #: Fraction of the data held out for validation when ``val_root`` is not given (0: none).
    val_fraction: float = 0.2
    val_root: Path | None = None
    workers: int = field(default_factory=_default_workers)
    device: str = "auto"
    #: Mixed precision (CUDA only; ignored with a warning on CPU).
    amp: bool = False
    seed: int = 0
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
    #: Channels-last memory layout for the model, matching the inputs (which are): faster
    #: convolutions on CUDA, above all with AMP; no slower on CPU.
    channels_last: bool = True
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
        coerce_paths(self)
        check_types(self)

        def bad(flag: str, value: Any, why: str) -> ConfigError:
            return ConfigError(f"--{flag} {value}: {why}")

        name = self.model_name
        if not name or name in (".", "..") or "/" in name or "\\" in name or os.sep in name:
            raise bad(
                "model-name",
                name or "''",
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


def check_ignore_index(ignore_index: int, num_classes: int, where: str = "") -> None:
    """The ignored mask value must not be a class id (one line naming both)."""
    if ignore_index < num_classes:
        hint = 65535 if num_classes > 255 else 255
        raise ConfigError(
            f"--ignore-index {ignore_index} is a class id with {num_classes} classes{where}; "
            f"pass --ignore-index {max(hint, num_classes)} (any value from {num_classes} to 65535)"
        )


#: Options that make segpipe run code or trust a file: taken from the command line only.
COMMAND_LINE_ONLY = {
    "trust_checkpoint": "--trust-checkpoint (unpickling a checkpoint can run code)",
    "dataset": "--dataset (it imports and runs Python code)",
}


def _type_problem(value: Any, hint: Any) -> str | None:
    """Why ``value`` does not fit the type ``hint`` (None: it fits)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        args = get_args(hint)
        if value is None and type(None) in args:
            return None
        problems = [_type_problem(value, a) for a in args if a is not type(None)]
        return None if any(p is None for p in problems) else problems[0]
    if hint is bool:
        return None if isinstance(value, bool) else "expected true or false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "expected a whole number"
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "expected a number"
        return None if math.isfinite(value) else "expected a finite number"
    if hint is str:
        return None if isinstance(value, str) else "expected a text value"
    if hint is Path:
        return None if isinstance(value, (str, Path)) else "expected a path"
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            return "expected a list"
        args = get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        if len(args) != len(value):
            return f"expected {len(args)} values"
        problems = [_type_problem(v, a) for v, a in zip(value, args, strict=True)]
        return next((f"{p} in the list" for p in problems if p is not None), None)
    return None


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_types(opts: Any) -> None:
    """Every field of a frozen options dataclass holds its declared type (ints are whole numbers,
    floats finite numbers, ...): a config file's ``epochs: abc`` stops here with one line, before
    anything is written."""
    hints = get_type_hints(type(opts))
    for f in dataclasses.fields(opts):
        value = getattr(opts, f.name)
        problem = _type_problem(value, hints[f.name])
        if problem is not None:
            raise ConfigError(f"--{f.name.replace('_', '-')} {_shown(value)}: {problem}")


def coerce_paths(opts: Any) -> None:
    """Turn str values of Path-typed fields of a frozen dataclass into Paths, and lists into tuples."""
    hints = get_type_hints(type(opts))
    for f in dataclasses.fields(opts):
        value = getattr(opts, f.name)
        hint = str(hints[f.name])
        if isinstance(value, str) and "Path" in hint:
            object.__setattr__(opts, f.name, Path(value))
        elif isinstance(value, list) and "tuple" in hint:
            object.__setattr__(opts, f.name, tuple(value))


def to_plain(opts: Any) -> dict[str, Any]:
    """A dataclass as a dict of plain YAML/torch-safe values (Paths -> str, tuples -> lists)."""

    def conv(v: Any) -> Any:
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, (tuple, list)):
            return [conv(x) for x in v]
        return v

    return {f.name: conv(getattr(opts, f.name)) for f in dataclasses.fields(opts)}


def _coerce(cls: type, name: str, value: Any) -> Any:
    hint = str(get_type_hints(cls)[name])
    if value is None:
        return None
    if "Path" in hint:
        return Path(str(value))
    if "tuple[int, int]" in hint:
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ConfigError(f"{name}: expected [WIDTH, HEIGHT], got {value!r}")
        return tuple(value)
    if "tuple[str" in hint:
        return tuple(str(v) for v in (value.split(",") if isinstance(value, str) else value))
    return value


def load_config(path: str | Path, cls: type = TrainOptions) -> dict[str, Any]:
    """Read a YAML options file into keyword arguments for ``cls``.

    Keys are option names (``batch_size`` or ``batch-size``). Errors name the file and line for
    malformed YAML, and the key (with close matches) for unknown options.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not a text (UTF-8) YAML file (byte {e.start} is not UTF-8)") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {p}: {e.strerror or e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{p}{where}: malformed YAML ({problem})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of option: value, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    lines = {}
    for i, line in enumerate(text.splitlines(), start=1):
        key = line.split(":", 1)[0].strip()
        lines.setdefault(key, i)
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in names:
            raise ConfigError(
                f"{p} line {lines.get(str(key), '?')}: unknown option {key!r}{close_matches(name, names)}"
            )
        try:
            out[name] = _coerce(cls, name, value)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{p} line {lines.get(str(key), '?')}: bad value for {key}: {e}") from None
        problem = _type_problem(out[name], get_type_hints(cls)[name])
        if problem is not None:
            raise ConfigError(f"{p} line {lines.get(str(key), '?')}: {key}: {_shown(value)}: {problem}")
    return out


# ---- inference options (issue 2 of 5) ------------------------------------------------------------
@dataclass(frozen=True)
class InferenceSpec:
    """How each image is predicted, beyond resizing it to the network size.

    Attributes:
        tile: sliding-window size (W, H) in image pixels; ``(0, 0)``: the network size; ``None``:
            no sliding window (the image is resized to the network size).
        overlap: fraction of a window shared with its neighbour, 0 <= overlap < 1.
        flip: average with the horizontally flipped input.
        scales: input scales to average (1.0: the network size).
    """

    tile: tuple[int, int] | None = None
    overlap: float = 0.25
    flip: bool = False
    scales: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        if self.tile is not None:
            tile = tuple(int(v) for v in self.tile)
            if len(tile) != 2 or min(tile) < 0 or (0 in tile and tile != (0, 0)):
                raise ConfigError(
                    f"--tile {' '.join(map(str, self.tile))}: give WIDTH HEIGHT, both positive "
                    "(0 0: the network size)"
                )
            object.__setattr__(self, "tile", tile)
        if not 0.0 <= self.overlap < 1.0:
            raise ConfigError(f"--overlap {self.overlap}: must be at least 0 and below 1")
        scales = tuple(float(s) for s in self.scales)
        if not scales or any(not 0.0 < s <= 8.0 for s in scales):
            raise ConfigError(
                f"--tta scales={','.join(map(str, self.scales))}: give scales above 0 and at most 8"
            )
        object.__setattr__(self, "scales", scales)

    @property
    def tta(self) -> bool:
        """True when more than one view of each input is averaged."""
        return self.flip or self.scales != (1.0,)

    @property
    def plain(self) -> bool:
        """True when nothing beyond the plain resize-to-network prediction is asked for."""
        return self.tile is None and not self.tta

    def describe(self) -> str:
        """A few words for reports: ``tile 512x512 overlap 0.25, flip, scales 0.75,1,1.25``."""
        parts = []
        if self.tile is not None:
            tile = "network size" if self.tile == (0, 0) else f"{self.tile[0]}x{self.tile[1]}"
            parts.append(f"tile {tile} overlap {self.overlap:g}")
        if self.flip:
            parts.append("flip")
        if self.scales != (1.0,):
            parts.append("scales " + ",".join(f"{s:g}" for s in self.scales))
        return ", ".join(parts)


def parse_tta(values: list[str] | tuple[str, ...] | str | None) -> tuple[bool, tuple[float, ...]]:
    """``--tta`` values -> (flip, scales). Each value is ``flip``, ``scales=0.75,1,1.25`` (also
    ``scales:...``), ``none``, or several of them joined by ``+`` (``flip+scales=0.75,1``)."""
    if values is None:
        return False, (1.0,)
    items = [values] if isinstance(values, str) else list(values)
    flip, scales = False, (1.0,)
    for item in items:
        for part in str(item).split("+"):
            text = part.strip()
            low = text.lower()
            if low in ("", "none"):
                continue
            if low == "flip":
                flip = True
                continue
            if low.startswith(("scales=", "scales:", "scale=", "scale:")):
                nums = text.split("=", 1)[1] if "=" in text else text.split(":", 1)[1]
                try:
                    scales = tuple(float(v) for v in nums.split(",") if v.strip())
                except ValueError:
                    raise ConfigError(
                        f"--tta {text}: scales must be numbers, e.g. scales=0.75,1,1.25"
                    ) from None
                if not scales:
                    raise ConfigError(f"--tta {text}: give the scales, e.g. scales=0.75,1,1.25")
                continue
            raise ConfigError(
                f"--tta {text}: use flip, scales=0.75,1,1.25 (comma-separated, no spaces) or none"
            )
    return flip, scales


def _flag_error(flag: str, value: Any, why: str) -> ConfigError:
    return ConfigError(f"--{flag} {value}: {why}")


def _check_model_flags(opts: Any) -> None:
    """Checks shared by the inference stages (visualize, evaluate)."""
    if opts.mode not in MODES:
        raise _flag_error("mode", opts.mode, f"use one of {', '.join(MODES)}")
    if opts.num_classes is not None and opts.num_classes < (1 if opts.mode == "multilabel" else 2):
        raise _flag_error("num-classes", opts.num_classes, "need at least 2 classes (binary: 2)")
    if opts.size is not None and (len(opts.size) != 2 or min(opts.size) <= 0):
        raise _flag_error("size", " ".join(map(str, opts.size)), "give WIDTH HEIGHT, both positive")
    if opts.batch_size < 1:
        raise _flag_error("batch-size", opts.batch_size, "must be at least 1")
    if opts.workers < 1:
        raise _flag_error("workers", opts.workers, "must be at least 1 (decoding threads)")
    _check_foreign_flags(opts)


INPUT_LAYOUTS = ("nchw", "nhwc")


def _check_foreign_flags(opts: Any) -> None:
    """``mean``/``std``/``input_layout``: how to feed an ONNX model without segpipe metadata."""
    for flag in ("mean", "std"):
        value = getattr(opts, flag)
        if value is None:
            continue
        values = tuple(value) if isinstance(value, (list, tuple)) else (value,)
        if len(values) != 3 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise _flag_error(
                flag, " ".join(map(str, values)), "give 3 numbers, R G B, in pixel units (0-255)"
            )
        if flag == "std" and min(values) <= 0:
            raise _flag_error(flag, " ".join(map(str, values)), "every value must be above 0")
        object.__setattr__(opts, flag, tuple(float(v) for v in values))
    if (opts.mean is None) != (opts.std is None):
        given, missing = ("mean", "std") if opts.std is None else ("std", "mean")
        raise _flag_error(given, " ".join(map(str, getattr(opts, given))), f"give --{missing} too")
    if opts.input_layout is not None:
        if str(opts.input_layout).lower() not in INPUT_LAYOUTS:
            raise _flag_error("input-layout", opts.input_layout, "use nchw or nhwc")
        object.__setattr__(opts, "input_layout", str(opts.input_layout).lower())


def _check_spec_fields(opts: Any) -> None:
    """Validate (and normalise) the sliding-window / TTA fields through :class:`InferenceSpec`."""
    spec = opts.spec
    object.__setattr__(opts, "tile", spec.tile)
    object.__setattr__(opts, "tta_scales", spec.scales)


@dataclass(frozen=True)
class VisualizeOptions:
    """Everything ``segpipe visualize`` needs. Sizes are (width, height) in pixels."""

    #: One image, or a folder of images (PNG, JPEG, BMP, TIFF).
    images: Path
    #: Any model file: ``.pth`` checkpoint, ``.onnx`` model or TensorRT ``.engine``.
    model: Path
    #: Where the pictures go (created if needed).
    output_dir: Path = Path("runs/visualize")
    #: Needed only for a bare state_dict or an ONNX file without segpipe metadata.
    num_classes: int | None = None
    #: Network input size (W, H); default the model's own (training / export size).
    size: tuple[int, int] | None = None
    #: Palette CSV; default the model's colours, else the colors.csv shipped with segpipe.
    colors: Path | None = None
    #: Also write the mask blended on the image with this opacity (0..1).
    overlay: float | None = None
    #: Also write image and mask next to each other.
    side_by_side: bool = False
    #: Also write the class-index PNG (uint8, uint16 above 256 classes).
    save_labels: bool = False
    #: Read the sub-folders of ``images`` too and keep their structure in ``output_dir``.
    recursive: bool = False
    #: Images per model call.
    batch_size: int = 4
    device: str = "auto"
    #: Image decoding threads (they run while the model works).
    workers: int = 2
    #: Describe a bare state_dict (defaults Unet / efficientnet-b0 / seg).
    arch: str | None = None
    encoder: str | None = None
    mode: str = "seg"
    #: Allow full unpickling of a checkpoint holding Python objects (only for trusted files).
    trust_checkpoint: bool = False
    #: Sliding-window inference: window (W, H) in image pixels (``(0, 0)``: the network size).
    tile: tuple[int, int] | None = None
    #: Fraction of a sliding window shared with its neighbour (0 <= overlap < 1).
    overlap: float = 0.25
    #: Test-time augmentation: also average the horizontally flipped input.
    tta_flip: bool = False
    #: Test-time augmentation: input scales averaged (1.0: the network size).
    tta_scales: tuple[float, ...] = (1.0,)
    #: An ONNX model without segpipe metadata (or a bare state_dict): its input is
    #: ``(pixel - mean) / std`` per RGB channel, in pixel units (0-255).
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    #: An ONNX model without segpipe metadata whose input shape does not show it: ``nchw``/``nhwc``.
    input_layout: str | None = None

    def __post_init__(self) -> None:
        coerce_paths(self)
        _check_model_flags(self)
        _check_spec_fields(self)
        if self.overlay is not None and not 0.0 <= self.overlay <= 1.0:
            raise _flag_error("overlay", self.overlay, "alpha must be between 0 and 1")

    @property
    def spec(self) -> InferenceSpec:
        """Sliding window and test-time augmentation as one :class:`InferenceSpec`."""
        return InferenceSpec(self.tile, self.overlap, self.tta_flip, self.tta_scales)

    def replace(self, **changes: Any) -> VisualizeOptions:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class EvaluateOptions:
    """Everything ``segpipe evaluate`` needs (same dataset layout and decoding as training)."""

    data_root: Path
    #: Any model file: ``.pth``, ``.onnx`` or ``.engine``.
    model: Path
    #: Network input size (W, H); default the model's own. Metrics are computed at each mask's size.
    size: tuple[int, int] | None = None
    #: Needed only for a bare state_dict or an ONNX file without segpipe metadata.
    num_classes: int | None = None
    #: Palette CSV to decode colour masks; default DATA_ROOT/colors.csv, else the model's colours.
    colors: Path | None = None
    class_map: Path | None = None
    #: Label ignored by the metrics; default the model's (255).
    ignore_index: int | None = None
    images_dir: str = "images"
    masks_dir: str = "indexes"
    mask_suffix: str = "_color_mask"
    #: ``auto``, ``index`` or ``color``.
    mask_type: str = "auto"
    #: Write the figures as JSON here.
    report: Path | None = None
    #: Draw the row-normalised confusion matrix (PNG) here.
    confusion_matrix: Path | None = None
    batch_size: int = 4
    device: str = "auto"
    workers: int = 2
    arch: str | None = None
    encoder: str | None = None
    mode: str = "seg"
    trust_checkpoint: bool = False
    #: Sliding-window inference: window (W, H) in image pixels (``(0, 0)``: the network size).
    tile: tuple[int, int] | None = None
    #: Fraction of a sliding window shared with its neighbour (0 <= overlap < 1).
    overlap: float = 0.25
    #: Test-time augmentation: also average the horizontally flipped input.
    tta_flip: bool = False
    #: Test-time augmentation: input scales averaged (1.0: the network size).
    tta_scales: tuple[float, ...] = (1.0,)
    #: As in :class:`VisualizeOptions`: feeding an ONNX model without segpipe metadata.
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    input_layout: str | None = None

    def __post_init__(self) -> None:
        coerce_paths(self)
        _check_model_flags(self)
        _check_spec_fields(self)
        if self.mask_type not in ("auto", "index", "color"):
            raise _flag_error("mask-type", self.mask_type, "use auto, index or color")
        if self.ignore_index is not None and not 0 <= self.ignore_index <= 65535:
            raise _flag_error("ignore-index", self.ignore_index, "must be within 0..65535")

    @property
    def spec(self) -> InferenceSpec:
        """Sliding window and test-time augmentation as one :class:`InferenceSpec`."""
        return InferenceSpec(self.tile, self.overlap, self.tta_flip, self.tta_scales)

    def replace(self, **changes: Any) -> EvaluateOptions:
        return dataclasses.replace(self, **changes)


# ---- export options (issue 3 of 5) ---------------------------------------------------------------
ONNX_EXPORTERS = ("auto", "torchscript", "dynamo")
ONNX_OUTPUT_KINDS = ("logits", "probs", "labels")
ONNX_INPUT_DTYPES = ("float32", "uint8")


@dataclass(frozen=True)
class OnnxExportOptions:
    """Everything ``segpipe export-onnx`` needs. Sizes are (width, height) in pixels."""

    #: The checkpoint to export: a segpipe checkpoint, or a bare state_dict (then ``arch``,
    #: ``encoder`` and ``num_classes`` describe it; defaults Unet / efficientnet-b0 / the head's).
    model: Path
    #: The ONNX file to write; default beside the checkpoint with the suffix ``.onnx``.
    output: Path | None = None
    #: Checked against a segpipe checkpoint; describes a bare state_dict.
    num_classes: int | None = None
    arch: str | None = None
    encoder: str | None = None
    #: ``seg``, ``binary`` or ``multilabel`` (bare state_dicts only; checkpoints say it themselves).
    mode: str = "seg"
    #: Input size (W, H) of the graph; default the training size stored in the checkpoint.
    size: tuple[int, int] | None = None
    #: ``float32`` (pixel values 0-255) or ``uint8``.
    input_dtype: str = "float32"
    #: ``logits`` (N×C×H×W), ``probs`` (softmax / sigmoid inside the graph) or ``labels`` (N×H×W).
    output_kind: str = "logits"
    #: Batch size of the graph (the example batch when the batch axis is dynamic).
    batch: int = 1
    #: Make the batch axis dynamic.
    dynamic_batch: bool = False
    #: Make the H and W axes dynamic (sizes must still be multiples of the output stride).
    dynamic_size: bool = False
    #: ONNX opset; default 17 with the TorchScript exporter, 18 with the dynamo exporter.
    opset: int | None = None
    #: FP16 graph with FP32 input and output (casts at the ends).
    half: bool = False
    #: Run onnx-simplifier (on failure the unsimplified graph is kept, with one warning).
    simplify: bool = True
    #: Check the graph and compare ONNX Runtime with PyTorch before keeping the file.
    verify: bool = True
    #: A folder of real images to verify on, besides random ones.
    verify_images: Path | None = None
    #: Random images to verify on.
    verify_random: int = 2
    #: Most images read from ``verify_images``.
    verify_max_images: int = 8
    #: Smallest argmax agreement accepted (0..1); default 0.999 (FP32) or 0.99 (FP16).
    min_agreement: float | None = None
    #: ``auto`` (default: TorchScript, and the dynamo exporter, opset 18, for a graph TorchScript
    #: cannot express; said in a note), ``torchscript`` (fast, any opset from 11, plain dynamic
    #: axes; no fallback) or ``dynamo`` (opset 18 and newer).
    exporter: str = "auto"
    #: Class names (one per class) written into the ONNX metadata; default the checkpoint's, else
    #: ``class_0``... (bare state_dicts).
    class_names: tuple[str, ...] | None = None
    #: Palette CSV whose colours (and names, when no ``class_names``) the ONNX metadata carries;
    #: default the checkpoint's colours, else the colors.csv shipped with segpipe.
    colors: Path | None = None
    #: Allow full unpickling of a checkpoint holding Python objects (only for trusted files).
    trust_checkpoint: bool = False
    #: Seed of the random verification images.
    seed: int = 0

    def __post_init__(self) -> None:
        coerce_paths(self)

        def bad(flag: str, value: Any, why: str) -> ConfigError:
            return ConfigError(f"--{flag} {value}: {why}")

        if self.mode not in MODES:
            raise bad("mode", self.mode, f"use one of {', '.join(MODES)}")
        if self.num_classes is not None and self.num_classes < 1:
            raise bad("num-classes", self.num_classes, "must be at least 1")
        if self.size is not None and (len(self.size) != 2 or min(self.size) <= 0):
            raise bad("size", " ".join(map(str, self.size)), "give WIDTH HEIGHT, both positive")
        if self.input_dtype not in ONNX_INPUT_DTYPES:
            raise bad("input-dtype", self.input_dtype, f"use one of {', '.join(ONNX_INPUT_DTYPES)}")
        if self.output_kind not in ONNX_OUTPUT_KINDS:
            raise bad("output", self.output_kind, f"use one of {', '.join(ONNX_OUTPUT_KINDS)}")
        if self.batch < 1:
            raise bad("batch", self.batch, "must be at least 1")
        if self.exporter not in ONNX_EXPORTERS:
            raise bad("exporter", self.exporter, f"use one of {', '.join(ONNX_EXPORTERS)}")
        lowest = 18 if self.exporter == "dynamo" else 11
        if self.opset is not None and not lowest <= self.opset <= 25:
            why = f"use an opset from {lowest} to 25 with the {self.exporter} exporter"
            raise bad("opset", self.opset, why)
        if self.min_agreement is not None and not 0.0 < self.min_agreement <= 1.0:
            raise bad("min-agreement", self.min_agreement, "must be in (0, 1]")
        if self.class_names is not None and (not self.class_names or not all(self.class_names)):
            raise bad("class-names", ",".join(self.class_names), "give one non-empty name per class")
        if self.class_names is not None and self.num_classes is not None:
            if len(self.class_names) != self.num_classes:
                why = f"gives {len(self.class_names)} names for {self.num_classes} classes"
                raise bad("class-names", ",".join(self.class_names), why)
        if self.verify_random < 0 or self.verify_max_images < 1:
            raise bad("verify-random", self.verify_random, "must be >= 0 (and --verify-max-images >= 1)")
        if self.verify and self.verify_random == 0 and self.verify_images is None:
            raise bad("verify-random", 0, "nothing to verify on; give --verify-images DIR or use --no-verify")

    @property
    def resolved_opset(self) -> int:
        """The opset used: the one asked for, else 17 (TorchScript) or 18 (dynamo)."""
        return self.opset if self.opset is not None else (18 if self.exporter == "dynamo" else 17)

    @property
    def resolved_min_agreement(self) -> float:
        """The agreement threshold used: the one asked for, else 0.999 (FP32) or 0.99 (FP16)."""
        if self.min_agreement is not None:
            return self.min_agreement
        return 0.99 if self.half else 0.999

    @property
    def resolved_output(self) -> Path:
        """The ONNX path written: ``output``, else the checkpoint's path with ``.onnx``."""
        return self.output if self.output is not None else self.model.with_suffix(".onnx")

    def replace(self, **changes: Any) -> OnnxExportOptions:
        return dataclasses.replace(self, **changes)


# ---- INT8 quantization options -----------------------------------------------------------------
QUANT_METHODS = ("minmax", "entropy", "percentile")
QUANTIZERS = ("ort", "modelopt")
FP32_PARTS = ("input", "head")
#: Default smallest argmax agreement of an INT8 graph with its FP32 graph. Measured (README, INT8):
#: calibrations that kept mIoU within 0.3 point agreed on 99.80-99.96% of held-out pixels; ones on
#: 4-16 images, which cost 2.8-3.1 mIoU points, agreed on 99.34-99.38%.
INT8_MIN_AGREEMENT = 0.995


@dataclass(frozen=True)
class QuantizeOptions:
    """Everything ``segpipe quantize`` (and ``export-onnx --int8``) needs."""

    #: The FP32 ONNX model to quantize (as ``segpipe export-onnx`` writes it).
    model: Path
    #: A folder of calibration images (any size: resized to the model's input).
    calib_images: Path
    #: The INT8 ONNX file to write; default beside the model, ``NAME.int8.onnx``.
    output: Path | None = None
    #: Most images calibrated on (after the held-out ones are set aside).
    calib_count: int = 64
    #: Calibration images held out for the accuracy gate (at most a quarter of the folder).
    holdout: int = 8
    #: A folder of images to compare INT8 with FP32 on too.
    verify_images: Path | None = None
    #: Most images read from ``verify_images``.
    verify_max_images: int = 16
    #: A labelled data set (original layout): mIoU of the FP32 and INT8 models, reported.
    data_root: Path | None = None
    #: Smallest argmax agreement with the FP32 model accepted (0..1); default INT8_MIN_AGREEMENT.
    min_agreement: float | None = None
    #: With ``data_root``: largest mIoU loss of INT8 against FP32 accepted, in points (0-100 scale).
    max_miou_drop: float = 1.0
    #: Calibration: ``minmax``, ``entropy`` or ``percentile`` (99.999th).
    method: str = "minmax"
    #: ``ort`` (ONNX Runtime quantize_static) or ``modelopt`` (NVIDIA ModelOpt ONNX PTQ).
    quantizer: str = "ort"
    #: Parts left in FP32: ``input`` (the normalisation before the first convolution) and ``head``
    #: (the last convolution and what follows it: Resize, Softmax/Sigmoid, ArgMax).
    keep_fp32: tuple[str, ...] = ("input", "head")
    #: Seed of the choice of held-out images.
    seed: int = 0

    def __post_init__(self) -> None:
        coerce_paths(self)
        if self.calib_count < 1:
            raise ConfigError(f"--calib-count {self.calib_count}: must be at least 1")
        if self.holdout < 0 or self.verify_max_images < 1:
            raise ConfigError(f"--holdout {self.holdout}: must be >= 0 (and --verify-max-images >= 1)")
        if self.min_agreement is not None and not 0.0 < self.min_agreement <= 1.0:
            raise ConfigError(f"--min-agreement {self.min_agreement}: must be in (0, 1]")
        if not 0.0 <= self.max_miou_drop <= 100.0:
            raise ConfigError(f"--max-miou-drop {self.max_miou_drop}: give mIoU points from 0 to 100")
        object.__setattr__(self, "keep_fp32", tuple(self.keep_fp32))
        for part in self.keep_fp32:
            if part not in FP32_PARTS:
                raise ConfigError(f"--keep-fp32 {part}: use input, head, both (input,head) or none")
        if self.method not in QUANT_METHODS:
            raise ConfigError(
                f"--method {self.method}: use one of {', '.join(QUANT_METHODS)}"
                f"{close_matches(self.method, QUANT_METHODS)}"
            )
        if self.quantizer not in QUANTIZERS:
            raise ConfigError(
                f"--quantizer {self.quantizer}: use one of {', '.join(QUANTIZERS)}"
                f"{close_matches(self.quantizer, QUANTIZERS)}"
            )

    @property
    def resolved_min_agreement(self) -> float:
        """The agreement threshold used: the one asked for, else :data:`INT8_MIN_AGREEMENT`."""
        return self.min_agreement if self.min_agreement is not None else INT8_MIN_AGREEMENT

    @property
    def resolved_output(self) -> Path:
        """The INT8 file written: ``output``, else ``NAME.int8.onnx`` beside the model."""
        if self.output is not None:
            return self.output
        return self.model.with_name(self.model.stem + ".int8.onnx")

    def replace(self, **changes: Any) -> QuantizeOptions:
        return dataclasses.replace(self, **changes)


# ---- benchmark options ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchmarkOptions:
    """Everything ``segpipe benchmark`` needs. Sizes are (width, height) in pixels."""

    #: Model files to compare, any backend (``.pth``, ``.onnx``, ``.engine``).
    models: tuple[Path, ...]
    #: Input size (W, H); default each model's own.
    size: tuple[int, int] | None = None
    #: Images per call.
    batch: int = 1
    #: Untimed calls before timing (lets cuDNN / TensorRT / ONNX Runtime settle).
    warmup: int = 5
    #: Timed calls.
    runs: int = 20
    device: str = "auto"
    #: CPU threads of PyTorch and ONNX Runtime (0: their defaults, one per core).
    threads: int = 0
    #: A dataset (original layout) to compute each model's mIoU on (as ``segpipe evaluate`` does).
    data_root: Path | None = None
    #: Write the figures as JSON here.
    report: Path | None = None
    #: Describe a bare state_dict / an ONNX model without metadata.
    num_classes: int | None = None
    arch: str | None = None
    encoder: str | None = None
    trust_checkpoint: bool = False
    seed: int = 0
    #: Sliding-window inference: window (W, H) in image pixels (``(0, 0)``: the network size).
    tile: tuple[int, int] | None = None
    #: Fraction of a sliding window shared with its neighbour (0 <= overlap < 1).
    overlap: float = 0.25
    #: Test-time augmentation: also average the horizontally flipped input.
    tta_flip: bool = False
    #: Test-time augmentation: input scales averaged (1.0: the network size).
    tta_scales: tuple[float, ...] = (1.0,)
    #: With ``tile`` or TTA: the (W, H) of the random image timed; default twice the network's
    #: width and height (four times its area).
    image_size: tuple[int, int] | None = None
    #: As in :class:`VisualizeOptions`: feeding an ONNX model without segpipe metadata (models
    #: that describe themselves ignore them, with a warning, when several are compared).
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    input_layout: str | None = None

    def __post_init__(self) -> None:
        coerce_paths(self)
        _check_spec_fields(self)
        _check_foreign_flags(self)
        if self.image_size is not None and (len(self.image_size) != 2 or min(self.image_size) <= 0):
            raise ConfigError(
                f"--image-size {' '.join(map(str, self.image_size))}: give WIDTH HEIGHT, both positive"
            )
        object.__setattr__(self, "models", tuple(Path(m) for m in self.models))
        if not self.models:
            raise ConfigError("--model: give at least one model file")
        if self.size is not None and (len(self.size) != 2 or min(self.size) <= 0):
            raise ConfigError(f"--size {' '.join(map(str, self.size))}: give WIDTH HEIGHT, both positive")
        checks = (
            ("batch", self.batch, 1),
            ("runs", self.runs, 1),
            ("warmup", self.warmup, 0),
            ("threads", self.threads, 0),
        )
        for flag, value, low in checks:
            if value < low:
                raise ConfigError(f"--{flag} {value}: must be at least {low}")

    @property
    def spec(self) -> InferenceSpec:
        """Sliding window and test-time augmentation as one :class:`InferenceSpec`."""
        return InferenceSpec(self.tile, self.overlap, self.tta_flip, self.tta_scales)

    def replace(self, **changes: Any) -> BenchmarkOptions:
        return dataclasses.replace(self, **changes)
