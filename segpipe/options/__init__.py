"""Typed, frozen options for every stage. Defaults live here and nowhere else.

Each stage is a plain function of one of these (``train(TrainOptions)``, ...). ``__post_init__``
validates values and raises :class:`~segpipe.errors.ConfigError` with one line naming the option
and the value. The CLI builds them from flags (and ``--config FILE.yaml``: flags win).

One module per stage: :mod:`~segpipe.options.train`, :mod:`~segpipe.options.inference`
(visualize, evaluate), :mod:`~segpipe.options.export`, :mod:`~segpipe.options.quantize`,
:mod:`~segpipe.options.benchmark`; the checks they share are in :mod:`~segpipe.options.base`.
Everything is importable from here as well.

The validation mechanism (one for options and for every file segpipe reads, see
:mod:`segpipe.schema`): each class's type hints are its schema. ``__post_init__`` calls
:func:`check_fields` first, which validates every field with a pydantic ``TypeAdapter`` built from
its hint (scalars strict: ``"3"`` is not a whole number, ``nan`` not a finite number; a list is
taken for a tuple and a string for a path) and the declared bounds (``Annotated[int, Range(0, N)]``,
the shared :data:`~segpipe.options.base.Seed`, :data:`~segpipe.options.base.Size`,
:data:`~segpipe.options.base.ClassCount`), then checks what ties fields together by hand.
:func:`load_config` reads a YAML file (aliases bounded, size bounded) and checks each key with the
same adapters, so a config error names the file, the line, the key and the value.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

#: Where each name lives. Imported on first use (PEP 562): ``segpipe.options.declare`` (which every
#: command's ``--help`` needs) loads without the options of every other stage.
_WHERE = {
    **dict.fromkeys(
        ("COMMAND_LINE_ONLY", "MAX_CLASSES", "check_fields", "check_ignore_index", "to_plain"),
        "segpipe.options.base",
    ),
    "BenchmarkOptions": "segpipe.options.benchmark",
    "DataOptions": "segpipe.options.data",
    "EngineOptions": "segpipe.options.engine",
    **dict.fromkeys(
        ("ONNX_EXPORTERS", "ONNX_INPUT_DTYPES", "ONNX_OUTPUT_KINDS", "OnnxExportOptions"),
        "segpipe.options.export",
    ),
    **dict.fromkeys(
        ("EvaluateOptions", "InferenceSpec", "VisualizeOptions", "parse_tta"), "segpipe.options.inference"
    ),
    **dict.fromkeys(
        ("FP32_PARTS", "INT8_MIN_AGREEMENT", "QUANT_METHODS", "QUANTIZERS", "QuantizeOptions"),
        "segpipe.options.quantize",
    ),
    **dict.fromkeys(
        (
            "AMP_DTYPES",
            "CLASS_WEIGHTS",
            "LOGGERS",
            "LOSSES",
            "OPTIMIZERS",
            "SCHEDULERS",
            "TrainOptions",
            "parse_class_weights",
            "parse_loss",
        ),
        "segpipe.options.train",
    ),
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'segpipe.options' has no attribute {name!r}")


def load_config(path: str | Path, cls: type | None = None) -> dict[str, Any]:
    """Read a YAML options file into keyword arguments for ``cls`` (default :class:`TrainOptions`);
    see :func:`segpipe.options.base.load_config`."""
    from segpipe.options.base import load_config as _load_config

    if cls is None:
        from segpipe.options.train import TrainOptions as cls
    return _load_config(path, cls)


__all__ = [*sorted(_WHERE), "load_config"]
