"""The values and checks of :class:`~segpipe.options.train.TrainOptions` (choices, the
``--loss`` and ``--class-weights`` parsers, and the checks that tie fields together)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from segpipe.errors import ConfigError
from segpipe.modelinfo import MODES
from segpipe.options.base import check_choice, check_fields, check_ignore_index
from segpipe.options.flags import check_data_flags
from segpipe.schema import Range, has_controls, printable, shown

LOSSES = ("ce", "dice", "focal", "lovasz", "bce")
OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULERS = ("cosine", "poly", "constant")
AMP_DTYPES = ("fp16", "bf16")
CLASS_WEIGHTS = ("none", "inverse", "sqrt-inverse")
LOGGERS = ("auto", "tensorboard", "mlflow", "none")
#: Declared ranges of TrainOptions fields (checked by ``check_fields``, and where a ``--config``
#: file gives the value, with its file and line): a rate or a weight above 0, one at least 0 (whole
#: numbers: ``Count``/``Count0``), shares in [0, 1) and (0, 1), a class-weight cap at least 1.
Positive = Annotated[float, Range(0, above=True)]
NonNegative = Annotated[float, Range(0)]
Fraction = Annotated[float, Range(0, 1, below=True, why="must be in [0, 1)")]
Decay = Annotated[float, Range(0, 1, above=True, below=True, why="must be in (0, 1)")]
WeightCap = Annotated[float, Range(1)]
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


def default_workers() -> int:
    """Data loader processes by default: min(4, cores)."""
    return min(4, os.cpu_count() or 1)


def check_train(opts: Any) -> None:
    """Every field of a :class:`TrainOptions` in range (its declared type) and consistent (one line
    naming the flag); fills ``ignore_index`` and parses ``class_weights``."""
    check_fields(opts)

    def bad(flag: str, value: Any, why: str) -> ConfigError:
        return ConfigError(f"--{flag} {value}: {why}")

    name = opts.model_name
    if not name or name in (".", "..") or "/" in name or "\\" in name or os.sep in name or has_controls(name):
        raise bad(
            "model-name",
            printable(name) if name else "''",
            "a run name, not a path (no / or \\); the run folder is runs/<model-name>, "
            "--output-dir puts it elsewhere",
        )
    classes = (
        opts.num_classes
        if opts.num_classes is not None
        else (len(opts.class_names) if opts.class_names else None)
    )
    if opts.ignore_index is None:
        object.__setattr__(opts, "ignore_index", 65535 if classes is not None and classes > 255 else 255)
    check_choice("--mode", opts.mode, MODES)
    if opts.num_classes is not None and opts.num_classes < (2 if opts.mode != "multilabel" else 1):
        raise bad(
            "num-classes",
            opts.num_classes,
            "need at least 2 classes (binary: 2, background and foreground)",
        )
    if opts.mode == "binary" and opts.num_classes not in (None, 2):
        raise bad("num-classes", opts.num_classes, "binary mode has exactly 2 classes (0 and 1)")
    check_choice("--optimizer", opts.optimizer, OPTIMIZERS)
    check_choice("--scheduler", opts.scheduler, SCHEDULERS)
    check_data_flags(opts)
    if classes is not None and opts.mode != "binary":
        check_ignore_index(opts.ignore_index, classes)  # type: ignore[arg-type]
    losses = parse_loss(opts.loss)
    if opts.mode == "seg" and "bce" in losses:
        raise bad("loss", opts.loss, "bce is for binary/multilabel modes; use ce in seg mode")
    if (
        opts.class_names is not None
        and opts.num_classes is not None
        and len(opts.class_names) != opts.num_classes
    ):
        raise bad(
            "class-names",
            ",".join(opts.class_names),
            f"gives {len(opts.class_names)} names for {opts.num_classes} classes",
        )
    if opts.dataset is not None and ":" not in opts.dataset:
        raise bad("dataset", opts.dataset, "use package.module:ClassName")
    check_choice("--amp-dtype", opts.amp_dtype, AMP_DTYPES)
    weights = parse_class_weights(opts.class_weights)
    object.__setattr__(opts, "class_weights", weights)
    if isinstance(weights, str) and weights not in CLASS_WEIGHTS and not Path(weights).is_file():
        raise bad(
            "class-weights", weights, f"use {', '.join(CLASS_WEIGHTS)}, weights like 0.5,1,4, or a file"
        )
    if weights != "none" and opts.mode == "multilabel":
        raise bad("class-weights", opts.class_weights, "not supported in multilabel mode")
    if isinstance(weights, tuple) and opts.num_classes is not None and len(weights) != opts.num_classes:
        raise bad(
            "class-weights",
            ",".join(f"{w:g}" for w in weights),
            f"gives {len(weights)} weights for {opts.num_classes} classes",
        )
    check_choice("--logger", opts.logger, LOGGERS)
