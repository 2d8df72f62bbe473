"""Options of ``segpipe build-trt`` and :func:`segpipe.tensorrt.build.build_engine`.

Torch-, numpy- and TensorRT-free (``build-trt --help`` imports it); the shape strings are checked
by :func:`segpipe.options.shapes.normalize_shapes` (plain Python, below tensorrt/ in the layers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segpipe.errors import ConfigError
from segpipe.options import flags as F
from segpipe.options.declare import flag
from segpipe.options.shapes import ShapesArg, normalize_shapes

SHAPES, BUILD, VERIFY = "Shapes", "Build", "Verification"

#: Default minimum argmax agreement of an engine with ONNX Runtime, per engine precision.
#: INT8: TensorRT's INT8 kernels against ONNX Runtime's on the same Q/DQ graph; 0.98 is a guess
#: not yet measured on a GPU (rounding at every quantized layer may differ between the two).
DEFAULT_MIN_AGREEMENT = {"fp32": 0.999, "fp16": 0.99, "int8": 0.98}


def default_min_agreement(precision: str) -> float:
    """0.999 for fp32 engines, 0.99 for fp16 ones, 0.98 for int8 ones."""
    return DEFAULT_MIN_AGREEMENT.get(precision, DEFAULT_MIN_AGREEMENT["fp16"])


def _shapes(*names: str, help: str) -> ShapesArg:
    return flag(*names, default=None, help=help, panel=SHAPES, metavar="SHAPES", cli_type=str)


@dataclass(frozen=True)
class EngineOptions:
    """Options of :func:`build_engine` (and of ``segpipe build-trt``); validated on creation."""

    #: The ONNX model (``segpipe export-onnx`` output: input ``input_1`` NHWC, output ``output``).
    onnx: Path = F.MODEL(hidden=("--onnx",), help="ONNX model from `segpipe export-onnx`.")
    #: Where the engine goes; default: beside the ONNX with suffix ``.engine``.
    engine: Path | None = flag(
        "--engine",
        "--saveEngine",
        "-o",
        hidden=("--output",),
        default=None,
        help="Engine file to write; default: beside the ONNX, .engine.",
        metavar="FILE",
    )
    #: trtexec ``--shapes``: the opt shape per input (``input_1:1x640x1280x3``); min = max = opt.
    shapes: ShapesArg = _shapes(
        "--shapes", help="Input shape NAME:NxHxWxC, e.g. input_1:1x640x1280x3 (min = max = this)."
    )
    #: Smallest shapes of the profile (with ``opt_shapes``/``shapes`` and ``max_shapes``).
    min_shapes: ShapesArg = _shapes("--min-shapes", "--minShapes", help="Smallest shapes.")
    #: Shapes TensorRT tunes for (same role as ``shapes``; give one of the two).
    opt_shapes: ShapesArg = _shapes("--opt-shapes", "--optShapes", help="Shapes to tune for.")
    #: Largest shapes of the profile.
    max_shapes: ShapesArg = _shapes("--max-shapes", "--maxShapes", help="Largest shapes.")
    #: Workspace memory pool limit in MiB; ``None``: TensorRT's default (the device memory).
    workspace_mib: int | None = flag(
        "--workspace",
        default=None,
        help="Workspace memory limit in MiB (default: TensorRT's).",
        panel=BUILD,
        metavar="MIB",
    )
    #: FP16 engine: ``BuilderFlag.FP16`` on 10.x, ModelOpt AutoCast on 11.x (or an FP16 graph).
    fp16: bool = flag(
        "--fp16",
        default=False,
        help="FP16 engine (BuilderFlag.FP16 on TensorRT 10, ModelOpt AutoCast on 11).",
        panel=BUILD,
    )
    #: Ask for an INT8 engine: the graph must carry Q/DQ nodes (an INT8 graph is built INT8 anyway).
    int8: bool = flag(
        "--int8",
        default=False,
        help="INT8 engine: needs a Q/DQ graph (`segpipe export-onnx --int8`), built strongly typed.",
        panel=BUILD,
    )
    #: Batch the profile is tuned for (opt) when the ONNX batch axis is dynamic; default 1.
    batch: int | None = F.BATCH(
        default=None, help="Batch to tune for when the ONNX batch axis is dynamic (default 1).", panel=SHAPES
    )
    #: Largest batch of the profile when the ONNX batch axis is dynamic; default 8 (min is 1).
    max_batch: int | None = F.MAX_BATCH(
        help="Largest batch when the ONNX batch axis is dynamic (default 8; min is 1).", panel=SHAPES
    )
    #: Timing cache file: loaded when it exists, saved after the build (speeds up rebuilds).
    timing_cache: Path | None = flag(
        "--timing-cache",
        "--timingCacheFile",
        default=None,
        help="Timing cache to reuse and update.",
        panel=BUILD,
        metavar="FILE",
    )
    #: Builder optimisation level 0-5 (TensorRT's default 3; higher builds slower, may run faster).
    opt_level: int = flag(
        "--opt-level",
        "--builderOptimizationLevel",
        default=3,
        help="Builder optimisation level 0-5.",
        panel=BUILD,
        metavar="N",
    )
    #: Forward TensorRT's verbose log to the reporter.
    verbose: bool = flag("--verbose", default=False, help="Show TensorRT's log.", panel=BUILD)
    #: Compare the built engine with ONNX Runtime before writing it (needs the GPU it was built on).
    verify: bool = flag(
        "--verify/--no-verify", default=True, help="Compare the engine with ONNX Runtime.", panel=VERIFY
    )
    #: Folder of pictures for verification; default: seeded random images.
    verify_images: Path | None = flag(
        "--verify-images",
        default=None,
        help="Folder of pictures to verify on (default: random).",
        panel=VERIFY,
        metavar="DIR",
    )
    #: Minimum argmax agreement with ONNX Runtime, 0-1; default 0.999 (fp32) or 0.99 (fp16).
    min_agreement: float | None = flag(
        "--min-agreement",
        default=None,
        help="Minimum argmax agreement (default 0.999 fp32, 0.99 fp16, 0.98 int8).",
        panel=VERIFY,
        metavar="NUM",
    )

    def __post_init__(self) -> None:
        onnx = Path(self.onnx)
        object.__setattr__(self, "onnx", onnx)
        if onnx.suffix.lower() != ".onnx":
            raise ConfigError(f"--model {onnx}: expected an .onnx file")
        engine = Path(self.engine) if self.engine is not None else onnx.with_suffix(".engine")
        if engine.resolve() == onnx.resolve():
            raise ConfigError(f"--engine {engine}: would overwrite the ONNX model")
        object.__setattr__(self, "engine", engine)
        for name, flag_name in (
            ("shapes", "--shapes"),
            ("min_shapes", "--min-shapes"),
            ("opt_shapes", "--opt-shapes"),
            ("max_shapes", "--max-shapes"),
        ):
            object.__setattr__(self, name, normalize_shapes(getattr(self, name), flag_name) or None)
        if self.workspace_mib is not None and int(self.workspace_mib) <= 0:
            raise ConfigError(f"--workspace {self.workspace_mib}: must be a positive number of MiB")
        if not 0 <= int(self.opt_level) <= 5:
            raise ConfigError(f"--opt-level {self.opt_level}: must be between 0 and 5")
        for name, flag_name in (("batch", "--batch"), ("max_batch", "--max-batch")):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise ConfigError(f"{flag_name} {value}: must be a positive number of images")
        if self.batch is not None and self.max_batch is not None and int(self.batch) > int(self.max_batch):
            raise ConfigError(f"--batch {self.batch} is larger than --max-batch {self.max_batch}")
        if self.min_agreement is not None and not 0.0 < float(self.min_agreement) <= 1.0:
            raise ConfigError(f"--min-agreement {self.min_agreement}: must be in (0, 1], e.g. 0.999")
        for name in ("timing_cache", "verify_images"):
            value = getattr(self, name)
            object.__setattr__(self, name, Path(value) if value is not None else None)

    def agreement_threshold(self, precision: str) -> float:
        """``min_agreement`` or the default for the engine precision."""
        return (
            float(self.min_agreement) if self.min_agreement is not None else default_min_agreement(precision)
        )
