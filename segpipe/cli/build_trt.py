"""``segpipe build-trt``: ONNX model -> TensorRT engine (TensorRT 10.x / 11.x).

Accepts trtexec's spellings too (``--saveEngine``, ``--minShapes``, ``--optShapes``,
``--maxShapes``, ``--timingCacheFile``, ``--builderOptimizationLevel``, ``--explicitBatch``), so
an old command line such as ``segpipe build-trt --onnx=m.onnx --shapes=input_1:1x640x1280x3
--explicitBatch --workspace=2048 --saveEngine=m.bin --fp16`` still works. Heavy modules are
imported inside the command so ``segpipe --help`` stays fast.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rich.markup import escape

from segpipe.cli.binder import Flags, command
from segpipe.cli.common import RichReporter, console, err_console, print_written
from segpipe.errors import ConfigError
from segpipe.options.declare import flag
from segpipe.options.engine import BUILD, EngineOptions

TRTEXEC = "trtexec"


@dataclass(frozen=True)
class TrtexecFlags:
    """build-trt's flags that no EngineOptions field holds: trtexec's command line and binary."""

    explicit_batch: bool = flag(
        "--explicitBatch", default=False, help="Accepted for old command lines and ignored.", panel=BUILD
    )
    print_trtexec: bool = flag(
        "--print-trtexec", default=False, help="Print the equivalent trtexec command and exit.", panel=TRTEXEC
    )
    trt_version: int | None = flag(
        "--trt-version",
        default=None,
        help="TensorRT major for --print-trtexec: 8, 10 or 11 (default: installed).",
        panel=TRTEXEC,
        metavar="N",
    )
    use_trtexec: bool = flag(
        "--use-trtexec", default=False, help="Build with the trtexec binary on PATH.", panel=TRTEXEC
    )


def _note(message: str) -> None:
    err_console.print(f"[cyan]note:[/] {escape(message)}", markup=True, highlight=False)


@command(EngineOptions, TrtexecFlags)
def build_trt_command(flags: Flags) -> None:
    """Build a TensorRT engine from an ONNX model, verify it and write NAME.engine.json beside it."""
    started = time.perf_counter()
    if flags.explicit_batch:
        _note(
            "--explicitBatch is ignored: networks are always explicit-batch "
            "(TensorRT 10 ignores the flag, TensorRT 11 removed it)"
        )
    opts = flags.build(EngineOptions)
    if flags.print_trtexec:
        _print_trtexec(opts, flags.trt_version)
        return
    from segpipe.outpaths import check_output_file
    from segpipe.tensorrt.build import build_engine, engine_summary
    from segpipe.tensorrt.trtexec import run_trtexec

    check_output_file(opts.engine, "--engine", (opts.onnx,), "model.engine")
    path = (run_trtexec if flags.use_trtexec else build_engine)(opts, RichReporter())
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


def _print_trtexec(opts: EngineOptions, trt_version: int | None) -> None:
    """``--print-trtexec``: the trtexec command line of these options, for TensorRT 8, 10 or 11."""
    from segpipe.tensorrt.trtexec import trtexec_command

    if trt_version is not None and trt_version not in (8, 10, 11):
        raise ConfigError(f"--trt-version {trt_version}: expected 8, 10 or 11")
    major = trt_version or _installed_trt_major()
    if major is None:
        major = 10
        _note("no TensorRT found: printing the TensorRT 10 command (choose with --trt-version 8|10|11)")
    cmd = trtexec_command(opts, major)
    for note in cmd.notes:
        _note(note)
    console.print(str(cmd), markup=False, highlight=False)


def _describe(p: dict[str, Any]) -> str:
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
