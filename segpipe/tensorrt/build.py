"""The TensorRT engine builder of ``segpipe build-trt`` (TensorRT 10.x and 11.x, Python API).

``build_engine(EngineOptions(onnx=...))`` parses the ONNX model, derives the optimisation profile,
decides how to honour ``--fp16`` (:mod:`.precision`), builds a serialized plan, verifies it against
ONNX Runtime, writes it atomically and writes the ``NAME.engine.json`` sidecar (:mod:`.sidecar`).
tensorrt is imported inside :func:`build_engine` only: this module imports without it, and without
it :func:`build_engine` raises a one-line :class:`DependencyError` naming the install command.

API calls (TensorRT 10.x and 11.x Python API): ``trt.ILogger`` subclassing, ``trt.Builder(logger)``,
``builder.create_network(flags)`` with ``1 << NetworkDefinitionCreationFlag.STRONGLY_TYPED`` on 10.x for
FP16 and Q/DQ graphs; on 11.x ``builder.create_network()`` with no flags (every network is strongly
typed; ``STRONGLY_TYPED`` is deprecated and ignored, ``EXPLICIT_BATCH`` is gone),
``trt.OnnxParser(network, logger).parse_from_file(path: str)``, ``parser.num_errors`` /
``get_error(i)`` with ``desc()``, ``node_name()``, ``node_operator()``,
``builder.create_builder_config()``, ``config.set_memory_pool_limit(MemoryPoolType.WORKSPACE,
bytes)``, ``config.builder_optimization_level``, ``config.profiling_verbosity``,
``config.set_flag(BuilderFlag.FP16)`` (10.x, FP32 graphs only; never with ``STRONGLY_TYPED``),
``builder.create_optimization_profile()`` / ``profile.set_shape(name, min, opt, max)`` /
``config.add_optimization_profile``, ``config.create_timing_cache(buffer)`` (``b""``: a new empty
cache) / ``set_timing_cache(cache, ignore_mismatch) -> bool`` / ``get_timing_cache().serialize()``,
``builder.build_serialized_network(network, config)`` (``None`` on failure; an ``IHostMemory`` with
the buffer protocol, hence ``bytes(...)``). ``tests/test_tensorrt_bindings.py`` holds these calls
against the real bindings of 10.0 to 11.4; ``tests/test_tensorrt_gpu.py`` builds engines on a GPU.

Sources:

* https://docs.nvidia.com/deeplearning/tensorrt/latest/api/migration/tensorrt-10x-to-11x-python-api-reference.html
  (removed Python APIs) and .../tensorrt-10x-to-11x-python-api-patterns.html (11.x build example:
  ``builder.create_network()``, no precision flag).
* https://docs.nvidia.com/deeplearning/tensorrt/11.0.0/_static/python-api/infer/Core/Builder.html
  (``NetworkDefinitionCreationFlag`` in 11.0) and
  https://docs.nvidia.com/deeplearning/tensorrt/api/python_api/infer/Core/Builder.html (10.x:
  ``EXPLICIT_BATCH`` "[DEPRECATED] Ignored because networks are always explicit batch in TensorRT 10.0").
* TensorRT OSS Python bindings ``python/src/infer/pyCore.cpp`` (NVIDIA/TensorRT) and the
  signatures in the ``__doc__`` of the ``tensorrt-cu12-bindings`` wheels.
* https://docs.nvidia.com/deeplearning/tensorrt/10.16.1/performance/builder-performance.html
  (timing cache: a zero-length blob creates a new empty cache).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segpipe._optional import require
from segpipe.errors import CheckpointError, DependencyError, ExportError
from segpipe.modelinfo import ModelInfo
from segpipe.options.engine import EngineOptions
from segpipe.progress import Reporter
from segpipe.tensorrt.gpu import gpu_description
from segpipe.tensorrt.log import ParserIssue, build_logger, format_parser_issues, parser_issues
from segpipe.tensorrt.precision import (
    Fp16Plan,
    PrecisionDecision,
    autocast_fp16,
    decide_for_options,
    graph_precision,
)
from segpipe.tensorrt.shapes import (
    ProfileShape,
    Shapes,
    TensorSpec,
    derive_profile,
    onnx_io,
    profile_notes,
)
from segpipe.tensorrt.sidecar import (
    engine_sidecar,
    minimal_model_info,
    read_sidecar,
    write_sidecar,
)
from segpipe.tensorrt.verify import verify_engine
from segpipe.utils import atomic_path, atomic_write_bytes

__all__ = [
    "EngineOptions",
    "OnnxSummary",
    "ParserIssue",
    "build_engine",
    "format_parser_issues",
    "inspect_onnx",
    "trt_major_version",
]


@dataclass(frozen=True)
class OnnxSummary:
    """What the builder reads from the ONNX file before touching TensorRT."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    metadata: dict[str, str]
    info: ModelInfo | None
    profile: dict[str, ProfileShape]
    precision: str
    dynamic: bool = field(default=False)
    notes: tuple[str, ...] = ()
    """Lines for the user about choices made (e.g. the batch range of a dynamic batch axis)."""


