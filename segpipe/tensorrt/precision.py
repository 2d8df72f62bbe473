"""How ``segpipe build-trt`` gets an FP32, FP16 or INT8 engine on TensorRT 10.x and 11.x.

TensorRT 10.x still has weak typing: ``BuilderFlag.FP16`` lets the builder pick FP16 kernels for an
FP32 graph. TensorRT 11.x removed it (and ``BuilderFlag.INT8``, the INT8 calibrator,
``platform_has_fast_fp16``): every network is strongly typed, so FP16 must be in the ONNX graph,
either exported that way (``segpipe export-onnx --half``) or converted with NVIDIA ModelOpt AutoCast.
:func:`decide_precision` is that decision as a pure function; :func:`autocast_fp16` runs AutoCast.
INT8 is never implicit (11.x removed ``BuilderFlag.INT8`` and the calibrators): an INT8 engine comes
from an ONNX graph that carries QuantizeLinear/DequantizeLinear pairs (``segpipe export-onnx
--int8``), built strongly typed with no precision flag on 10.x and 11.x.

References:

* NVIDIA, "Migrating from TensorRT 10.x to 11.x", Python migration patterns and "Removed Python
  APIs and Replacements" (docs.nvidia.com/deeplearning/tensorrt/latest/api/migration/...):
  ``BuilderFlag.FP16`` -> "Strong typing with ModelOpt AutoCast"; the 11.x example calls
  ``autocast.convert_to_mixed_precision(onnx_path=..., low_precision_type="fp16", keep_io_types=True)``.
* TensorRT 10 Python API, ``NetworkDefinitionCreationFlag``: ``EXPLICIT_BATCH`` "[DEPRECATED]
  Ignored because networks are always explicit batch in TensorRT 10.0"; ``STRONGLY_TYPED``: every
  tensor's type follows the network's types (so precision flags must not be set).
* TensorRT developer guide, "Explicit Quantization" / "Strong Typing"
  (docs.nvidia.com/deeplearning/tensorrt/latest/inference-library/work-quantized-types.html):
  Q/DQ networks are built with strong typing in 10.x; on 8.x they need ``BuilderFlag.INT8``.
* ModelOpt AutoCast guide (nvidia.github.io/Model-Optimizer/guides/8_autocast.html) and the
  source of NVIDIA/TensorRT-Model-Optimizer: ``modelopt/onnx/autocast/__init__.py`` exports
  ``convert_to_mixed_precision``; ``modelopt/onnx/autocast/convert.py`` defines
  ``convert_to_mixed_precision(onnx_path: str, low_precision_type: str = "fp16", ...,
  keep_io_types: bool = False, ..., providers: list[str] = ["cpu"], ...) -> onnx.ModelProto``;
  ``__main__.py`` has the CLI flags ``--onnx_path``, ``--output_path``, ``--low_precision_type``,
  ``--keep_io_types`` (used by ``--print-trtexec``). ``test_autocast_fp16_converts_for_real`` runs
  :func:`autocast_fp16` where nvidia-modelopt is installed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from segpipe._optional import available, require
from segpipe.errors import ConfigError, ExportError, first_line
from segpipe.modelinfo import metadata_value

MODELOPT_INSTALL = 'pip install "nvidia-modelopt[onnx]" --extra-index-url https://pypi.nvidia.com'
PRECISIONS = ("fp32", "fp16", "int8")
#: ONNX ops that make a graph explicitly quantized (TensorRT parses the default-domain ones).
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
#: How to make an INT8 graph (helper command named in one-line errors).
INT8_HOWTO = "segpipe export-onnx --int8 --calib-images DIR"


class Fp16Plan(str, Enum):
    """How the builder gets the engine's precision (the sidecar's ``fp16_method``)."""

    AS_IS = "as-is"  #: build the graph with the types it has (FP32, FP16 or INT8 Q/DQ graph)
    BUILDER_FLAG = "builder-flag"  #: weak typing: ``BuilderFlag.FP16`` (10.x) or ``INT8`` (8.x)
    AUTOCAST = "autocast"  #: TensorRT 11.x: convert the ONNX with ModelOpt AutoCast, then build


@dataclass(frozen=True)
class PrecisionDecision:
    """The outcome of :func:`decide_precision`.

    Attributes:
        plan: what to do (see :class:`Fp16Plan`).
        precision: the engine's compute precision, ``fp32``, ``fp16`` or ``int8``.
        strongly_typed: create the network with ``NetworkDefinitionCreationFlag.STRONGLY_TYPED``
            (TensorRT 10.x, for graphs that carry FP16 or Q/DQ types; 11.x networks always are).
            Never combined with ``builder_flags`` (TensorRT 10.x rejects that).
        builder_flags: names of the ``BuilderFlag`` members to set (``FP16`` on 10.x for an FP32
            graph; ``INT8`` (and ``FP16``) for a Q/DQ graph on 8.x, ``--print-trtexec`` only).
        note: one line for the user explaining the choice (may be empty).
    """

    plan: Fp16Plan
    precision: str
    strongly_typed: bool
    note: str = ""
    builder_flags: tuple[str, ...] = ()


def is_int8_graph(model) -> bool:
    """True when an ``onnx.ModelProto`` is explicitly quantized (INT8).

    That is: it holds QuantizeLinear / DequantizeLinear nodes (in the default ONNX domain, the ones
    TensorRT's parser reads), or its segpipe metadata says ``segpipe.precision`` = ``"int8"``.
    """
    if _metadata_precision(model) == "int8":
        return True
    return any(node.op_type in QDQ_OPS and node.domain in ("", "ai.onnx") for node in model.graph.node)


def _metadata_precision(model) -> str | None:
    return metadata_value({p.key: p.value for p in model.metadata_props}, "segpipe.precision", str)


def graph_precision(model) -> str:
    """``int8``, ``fp16`` or ``fp32``: the compute precision an ``onnx.ModelProto`` carries.

    ``int8`` for an explicitly quantized graph (:func:`is_int8_graph`). ``fp16`` when the segpipe
    metadata says so (``segpipe.precision``), or when the graph holds FP16/BF16 initializers,
    Constant nodes or Casts to FP16/BF16 (e.g. an AutoCast output whose metadata was copied
    unchanged). Otherwise ``fp32``. Works on a model loaded with ``load_external_data=False``:
    only dtypes are read.
    """
    from onnx import TensorProto

    if is_int8_graph(model):
        return "int8"
    low = {TensorProto.FLOAT16, TensorProto.BFLOAT16}
    if _metadata_precision(model) == "fp16":
        return "fp16"
    if any(init.data_type in low for init in model.graph.initializer):
        return "fp16"
    for node in model.graph.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i in low:
                return "fp16"
            if node.op_type == "Constant" and attr.name == "value" and attr.t.data_type in low:
                return "fp16"
    return "fp32"


def decide_precision(
    trt_major: int,
    graph_precision: str,
    fp16: bool,
    modelopt_available: bool,
    source: str = "the ONNX model",
    int8: bool = False,
) -> PrecisionDecision:
    """Decide how to build a graph of ``graph_precision`` with ``--fp16`` / ``--int8`` on a TensorRT major.

    * INT8 (Q/DQ) graph: 10.x and 11.x build it strongly typed with no precision flag (10.x rejects
      ``STRONGLY_TYPED`` together with ``BuilderFlag.FP16``/``INT8``; 11.x has neither flag);
      ``--fp16`` is dropped with a note. 8.x (``--print-trtexec`` only): ``BuilderFlag.INT8`` (plus
      ``FP16`` with ``--fp16``), as explicit quantization needs there.
    * ``--int8`` for a graph without Q/DQ nodes: one-line :class:`ExportError` naming
      ``segpipe export-onnx --int8 --calib-images DIR`` (TensorRT 11 has no implicit INT8 and
      segpipe uses no calibrator on 10.x either).
    * TensorRT 8.x: ``--fp16`` or an FP16 graph -> BuilderFlag.FP16 (no strong typing); else fp32.
    * TensorRT 10.x: FP16 graph -> as is, strongly typed (the graph's FP16 types rule, no flag);
      FP32 graph + ``--fp16`` -> BuilderFlag.FP16 (weak typing still exists); else as is, fp32.
    * TensorRT 11.x and later: FP16 graph -> as is; FP32 graph + ``--fp16`` -> ModelOpt AutoCast
      when modelopt imports, else stop (re-export with ``--half`` or install modelopt); else fp32.

    Raises :class:`ExportError` (one line) for the "stop" cases and :class:`ConfigError` for an
    unknown graph precision. Majors above 11 are treated as 11 (strong typing only).
    """
    if graph_precision not in PRECISIONS:
        raise ConfigError(
            f"{source}: graph precision {graph_precision!r} is not one of {', '.join(PRECISIONS)}"
        )
    if graph_precision == "int8":
        if trt_major < 10:
            flags = ("INT8", "FP16") if fp16 else ("INT8",)
            return PrecisionDecision(Fp16Plan.BUILDER_FLAG, "int8", False, "", flags)
        note = (
            f"--fp16 dropped: {source} is an INT8 (Q/DQ) graph, built strongly typed with no precision "
            "flag; layers outside Q/DQ pairs keep the graph's types"
            if fp16
            else ""
        )
        return PrecisionDecision(Fp16Plan.AS_IS, "int8", True, note)
    if int8:
        raise ExportError(
            f"--int8: {source} is an {graph_precision} graph with no QuantizeLinear/DequantizeLinear "
            f"nodes; TensorRT 10/11 build INT8 from an explicitly quantized graph: make one with "
            f"`{INT8_HOWTO}` and build that (no --int8 needed)"
        )
    if trt_major < 10:
        if fp16 or graph_precision == "fp16":
            return PrecisionDecision(Fp16Plan.BUILDER_FLAG, "fp16", False, "", ("FP16",))
        return PrecisionDecision(Fp16Plan.AS_IS, "fp32", False)
    if graph_precision == "fp16":
        note = (
            f"{source} already computes in fp16: built strongly typed, no FP16 builder flag" if fp16 else ""
        )
        return PrecisionDecision(Fp16Plan.AS_IS, "fp16", True, note)
    if not fp16:
        return PrecisionDecision(Fp16Plan.AS_IS, "fp32", trt_major >= 11)
    if trt_major == 10:
        return PrecisionDecision(
            Fp16Plan.BUILDER_FLAG, "fp16", False, "TensorRT 10.x: BuilderFlag.FP16 set", ("FP16",)
        )
    if modelopt_available:
        return PrecisionDecision(
            Fp16Plan.AUTOCAST,
            "fp16",
            True,
            f"TensorRT {trt_major}.x has no FP16 builder flag: "
            f"converting {source} to fp16 with ModelOpt AutoCast",
        )
    raise ExportError(
        f"--fp16: {source} computes in fp32 and TensorRT {trt_major}.x has no FP16 builder flag (every "
        "network is strongly typed): re-export it with `segpipe export-onnx --half`, or install ModelOpt "
        f"({MODELOPT_INSTALL}) so build-trt converts it with AutoCast"
    )


def autocast_fp16(onnx_path: str | Path, out_path: str | Path) -> Path:
    """Convert an FP32 ONNX model to mixed FP16 with ModelOpt AutoCast, keeping FP32 inputs/outputs.

    Calls ``modelopt.onnx.autocast.convert_to_mixed_precision(onnx_path=..., low_precision_type="fp16",
    keep_io_types=True)`` (AutoCast keeps numerically sensitive nodes in FP32 and inserts Casts), copies
    the segpipe metadata props over when AutoCast dropped them, and saves the result to ``out_path``.
    Models over 2 GB (external data) are not handled here.
    """
    import onnx

    autocast = require("modelopt.onnx.autocast", "converting an FP32 ONNX model to FP16 for TensorRT 11")
    src = Path(onnx_path)
    try:
        model = autocast.convert_to_mixed_precision(
            onnx_path=str(src), low_precision_type="fp16", keep_io_types=True
        )
    except Exception as e:  # AutoCast raises plain exceptions with multi-line text
        raise ExportError(
            f"{src}: ModelOpt AutoCast could not convert the model to fp16: {first_line(e, typed=False)}"
        ) from e
    have = {p.key for p in model.metadata_props}
    original = onnx.load(str(src), load_external_data=False)
    for prop in original.metadata_props:
        if prop.key not in have:
            model.metadata_props.add(key=prop.key, value=prop.value)
    for prop in model.metadata_props:
        if prop.key == "segpipe.precision":
            prop.value = json.dumps("fp16")
    out = Path(out_path)
    onnx.save(model, str(out))
    return out


def decide_for_options(trt_major: int, summary: Any, opts: Any, reporter: Any) -> PrecisionDecision:
    """:func:`decide_precision` for engine options ``opts`` (``fp16``, ``int8``, ``onnx``) and an
    inspected graph ``summary`` (``precision``, ``notes``), as build-trt and ``--use-trtexec`` both
    need it: ModelOpt is looked for only where the decision depends on it; the graph's notes and the
    decision's note go to ``reporter``."""
    needs_modelopt = trt_major >= 11 and opts.fp16 and summary.precision == "fp32"
    decision = decide_precision(
        trt_major,
        summary.precision,
        opts.fp16,
        available("modelopt.onnx.autocast") if needs_modelopt else False,
        source=str(opts.onnx),
        int8=opts.int8,
    )
    for note in (*summary.notes, decision.note):
        if note:
            reporter.info(note)
    return decision
