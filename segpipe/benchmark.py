"""``segpipe benchmark``: latency, throughput, peak memory and (optionally) mIoU of model files.

Any backend the runtime knows (``.pth`` with PyTorch, ``.onnx`` with ONNX Runtime, ``.engine``
with TensorRT) is opened with :func:`~segpipe.runtime.base.load_runner` and called on the same
random batch: ``warmup`` untimed calls, then ``runs`` timed ones. A call is what a user's program
pays per batch: uint8 NHWC pixels in, numpy logits or class map out, copies to and from the device
included (the runners return host arrays, so every timed call is complete when it returns).
With a data set, each model's mIoU is computed by :func:`segpipe.evaluate.evaluate`, the code
behind ``segpipe evaluate``.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segpipe import __version__
from segpipe.errors import CheckpointError, ConfigError, SegpipeError, shorten
from segpipe.machine import machine_info
from segpipe.options import BenchmarkOptions
from segpipe.progress import Reporter
from segpipe.units import size_text, speed_text
from segpipe.utils import atomic_write_text


@dataclass
class ModelBenchmark:
    """The figures of one model file."""

    model: str
    backend: str
    precision: str
    output_kind: str
    size: tuple[int, int]
    batch: int
    runs: int
    #: Per-call latency statistics in milliseconds.
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

    def row(self) -> list[Any]:
        """A table row (see :data:`COLUMNS`)."""
        dash = "-"
        return [
            Path(self.model).name,
            f"{self.backend} {self.device}",
            f"{self.batch} x {size_text(self.size, label=False)} {self.precision}"
            + (f" {self.inference}" if self.inference else ""),
            f"{self.mean_ms:.2f}",
            f"{self.p50_ms:.2f}",
            f"{self.p90_ms:.2f}",
            f"{self.p99_ms:.2f}",
            f"{self.throughput:.1f}",
            dash if self.peak_memory_mb is None else f"{self.peak_memory_mb:.0f}",
            dash if self.miou is None else f"{self.miou:.4f}",
        ]


#: Header of :meth:`ModelBenchmark.row` (input = N×H×W and precision; latencies in ms).
COLUMNS = [
    "model",
    "backend",
    "input (N x W x H)",
    "mean ms",
    "p50",
    "p90",
    "p99",
    "images/s",
    "peak MB",
    "mIoU",
]


@dataclass
class BenchmarkResult:
    """Every model's figures plus what they were measured on."""

    models: list[ModelBenchmark]
    warmup: int
    runs: int
    data_root: str | None = None
    machine: dict[str, Any] = field(default_factory=dict)
    #: CPU threads asked for (0: the backends' defaults).
    threads: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (the ``--report`` file)."""
        return {
            "segpipe_version": __version__,
            "warmup": self.warmup,
            "runs": self.runs,
            "threads": self.threads,
            "data_root": self.data_root,
            "machine": self.machine,
            "models": [{**asdict(m), "size": list(m.size)} for m in self.models],
        }


def latency_stats(samples_ms: list[float] | np.ndarray) -> dict[str, float]:
    """mean, std, min and the 50th / 90th / 99th percentiles (linear interpolation) of latencies."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no latency samples")
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {
        "mean_ms": float(a.mean()),
        "std_ms": float(a.std()),
        "min_ms": float(a.min()),
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
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


def _call(runner: Any, images: np.ndarray, what: str, fn: Any = None) -> np.ndarray:
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


def _open_runner(path: Path, opts: BenchmarkOptions, *, lenient: bool, **extra: Any) -> Any:
    """The runner of one model file with the benchmark's model options (device, bare-state_dict
    description, trust, and --mean/--std/--input-layout for ONNX files without metadata)."""
    from segpipe.runtime.base import load_runner

    return load_runner(
        path,
        device=opts.device,
        runtime=opts.runtime,
        num_classes=opts.num_classes,
        arch=opts.arch,
        encoder=opts.encoder,
        trust=opts.trust_checkpoint,
        mean=opts.mean,
        std=opts.std,
        input_layout=opts.input_layout,
        lenient=lenient,
        **extra,
    )


def benchmark_model(path: Path, opts: BenchmarkOptions, reporter: Reporter | None = None) -> ModelBenchmark:
    """Time one model file as described in the module docstring (mIoU left ``None``)."""
    from segpipe.runtime.pipeline import network_size

    reporter = reporter or Reporter()
    extra = {"threads": opts.threads} if opts.threads else {}
    t0 = time.perf_counter()
    runner = _open_runner(path, opts, lenient=len(opts.models) > 1, reporter=reporter, **extra)
    with runner, _torch_threads(opts.threads):
        load_seconds = time.perf_counter() - t0
        width, height = network_size(runner, opts.size)
        rng = np.random.default_rng(opts.seed)
        spec, fn, batch, timed_size = opts.spec, None, opts.batch, (width, height)
        if spec.plain:
            images = rng.integers(0, 256, (opts.batch, height, width, 3), dtype=np.uint8)
            what = f"a batch of {opts.batch} at {size_text((width, height))}"
        else:  # one whole image per call through the sliding window / TTA, windows batched
            from segpipe.runtime.pipeline import predict_arrays

            timed_size = opts.image_size or (2 * width, 2 * height)
            images = rng.integers(0, 256, (1, timed_size[1], timed_size[0], 3), dtype=np.uint8)
            what = f"a {size_text(timed_size)} image ({spec.describe()})"
            batch = 1

            def fn(x: np.ndarray) -> list[np.ndarray]:
                return predict_arrays(runner, list(x), (width, height), batch_size=opts.batch, spec=spec)

        times: list[float] = []
        with reporter.task(
            f"benchmark {path.name} ({runner.backend})", total=opts.warmup + opts.runs
        ) as task:
            for _ in range(opts.warmup):
                _call(runner, images, what, fn)
                task.advance(phase="warm-up")
            for _ in range(opts.runs):
                start = time.perf_counter()
                _call(runner, images, what, fn)
                times.append((time.perf_counter() - start) * 1000.0)
                task.advance(ms=times[-1])
        peak = runner.peak_memory_bytes()
        stats = latency_stats(times)
        return ModelBenchmark(
            model=str(path),
            backend=runner.backend,
            precision=runner.info.precision,
            output_kind=runner.output_kind,
            size=timed_size,
            batch=batch,
            runs=opts.runs,
            throughput=batch * len(times) / (sum(times) / 1000.0),
            peak_memory_mb=None if peak is None else peak / 2**20,
            load_seconds=load_seconds,
            device=_runner_device(runner),
            inference=spec.describe(),
            size_mb=path.stat().st_size / 1e6,
            **stats,
        )


def model_miou(path: Path, opts: BenchmarkOptions, reporter: Reporter | None = None) -> float:
    """mIoU of one model on ``opts.data_root``, through ``segpipe evaluate``'s code."""
    from segpipe.evaluate import evaluate
    from segpipe.options import EvaluateOptions

    assert opts.data_root is not None
    eval_opts = EvaluateOptions(
        data_root=opts.data_root,
        model=path,
        size=opts.size,
        num_classes=opts.num_classes,
        device=opts.device,
        batch_size=opts.batch,
        arch=opts.arch,
        encoder=opts.encoder,
        trust_checkpoint=opts.trust_checkpoint,
        tile=opts.tile,
        overlap=opts.overlap,
        tta_flip=opts.tta_flip,
        tta_scales=opts.tta_scales,
    )
    # opened here: --mean/--std/--input-layout apply only to models without metadata
    with _open_runner(path, opts, lenient=True) as runner:
        return float(evaluate(eval_opts, reporter, runner=runner).miou)


def benchmark(opts: BenchmarkOptions, reporter: Reporter | None = None) -> BenchmarkResult:
    """Benchmark every model of ``opts`` one after the other; write ``opts.report`` when asked."""
    from segpipe.runtime.base import runner_class

    reporter = reporter or Reporter()
    for path in opts.models:  # fail at once, not after minutes spent on the first models
        runner_class(path)
        if not Path(path).is_file():
            raise CheckpointError(f"model file {path} does not exist")
    if opts.data_root is not None and not Path(opts.data_root).is_dir():
        what = "is a file, not a folder" if Path(opts.data_root).is_file() else "folder does not exist"
        raise ConfigError(f"--data-root {opts.data_root}: {what}")
    results = []
    for path in opts.models:
        bench = benchmark_model(Path(path), opts, reporter)
        if opts.data_root is not None:
            bench.miou = model_miou(Path(path), opts, reporter)
        results.append(bench)
    result = BenchmarkResult(
        results,
        opts.warmup,
        opts.runs,
        str(opts.data_root) if opts.data_root is not None else None,
        machine_info(),
        opts.threads,
    )
    if opts.report is not None:
        write_report(result, opts.report)
    return result


def write_report(result: BenchmarkResult, path: str | Path) -> Path:
    """The figures as JSON, written atomically."""
    return atomic_write_text(path, json.dumps(result.to_dict(), indent=2) + "\n")


# ---- the precision ladder ------------------------------------------------------------------------
PRECISION_ORDER = ("fp32", "fp16", "int8")
#: Header of :func:`precision_ladder` rows.
LADDER_COLUMNS = ["precision", "model", "backend", "size MB", "mean ms", "vs FP32", "mIoU", "mIoU vs FP32"]


def precision_ladder(result: BenchmarkResult) -> list[list[str]]:
    """FP32, FP16 and INT8 models of one backend side by side: size, latency and mIoU, each also
    relative to the FP32 model of the same backend (speed-up, mIoU points).

    Empty unless some backend has models of two or more precisions (the ladder compares those).
    """
    by_backend: dict[str, list[ModelBenchmark]] = {}
    for m in result.models:
        by_backend.setdefault(m.backend, []).append(m)
    rows: list[list[str]] = []
    for backend, models in by_backend.items():
        if len({m.precision for m in models}) < 2:
            continue
        models = sorted(
            models, key=lambda m: PRECISION_ORDER.index(m.precision) if m.precision in PRECISION_ORDER else 9
        )
        base = next((m for m in models if m.precision == "fp32"), None)
        for m in models:
            speed = "-" if base is None else "reference" if m is base else speed_text(base.mean_ms, m.mean_ms)
            if m.miou is None:
                miou = delta = "-"
            else:
                miou = f"{m.miou:.4f}"
                delta = "-" if base is None or base.miou is None else f"{100 * (m.miou - base.miou):+.2f} pt"
            rows.append(
                [
                    m.precision.upper(),
                    Path(m.model).name,
                    backend,
                    f"{m.size_mb:.2f}",
                    f"{m.mean_ms:.2f}",
                    speed,
                    miou,
                    delta,
                ]
            )
    return rows