def inspect_onnx(opts: EngineOptions) -> OnnxSummary:
    """Read inputs, outputs, metadata, precision of ``opts.onnx`` and derive the profile."""
    import onnx

    path = Path(opts.onnx)
    if not path.is_file():
        raise CheckpointError(f"ONNX model {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is an empty file (0 bytes), not an ONNX model (an interrupted copy?)")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise CheckpointError(f"{path} is not a readable ONNX model: {e}") from e
    inputs, outputs = onnx_io(model)
    if not inputs or not outputs:
        raise CheckpointError(f"{path}: the graph has {len(inputs)} input(s) and {len(outputs)} output(s)")
    metadata = {p.key: p.value for p in model.metadata_props}
    info = ModelInfo.from_metadata(metadata, f"{path}: metadata")
    shapes: dict[str, Shapes | None] = {
        k: getattr(opts, k) for k in ("shapes", "min_shapes", "opt_shapes", "max_shapes")
    }
    profile = derive_profile(
        inputs, info=info, source=str(path), batch=opts.batch, max_batch=opts.max_batch, **shapes
    )
    dynamic = any(t.dynamic_axes for t in inputs)
    notes = tuple(profile_notes(inputs, profile, shapes))
    return OnnxSummary(inputs, outputs, metadata, info, profile, graph_precision(model), dynamic, notes)


def trt_major_version(version: str) -> int:
    """``"10.3.0.26"`` -> 10; one-line error for anything else."""
    m = re.match(r"\s*(\d+)\.", str(version))
    if not m:
        raise DependencyError(f"cannot read the TensorRT version {version!r}")
    return int(m.group(1))


def build_engine(opts: EngineOptions, reporter: Reporter | None = None) -> Path:
    """Build a TensorRT engine from ``opts.onnx``; returns the engine path (``opts.engine``).

    Steps: read the ONNX and derive the profile (errors about the user's file and shapes come
    first), import tensorrt (DependencyError with the install command when missing), decide FP16
    handling for the installed major version, optionally run
    ModelOpt AutoCast (11.x), build, verify against ONNX Runtime (the engine is never left at the
    output path when verification fails), write atomically, save the timing cache, write the
    sidecar ``NAME.engine.json``.
    """
    reporter = reporter or Reporter()
    summary = inspect_onnx(opts)  # the user's file and shapes are checked first, tensorrt or not
    trt = require("tensorrt", "segpipe build-trt")
    version = str(trt.__version__)
    major = trt_major_version(version)
    if major < 10:
        raise DependencyError(
            f"TensorRT {version} is installed; segpipe build-trt needs TensorRT 10 or 11 "
            '(pip install "segpipe[trt]" --extra-index-url https://pypi.nvidia.com); '
            "`segpipe build-trt --print-trtexec --trt-version 8` prints a trtexec command for 8.x"
        )
    decision = decide_for_options(major, summary, opts, reporter)
    with tempfile.TemporaryDirectory(prefix="segpipe-trt-") as tmpdir:
        src = Path(opts.onnx)
        if decision.plan is Fp16Plan.AUTOCAST:
            with reporter.task(f"ModelOpt AutoCast: {src.name} to fp16"):
                src = autocast_fp16(src, Path(tmpdir) / f"{src.stem}.fp16.onnx")
        with reporter.task(f"building TensorRT {version} {decision.precision} engine {opts.engine}"):
            plan = _build_plan(trt, major, src, summary, decision, opts, reporter)
        with atomic_path(opts.engine) as tmp:
            tmp.write_bytes(plan)
            del plan
            if opts.verify:
                verify_built_engine(opts, tmp, summary, decision.precision, reporter)
    write_engine_sidecar(opts, summary, decision, version, gpu_description(), builder="python")
    return Path(opts.engine)


