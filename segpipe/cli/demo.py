"""``segpipe demo``: the whole pipeline on the sample data shipped inside the package.

Each step is the same library call the corresponding command makes; the demo only chains them:
train -> visualize + evaluate -> export-onnx (verified) -> visualize with the ONNX model ->
build-trt (when TensorRT and a GPU are present) -> benchmark.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.text import Text

from segpipe.cli.binder import Flags, command
from segpipe.cli.common import RichReporter, console
from segpipe.options import flags as F
from segpipe.options.declare import flag
from segpipe.units import human_bytes

#: resnet18 rather than segpipe's default efficientnet-b0: the demo trains from scratch (no weights
#: download offline) for ~50 steps, and EfficientNet's BatchNorm momentum (0.01) leaves its running
#: statistics far from converged after so few steps, so its validation mIoU would say little.
DEMO_ENCODER = "resnet18"
DEMO_SIZE = (128, 128)


def _trt_unavailable_reason() -> str | None:
    """Why the TensorRT step cannot run here (None when it can)."""
    from segpipe._optional import available

    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # pragma: no cover - torch is a dependency
        has_cuda = False
    if not available("tensorrt"):
        return (
            'tensorrt is not installed (pip install "segpipe[trt]" --extra-index-url https://pypi.nvidia.com)'
        )
    if not has_cuda:
        return "no CUDA GPU is visible"
    return None


def _precision_ladder_step(
    best: Path, fp32: Path, calib_images: Path, heldout: Path, output_dir: Path, reporter: Any
) -> list[Path]:
    """FP16 and INT8 ONNX beside the FP32 one: the rungs ``benchmark`` compares (FP32, FP16, INT8)."""
    from segpipe.cli.quantize import render_result as render_int8
    from segpipe.errors import ExportError
    from segpipe.export.onnx import export_onnx
    from segpipe.export.quantize import quantize
    from segpipe.options import OnnxExportOptions, QuantizeOptions

    console.rule(
        Text(
            "3b. FP16 and INT8 ONNX (INT8 calibrated on the sample images, gated against FP32)", style="bold"
        )
    )
    half = export_onnx(
        OnnxExportOptions(model=best, output=output_dir / "demo.fp16.onnx", half=True, verify_random=2),
        reporter,
    )
    console.print(
        f"[green]wrote[/] FP16 ONNX model {escape(str(half.path))} ({human_bytes(half.size_mb * 1e6)})",
        markup=True,
    )
    opts = QuantizeOptions(  # the 40 sample images: 8 held out for the gate, 32 calibrate
        model=fp32,
        calib_images=calib_images,
        output=output_dir / "demo.int8.onnx",
        calib_count=32,
        data_root=heldout,
    )
    try:
        int8 = quantize(opts, reporter)
    except ExportError as e:  # the gate refused it (a model trained for a few steps): say so, go on
        console.print(f"[yellow]no INT8 rung[/]: {escape(str(e))}", markup=True)
        return [fp32, half.path]
    render_int8(int8)
    return [fp32, half.path, int8.path]


#: What a demo writes in its folder: one of them there means the folder holds an earlier demo.
DEMO_OUTPUTS = (
    "train",
    "visualize",
    "visualize_onnx",
    "heldout",
    "sample_images",
    "demo.onnx",
    "evaluate_pth.json",
    "benchmark.json",
)


def fresh_output_dir(output_dir: Path) -> tuple[Path, str | None]:
    """(the folder this demo writes, one line when it is not ``output_dir``): a folder holding an
    earlier demo is never written over; the next free ``NAME-2``, ``NAME-3``... is taken instead."""

    def holds_demo(folder: Path) -> bool:
        return folder.is_dir() and any((folder / name).exists() for name in DEMO_OUTPUTS)

    if not holds_demo(output_dir):
        return output_dir, None
    i = 2
    while holds_demo(output_dir.with_name(f"{output_dir.name}-{i}")):
        i += 1
    new = output_dir.with_name(f"{output_dir.name}-{i}")
    return new, (
        f"{output_dir} holds an earlier demo, kept as it is: this one goes to {new} "
        f"(to replace it instead, delete {output_dir} first)"
    )


@dataclass(frozen=True)
class DemoFlags:
    """``segpipe demo``'s flags."""

    output_dir: Path = flag(
        "--output-dir", default=Path("runs/demo"), help="Where the demo writes everything.", metavar="DIR"
    )
    epochs: int = flag("--epochs", default=12, help="Training epochs on the sample data.", metavar="N")
    device: str = F.DEVICE(panel=None)
    quiet: bool = flag(
        "--quiet",
        "-q",
        default=False,
        help="Only warnings, errors and the closing summary (no bars, no tables).",
    )


