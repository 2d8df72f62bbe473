"""Sliding window, test-time augmentation and video, side by side in one run (issue 14).

Needs a model trained on ``segpipe.data.synthetic`` data at SIZE (default 64x64, 4 classes), as an
ONNX file (``--onnx``, fixed or dynamic) and, for the scales row, a dynamic one (``--onnx-dynamic``):

    segpipe train --data-root TRAIN --num-classes 4 --size 64 64 --arch Unet --encoder resnet18 \\
        --encoder-weights none --epochs 12 --batch-size 8 --output-dir RUN   # TRAIN from make_dataset
    segpipe export-onnx --model RUN/best.pth --model-out fixed.onnx
    segpipe export-onnx --model RUN/best.pth --model-out dyn.onnx --dynamic-size --dynamic-batch
    python -m benchmarks.bench_infer --onnx fixed.onnx --onnx-dynamic dyn.onnx

Held-out data, generated here with other seeds: ``small`` (images of the training size) and
``big`` (mosaics of 4x4 training-size samples: four times the training size per side, the content
at the training scale, as an aerial or microscope picture is). Rows:

* ``big``: default resize vs ``--tile SIZE`` (overlap 0.25) vs tile + flip: mIoU and ms per image;
* ``small``: plain vs ``--tta flip`` (and ``scales=0.5,1,1.5`` with the dynamic model: at 64x64 and output
  stride 32, 0.75 and 1.25 would both snap back to 64x64);
* video: ``visualize`` on a generated video (a window panning over a mosaic) with the ONNX backend,
  frames/s end to end vs the model alone on the same frames (decoded and resized beforehand).

Each timing is repeated ``--repeats`` times with one open runner; the range is printed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from segpipe.data.synthetic import make_dataset, make_sample
from segpipe.evaluate import evaluate
from segpipe.options import EvaluateOptions, VisualizeOptions
from segpipe.runtime import load_runner
from segpipe.runtime.pipeline import to_network
from segpipe.visualize import visualize


def make_mosaics(root: Path, count: int, tiles: int, size: tuple[int, int], classes: int, seed: int) -> Path:
    """``count`` images of ``tiles`` x ``tiles`` training-size samples (and their index masks)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "indexes").mkdir(parents=True, exist_ok=True)
    w, h = size
    for i in range(count):
        rows_i, rows_m = [], []
        for _ in range(tiles):
            pairs = [make_sample(rng, w, h, classes) for _ in range(tiles)]
            rows_i.append(np.concatenate([p[0] for p in pairs], 1))
            rows_m.append(np.concatenate([p[1] for p in pairs], 1))
        image, mask = np.concatenate(rows_i, 0), np.concatenate(rows_m, 0)
        cv2.imwrite(str(root / "images" / f"big_{i:03d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "indexes" / f"big_{i:03d}_color_mask.png"), mask)
    return root


def make_video(path: Path, frames: int, size: tuple[int, int], tile: tuple[int, int], classes: int) -> Path:
    """A window of ``size`` panning right over a mosaic of training-size samples, MPEG-4, 25 fps."""
    rng = np.random.default_rng(7)
    w, h = size
    cols = (w + frames) // tile[0] + 2
    rows = h // tile[1] + 1
    strip = np.concatenate(
        [np.concatenate([make_sample(rng, *tile, classes)[0] for _ in range(cols)], 1) for _ in range(rows)],
        0,
    )
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (w, h))
    for i in range(frames):
        writer.write(cv2.cvtColor(np.ascontiguousarray(strip[:h, i : i + w]), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def span(values: list[float], fmt: str = "{:.1f}") -> str:
    lo, hi = min(values), max(values)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}-{fmt.format(hi)}"


def run(
    onnx: Path,
    onnx_dynamic: Path | None = None,
    classes: int = 4,
    size: tuple[int, int] = (64, 64),
    count: int = 16,
    frames: int = 60,
    video_size: tuple[int, int] = (256, 192),
    repeats: int = 3,
    batch: int = 4,
    threads: int = 2,
) -> list[tuple[str, str, str]]:
    """The rows (setting, mIoU %, time) measured; see the module docstring."""
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench_infer_") as tmp:
        work = Path(tmp)
        big = make_mosaics(work / "big", count, 4, size, classes, seed=123)
        small = make_dataset(work / "small", count=2 * count, size=size, num_classes=classes, seed=99)

        def evaluate_rows(path: Path, data: Path, settings: list[tuple[str, dict]]) -> None:
            with load_runner(path, device="cpu", threads=threads) as runner:
                for name, extra in settings:
                    mious, ms = [], []
                    for _ in range(repeats):
                        opts = EvaluateOptions(data_root=data, model=path, batch_size=batch, **extra)
                        res = evaluate(opts, runner=runner)
                        mious.append(100 * res.miou)
                        ms.append(1000 * res.seconds / res.images)
                    rows.append((f"{data.name} {name}", span(mious, "{:.2f}"), f"{span(ms)} ms/image"))

        w, h = size
        evaluate_rows(
            onnx,
            big,
            [
                (f"{4 * w}x{4 * h} resize to {w}x{h}", {}),
                (f"{4 * w}x{4 * h} --tile {w} {h}", {"tile": size}),
                (f"{4 * w}x{4 * h} --tile {w} {h} --tta flip", {"tile": size, "tta_flip": True}),
            ],
        )
        evaluate_rows(onnx, small, [(f"{w}x{h} plain", {}), (f"{w}x{h} --tta flip", {"tta_flip": True})])
        if onnx_dynamic is not None:
            evaluate_rows(
                onnx_dynamic,
                small,
                [(f"{w}x{h} --tta scales=0.5,1,1.5 (dynamic ONNX)", {"tta_scales": (0.5, 1.0, 1.5)})],
            )

        video = make_video(work / "pan.mp4", frames, video_size, size, classes)
        cap = cv2.VideoCapture(str(video))
        decoded = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            decoded.append(to_network(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), size))
        cap.release()
        with load_runner(onnx, device="cpu", threads=threads) as runner:
            runner(np.stack(decoded[:batch]))  # warm-up
            model_fps, pipe_fps = [], []
            for r in range(repeats):
                t0 = time.perf_counter()
                for i in range(0, len(decoded), batch):
                    runner(np.stack(decoded[i : i + batch]))
                model_fps.append(len(decoded) / (time.perf_counter() - t0))
                out = work / f"video_out{r}"
                res = visualize(
                    VisualizeOptions(images=video, model=onnx, output_dir=out, batch_size=batch),
                    runner=runner,
                )
                pipe_fps.append(res.frames_per_second)
        vw, vh = video_size
        rows.append(
            (f"video {len(decoded)} frames {vw}x{vh}: model only", "-", f"{span(model_fps)} frames/s")
        )
        rows.append(
            (f"video {len(decoded)} frames {vw}x{vh}: visualize (ONNX)", "-", f"{span(pipe_fps)} frames/s")
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onnx", type=Path, required=True)
    ap.add_argument("--onnx-dynamic", type=Path)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--size", type=int, nargs=2, default=(64, 64))
    ap.add_argument("--count", type=int, default=16)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    rows = run(
        a.onnx,
        a.onnx_dynamic,
        a.classes,
        tuple(a.size),
        a.count,
        a.frames,
        repeats=a.repeats,
        threads=a.threads,
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'setting':<{width}}  {'mIoU %':>11}  time")
    for name, miou, t in rows:
        print(f"{name:<{width}}  {miou:>11}  {t}")


if __name__ == "__main__":
    main()
