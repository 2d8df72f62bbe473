"""``segpipe benchmark``: latency, throughput, peak memory, agreement with FP32 and (optionally)
mIoU of model files, each on one or several backends.

Every model x runtime (``--runtime``: ``auto``, names, or ``all`` that can read each file) is opened
with :func:`~segpipe.runtime.base.load_runner` and called on the same random batch. Timing is
steady (:mod:`segpipe.timing`): each is warmed up until its timings settle (at least ``warmup``
calls), then the candidates are timed one call each per round, ``runs`` rounds, in rotating
order, so a slow phase of a shared machine hits all of them; the median and its spread
(interquartile range / median) are reported, and a figure whose spread exceeds
:data:`~segpipe.timing.SPREAD_LIMIT` is marked unsteady instead of printed as a plain figure.
A call is what a user's program pays per batch: uint8 NHWC pixels in, numpy logits or class map
out, copies to and from the device included. Each row's argmax agreement with the first FP32 row
of the same input is computed on the timed batch. With a data set, each row's mIoU is computed
by :func:`segpipe.evaluate.evaluate`, the code behind ``segpipe evaluate``.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segpipe import __version__
from segpipe.errors import CheckpointError, ConfigError, SegpipeError, shorten
from segpipe.machine import machine_info
from segpipe.options import BenchmarkOptions
from segpipe.progress import Reporter
from segpipe.timing import SPREAD_LIMIT, interleaved, is_steady, latency_stats, warm_up
from segpipe.units import size_text
from segpipe.utils import atomic_write_text

__all__ = ["BenchmarkResult", "ModelBenchmark", "benchmark", "latency_stats", "write_report"]


@dataclass
class ModelBenchmark:
    """The figures of one model file on one backend."""

    model: str
    backend: str
    precision: str
    output_kind: str
    size: tuple[int, int]
    batch: int
    runs: int
    #: Per-call latency statistics in milliseconds (``spread``: interquartile range / median).
    mean_ms: float
    std_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    #: Images per second over the timed calls.
    throughput: float
    #: Peak device memory in MB where the backend reports it (``None`` on CPU).
    peak_memory_mb: float | None
    load_seconds: float
    miou: float | None = None
    device: str = ""
    #: Sliding window / TTA timed ("": one network call per batch); then ``size`` is the image's.
    inference: str = ""
    #: The model file's size in MB.
    size_mb: float = 0.0
    p10_ms: float = 0.0
    p25_ms: float = 0.0
    p75_ms: float = 0.0
    spread: float = 0.0
    #: False when the spread is above SPREAD_LIMIT: the latency figures are not to be trusted.
    steady: bool = True
    #: Untimed calls made before timing, and whether the timings had settled by then.
    warmup_calls: int = 0
    settled: bool = True
    #: Argmax agreement (0..1) with the reference FP32 row on the timed batch (None: no reference).
    agreement: float | None = None
    #: The row it was compared with ("model (backend)"); "" for the reference itself.
    reference: str = ""
    #: An INT8 file ``segpipe quantize`` wrote: the lowest argmax agreement its gate recorded (on
    #: real images, the target's INT8 arithmetic emulated) and its figures in words; else None, "".
    gate_agreement: float | None = None
    gate: str = ""

    label = property(lambda self: f"{Path(self.model).name} ({self.backend})")

    def latency_text(self) -> str:  # the median, unless the spread is too wide to trust it
        return f"{self.p50_ms:.2f}" if self.steady else "unsteady"

    def agreement_text(self) -> str:  # on the timed batch; beside it the file's own gate figure
        text = (
            "-"
            if self.agreement is None
            else f"{100 * self.agreement:.2f}%"
            if self.reference
            else "reference"
        )
        return text if self.gate_agreement is None else f"{text} (gate {100 * self.gate_agreement:.2f}%)"

    def row(self) -> list[Any]:
        """A table row (see :data:`COLUMNS`)."""
        dash = "-"
        return [
            Path(self.model).name,
            f"{self.backend} {self.device}",
            f"{self.batch} x {size_text(self.size, label=False)} {self.precision}"
            + (f" {self.inference}" if self.inference else ""),
            self.latency_text(),
            f"{self.p10_ms:.2f}-{self.p90_ms:.2f}",
            f"{100 * self.spread:.0f}%" + ("" if self.steady else " (too wide)"),
            f"{self.throughput:.1f}" if self.steady else dash,
            dash if self.peak_memory_mb is None else f"{self.peak_memory_mb:.0f}",
            self.agreement_text(),
            dash if self.miou is None else f"{self.miou:.4f}",
        ]


#: Header of :meth:`ModelBenchmark.row` (input = N×H×W and precision; latencies in ms).
COLUMNS = [
    "model",
    "backend",
    "input (N x W x H)",
    "median ms",
    "p10-p90 ms",
    "spread",
    "images/s",
    "peak MB",
    "argmax vs FP32\n(random pixels)",  # the timed batch; "(gate N%)": the file's quantize gate
    "mIoU",
]


@dataclass
class BenchmarkResult:
    """Every row's figures plus what they were measured on."""

    models: list[ModelBenchmark]
    warmup: int
    runs: int
    data_root: str | None = None
    machine: dict[str, Any] = field(default_factory=dict)
    #: CPU threads asked for (0: the backends' defaults).
    threads: int = 0
    #: What the argmax agreements were measured on.
    agreement_on: str = "the timed batch: uniform random pixels"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (the ``--report`` file)."""
        return {
            "segpipe_version": __version__,
            "warmup": self.warmup,
            "runs": self.runs,
            "threads": self.threads,
            "spread_limit": SPREAD_LIMIT,
            "data_root": self.data_root,
            "agreement_on": self.agreement_on,
            "machine": self.machine,
            "models": [{**asdict(m), "size": list(m.size)} for m in self.models],
        }


def _runner_device(runner: Any) -> str:
    """Where a runner computes, in a word (``cpu``, ``cuda:0``, ``CUDAExecutionProvider``...)."""
    providers = getattr(runner, "providers", None)
    if providers:
        return str(providers[0]).replace("ExecutionProvider", "").lower()
    dev = getattr(runner, "torch_device", None)
    if dev is not None:
        return str(dev)
    return "cuda" if runner.backend == "tensorrt" else str(runner.device)


def _call(runner: Any, images: np.ndarray, what: str, fn: Any = None) -> Any:
    try:
        return runner(images) if fn is None else fn(images)
    except SegpipeError:
        raise
    except Exception as e:  # a backend's own error: one line naming the model and the input
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise SegpipeError(
            f"{runner.path}: inference on {what} failed ({type(e).__name__}: {shorten(first)})"
        ) from e


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """PyTorch's intra-op thread count set to ``threads`` for the block (0: left as it is)."""
    torch = sys.modules.get("torch")  # only a .pth model's runner (already open) computes with torch
    if not threads or torch is None:
        yield
        return

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class _Candidate:
    """One model x runtime, open and ready to be called."""

    path: Path
    runner: Any
    call: Callable[[], Any]
    labels: Callable[[], np.ndarray]
    batch: int
    size: tuple[int, int]
    load_seconds: float


