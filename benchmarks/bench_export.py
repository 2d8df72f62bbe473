"""Benchmark of ``segpipe export-onnx`` (prints figures; not a timed test).

Measures, for one random-initialised model (default Unet / efficientnet-b0 at 512x512, on CPU):

(a) the time of each export step (load, export, simplify, metadata, verify, write) and the total,
    taken from the progress the core reports, so the figures are those of the real command;
(b) the latency at batch 1 of the exported model under ONNX Runtime against the same checkpoint in
    eager PyTorch, both through ``segpipe benchmark``'s code (same random input, same timing).

    .venv/bin/python benchmarks/bench_export.py [--size 512 512] [--runs 20] [--arch Unet]
        [--encoder efficientnet-b0] [--half] [--threads N]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from segpipe.benchmark import benchmark
from segpipe.export.onnx import export_onnx
from segpipe.modelinfo import ModelInfo
from segpipe.models import create_model, save_checkpoint
from segpipe.options import BenchmarkOptions, OnnxExportOptions
from segpipe.progress import Reporter, Task
from segpipe.units import speed_text


class StepTimer(Reporter):
    """Records when each step the exporter reports ends (``task.advance(step=...)``)."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []
        self.start = time.perf_counter()

    @contextlib.contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Task]:
        timer = self
        self.marks.append(("load + checks", time.perf_counter()))

        class _Task(Task):
            def advance(self, n: int = 1, **fields: Any) -> None:
                timer.marks.append((str(fields.get("step", "?")), time.perf_counter()))

        yield _Task()

    def steps(self) -> list[tuple[str, float]]:
        """(step, seconds) in order."""
        out, last = [], self.start
        for name, t in self.marks:
            out.append((name, t - last))
            last = t
        return out


def measure(
    size: tuple[int, int] = (512, 512),
    arch: str = "Unet",
    encoder: str = "efficientnet-b0",
    classes: int = 11,
    runs: int = 20,
    warmup: int = 3,
    half: bool = False,
    threads: int = 0,
) -> tuple[list[tuple[str, Any, StepTimer]], Any]:
    """Export (and verify) the model, then time it: ([(label, export result, step timer)], benchmark)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        torch.manual_seed(0)
        info = ModelInfo(arch=arch, encoder=encoder, num_classes=classes, input_size=tuple(size))
        ckpt = save_checkpoint(root / "model.pth", create_model(info, None), info)
        exports = []
        for label, fp16 in [("fp32", False)] + ([("fp16", True)] if half else []):
            timer = StepTimer()
            result = export_onnx(
                OnnxExportOptions(model=ckpt, output=root / f"model_{label}.onnx", half=fp16), timer
            )
            exports.append((label, result, timer))
        bench = benchmark(
            BenchmarkOptions(
                models=(ckpt, *(r.path for _, r, _ in exports)),
                warmup=warmup,
                runs=runs,
                device="cpu",
                threads=threads,
            )
        )
    return exports, bench


def run(
    size: tuple[int, int] = (512, 512), encoder: str = "efficientnet-b0", runs: int = 20, warmup: int = 3
) -> list[tuple[str, str, str, str]]:
    """The figures as rows (benchmark, measured, reference, ratio/target), for ``python -m benchmarks``."""
    exports, bench = measure(tuple(size), encoder=encoder, runs=runs, warmup=warmup)
    rows = []
    for label, result, timer in exports:
        took = dict(timer.steps())
        named = (("exported", "export"), ("simplified", "simplify"), ("verified", "verify"))
        steps = ", ".join(f"{short} {took[step]:.1f} s" for step, short in named if step in took)
        nodes = f"{result.nodes_exported} -> {result.nodes_simplified} nodes"
        name = f"export-onnx {label} Unet/{encoder} {size[0]}x{size[1]}"
        rows.append((name, f"{result.seconds:.1f} s", steps, nodes))
    torch_b = bench.models[0]
    for b in bench.models[1:]:
        name = f"latency b1 {size[0]}x{size[1]} CPU: ONNX Runtime {b.precision}"
        speedup = speed_text(torch_b.p50_ms, b.p50_ms)
        rows.append((name, f"{b.p50_ms:.1f} ms", f"eager PyTorch {torch_b.p50_ms:.1f} ms", speedup))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("W", "H"))
    parser.add_argument("--arch", default="Unet")
    parser.add_argument("--encoder", default="efficientnet-b0")
    parser.add_argument("--classes", type=int, default=11)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--half", action="store_true", help="also export and time the FP16 graph")
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU threads of both backends (0: their defaults)"
    )
    args = parser.parse_args()

    size = tuple(args.size)
    print(
        f"model {args.arch}/{args.encoder}, {args.classes} classes, {size[0]}x{size[1]}, CPU, "
        f"torch {torch.__version__}, {args.threads or 'default'} threads"
    )
    exports, bench = measure(size, args.arch, args.encoder, args.classes, args.runs, args.warmup, args.half,
                             args.threads)  # fmt: skip
    for label, result, timer in exports:
        ver = result.verification
        print(
            f"\n(a) export-onnx {label}: {result.seconds:.2f} s in all "
            f"({result.nodes_exported} -> {result.nodes_simplified} nodes, {result.size_mb:.1f} MB, "
            f"argmax agreement {100 * ver.worst.argmax_agreement:.3f}%, "
            f"max |diff| {ver.worst.max_abs_diff:.3g})"
        )
        for step, seconds in timer.steps():
            print(f"    {step:<14} {seconds:7.2f} s")
    print(f"\n(b) latency at batch 1 ({args.warmup} warm-up + {args.runs} timed calls, uint8 in, numpy out)")
    print(f"    {'model':<16} {'backend':<12} {'mean ms':>9} {'p50 ms':>9} {'p90 ms':>9} {'images/s':>9}")
    for b in bench.models:
        print(
            f"    {Path(b.model).name:<16} {b.backend:<12} {b.mean_ms:9.1f} {b.p50_ms:9.1f} "
            f"{b.p90_ms:9.1f} {b.throughput:9.2f}"
        )
    torch_ms = bench.models[0].p50_ms
    for b in bench.models[1:]:
        print(f"    ONNX Runtime {b.precision} vs eager PyTorch (median): {speed_text(torch_ms, b.p50_ms)}")


if __name__ == "__main__":
    main()
