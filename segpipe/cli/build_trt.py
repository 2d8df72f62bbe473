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

from segpipe.cli.binder import Flags, command
from segpipe.cli.common import RichReporter, console, err_console, print_written, say
from segpipe.errors import ConfigError
from segpipe.options.declare import Panel
from segpipe.options.engine import BUILD, EngineOptions

TRTEXEC = Panel("trtexec")


# fmt: off
@dataclass(frozen=True)
class TrtexecFlags:
    """build-trt's flags that no EngineOptions field holds: trtexec's command line and binary."""

    explicit_batch: bool = BUILD.flag("--explicitBatch", False, "Accepted for old command lines and ignored.")
    print_trtexec: bool = TRTEXEC.flag("--print-trtexec", False,
        "Print the equivalent trtexec command and exit.")
    trt_version: int | None = TRTEXEC.flag("--trt-version", None,
        "TensorRT major for --print-trtexec: 8, 10 or 11 (default: installed).", metavar="N")
    use_trtexec: bool = TRTEXEC.flag("--use-trtexec", False, "Build with the trtexec binary on PATH.")
# fmt: on


def _note(message: str) -> None:
    say("note:", "cyan", f" {message}", err_console)


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
    from segpipe.tensorrt.sidecar import profile_text
    from segpipe.tensorrt.trtexec import run_trtexec

    check_output_file(opts.engine, "--engine", (opts.onnx,), "model.engine")
    path = (run_trtexec if flags.use_trtexec else build_engine)(opts, RichReporter())
    info = engine_summary(path)
    print_written(path, "engine")
    sidecar = path.with_name(path.name + ".json")
    if sidecar.is_file():
        print_written(sidecar, "sidecar")
    console.print(
        f"precision {info.get('precision', '?')} ({info.get('fp16_method', '?')}), "
        f"TensorRT {info.get('tensorrt_version', '?')} on {info.get('gpu_name', '?')}, "
        f"profile {profile_text(info.get('profile') or {}) or '?'}, {time.perf_counter() - started:.1f} s"
    )


def _print_trtexec(opts: EngineOptions, trt_version: int | None) -> None:
    """``--print-trtexec``: the trtexec command line of these options, for TensorRT 8, 10 or 11."""
    from segpipe.tensorrt.trtexec import installed_trt_major, trtexec_command

    if trt_version is not None and trt_version not in (8, 10, 11):
        raise ConfigError(f"--trt-version {trt_version}: expected 8, 10 or 11")
    major = trt_version or installed_trt_major()
    if major is None:
        major = 10
        _note("no TensorRT found: printing the TensorRT 10 command (choose with --trt-version 8|10|11)")
    cmd = trtexec_command(opts, major)
    for note in cmd.notes:
        _note(note)
    console.print(str(cmd))
