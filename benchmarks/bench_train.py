"""Training benchmarks (issue [1 of 5]); prints figures, asserts nothing.

(a) data pipeline: decode + ``light`` augmentation + tensor, images/s, against decoding alone
    (``cv2.imread`` of image and mask), on the same generated images; index and colour masks.
    Target: the pipeline costs at most 1.5x decoding alone per image.
(b) one training step of segpipe's loop (``Trainer.to_device`` + ``Trainer.train_step``: on-device
    normalisation, smp loss, AdamW, GradScaler) against a bare loop of smp model + loss + optimizer
    on the same batch. Target: segpipe's step within 5% of the bare loop.

    python -m benchmarks.bench_train [--size 512] [--images 48] [--steps 10] [--batch 8]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import torch

from segpipe.data.augment import build_transform
from segpipe.data.dataset import find_samples
from segpipe.data.formats import open_dataset
from segpipe.data.synthetic import make_dataset
from segpipe.data.torchdata import SegDataset
from segpipe.palette import load_palette


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {gpu}"


def _best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_pipeline(root: Path, size: int, color: bool) -> dict[str, float]:
    samples = find_samples(root)
    palette = load_palette(root / "colors.csv") if color else None
    reader = open_dataset(root, "seed", num_classes=4, palette=palette)
    ds = SegDataset(samples, reader, build_transform("light", size, size, seed=0))

    def decode_only() -> None:
        for s in samples:
            cv2.imread(str(s.image), cv2.IMREAD_COLOR)
            cv2.imread(str(s.label), cv2.IMREAD_UNCHANGED)

    def pipeline() -> None:
        for i in range(len(ds)):
            ds[i]

    decode_only(), pipeline()  # warm the file cache and the palette table
    t_decode, t_pipe = _best_of(decode_only), _best_of(pipeline)
    n = len(samples)
    return {"decode_ips": n / t_decode, "pipeline_ips": n / t_pipe, "ratio": t_pipe / t_decode}


def bench_step(size: int, batch: int, steps: int, encoder: str) -> dict[str, float]:
    import segmentation_models_pytorch as smp

    from segpipe.options import TrainOptions
    from segpipe.training.loop import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(Path(tmp) / "d", count=4, size=(64, 64), num_classes=4)
        trainer = Trainer(
            TrainOptions(
                data_root=data,
                num_classes=4,
                encoder=encoder,
                encoder_weights="none",
                size=(size, size),
                batch_size=batch,
                workers=0,
                device="cpu",
                output_dir=Path(tmp) / "run",
            )
        )
    torch.manual_seed(0)
    images = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8)
    masks = torch.randint(0, 4, (batch, size, size), dtype=torch.uint8)

    def make_bare(channels_last: bool):
        torch.manual_seed(0)
        net = smp.create_model("Unet", encoder_name=encoder, encoder_weights=None, classes=4).train()
        x = ((images.float() / 255 - 0.45) / 0.225).permute(0, 3, 1, 2).contiguous()
        if channels_last:  # the layout segpipe trains in (its Normalize permutes NHWC batches)
            net = net.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
        loss_fn = smp.losses.SoftCrossEntropyLoss(smooth_factor=0.0, ignore_index=255)
        y = masks.long()

        def step() -> None:
            loss = loss_fn(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step

    bare_step = make_bare(channels_last=True)
    bare_cf_step = make_bare(channels_last=False)

    def segpipe_step() -> None:
        x, y = trainer.to_device(images, masks)
        trainer.train_step(x, y)

    fns = {"bare": bare_step, "bare_cf": bare_cf_step, "segpipe": segpipe_step}
    for _ in range(2):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(2):  # blocks of steps per loop, twice in turn: machine load drifts hit all alike
        for k, fn in fns.items():
            for _ in range(steps):
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "bare_ms": 1000 * med["bare"],
        "bare_cf_ms": 1000 * med["bare_cf"],
        "segpipe_ms": 1000 * med["segpipe"],
        "ratio": med["segpipe"] / med["bare"],
    }


def run(
    size: int = 512,
    images: int = 48,
    steps: int = 10,
    batch: int = 8,
    step_size: int = 256,
    encoder: str = "efficientnet-b0",
) -> list[tuple[str, str, str, str]]:
    """All figures as rows (benchmark, measured, reference, ratio/target)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for color in (False, True):
            root = make_dataset(
                Path(tmp) / f"ds{int(color)}",
                count=images,
                size=(size, size),
                num_classes=4,
                color_masks=color,
                seed=0,
            )
            r = bench_pipeline(root, size, color)
            kind = "colour" if color else "index"
            rows.append(
                (
                    f"data pipeline {size}x{size}, {kind} masks",
                    f"{r['pipeline_ips']:.0f} img/s",
                    f"decode only {r['decode_ips']:.0f} img/s",
                    f"{r['ratio']:.2f}x (target <= 1.5x)",
                )
            )
    r = bench_step(step_size, batch, steps, encoder)
    rows.append(
        (
            f"train step Unet/{encoder} b{batch} {step_size}x{step_size} CPU",
            f"{r['segpipe_ms']:.0f} ms",
            f"bare smp loop {r['bare_ms']:.0f} ms",
            f"{r['ratio']:.3f}x (target <= 1.05x)",
        )
    )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--step-size", type=int, default=256)
    ap.add_argument("--encoder", default="efficientnet-b0")
    a = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"machine: {machine()}")
    for row in run(a.size, a.images, a.steps, a.batch, a.step_size, a.encoder):
        print(" | ".join(row))


if __name__ == "__main__":
    main()
