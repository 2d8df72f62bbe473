"""Options of ``segpipe build-trt`` and :func:`segpipe.tensorrt.build.build_engine`.

Torch-, numpy- and TensorRT-free (``build-trt --help`` imports it); the shape strings are checked
by :func:`segpipe.options.shapes.normalize_shapes` (plain Python, below tensorrt/ in the layers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from segpipe.errors import ConfigError
from segpipe.options import flags as F
from segpipe.options.base import check_fields
from segpipe.options.declare import Panel, flag
from segpipe.options.shapes import ShapesArg, normalize_shapes
from segpipe.schema import Range

SHAPES, BUILD, VERIFY = Panel("Shapes"), Panel("Build"), F.VERIFY_PANEL

#: Default minimum argmax agreement of an engine with ONNX Runtime, per engine precision.
#: INT8: TensorRT's INT8 kernels against ONNX Runtime's on the same Q/DQ graph; 0.98 is a guess
#: not yet measured on a GPU (rounding at every quantized layer may differ between the two).
DEFAULT_MIN_AGREEMENT = {"fp32": 0.999, "fp16": 0.99, "int8": 0.98}


def default_min_agreement(precision: str) -> float:
    """0.999 for fp32 engines, 0.99 for fp16 ones, 0.98 for int8 ones."""
    return DEFAULT_MIN_AGREEMENT.get(precision, DEFAULT_MIN_AGREEMENT["fp16"])


def _shapes(*names: str, help: str) -> ShapesArg:
    return SHAPES.flag(*names, None, help, metavar="SHAPES", cli_type=str)


#: The declared ranges of build-trt's numbers (checked by check_fields, one line naming the flag).
Images = Annotated[int, Range(1, why="must be a positive number of images")]
MiB = Annotated[int, Range(1, why="must be a positive number of MiB")]
OptLevel = Annotated[int, Range(0, 5, why="must be between 0 and 5")]
#: The shared Agreement's range, with the example build-trt's message has always given.
EngineAgreement = Annotated[float, Range(0, 1, above=True, why="must be in (0, 1], e.g. 0.999")]


@dataclass(frozen=True)
class EngineOptions:
    """Options of :func:`build_engine` (and of ``segpipe build-trt``); validated on creation."""

    # one declaration a line or two (segpipe.options.declare), kept so by the formatter:
    # fmt: off
    #: The ONNX model (``segpipe export-onnx`` output: input ``input_1`` NHWC, output ``output``).
    onnx: Path = F.MODEL(hidden="--onnx", help="ONNX model from `segpipe export-onnx`.")
    #: Where the engine goes; default: beside the ONNX with suffix ``.engine``.
    engine: Path | None = flag("--engine", "--saveEngine", "-o", None,
        "Engine file to write; default: beside the ONNX, .engine.", hidden="--output")
    #: trtexec ``--shapes``: the opt shape per input (``input_1:1x640x1280x3``); min = max = opt.
    shapes: ShapesArg = _shapes("--shapes",
        help="Input shape NAME:NxHxWxC, e.g. input_1:1x640x1280x3 (min = max = this).")
    #: Smallest shapes of the profile (with ``opt_shapes``/``shapes`` and ``max_shapes``).
    min_shapes: ShapesArg = _shapes("--min-shapes", "--minShapes", help="Smallest shapes.")
    #: Shapes TensorRT tunes for (same role as ``shapes``; give one of the two).
    opt_shapes: ShapesArg = _shapes("--opt-shapes", "--optShapes", help="Shapes to tune for.")
    #: Largest shapes of the profile.
    max_shapes: ShapesArg = _shapes("--max-shapes", "--maxShapes", help="Largest shapes.")
    #: Workspace memory pool limit in MiB; ``None``: TensorRT's default (the device memory).
    workspace_mib: MiB | None = BUILD.flag("--workspace", None,
        "Workspace memory limit in MiB (default: TensorRT's).", metavar="MIB")
    #: FP16 engine: ``BuilderFlag.FP16`` on 10.x, ModelOpt AutoCast on 11.x (or an FP16 graph).
    fp16: bool = BUILD.flag("--fp16", False,
        "FP16 engine (BuilderFlag.FP16 on TensorRT 10, ModelOpt AutoCast on 11).")
    #: Ask for an INT8 engine: the graph must carry Q/DQ nodes (an INT8 graph is built INT8 anyway).
    int8: bool = BUILD.flag("--int8", False,
        "INT8 engine: needs a Q/DQ graph (`segpipe export-onnx --int8`), built strongly typed.")
    #: Batch the profile is tuned for (opt) when the ONNX batch axis is dynamic; default 1.
    batch: Images | None = F.BATCH(default=None, panel=SHAPES,
        help="Batch to tune for when the ONNX batch axis is dynamic (default 1).")
    #: Largest batch of the profile when the ONNX batch axis is dynamic; default 8 (min is 1).
    max_batch: Images | None = F.MAX_BATCH(panel=SHAPES,
        help="Largest batch when the ONNX batch axis is dynamic (default 8; min is 1).")
    #: Timing cache file: loaded when it exists, saved after the build (speeds up rebuilds).
    timing_cache: Path | None = BUILD.flag("--timing-cache", "--timingCacheFile", None,
        "Timing cache to reuse and update.")
    #: Builder optimisation level 0-5 (TensorRT's default 3; higher builds slower, may run faster).
    opt_level: OptLevel = BUILD.flag("--opt-level", "--builderOptimizationLevel", 3,
        "Builder optimisation level 0-5.")
    #: Forward TensorRT's verbose log to the reporter.
    verbose: bool = BUILD.flag("--verbose", False, "Show TensorRT's log.")
    #: Compare the built engine with ONNX Runtime before writing it (needs the GPU it was built on).
    verify: bool = F.VERIFY(help="Compare the engine with ONNX Runtime.")
    #: Folder of pictures for verification; default: seeded random images.
    verify_images: Path | None = F.VERIFY_IMAGES(help="Folder of pictures to verify on (default: random).")
    #: Minimum argmax agreement with ONNX Runtime, 0-1; default 0.999 (fp32) or 0.99 (fp16).
    min_agreement: EngineAgreement | None = F.MIN_AGREEMENT(
        help="Minimum argmax agreement (default 0.999 fp32, 0.99 fp16, 0.98 int8).")
    # fmt: on

    def __post_init__(self) -> None:
        check_fields(self)
        onnx = self.onnx
        if onnx.suffix.lower() != ".onnx":
            raise ConfigError(f"--model {onnx}: expected an .onnx file")
        engine = self.engine if self.engine is not None else onnx.with_suffix(".engine")
        if engine.resolve() == onnx.resolve():
            raise ConfigError(f"--engine {engine}: would overwrite the ONNX model")
        object.__setattr__(self, "engine", engine)
        for name in ("shapes", "min_shapes", "opt_shapes", "max_shapes"):
            flag_name = "--" + name.replace("_", "-")
            object.__setattr__(self, name, normalize_shapes(getattr(self, name), flag_name) or None)
        if self.batch is not None and self.max_batch is not None and self.batch > self.max_batch:
            raise ConfigError(f"--batch {self.batch} is larger than --max-batch {self.max_batch}")

    def agreement_threshold(self, precision: str) -> float:
        """``min_agreement`` or the default for the engine precision."""
        return (
            float(self.min_agreement) if self.min_agreement is not None else default_min_agreement(precision)
        )
