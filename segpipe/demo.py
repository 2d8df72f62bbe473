"""``segpipe demo``: the whole pipeline on the sample data shipped inside the package.

Each step is the same library call the corresponding command makes; the demo only chains them:
train -> visualize + evaluate -> export-onnx (verified) -> visualize with the ONNX model ->
FP16 and INT8 ONNX -> build-trt (when TensorRT and a GPU are present) -> benchmark.

The demo prints nothing itself: it hands each step's title, lines and results to ``show(kind,
value)`` (the command line draws a result with the renderer of the command that makes it, see
``segpipe/cli/demo.py``) and its progress to the reporter, like every stage.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segpipe.progress import Reporter
from segpipe.units import human_bytes

#: ``show(kind, value)``: ``"step"`` (a title), ``"line"`` (one line of text), ``"summary"`` (the
#: closing lines, shown even with ``--quiet``) or a result to draw: ``"evaluate"``, ``"export"``,
#: ``"quantize"``, ``"benchmark"``.
Show = Callable[[str, Any], None]

#: resnet18 rather than segpipe's default efficientnet-b0: the demo trains from scratch (no weights
#: download offline) for ~50 steps, and EfficientNet's BatchNorm momentum (0.01) leaves its running
#: statistics far from converged after so few steps, so its validation mIoU would say little.
DEMO_ENCODER = "resnet18"
DEMO_SIZE = (128, 128)
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


def trt_unavailable_reason() -> str | None:
    """Why the TensorRT step cannot run here (None when it can)."""
    from segpipe._optional import available

    if not available("tensorrt"):
        return (
            'tensorrt is not installed (pip install "segpipe[trt]" --extra-index-url https://pypi.nvidia.com)'
        )
    import torch

    return None if torch.cuda.is_available() else "no CUDA GPU is visible"


@dataclass
class Demo:
    """One demo run: where it writes, how long it trains, on which device, and whom it tells."""

    output_dir: Path
    epochs: int
    device: str
    reporter: Any
    show: Show

    def run(self) -> None:
        """The demo's steps, then the closing summary (``show("summary", ...)``)."""
        from segpipe.data.dataset import sample_data_root
        from segpipe.outpaths import check_output_dir
        from segpipe.progress import SaysOnce

        out = self.output_dir
        check_output_dir(out, "--output-dir", out == Path("runs/demo"))
        data = sample_data_root()
        for sub in ("train", "visualize", "visualize_onnx", "heldout"):
            shutil.rmtree(out / sub, ignore_errors=True)
        t0 = time.perf_counter()
        result = train_step(data, out, self.epochs, self.device, self.reporter, self.show)
        best = result.best_path
        # its held-out folder is not the data set training read: said once, not for each of six models
        self.reporter = SaysOnce(self.reporter, f"{out / 'heldout'} is not the data set")
        sample_images, heldout, ev = self.checkpoint_step(data, best)
        exported, ev_onnx = self.onnx_step(best, data, sample_images, heldout)
        self.show("line", heldout_line(ev, ev_onnx))
        ladder = self.precision_ladder_step(best, exported.path, data / "images", heldout)
        self.benchmark_step([best, *ladder, *self.engine_step(exported.path)], heldout)
        seconds = time.perf_counter() - t0
        self.show(
            "summary",
            [
                f"validation mIoU {result.best_miou:.3f}, held-out mIoU {ev.miou:.3f} "
                f"({backend_title(ev.backend)}) / {ev_onnx.miou:.3f} ({backend_title(ev_onnx.backend)}); "
                f"everything is in {out} ({seconds:.0f} s)",
                next_steps(out, best, exported.path),
            ],
        )

    def visualize(self, images: Path, model: Path, folder: str, **extra: Any) -> Any:
        """``segpipe visualize`` of ``model`` on ``images`` into ``output_dir / folder``."""
        from segpipe.options import VisualizeOptions
        from segpipe.visualize import visualize

        opts = VisualizeOptions(
            images=images, model=model, output_dir=self.output_dir / folder, device=self.device, **extra
        )
        return visualize(opts, self.reporter)

    def evaluate(self, heldout: Path, model: Path) -> Any:
        """``segpipe evaluate`` of ``model`` on the held-out set, its table shown."""
        from segpipe.evaluate import evaluate
        from segpipe.options import EvaluateOptions

        return evaluate(EvaluateOptions(data_root=heldout, model=model, device=self.device), self.reporter)

    def checkpoint_step(self, data: Path, best: Path) -> tuple[Path, Path, Any]:
        """2. pictures of a few sample images, and the scores on a held-out set the model never saw."""
        from segpipe.data.synthetic import make_dataset, sample_palette
        from segpipe.evaluate import plot_confusion, write_report

        out = self.output_dir
        self.show("step", "2. visualize and evaluate the checkpoint")
        sample_images = out / "sample_images"
        shutil.rmtree(sample_images, ignore_errors=True)
        sample_images.mkdir(parents=True)
        for img in sorted((data / "images").iterdir())[:4]:
            shutil.copy(img, sample_images / img.name)
        vis = self.visualize(sample_images, best, "visualize", overlay=0.5, side_by_side=True)
        self.show(
            "line",
            f"wrote {vis.images} colour masks, overlays and side-by-side pictures to {vis.output_dir}",
        )
        # a held-out set the model never saw: new images from the same generator, another seed
        heldout = make_dataset(
            out / "heldout",
            count=16,
            size=DEMO_SIZE,
            num_classes=4,
            color_masks=True,
            palette=sample_palette(),
            image_ext=".jpg",
            seed=123,
            natural=True,  # the bundled sample's photo-like scenes (scripts/make_sample_data.py)
        )
        ev = self.evaluate(heldout, best)
        self.show("evaluate", ev)
        write_report(ev, out / "evaluate_pth.json")
        plot_confusion(ev, out / "confusion_matrix.png")
        self.show("line", f"wrote {out / 'evaluate_pth.json'} and {out / 'confusion_matrix.png'}")
        return sample_images, heldout, ev

    def onnx_step(self, best: Path, data: Path, sample_images: Path, heldout: Path) -> tuple[Any, Any]:
        """3. the verified ONNX model, its pictures and its held-out scores."""
        from segpipe.export.onnx import export_onnx
        from segpipe.options import OnnxExportOptions

        self.show("step", "3. export to ONNX (verified against PyTorch)")
        opts = OnnxExportOptions(
            model=best,
            output=self.output_dir / "demo.onnx",
            verify_images=data / "images",
            verify_max_images=4,
        )
        exported = export_onnx(opts, self.reporter)
        self.show("export", exported)
        vis = self.visualize(sample_images, exported.path, "visualize_onnx")
        self.show("line", f"wrote {vis.images} colour masks from the ONNX model to {vis.output_dir}")
        return exported, self.evaluate(heldout, exported.path)

    def precision_ladder_step(self, best: Path, fp32: Path, calib_images: Path, heldout: Path) -> list[Path]:
        """FP16 and INT8 ONNX beside the FP32 one: the rungs ``benchmark`` compares (FP32, FP16, INT8)."""
        from segpipe.errors import ExportError
        from segpipe.export.onnx import export_onnx
        from segpipe.export.quantize import quantize
        from segpipe.options import OnnxExportOptions, QuantizeOptions

        out = self.output_dir
        self.show("step", "3b. FP16 and INT8 ONNX (INT8 calibrated on the sample images, gated against FP32)")
        half_opts = OnnxExportOptions(model=best, output=out / "demo.fp16.onnx", half=True, verify_random=2)
        half = export_onnx(half_opts, self.reporter)
        self.show("line", f"wrote FP16 ONNX model {half.path} ({human_bytes(half.size_mb * 1e6)})")
        opts = QuantizeOptions(  # the 40 sample images: 8 held out for the gate, 32 calibrate
            model=fp32,
            calib_images=calib_images,
            output=out / "demo.int8.onnx",
            calib_count=32,
            data_root=heldout,
        )
        try:
            int8 = quantize(opts, self.reporter)
        except ExportError as e:  # the gate refused it (a model trained for a few steps): say so, go on
            self.show("line", f"no INT8 rung: {e}")
            return [fp32, half.path]
        self.show("quantize", int8)
        return [fp32, half.path, int8.path]

    def engine_step(self, onnx_path: Path) -> list[Path]:
        """4. an FP16 TensorRT engine, where TensorRT and a GPU are present (else said, and skipped)."""
        self.show("step", "4. TensorRT engine")
        reason = trt_unavailable_reason()
        if reason is not None:
            self.show("line", f"skipped building a TensorRT engine: {reason}")
            return []
        from segpipe.tensorrt.build import EngineOptions, build_engine

        engine = build_engine(EngineOptions(onnx=onnx_path, fp16=True), self.reporter)
        self.show("line", f"wrote engine {engine}")
        return [engine]

    def benchmark_step(self, models: list[Path], heldout: Path) -> None:
        """5. every model side by side (the precision ladder's accuracy from the held-out set)."""
        from segpipe.benchmark import benchmark
        from segpipe.options import BenchmarkOptions

        self.show("step", "5. benchmark")
        opts = BenchmarkOptions(
            models=tuple(models),
            warmup=2,
            runs=10,
            device=self.device,
            report=self.output_dir / "benchmark.json",
            data_root=heldout,  # mIoU of every model: the precision ladder's accuracy column
        )
        self.show("benchmark", benchmark(opts, self.reporter))


def train_step(data: Path, output_dir: Path, epochs: int, device: str, reporter: Any, show: Show) -> Any:
    """1. train a small model on the sample data (from random weights: no download)."""
    from segpipe.options import TrainOptions
    from segpipe.training import train
    from segpipe.training.guard import TrainingInterrupted

    show("step", "1. train")
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
    show(
        "line",
        "The model starts from random weights (no download), so the first epochs score low; "
        "train says why the early validation loss is so high when it happens.",
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
    show(
        "line",
        f"trained {result.epochs_done} epochs; validation mIoU {result.best_miou:.3f} "
        f"(best epoch {result.best_epoch}); run folder {result.run_dir}",
    )
    return result


def next_steps(output_dir: Path, best: Path, onnx_path: Path) -> str:
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


def run_demo(output_dir: Path, epochs: int, device: str, reporter: Reporter, show: Show) -> None:
    """The demo into ``output_dir`` (see the module docstring)."""
    Demo(output_dir, epochs, device, reporter, show).run()