def _build_plan(
    trt: Any,
    major: int,
    onnx_src: Path,
    summary: OnnxSummary,
    decision: PrecisionDecision,
    opts: EngineOptions,
    reporter: Reporter,
) -> bytes:
    """Parse ``onnx_src`` and build the serialized plan with the TensorRT Python API."""
    logger = build_logger(trt, reporter, opts.verbose)
    try:
        builder = trt.Builder(logger)
    except Exception as e:  # pybind raises when CUDA cannot initialise
        detail = "; ".join(logger.errors[-2:]) or str(e)
        raise ExportError(
            f"TensorRT {trt.__version__} cannot create a builder (is a CUDA GPU visible?): {detail}"
        ) from e
    if major == 10 and decision.strongly_typed:
        # 10.x: opt in to strong typing (the bit position comes from the installed enum).
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    else:
        # 11.x: always strongly typed; STRONGLY_TYPED is deprecated and ignored, EXPLICIT_BATCH is gone,
        # so no flag is passed (NVIDIA's 11.x migration example). 10.x weak typing: no flag either.
        network = builder.create_network()
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_src)):
        issues = parser_issues(parser)
        raise ExportError(
            f"{opts.onnx}: TensorRT {trt.__version__} cannot parse the model ({len(issues)} error(s)): "
            f"{format_parser_issues(issues)}"
        )
    config = builder.create_builder_config()
    if opts.workspace_mib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(opts.workspace_mib) << 20)
    config.builder_optimization_level = int(opts.opt_level)
    if opts.verbose:
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    for flag in decision.builder_flags:  # FP16 on 10.x, FP32 graphs only: never with STRONGLY_TYPED
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if summary.dynamic:
        profile = builder.create_optimization_profile()
        for name, shape in summary.profile.items():
            profile.set_shape(name, shape.min, shape.opt, shape.max)
        config.add_optimization_profile(profile)
    cache = None
    if opts.timing_cache is not None:
        data = opts.timing_cache.read_bytes() if opts.timing_cache.is_file() else b""
        cache = config.create_timing_cache(data)
        if cache is None or not config.set_timing_cache(cache, False):
            reporter.warn(
                f"timing cache {opts.timing_cache} does not fit TensorRT {trt.__version__} or this GPU; "
                "starting a new one"
            )
            cache = config.create_timing_cache(b"")
            config.set_timing_cache(cache, False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        detail = "; ".join(logger.errors[-3:]) or "no error message (rerun with --verbose)"
        raise ExportError(f"{opts.onnx}: TensorRT {trt.__version__} could not build the engine: {detail}")
    if opts.timing_cache is not None:
        atomic_write_bytes(opts.timing_cache, bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


def engine_model_info(summary: OnnxSummary, precision: str) -> ModelInfo:
    """The engine's ModelInfo: the ONNX's with the engine precision, or a best-effort one."""
    if summary.info is not None:
        return summary.info.replace(precision=precision)
    first_in, first_out = summary.inputs[0], summary.outputs[0]
    out_dims = [d if isinstance(d, int) and d > 0 else 1 for d in first_out.dims]
    return minimal_model_info(summary.profile[first_in.name].opt, first_in.dtype, out_dims).replace(
        precision=precision
    )


def verify_built_engine(
    opts: EngineOptions, engine_tmp: Path, summary: OnnxSummary, precision: str, reporter: Reporter
) -> None:
    """Verify a just-built engine (at a temporary path) against ONNX Runtime; ExportError on failure."""
    first = summary.inputs[0]
    shape = summary.profile[first.name].opt
    if len(summary.inputs) != 1 or len(shape) != 4:
        reporter.warn(f"{opts.engine} not verified: verification expects one N×H×W×C image input")
        return
    with reporter.task(f"verifying {opts.engine} against ONNX Runtime"):
        verify_engine(
            engine_tmp,
            opts.onnx,
            engine_model_info(summary, precision),
            shape,
            opts.agreement_threshold(precision),
            opts.verify_images,
            reporter,
            display_path=opts.engine,
        )


def write_engine_sidecar(
    opts: EngineOptions,
    summary: OnnxSummary,
    decision: PrecisionDecision,
    trt_version: str,
    gpu: tuple[str, str],
    builder: str = "python",
) -> Path:
    """Write ``NAME.engine.json`` for an engine built from ``summary`` with ``decision``."""
    sidecar = engine_sidecar(
        engine_path=opts.engine,
        onnx_path=opts.onnx,
        metadata=summary.metadata,
        tensorrt_version=trt_version,
        gpu_name=gpu[0],
        compute_capability=gpu[1],
        precision=decision.precision,
        onnx_precision=summary.precision,
        fp16_method=decision.plan.value,
        strongly_typed=decision.strongly_typed,
        profile=summary.profile,
        inputs=summary.inputs,
        outputs=summary.outputs,
        workspace_mib=opts.workspace_mib,
        opt_level=opts.opt_level,
        builder=builder,
    )
    return write_sidecar(opts.engine, sidecar)


def engine_summary(engine_path: str | Path) -> dict[str, Any]:
    """The sidecar of a built engine as a dict (``{}`` when missing); for the CLI summary."""
    return read_sidecar(engine_path) or {}