@command(DemoFlags)
def demo_command(flags: Flags) -> None:
    """Run the pipeline end to end on the bundled sample data."""
    reporter = RichReporter(quiet=flags.quiet)
    output_dir, moved = fresh_output_dir(flags.output_dir)
    if moved:
        console.print(escape(moved))  # before --quiet silences the steps: where everything goes
    console.quiet = flags.quiet  # every step's lines and tables; warnings and errors go to stderr still
    try:
        _run_demo(output_dir, flags.epochs, flags.device, reporter)
    finally:
        console.quiet = False


def _run_demo(output_dir: Path, epochs: int, device: str, reporter: Any) -> None:
    """The demo's steps (their output silenced by ``--quiet``), then the closing summary."""
    from segpipe.data.dataset import sample_data_root
    from segpipe.outpaths import check_output_dir
    from segpipe.progress import SaysOnce

    check_output_dir(output_dir, "--output-dir", output_dir == Path("runs/demo"))
    data = sample_data_root()
    for sub in ("train", "visualize", "visualize_onnx", "heldout"):
        shutil.rmtree(output_dir / sub, ignore_errors=True)
    t0 = time.perf_counter()
    result = _train_step(data, output_dir, epochs, device, reporter)
    best = result.best_path
    # its held-out folder is not the data set training read: said once, not for each of six models
    reporter = SaysOnce(reporter, f"{output_dir / 'heldout'} is not the data set")
    sample_images, heldout, ev = _checkpoint_step(data, best, output_dir, device, reporter)
    exported, ev_onnx = _onnx_step(best, data, sample_images, heldout, output_dir, device, reporter)
    console.print(heldout_line(ev, ev_onnx))
    ladder = _precision_ladder_step(best, exported.path, data / "images", heldout, output_dir, reporter)
    models = [best, *ladder, *_engine_step(exported.path, reporter)]
    _benchmark_step(models, heldout, output_dir, device, reporter)

    console.quiet = False
    console.rule(Text("demo finished", style="bold"))
    console.print(
        f"validation mIoU {result.best_miou:.3f}, held-out mIoU {ev.miou:.3f} ({backend_title(ev.backend)}) / "
        f"{ev_onnx.miou:.3f} ({backend_title(ev_onnx.backend)}); "
        f"everything is in {output_dir} ({time.perf_counter() - t0:.0f} s)"
    )
    console.print(_next_steps(output_dir, best, exported.path))


#: How the summary names each runner's ``backend`` (``--runtime auto`` may run the ONNX file on OpenVINO).
BACKEND_TITLES = {
    "pytorch": "PyTorch",
    "onnxruntime": "ONNX Runtime",
    "openvino": "OpenVINO",
    "tensorrt": "TensorRT",
}


def backend_title(backend: str) -> str:
    """The name of the backend that ran an evaluation, as the summary prints it."""
    return BACKEND_TITLES.get(backend, backend)


def heldout_line(ev: Any, ev_onnx: Any) -> str:
    """The held-out mIoU of the checkpoint and of the ONNX model, each named by the backend that
    really ran it (its ``EvalResult.backend``, the runner's own name)."""
    return (
        f"held-out mIoU: {backend_title(ev.backend)} {ev.miou:.4f}, "
        f"{backend_title(ev_onnx.backend)} {ev_onnx.miou:.4f} (the ONNX model)"
    )