def _prepare(path: Path, runtime: str, opts: BenchmarkOptions, reporter: Reporter, stack: Any) -> _Candidate:
    """Open ``path`` with ``runtime`` and build its timed call on the benchmark's random input."""
    from segpipe.runtime.base import to_labels
    from segpipe.runtime.pipeline import network_size, open_runner, predict_arrays

    extra = {"threads": opts.threads} if opts.threads else {}
    t0 = time.perf_counter()
    lenient = len(opts.models) > 1 or "," in opts.runtime or opts.runtime == "all"
    runner = stack.enter_context(
        open_runner(opts, reporter, model=path, runtime=runtime, lenient=lenient, **extra)
    )
    load_seconds = time.perf_counter() - t0
    width, height = network_size(runner, opts.size)
    rng = np.random.default_rng(opts.seed)  # the same images for every candidate of one size
    spec, fn, batch, timed = opts.spec, None, opts.batch, (width, height)
    if spec.plain:
        images = rng.integers(0, 256, (opts.batch, height, width, 3), dtype=np.uint8)
        what = f"a batch of {opts.batch} at {size_text((width, height))}"
    else:  # one whole image per call through the sliding window / TTA, windows batched
        timed, batch = opts.image_size or (2 * width, 2 * height), 1
        images = rng.integers(0, 256, (1, timed[1], timed[0], 3), dtype=np.uint8)
        what = f"a {size_text(timed)} image ({spec.describe()})"

        def fn(x: np.ndarray) -> list[np.ndarray]:
            return predict_arrays(runner, list(x), (width, height), batch_size=opts.batch, spec=spec)

    last: dict[str, Any] = {}  # the latest output: the agreement needs no extra call

    def call() -> None:
        last["out"] = _call(runner, images, what, fn)

    def labels() -> np.ndarray:
        out = last["out"]
        return np.stack(out) if fn is not None else to_labels(out, runner.info.mode, runner.output_kind)

    return _Candidate(path, runner, call, labels, batch, timed, load_seconds)


