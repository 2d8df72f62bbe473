"""``python -m benchmarks``: every segpipe benchmark, one table.

Rows (each script's ``run()``, see their docstrings for what they measure and the targets):

* train      data pipeline vs decoding alone; segpipe's train step vs a bare smp loop (CPU)
* visualize  visualize per backend (PyTorch, ONNX Runtime) vs the model alone (CPU)
* export     export-onnx time; ONNX Runtime vs eager PyTorch latency (CPU)
* cpu        CPU backends side by side: eager PyTorch, ONNX Runtime and OpenVINO, FP32 and INT8
             (TensorRT-shaped and CPU-targeted files), argmax agreement with FP32, the CPU's flags
* gpu        with a CUDA GPU only: the train step in AMP fp16 / bf16 vs FP32, and TensorRT vs
             ONNX Runtime latency (when the tensorrt package is installed)

    python -m benchmarks                    # everything, full sizes (minutes)
    python -m benchmarks --quick            # small sizes: checks the suite runs (not figures to quote)
    python -m benchmarks --only train,gpu --markdown    # a table to paste into the README
    python -m benchmarks --list             # what would run, without running it
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from segpipe.units import speed_text

Row = tuple[str, str, str, str]
COLUMNS = ("benchmark", "measured", "reference", "ratio / target")

#: suite -> (module, run() keyword arguments at full size, at --quick size)
SCRIPTS: dict[str, tuple[str, dict, dict]] = {
    "train": (
        "benchmarks.bench_train",
        {},
        {"size": 128, "images": 8, "steps": 3, "batch": 2, "step_size": 64, "encoder": "resnet18"},
    ),
    "visualize": (
        "benchmarks.bench_visualize",
        {},
        {"count": 4, "image_size": (320, 240), "size": (256, 192), "repeat": 1},
    ),
    "export": (
        "benchmarks.bench_export",
        {},
        {"size": (128, 128), "encoder": "resnet18", "runs": 3, "warmup": 1},
    ),
    "cpu": (
        "benchmarks.bench_cpu",
        {},
        {"size": 128, "encoder": "resnet18", "rounds": 3, "threads": "1", "images": 2},
    ),
}


def machine() -> str:
    """The machine the figures come from (CPU, cores, torch, GPU)."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    cpu = platform.processor() or platform.machine()
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}, {gpu}"
    )


# ---- GPU rows --------------------------------------------------------------------------------------
def _train_step_ms(data: Path, out: Path, amp: bool, dtype: str, size: int, batch: int, steps: int,
                   encoder: str) -> float:  # fmt: skip
    """Median milliseconds of one segpipe training step on CUDA (host batch -> device -> step)."""
    import torch

    from segpipe.options import TrainOptions
    from segpipe.training.loop import Trainer

    trainer = Trainer(TrainOptions(data_root=data, num_classes=4, encoder=encoder, encoder_weights="none",
                                   size=(size, size), batch_size=batch, workers=0, device="cuda", amp=amp,
                                   amp_dtype=dtype, output_dir=out))  # fmt: skip
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8, generator=g).pin_memory()
    masks = torch.randint(0, 4, (batch, size, size), dtype=torch.uint8, generator=g).pin_memory()
    times = []
    for i in range(steps + 3):  # 3 warm-up steps (cuDNN autotuning)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        trainer.train_step(*trainer.to_device(images, masks))
        torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def amp_rows(quick: bool) -> list[Row]:
    """The train step in FP32, AMP fp16 and AMP bf16 on the GPU."""
    import torch

    from segpipe.data.synthetic import make_dataset

    # batch 32: at batch 8 efficientnet-b0 is bound by kernel launches on an H100 and AMP's casts cost
    # more than its faster kernels save (measured: fp16 45.6 ms vs fp32 38.9 ms)
    size, batch, steps, encoder = (128, 4, 5, "resnet18") if quick else (512, 32, 20, "efficientnet-b0")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(Path(tmp) / "d", count=4, size=(64, 64), num_classes=4)
        fp32 = _train_step_ms(data, Path(tmp) / "r", False, "fp16", size, batch, steps, encoder)
        name = f"train step Unet/{encoder} b{batch} {size}x{size} CUDA"
        rows.append((f"{name} FP32", f"{fp32:.1f} ms", "", "1.00x"))
        dtypes = ["fp16"] + (["bf16"] if torch.cuda.is_bf16_supported() else [])
        for dtype in dtypes:
            ms = _train_step_ms(data, Path(tmp) / "r", True, dtype, size, batch, steps, encoder)
            rows.append((f"{name} AMP {dtype}", f"{ms:.1f} ms", f"FP32 {fp32:.1f} ms", speed_text(fp32, ms)))
    return rows