def _train_step(data: Path, output_dir: Path, epochs: int, device: str, reporter: Any) -> Any:
    """1. train a small model on the sample data (from random weights: no download)."""
    from segpipe.options import TrainOptions
    from segpipe.training import train
    from segpipe.training.guard import TrainingInterrupted

    console.rule(Text("1. train", style="bold"))
    opts = TrainOptions(
        data_root=data,
        colors=data / "colors.csv",
        num_classes=4,
        model_name="demo",
        encoder=DEMO_ENCODER,
        encoder_weights="none",  # offline-safe; real runs default to ImageNet weights
        epochs=epochs,
        batch_size=8,
        lr=3e-3,
        size=DEMO_SIZE,
        val_fraction=0.2,
        workers=0,
        device=device,
        output_dir=output_dir / "train",
        seed=0,
    )
    console.print(
        "The model starts from random weights (no download), so the first epochs score low; "
        "train says why the early validation loss is so high when it happens."
    )
    try:
        result = train(opts, reporter)
    except TrainingInterrupted as e:  # train's hint ("the same command with --resume") is no demo flag
        head, last = str(e).split("; to go on", 1)[0], e.last_path or opts.output_dir / "last.pth"
        raise TrainingInterrupted(
            f"{head}; segpipe demo has no --resume: run it again to start over, or finish this training "
            f"with: segpipe train --model {last} --config {last.parent / 'options.yaml'}",
            e.exit_code,
            last,
        ) from None
    console.print(
        f"[bold green]trained[/] {result.epochs_done} epochs; validation mIoU {result.best_miou:.3f} "
        f"(best epoch {result.best_epoch}); run folder {escape(str(result.run_dir))}",
        markup=True,
    )

    return result


def _checkpoint_step(
    data: Path, best: Path, output_dir: Path, device: str, reporter: Any
) -> tuple[Path, Path, Any]:
    """2. pictures of a few sample images, and the scores on a held-out set the model never saw."""
    from segpipe.cli.evaluate import print_result
    from segpipe.data.synthetic import make_dataset, sample_palette
    from segpipe.evaluate import evaluate, plot_confusion, write_report
    from segpipe.options import EvaluateOptions, VisualizeOptions
    from segpipe.visualize import visualize

    console.rule(Text("2. visualize and evaluate the checkpoint", style="bold"))
    sample_images = output_dir / "sample_images"
    shutil.rmtree(sample_images, ignore_errors=True)
    sample_images.mkdir(parents=True)
    for img in sorted((data / "images").iterdir())[:4]:
        shutil.copy(img, sample_images / img.name)
    vis = visualize(
        VisualizeOptions(
            images=sample_images,
            model=best,
            output_dir=output_dir / "visualize",
            overlay=0.5,
            side_by_side=True,
            device=device,
        ),
        reporter,
    )
    console.print(
        f"[green]wrote[/] {vis.images} colour masks, overlays and side-by-side pictures to "
        f"{escape(str(vis.output_dir))}",
        markup=True,
    )
    # a held-out set the model never saw: new images from the same generator, another seed
    heldout = make_dataset(
        output_dir / "heldout",
        count=16,
        size=DEMO_SIZE,
        num_classes=4,
        color_masks=True,
        palette=sample_palette(),
        image_ext=".jpg",
        seed=123,
        natural=True,  # the bundled sample's photo-like scenes (scripts/make_sample_data.py)
    )
    ev = evaluate(EvaluateOptions(data_root=heldout, model=best, device=device), reporter)
    print_result(ev)
    write_report(ev, output_dir / "evaluate_pth.json")
    plot_confusion(ev, output_dir / "confusion_matrix.png")
    console.print(
        f"[green]wrote[/] {escape(str(output_dir / 'evaluate_pth.json'))} and "
        f"{escape(str(output_dir / 'confusion_matrix.png'))}",
        markup=True,
    )

    return sample_images, heldout, ev


