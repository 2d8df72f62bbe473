"""``segpipe build-trt``: ONNX model -> TensorRT engine (TensorRT 10.x / 11.x).

Accepts trtexec's spellings too (``--saveEngine``, ``--minShapes``, ``--optShapes``,
``--maxShapes``, ``--timingCacheFile``, ``--builderOptimizationLevel``, ``--explicitBatch``), so
an old command line such as ``segpipe build-trt --onnx=m.onnx --shapes=input_1:1x640x1280x3
--explicitBatch --workspace=2048 --saveEngine=m.bin --fp16`` still works. Heavy modules are
imported inside the command so ``segpipe --help`` stays fast.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from segpipe.cli.common import RichReporter, console, err_console, print_written, run_guarded

_SHAPES = "Shapes"
_BUILD = "Build"
_VERIFY = "Verification"
_TRTEXEC = "trtexec"


def _note(message: str) -> None:
    err_console.print(f"[cyan]note:[/] {escape(message)}", markup=True, highlight=False)


def build_trt_command(
    onnx: Annotated[
        Path, typer.Option("--onnx", help="ONNX model from `segpipe export-onnx`.", show_default=False)
    ],
    engine: Annotated[
        Path | None,
        typer.Option(
            "--engine", "--saveEngine", help="Engine file to write; default: beside the ONNX, .engine."
        ),
    ] = None,
    shapes: Annotated[
        str | None,
        typer.Option(
            "--shapes",
            help="Input shape NAME:NxHxWxC, e.g. input_1:1x640x1280x3 (min = max = this).",
            rich_help_panel=_SHAPES,
        ),
    ] = None,
    min_shapes: Annotated[
        str | None,
        typer.Option("--min-shapes", "--minShapes", help="Smallest shapes.", rich_help_panel=_SHAPES),
    ] = None,
    opt_shapes: Annotated[
        str | None,
        typer.Option("--opt-shapes", "--optShapes", help="Shapes to tune for.", rich_help_panel=_SHAPES),
    ] = None,
    max_shapes: Annotated[
        str | None,
        typer.Option("--max-shapes", "--maxShapes", help="Largest shapes.", rich_help_panel=_SHAPES),
    ] = None,
    batch: Annotated[
        int | None,
        typer.Option(
            "--batch",
            min=1,
            help="Batch to tune for when the ONNX batch axis is dynamic (default 1).",
            rich_help_panel=_SHAPES,
            show_default=False,
        ),
    ] = None,
    max_batch: Annotated[
        int | None,
        typer.Option(
            "--max-batch",
            min=1,
            help="Largest batch when the ONNX batch axis is dynamic (default 8; min is 1).",
            rich_help_panel=_SHAPES,
            show_default=False,
        ),
    ] = None,
    workspace: Annotated[
        int | None,
        typer.Option(
            "--workspace", help="Workspace memory limit in MiB (default: TensorRT's).", rich_help_panel=_BUILD
        ),
    ] = None,
    fp16: Annotated[
        bool,
        typer.Option(
            "--fp16",
            help="FP16 engine (BuilderFlag.FP16 on TensorRT 10, ModelOpt AutoCast on 11).",
            rich_help_panel=_BUILD,
        ),
    ] = False,
    int8: Annotated[
        bool,
        typer.Option(
            "--int8",
            help="INT8 engine: needs a Q/DQ graph (`segpipe export-onnx --int8`), built strongly typed.",
            rich_help_panel=_BUILD,
        ),
    ] = False,
    timing_cache: Annotated[
        Path | None,
        typer.Option(
            "--timing-cache",
            "--timingCacheFile",
            help="Timing cache to reuse and update.",
            rich_help_panel=_BUILD,
        ),
    ] = None,
    opt_level: Annotated[
        int,
        typer.Option(
            "--opt-level",
            "--builderOptimizationLevel",
            min=0,
            max=5,
            help="Builder optimisation level 0-5.",
            rich_help_panel=_BUILD,
        ),
    ] = 3,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Show TensorRT's log.", rich_help_panel=_BUILD)
    ] = False,
    explicit_batch: Annotated[
        bool,
        typer.Option(
            "--explicitBatch", help="Accepted for old command lines and ignored.", rich_help_panel=_BUILD
        ),
    ] = False,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify/--no-verify", help="Compare the engine with ONNX Runtime.", rich_help_panel=_VERIFY
        ),
    ] = True,
    verify_images: Annotated[
        Path | None,
        typer.Option(
            "--verify-images",
            help="Folder of pictures to verify on (default: random).",
            rich_help_panel=_VERIFY,
        ),
    ] = None,
    min_agreement: Annotated[
        float | None,
        typer.Option(
            "--min-agreement",
            help="Minimum argmax agreement (default 0.999 fp32, 0.99 fp16, 0.98 int8).",
            rich_help_panel=_VERIFY,
            show_default=False,
        ),
    ] = None,
    print_trtexec: Annotated[
        bool,
        typer.Option(
            "--print-trtexec", help="Print the equivalent trtexec command and exit.", rich_help_panel=_TRTEXEC
        ),
    ] = False,
    trt_version: Annotated[
        int | None,
        typer.Option(
            "--trt-version",
            help="TensorRT major for --print-trtexec: 8, 10 or 11 (default: installed).",
            rich_help_panel=_TRTEXEC,
            show_default=False,
        ),
    ] = None,
    use_trtexec: Annotated[
        bool,
        typer.Option(
            "--use-trtexec", help="Build with the trtexec binary on PATH.", rich_help_panel=_TRTEXEC
        ),
    ] = False,
) -> None:
    """Build a TensorRT engine from an ONNX model, verify it and write NAME.engine.json beside it."""
    from segpipe.errors import ConfigError
    from segpipe.tensorrt.build import EngineOptions, build_engine, engine_summary
    from segpipe.tensorrt.trtexec import run_trtexec, trtexec_command

    started = time.perf_counter()
    if explicit_batch:
        _note(
            "--explicitBatch is ignored: networks are always explicit-batch "
            "(TensorRT 10 ignores the flag, TensorRT 11 removed it)"
        )
    opts = run_guarded(
        EngineOptions,
        onnx=onnx,
        engine=engine,
        shapes=shapes,
        min_shapes=min_shapes,
        opt_shapes=opt_shapes,
        max_shapes=max_shapes,
        workspace_mib=workspace,
        fp16=fp16,
        int8=int8,
        batch=batch,
        max_batch=max_batch,
        timing_cache=timing_cache,
        opt_level=opt_level,
        verbose=verbose,
        verify=verify,
        verify_images=verify_images,
        min_agreement=min_agreement,
    )
    if not print_trtexec:
        from segpipe.outpaths import check_output_file

        run_guarded(check_output_file, opts.engine, "--engine", (opts.onnx,), "model.engine")
    if print_trtexec:
        if trt_version is not None and trt_version not in (8, 10, 11):
            run_guarded(_raise, ConfigError(f"--trt-version {trt_version}: expected 8, 10 or 11"))
        major = trt_version or _installed_trt_major()
        if major is None:
            major = 10
            _note("no TensorRT found: printing the TensorRT 10 command (choose with --trt-version 8|10|11)")
        cmd = run_guarded(trtexec_command, opts, major)
        for note in cmd.notes:
            _note(note)
        console.print(str(cmd), markup=False, highlight=False)
        return
    reporter = RichReporter()
    path = run_guarded(run_trtexec if use_trtexec else build_engine, opts, reporter)
    info = engine_summary(path)
    print_written(path, "engine")
    sidecar = path.with_name(path.name + ".json")
    if sidecar.is_file():
        print_written(sidecar, "sidecar")
    profile = ", ".join(f"{name} {_describe(p)}" for name, p in (info.get("profile") or {}).items())
    console.print(
        f"precision {info.get('precision', '?')} ({info.get('fp16_method', '?')}), "
        f"TensorRT {info.get('tensorrt_version', '?')} on {info.get('gpu_name', '?')}, "
        f"profile {profile or '?'}, {time.perf_counter() - started:.1f} s",
        markup=False,
        highlight=False,
    )


def _raise(exc: Exception) -> None:
    raise exc


def _describe(p: dict) -> str:
    """``1x640x1280x3 NHWC`` (static) or ``min .. opt .. max .. NHWC`` from a sidecar profile entry."""
    from segpipe.units import shape_text

    dims = [shape_text(p.get(k, [])) for k in ("min", "opt", "max")]
    layout = " NHWC" if len(p.get("opt", [])) == 4 else ""  # the layout once, not after each shape
    if dims[0] == dims[1] == dims[2]:
        return dims[1] + layout
    return f"min {dims[0]} opt {dims[1]} max {dims[2]}{layout}"


def _installed_trt_major() -> int | None:
    """Major version of the tensorrt Python package, else of trtexec on PATH, else None."""
    import importlib.util
    import shutil

    if importlib.util.find_spec("tensorrt") is not None:
        try:
            import tensorrt

            return int(str(tensorrt.__version__).split(".")[0])
        except Exception:
            pass
    if shutil.which("trtexec"):
        from segpipe.tensorrt.trtexec import trtexec_version

        try:
            return trtexec_version(shutil.which("trtexec") or "trtexec")[0]
        except Exception:
            return None
    return None
