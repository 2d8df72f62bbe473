"""Side-by-side measurement of --class-weights and --ema on a synthetic data set where two
classes cover under 3% of the pixels (same seed, epochs and model for every run; CPU).

    nice python scripts/measure_recipe.py OUT_DIR [--epochs 15]

Prints one line per run: mIoU (best, final) and the IoU of the two rare classes at the best epoch.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from segpipe.data.synthetic import _CLASS_TINTS, make_sample
from segpipe.options import TrainOptions
from segpipe.progress import Reporter
from segpipe.training import train

NAMES = ("background", "disc", "box", "rare_a", "rare_b")


def make_rare_dataset(root: Path, count: int = 64, size: int = 96, seed: int = 0) -> np.ndarray:
    """Classes 0-2 from segpipe's synthetic shapes; classes 3 and 4 as small discs (r 2-4 px)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "indexes").mkdir(parents=True, exist_ok=True)
    counts = np.zeros(5, np.int64)
    tints = np.array(_CLASS_TINTS[:5], np.float32)
    for i in range(count):
        _, mask = make_sample(rng, size, size, 3)
        for cls in (3, 4):
            for _ in range(int(rng.integers(0, 3))):
                c = (int(rng.integers(4, size - 4)), int(rng.integers(4, size - 4)))
                cv2.circle(mask, c, int(rng.integers(2, 5)), cls, -1)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        shade = (0.85 + 0.15 * np.sin(xx / size * 3.0 + rng.uniform(0, 6)) * np.cos(yy / size * 2.0))[
            ..., None
        ]
        image = np.clip(tints[mask] * shade + rng.normal(0, 8, (size, size, 3)), 0, 255).astype(np.uint8)
        cv2.imwrite(str(root / "images" / f"s{i:03d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "indexes" / f"s{i:03d}_color_mask.png"), mask)
        counts += np.bincount(mask.ravel(), minlength=5)
    return counts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--runs", default="none,inverse,sqrt-inverse,ema")
    args = ap.parse_args()
    data = args.out / "data"
    counts = make_rare_dataset(data)
    share = counts / counts.sum()
    print("pixel share:", ", ".join(f"{n} {s:.2%}" for n, s in zip(NAMES, share, strict=True)), flush=True)
    base = dict(
        data_root=data,
        num_classes=5,
        class_names=NAMES,
        encoder="resnet18",
        encoder_weights="none",
        epochs=args.epochs,
        batch_size=8,
        lr=2e-3,
        size=(96, 96),
        workers=0,
        augment="none",
        device="cpu",
        seed=0,
        logger="none",
        val_fraction=0.25,
    )
    results = {}
    for name in args.runs.split(","):
        extra = {"ema": True} if name == "ema" else {"class_weights": name}
        result = train(TrainOptions(**base, **extra, output_dir=args.out / f"run-{name}"), Reporter())
        best = next(r for r in result.history if r["epoch"] == result.best_epoch)
        final = result.history[-1]
        results[name] = {
            "best_miou": result.best_miou,
            "best_epoch": result.best_epoch,
            "final_miou": final["miou"],
            "best_iou": best["iou"],
            "final_iou": final["iou"],
        }
        print(
            f"{name:13s} best mIoU {result.best_miou:.4f} (epoch {result.best_epoch}) final {final['miou']:.4f}; "
            f"rare_a IoU {best['iou'][3]:.4f} / final {final['iou'][3]:.4f}; "
            f"rare_b IoU {best['iou'][4]:.4f} / final {final['iou'][4]:.4f}",
            flush=True,
        )
        for f in (args.out / f"run-{name}").glob("*.pth"):
            f.unlink()
    (args.out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
