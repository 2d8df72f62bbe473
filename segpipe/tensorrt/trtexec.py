"""trtexec: the command line equivalent to a build (``--print-trtexec``) and ``--use-trtexec``.

trtexec flags changed across TensorRT majors; :func:`trtexec_command` writes the one that matches:

* TensorRT 8.x: ``--workspace=N`` (MiB), ``--explicitBatch``, ``--fp16``; ``--int8`` for a Q/DQ
  graph (explicit quantization still needs the INT8 flag there).
* TensorRT 10.x: ``--memPoolSize=workspace:N`` with N in MiB and no suffix (``--workspace`` was
  replaced; NVIDIA's 8.x->10.x trtexec migration example is ``--memPoolSize=workspace:1024``, and the
  10.x help says "If none of suffixes is appended, the default unit is in MiB"; the base-2 suffixes
  B/K/M/G are not used because older trtexec help texts do not list them), no ``--explicitBatch``
  (implicit batch is gone), ``--fp16`` for weak typing, ``--stronglyTyped`` for a graph that carries
  FP16 or Q/DQ (INT8) nodes, never together with ``--fp16``/``--int8``.
* TensorRT 11.x: no ``--fp16``/``--int8`` ("Removed --fp16 (and --bf16, --fp8, --int4, --best)"; "--stronglyTyped
  is no longer needed: it is always enabled"); an FP32 graph is first converted with
  ``python -m modelopt.onnx.autocast --onnx_path IN --output_path OUT --low_precision_type fp16
  --keep_io_types`` (flag names from ``modelopt/onnx/autocast/__main__.py`` in
  NVIDIA/TensorRT-Model-Optimizer).

References:

* https://docs.nvidia.com/deeplearning/tensorrt/latest/api/migration/tensorrt-8x-to-10x-trtexec.html
* https://docs.nvidia.com/deeplearning/tensorrt/latest/api/migration/tensorrt-10x-to-11x-trtexec.html
  (the 11.4.1 page's example: ``python -m modelopt.onnx.autocast --onnx_path model.onnx
  --output_path model_fp16.onnx`` then ``trtexec --onnx=model_fp16.onnx --saveEngine=engine.plan``).
* ``trtexec --help`` text of a late 10.x ``samples/common/sampleOptions.cpp``: ``--memPoolSize``,
  ``--minShapes/--optShapes/--maxShapes`` ("if only opt shapes is supplied then it will be expanded
  so that min shapes and max shapes are set to the same values"), ``--timingCacheFile=<file>``,
  ``--builderOptimizationLevel`` (0-5, default 3), ``--stronglyTyped``, ``--saveEngine=<file>``,
  ``--skipInference``; the banner ``&&&& RUNNING TensorRT.trtexec [TensorRT v100500]`` (v8601 for
  8.6.1) gives the version.

Not verified here: no trtexec on this machine; the flag spellings come from the texts above. For 8.x,
``--builderOptimizationLevel`` exists from 8.6 only (written only when the level is not the default),
and which 8.x minor first spells build-only mode ``--skipInference`` is not settled by the docs read.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from segpipe._optional import available
from segpipe.errors import DependencyError, ExportError
from segpipe.progress import Reporter
from segpipe.tensorrt.build import (
    EngineOptions,
    OnnxSummary,
    inspect_onnx,
    verify_built_engine,
    write_engine_sidecar,
)
from segpipe.tensorrt.gpu import gpu_description
from segpipe.tensorrt.precision import Fp16Plan, autocast_fp16, decide_for_options, decide_precision
from segpipe.tensorrt.shapes import format_shapes
from segpipe.utils import atomic_path

SUPPORTED_MAJORS = (8, 10, 11)


@dataclass(frozen=True)
class TrtexecCommand:
    """A trtexec command line plus what must run before it and notes for the user."""

    argv: list[str]
    prepare: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(shlex.join(cmd) for cmd in [*self.prepare, self.argv])


def trtexec_command(
    opts: EngineOptions,
    trt_major: int,
    *,
    summary: OnnxSummary | None = None,
    onnx_path: str | Path | None = None,
    engine_path: str | Path | None = None,
    exe: str = "trtexec",
) -> TrtexecCommand:
    """The trtexec command line equivalent to ``build_engine(opts)`` on TensorRT ``trt_major``.

    ``summary`` (profile, graph precision, dynamic inputs) is read from ``opts.onnx`` when not
    given, which needs the onnx package, not tensorrt. ``onnx_path`` / ``engine_path`` override the
    paths written into the command (``--use-trtexec`` builds into a temporary file). Shapes are
    passed as ``--minShapes/--optShapes/--maxShapes`` only when the model has dynamic inputs (trtexec
    ignores them for a static model).
    """
    if trt_major not in SUPPORTED_MAJORS and trt_major < 12:
        raise ExportError(
            f"--trt-version {trt_major}: expected one of {', '.join(map(str, SUPPORTED_MAJORS))}"
        )
    if summary is None:
        summary = inspect_onnx(opts)
    onnx = str(onnx_path or opts.onnx)
    notes: list[str] = list(summary.notes)
    prepare: list[list[str]] = []
    decision = decide_precision(
        trt_major, summary.precision, opts.fp16, modelopt_available=True, source=onnx, int8=opts.int8
    )
    if decision.plan is Fp16Plan.AUTOCAST:
        converted = str(Path(onnx).with_suffix(".fp16.onnx"))
        prepare.append(
            [
                "python",
                "-m",
                "modelopt.onnx.autocast",
                "--onnx_path",
                onnx,
                "--output_path",
                converted,
                "--low_precision_type",
                "fp16",
                "--keep_io_types",
            ]
        )
        notes.append(
            f"TensorRT {trt_major}.x has no --fp16 (every network is strongly typed): the model is first "
            'converted with ModelOpt AutoCast (pip install "nvidia-modelopt[onnx]"); or re-export it '
            "with `segpipe export-onnx --half`"
        )
        onnx = converted
    elif decision.precision == "int8" and decision.note:
        notes.append(decision.note)
    elif opts.fp16 and trt_major >= 11:
        notes.append(
            f"TensorRT {trt_major}.x has no --fp16: {onnx} already computes in fp16 and is built as typed"
        )
    argv = [exe, f"--onnx={onnx}", f"--saveEngine={engine_path or opts.engine}"]
    if trt_major < 10:
        argv.append("--explicitBatch")
    if summary.dynamic:
        profile = summary.profile
        argv += [
            f"--minShapes={format_shapes({n: p.min for n, p in profile.items()})}",
            f"--optShapes={format_shapes({n: p.opt for n, p in profile.items()})}",
            f"--maxShapes={format_shapes({n: p.max for n, p in profile.items()})}",
        ]
    if opts.workspace_mib:
        argv.append(
            f"--workspace={opts.workspace_mib}"
            if trt_major < 10
            else f"--memPoolSize=workspace:{opts.workspace_mib}"  # MiB: trtexec's default unit
        )
    argv += [f"--{flag.lower()}" for flag in decision.builder_flags]  # --fp16 (8/10), --int8 (8.x)
    if decision.strongly_typed and trt_major == 10:
        argv.append("--stronglyTyped")  # FP16 or Q/DQ graph; never with --fp16/--int8
        if opts.fp16 and decision.precision == "fp16":
            notes.append(f"--fp16 dropped: {onnx} already computes in fp16, built with --stronglyTyped")
    if opts.timing_cache:
        argv.append(f"--timingCacheFile={opts.timing_cache}")
    if trt_major >= 10 or opts.opt_level != 3:
        argv.append(f"--builderOptimizationLevel={opts.opt_level}")  # TensorRT 8.6+ on 8.x
    if opts.verbose:
        argv.append("--verbose")
    argv.append("--skipInference")  # 10.x/11.x help; early 8.x releases unverified (see module docstring)
    return TrtexecCommand(argv, prepare, notes)


def parse_trtexec_version(text: str) -> tuple[int, int, int] | None:
    """``[TensorRT v100500]`` -> (10, 5, 0); ``[TensorRT v8601]`` -> (8, 6, 1); dotted forms too."""
    m = re.search(r"TensorRT v?(\d+)\.(\d+)\.(\d+)", text)
    if m:
        return int(m.group(1)), int(m.group(2)), int(m.group(3))
    m = re.search(r"\[TensorRT v(\d{4,})\]", text)
    if not m:
        return None
    digits = m.group(1)
    # 8.x packs major*1000 + minor*100 + patch (v8601); 10.x+ packs major*10000 + minor*100 + patch.
    major = int(digits[:-4]) if len(digits) >= 6 else int(digits[:-3])
    rest = int(digits[-4:]) if len(digits) >= 6 else int(digits[-3:])
    return major, rest // 100, rest % 100


def installed_trt_major() -> int | None:
    """Major version of the tensorrt Python package, else of trtexec on PATH, else None."""
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        try:
            import tensorrt

            return int(str(tensorrt.__version__).split(".")[0])
        except Exception:
            pass
    exe = shutil.which("trtexec")
    if exe:
        try:
            return trtexec_version(exe)[0]
        except Exception:
            return None
    return None


def find_trtexec() -> str:
    """Path of ``trtexec`` on PATH; one-line DependencyError when missing."""
    exe = shutil.which("trtexec")
    if exe is None:
        raise DependencyError(
            "--use-trtexec: trtexec is not on PATH (it ships with TensorRT's tar/deb packages and NVIDIA's "
            "containers, e.g. /usr/src/tensorrt/bin); add it to PATH or drop --use-trtexec"
        )
    return exe


def trtexec_version(exe: str) -> tuple[int, int, int]:
    """The TensorRT version of a trtexec binary, from the banner of ``trtexec --help``."""
    try:
        proc = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ExportError(f"cannot run {exe} --help: {e}") from e
    version = parse_trtexec_version(proc.stdout + proc.stderr)
    if version is None:
        raise ExportError(
            f"cannot tell the TensorRT version of {exe}: no '[TensorRT vNNNN]' in its --help output"
        )
    return version


def run_trtexec(opts: EngineOptions, reporter: Reporter | None = None, exe: str | None = None) -> Path:
    """Build ``opts.engine`` with the trtexec binary instead of the Python API (``--use-trtexec``).

    The flags are translated for the binary's TensorRT version (read from ``trtexec --help``); on
    TensorRT 11 an FP32 model with ``--fp16`` is converted with ModelOpt AutoCast first. The engine
    is written to a temporary file and renamed when trtexec succeeds, verified like
    :func:`~segpipe.tensorrt.build.build_engine` when the tensorrt Python package is importable,
    and gets the same sidecar.
    """
    reporter = reporter or Reporter()
    exe = exe or find_trtexec()
    version = trtexec_version(exe)
    major, version_text = version[0], ".".join(map(str, version))
    summary = inspect_onnx(opts)
    decision = decide_for_options(major, summary, opts, reporter)
    can_verify = opts.verify and available("tensorrt")
    with tempfile.TemporaryDirectory(prefix="segpipe-trtexec-") as tmpdir:
        src, built = Path(opts.onnx), summary
        if decision.plan is Fp16Plan.AUTOCAST:
            src = autocast_fp16(opts.onnx, Path(tmpdir) / f"{src.stem}.fp16.onnx")
            built = replace(summary, precision="fp16")
        with atomic_path(opts.engine) as tmp:
            cmd = trtexec_command(opts, major, summary=built, onnx_path=src, engine_path=tmp, exe=exe)
            reporter.info(f"running {shlex.join(cmd.argv)}")
            with reporter.task(f"trtexec (TensorRT {version_text}) building {opts.engine}"):
                proc = subprocess.run(cmd.argv, capture_output=True, text=True, check=False)
            output = proc.stdout + proc.stderr
            if opts.verbose:
                for line in output.splitlines():
                    reporter.info(line)
            if proc.returncode != 0 or tmp.stat().st_size == 0:
                errors = [ln.strip() for ln in output.splitlines() if "[E]" in ln]
                last = errors[-1] if errors else (output.strip().splitlines() or ["no output"])[-1]
                raise ExportError(
                    f"trtexec failed (exit {proc.returncode}) building {opts.engine} from {opts.onnx}: {last}"
                )
            if can_verify:
                verify_built_engine(opts, tmp, summary, decision.precision, reporter)
    if opts.verify and not can_verify:
        reporter.warn(f"{opts.engine} not verified: running it needs the tensorrt Python package")
    write_engine_sidecar(opts, summary, decision, version_text, gpu_description(), builder="trtexec")
    return Path(opts.engine)