def plan(opts: BenchmarkOptions) -> list[tuple[Path, str]]:
    """(model, runtime) pairs: ``auto`` one per model; ``all`` every installed runtime that reads
    each file; names: those of them that read each file (a file none of them reads: ``auto``)."""
    from segpipe.runtime.base import runtimes_for

    names = [n for n in opts.runtime.split(",") if n]
    pairs: list[tuple[Path, str]] = []
    for path in opts.models:
        readers = runtimes_for(path)
        chosen = readers if names == ["all"] else [n for n in names if n in readers]
        pairs += [(Path(path), name) for name in (chosen or ["auto"])]
    if names not in (["auto"], ["all"]):
        unused = [n for n in names if n != "auto" and not any(r == n for _, r in pairs)]
        if unused:
            raise ConfigError(
                f"--runtime {unused[0]}: none of the models is a file it reads (or it is not installed)"
            )
    return pairs


def _agreements(rows: list[ModelBenchmark], labels: list[np.ndarray]) -> None:
    """Each row's argmax agreement with the first FP32 row whose class maps have its shape."""
    for row, lab in zip(rows, labels, strict=True):
        ref = next(
            (i for i, r in enumerate(rows) if r.precision == "fp32" and labels[i].shape == lab.shape), None
        )
        if ref is None:
            continue
        row.agreement = float((labels[ref] == lab).mean())
        row.reference = "" if rows[ref] is row else rows[ref].label


#: The benchmark's options that mean the same to ``evaluate`` (its mIoU column runs evaluate's
#: code); the runner keywords (--mean, --runtime...) reach it through the runner benchmark opens.
EVALUATE_FIELDS = (
    "data_root", "size", "num_classes", "device", "arch", "encoder", "trust_checkpoint",
    "tile", "overlap", "tta_flip", "tta_scales",
)  # fmt: skip


def model_miou(path: Path, opts: BenchmarkOptions, reporter: Reporter | None = None,
               runtime: str | None = None) -> float:  # fmt: skip
    """mIoU of one model on ``opts.data_root``, through ``segpipe evaluate``'s code."""
    from segpipe.evaluate import evaluate
    from segpipe.options import EvaluateOptions
    from segpipe.runtime.pipeline import open_runner

    assert opts.data_root is not None
    same = {name: getattr(opts, name) for name in EVALUATE_FIELDS}
    eval_opts = EvaluateOptions(model=path, batch_size=opts.batch, **same)
    # opened here: --mean/--std/--input-layout apply only to models without metadata
    with open_runner(opts, model=path, runtime=runtime, lenient=True) as runner:
        return float(evaluate(eval_opts, reporter, runner=runner).miou)