def _onnx_step(
    best: Path, data: Path, sample_images: Path, heldout: Path, output_dir: Path, device: str, reporter: Any
) -> tuple[Any, Any]:
    """3. the verified ONNX model, its pictures and its held-out scores."""
    from segpipe.cli.export_onnx import render_result
    from segpipe.evaluate import evaluate
    from segpipe.export.onnx import export_onnx
    from segpipe.options import EvaluateOptions, OnnxExportOptions, VisualizeOptions
    from segpipe.visualize import visualize

    console.rule(Text("3. export to ONNX (verified against PyTorch)", style="bold"))
    exported = export_onnx(
        OnnxExportOptions(
            model=best, output=output_dir / "demo.onnx", verify_images=data / "images", verify_max_images=4
        ),
        reporter,
    )
    render_result(exported)
    vis_onnx = visualize(
        VisualizeOptions(
            images=sample_images, model=exported.path, output_dir=output_dir / "visualize_onnx", device=device
        ),
        reporter,
    )
    console.print(
        f"[green]wrote[/] {vis_onnx.images} colour masks from the ONNX model to "
        f"{escape(str(vis_onnx.output_dir))}",
        markup=True,
    )
    ev_onnx = evaluate(EvaluateOptions(data_root=heldout, model=exported.path, device=device), reporter)

    return exported, ev_onnx


def _engine_step(onnx_path: Path, reporter: Any) -> list[Path]:
    """4. an FP16 TensorRT engine, where TensorRT and a GPU are present (else said, and skipped)."""
    console.rule(Text("4. TensorRT engine", style="bold"))
    reason = _trt_unavailable_reason()
    if reason is None:
        from segpipe.tensorrt.build import EngineOptions, build_engine

        engine = build_engine(EngineOptions(onnx=onnx_path, fp16=True), reporter)
        console.print(f"[green]wrote[/] engine {escape(str(engine))}", markup=True)
        return [engine]
    else:
        console.print(f"[yellow]skipped[/] building a TensorRT engine: {escape(reason)}", markup=True)
    return []


def _benchmark_step(models: list[Path], heldout: Path, output_dir: Path, device: str, reporter: Any) -> None:
    """5. every model side by side (the precision ladder's accuracy from the held-out set)."""
    from segpipe.benchmark import benchmark
    from segpipe.cli.benchmark import render as render_benchmark
    from segpipe.options import BenchmarkOptions

    console.rule(Text("5. benchmark", style="bold"))
    bench = benchmark(
        BenchmarkOptions(
            models=tuple(models),
            warmup=2,
            runs=10,
            device=device,
            report=output_dir / "benchmark.json",
            data_root=heldout,  # mIoU of every model: the precision ladder's accuracy column
        ),
        reporter,
    )
    render_benchmark(bench)


def _next_steps(output_dir: Path, best: Path, onnx_path: Path) -> str:
    """What to open and run after the demo: the pictures first, then the same commands on your data."""
    train_dir = best.parent
    return "\n".join(
        [
            "",
            "Look at:",
            f"  {train_dir / 'curves.png'}  (loss and mIoU per epoch)",
            f"  {train_dir / 'val_samples.png'}  (image, ground truth, prediction)",
            f"  {output_dir / 'visualize'}/  (colour masks, overlays, side-by-side pictures)",
            f"  {output_dir / 'confusion_matrix.png'}  (held-out images)",
            "Next, on your own data:",
            "  segpipe train --data-root DATA --num-classes N --size W H --model-name mine",
            f"  segpipe visualize --images PHOTOS/ --model {best} --output-dir vis --overlay 0.5",
            f"  segpipe export-onnx --model {best} --int8 --calib-images PHOTOS/",
            f"  segpipe build-trt --model {onnx_path} --fp16  (on a machine with a GPU and TensorRT)",
        ]
    )