def tensorrt_rows(quick: bool) -> list[Row]:
    """Latency of a TensorRT FP16 engine against ONNX Runtime on the same exported model."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return [("TensorRT vs ONNX Runtime latency", "skipped", "the tensorrt package is not installed", "")]
    import onnxruntime as ort
    import torch

    from segpipe.benchmark import benchmark
    from segpipe.export.onnx import export_onnx
    from segpipe.modelinfo import ModelInfo
    from segpipe.models import create_model, save_checkpoint
    from segpipe.options import BenchmarkOptions, OnnxExportOptions
    from segpipe.tensorrt.build import EngineOptions, build_engine

    size, encoder, runs = ((256, 256), "resnet18", 10) if quick else ((1280, 640), "efficientnet-b0", 50)
    ort_device = "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        info = ModelInfo(arch="Unet", encoder=encoder, num_classes=11, input_size=size)
        ckpt = save_checkpoint(Path(tmp) / "m.pth", create_model(info, None), info)
        onnx_path = export_onnx(OnnxExportOptions(model=ckpt, output=Path(tmp) / "m.onnx")).path
        engine = build_engine(
            EngineOptions(onnx=onnx_path, fp16=True, shapes=f"input_1:1x{size[1]}x{size[0]}x3")
        )
        b_ort = benchmark(BenchmarkOptions(models=(onnx_path,), runs=runs, device=ort_device)).models[0]
        b_trt = benchmark(BenchmarkOptions(models=(engine,), runs=runs, device="cuda")).models[0]
    name = f"latency b1 Unet/{encoder} {size[0]}x{size[1]}: TensorRT FP16"
    reference = f"ONNX Runtime ({ort_device}) {b_ort.p50_ms:.2f} ms"
    return [(name, f"{b_trt.p50_ms:.2f} ms", reference, speed_text(b_ort.p50_ms, b_trt.p50_ms))]


def gpu_rows(quick: bool) -> list[Row]:
    return amp_rows(quick) + tensorrt_rows(quick)


# ---- the suite -------------------------------------------------------------------------------------
def _script(suite: str, quick: bool) -> Callable[[], list[Row]]:
    module_name, full, small = SCRIPTS[suite]

    def call() -> list[Row]:
        module = importlib.import_module(module_name)
        if not hasattr(module, "run"):
            return [(suite, "skipped", f"{module_name} has no run()", "")]
        return list(module.run(**(small if quick else full)))

    return call


def print_table(rows: list[Row], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "|".join(" --- " for _ in COLUMNS) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    line = "  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="small sizes: checks that the suite runs")
    ap.add_argument("--only", default="", help="comma-separated suites: train, visualize, export, cpu, gpu")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table")
    ap.add_argument("--list", action="store_true", help="list what would run and exit")
    args = ap.parse_args(argv)
    names = [*SCRIPTS, "gpu"]
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or names
    unknown = [s for s in chosen if s not in names]
    if unknown:
        ap.error(f"--only {','.join(unknown)}: use one of {', '.join(names)}")

    import torch

    has_gpu = torch.cuda.is_available()
    if args.list:
        for suite in chosen:
            if suite == "gpu":
                what = "benchmarks.__main__ (amp_rows, tensorrt_rows)" if has_gpu else "skipped: no CUDA GPU"
                print(f"gpu: {what}")
                continue
            module = importlib.import_module(SCRIPTS[suite][0])
            ready = "(ready)" if hasattr(module, "run") else "(no run(): skipped)"
            print(f"{suite}: {SCRIPTS[suite][0]}.run {ready}")
        return 0
    print(f"machine: {machine()}{' (--quick sizes)' if args.quick else ''}", flush=True)
    rows: list[Row] = []
    failed = False
    for suite in chosen:
        if suite == "gpu" and not has_gpu:
            print(
                "GPU rows (AMP vs FP32 train step, TensorRT vs ONNX Runtime) skipped: no CUDA GPU here",
                flush=True,
            )
            continue
        t0 = time.perf_counter()
        fn = (lambda: gpu_rows(args.quick)) if suite == "gpu" else _script(suite, args.quick)
        try:
            rows += fn()
        except Exception as e:  # one broken benchmark must not hide the others' figures
            failed = True
            traceback.print_exc(file=sys.stderr)
            rows.append(
                (suite, "failed", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:100], "")
            )
        print(f"  {suite}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    print()
    print_table(rows, args.markdown)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
