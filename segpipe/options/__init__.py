"""Typed, frozen options for every stage. Defaults live here and nowhere else.

Each stage is a plain function of one of these (``train(TrainOptions)``, ...). ``__post_init__``
validates values and raises :class:`~segpipe.errors.ConfigError` with one line naming the option
and the value. The CLI builds them from flags (and ``--config FILE.yaml``: flags win).

One module per stage: :mod:`~segpipe.options.train`, :mod:`~segpipe.options.inference`
(visualize, evaluate), :mod:`~segpipe.options.export`, :mod:`~segpipe.options.quantize`,
:mod:`~segpipe.options.benchmark`; the checks they share are in :mod:`~segpipe.options.base`.
Everything is importable from here as well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segpipe.options.base import (
    COMMAND_LINE_ONLY,
    check_ignore_index,
    check_types,
    coerce_paths,
    to_plain,
)
from segpipe.options.base import load_config as _load_config
from segpipe.options.benchmark import BenchmarkOptions
from segpipe.options.export import (
    ONNX_EXPORTERS,
    ONNX_INPUT_DTYPES,
    ONNX_OUTPUT_KINDS,
    OnnxExportOptions,
)
from segpipe.options.inference import EvaluateOptions, InferenceSpec, VisualizeOptions, parse_tta
from segpipe.options.quantize import (
    FP32_PARTS,
    INT8_MIN_AGREEMENT,
    QUANT_METHODS,
    QUANTIZERS,
    QuantizeOptions,
)
from segpipe.options.train import (
    AMP_DTYPES,
    CLASS_WEIGHTS,
    LOGGERS,
    LOSSES,
    OPTIMIZERS,
    SCHEDULERS,
    TrainOptions,
    parse_class_weights,
    parse_loss,
)


def load_config(path: str | Path, cls: type = TrainOptions) -> dict[str, Any]:
    """Read a YAML options file into keyword arguments for ``cls`` (default :class:`TrainOptions`);
    see :func:`segpipe.options.base.load_config`."""
    return _load_config(path, cls)


__all__ = [
    "AMP_DTYPES",
    "BenchmarkOptions",
    "CLASS_WEIGHTS",
    "COMMAND_LINE_ONLY",
    "EvaluateOptions",
    "FP32_PARTS",
    "INT8_MIN_AGREEMENT",
    "InferenceSpec",
    "LOGGERS",
    "LOSSES",
    "ONNX_EXPORTERS",
    "ONNX_INPUT_DTYPES",
    "ONNX_OUTPUT_KINDS",
    "OPTIMIZERS",
    "OnnxExportOptions",
    "QUANTIZERS",
    "QUANT_METHODS",
    "QuantizeOptions",
    "SCHEDULERS",
    "TrainOptions",
    "VisualizeOptions",
    "check_ignore_index",
    "check_types",
    "coerce_paths",
    "load_config",
    "parse_class_weights",
    "parse_loss",
    "parse_tta",
    "to_plain",
]
