"""Visualize throughput on CPU for a ``.pth`` and an ``.onnx`` version of the same model.

For each backend it measures, on the same generated images:

* model only: the runner on batches already decoded and resized to the network size;
* pipeline: ``segpipe.visualize.visualize`` end to end (decode, resize, run, resize back,
  colourise, encode, write the mask and legends) with the same open, warmed-up runner;

and prints images/s, what the pipeline adds to the model-only time (target: at most +15% with the
ONNX backend) and, as a figure that other processes on the machine disturb less, the wall time per
image the pipeline spends outside the model's calls. A benchmark, not a test: it prints figures.

    .venv/bin/python benchmarks/bench_visualize.py                  # defaults below
    .venv/bin/python benchmarks/bench_visualize.py --count 64 --image-size 1280 720 --size 640 352
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from segpipe.data.dataset import read_image
from segpipe.data.synthetic import make_dataset
from segpipe.modelinfo import ModelInfo
from segpipe.models import DeployModel, create_model, save_checkpoint
from segpipe.options import VisualizeOptions
from segpipe.runtime import Runner, load_runner
from segpipe.runtime.pipeline import list_images, to_network
from segpipe.visualize import visualize


def export_onnx(model: torch.nn.Module, info: ModelInfo, path: Path) -> Path:
    """The ONNX contract (NHWC float 0-255 ``input_1``, dynamic batch/size) with segpipe metadata."""
    w, h = info.input_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            DeployModel(model, info).eval(), torch.zeros(1, h, w, 3), str(path), input_names=["input_1"],
            output_names=["output"], dynamo=False, opset_version=17,
            dynamic_axes={"input_1": {0: "n", 1: "h", 2: "w"}, "output": {0: "n", 2: "h", 3: "w"}},
        )  # fmt: skip
    proto = onnx.load(str(path))
    for key, value in info.replace(layout="NHWC").to_metadata().items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(proto, str(path))
    return path


class TimedRunner(Runner):
    """A runner that adds up the seconds spent in the wrapped runner's calls."""

    def __init__(self, inner: Runner) -> None:
        self.inner, self.path, self.device, self.info = inner, inner.path, inner.device, inner.info
        self.backend, self.fixed_size, self.seconds = inner.backend, inner.fixed_size, 0.0  # type: ignore[misc]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        t = time.perf_counter()
        out = self.inner(images)
        self.seconds += time.perf_counter() - t
        return out


def model_only(runner: Runner, images: list[np.ndarray], size: tuple[int, int], batch: int) -> float:
    """Seconds for the runner over all images, already decoded and resized to the network size."""
    batches = [
        np.stack([to_network(im, size) for im in images[i : i + batch]]) for i in range(0, len(images), batch)
    ]
    t = time.perf_counter()
    for b in batches:
        runner(b)
    return time.perf_counter() - t


def pipeline(
    runner: Runner, image_dir: Path, out: Path, size: tuple[int, int], batch: int
) -> tuple[float, float]:
    """Seconds of a whole ``visualize`` run with the same (open, warm) runner, and of those the
    seconds spent outside the model's calls."""
    timed = TimedRunner(runner)
    opts = VisualizeOptions(images=image_dir, model=runner.path, output_dir=out, size=size, batch_size=batch)
    result = visualize(opts, runner=timed)
    assert result.images == len(list_images(image_dir)), result
    return result.seconds, result.seconds - timed.seconds


def measure(
    count: int = 32,
    image_size: tuple[int, int] = (960, 540),
    size: tuple[int, int] = (512, 288),
    arch: str = "Unet",
    encoder: str = "resnet18",
    classes: int = 4,
    batch_size: int = 4,
    repeat: int = 3,
) -> tuple[str, list[tuple[str, int, float, float, float]]]:
    """(header line, [(backend, images, model-only s, pipeline s, s outside the model)])."""
    size = tuple(size)
    results = []
    with tempfile.TemporaryDirectory(prefix="segpipe-bench-") as tmp:
        root = make_dataset(Path(tmp) / "data", count=count, size=tuple(image_size),
                            num_classes=classes, image_ext=".jpg")  # fmt: skip
        info = ModelInfo(arch=arch, encoder=encoder, num_classes=classes, input_size=size)
        torch.manual_seed(0)
        model = create_model(info, encoder_weights=None).eval()
        pth = save_checkpoint(Path(tmp) / "model.pth", model, info)
        onnx_path = export_onnx(model, info, Path(tmp) / "model.onnx")
        images = [read_image(p) for p in list_images(root / "images")]
        w, h = image_size
        header = (f"{count} JPEG images {w}x{h} -> network {size[0]}x{size[1]}, {arch}/{encoder}, "
                  f"{classes} classes, batch {batch_size}, "
                  f"torch threads {torch.get_num_threads()}, best of {repeat}")  # fmt: skip
        for name, path in (("pytorch", pth), ("onnxruntime", onnx_path)):
            with load_runner(path, "cpu") as runner:
                runner(np.stack([to_network(im, size) for im in images[:batch_size]]))  # warm-up
                m = p = outside = float("inf")
                for _ in range(repeat):  # interleaved, best of each: robust to a busy machine
                    m = min(m, model_only(runner, images, size, batch_size))
                    out = Path(tmp) / f"out_{name}"
                    total, rest = pipeline(runner, root / "images", out, size, batch_size)
                    p, outside = min(p, total), min(outside, rest)
            results.append((name, len(images), m, p, outside))
    return header, results


def run(
    count: int = 32,
    image_size: tuple[int, int] = (960, 540),
    size: tuple[int, int] = (512, 288),
    encoder: str = "resnet18",
    batch_size: int = 4,
    repeat: int = 3,
) -> list[tuple[str, str, str, str]]:
    """The figures as rows (benchmark, measured, reference, ratio/target), for ``python -m benchmarks``."""
    _, results = measure(count, image_size, size, encoder=encoder, batch_size=batch_size, repeat=repeat)
    rows = []
    for name, n, m, p, _outside in results:
        target = " (target <= +15%)" if name == "onnxruntime" else ""
        rows.append((f"visualize {name} CPU, {image_size[0]}x{image_size[1]} JPEG -> {size[0]}x{size[1]}",
                     f"{n / p:.1f} img/s", f"model only {n / m:.1f} img/s",
                     f"{100 * (p / m - 1):+.1f}%{target}"))  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=32, help="images (default 32)")
    ap.add_argument("--image-size", type=int, nargs=2, default=(960, 540), metavar=("W", "H"))
    ap.add_argument("--size", type=int, nargs=2, default=(512, 288), metavar=("W", "H"), help="network size")
    ap.add_argument("--arch", default="Unet")
    ap.add_argument("--encoder", default="resnet18")
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    header, results = measure(args.count, tuple(args.image_size), tuple(args.size), args.arch, args.encoder,
                              args.classes, args.batch_size, args.repeat)  # fmt: skip
    print(header)
    print(f"{'backend':<12} {'model only':>14} {'pipeline':>14} {'pipeline adds':>14} {'outside model':>16}")
    for name, n, m, p, outside in results:
        print(
            f"{name:<12} {n / m:>9.2f} img/s {n / p:>9.2f} img/s {100 * (p / m - 1):>+13.1f}% "
            f"{1000 * outside / n:>10.1f} ms/img"
        )


if __name__ == "__main__":
    main()