def benchmark(opts: BenchmarkOptions, reporter: Reporter | None = None) -> BenchmarkResult:
    """Benchmark every model x runtime of ``opts`` in interleaved rounds; write ``opts.report``."""
    from segpipe.runtime.base import runner_class

    reporter = reporter or Reporter()
    for path in opts.models:  # fail at once, not after minutes spent on the first models
        runner_class(path)
        if not Path(path).is_file():
            raise CheckpointError(f"model file {path} does not exist")
    if opts.data_root is not None and not Path(opts.data_root).is_dir():
        what = "is a file, not a folder" if Path(opts.data_root).is_file() else "folder does not exist"
        raise ConfigError(f"--data-root {opts.data_root}: {what}")
    pairs = plan(opts)
    rows: list[ModelBenchmark] = []
    with contextlib.ExitStack() as stack:
        cands = [_prepare(path, runtime, opts, reporter, stack) for path, runtime in pairs]
        stack.enter_context(_torch_threads(opts.threads))
        warm = []
        for c in cands:
            with reporter.task(f"warm-up {c.path.name} ({c.runner.backend})", transient=True):
                warm.append(warm_up(c.call, opts.warmup))
        with reporter.task(f"benchmark ({len(cands)} x {opts.runs} calls, interleaved)",
                           total=len(cands) * opts.runs) as task:  # fmt: skip
            times = interleaved([c.call for c in cands], opts.runs, on_call=lambda i, ms: task.advance(ms=ms))
        labels = [np.asarray(c.labels()) for c in cands]
        for c, w, t in zip(cands, warm, times, strict=True):
            stats = latency_stats(t)
            peak = c.runner.peak_memory_bytes()
            rows.append(
                ModelBenchmark(
                    model=str(c.path),
                    backend=c.runner.backend,
                    precision=c.runner.info.precision,
                    output_kind=c.runner.output_kind,
                    size=c.size,
                    batch=c.batch,
                    runs=opts.runs,
                    throughput=c.batch * len(t) / (sum(t) / 1000.0),
                    peak_memory_mb=None if peak is None else peak / 2**20,
                    load_seconds=c.load_seconds,
                    device=_runner_device(c.runner),
                    inference=opts.spec.describe(),
                    size_mb=c.path.stat().st_size / 1e6,
                    steady=is_steady(stats),
                    warmup_calls=w.calls,
                    settled=w.settled,
                    **stats,
                )
            )
    _agreements(rows, labels)
    from segpipe.export.int8_gate import file_gate_summary

    for row in (r for r in rows if r.precision == "int8"):  # the figure quantize's gate recorded
        row.gate_agreement, row.gate = file_gate_summary(row.model) or (None, "")
    unsteady = [r.label for r in rows if not r.steady]
    if unsteady:
        reporter.warn(
            f"{', '.join(unsteady)}: timings spread more than {100 * SPREAD_LIMIT:.0f}% of the median "
            "(a busy machine?): marked unsteady; more --runs or a quieter machine give a figure"
        )
    if opts.data_root is not None:
        for row, (path, runtime) in zip(rows, pairs, strict=True):
            row.miou = model_miou(path, opts, reporter, runtime)
    result = BenchmarkResult(
        rows,
        opts.warmup,
        opts.runs,
        str(opts.data_root) if opts.data_root is not None else None,
        machine_info(),
        opts.threads,
        f"the timed batch: uniform random pixels (--seed {opts.seed})",
    )
    if opts.report is not None:
        write_report(result, opts.report)
    return result


def write_report(result: BenchmarkResult, path: str | Path) -> Path:
    """The figures as JSON, written atomically."""
    return atomic_write_text(path, json.dumps(result.to_dict(), indent=2) + "\n")
