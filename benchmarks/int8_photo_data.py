"""A labelled data set with real photographs as backgrounds, for the INT8 accuracy figures.

The photographs are the ones shipped inside Python packages (no download from the web): the
``skimage/data`` folder of a scikit-image wheel (``pip download scikit-image --no-deps``, then
unzip ``skimage/data/*``) and matplotlib's ``sample_data/grace_hopper.jpg``. Each sample is a
random crop of one photograph with the sample data's shapes (disc, box, stripe) blended onto it, so
the network must find class shapes on real textures instead of a smooth grey background.

    python benchmarks/int8_photo_data.py --photos /tmp/skimage/data --out /tmp/photo_data --count 160
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from segpipe.data.dataset import read_image
from segpipe.data.synthetic import _CLASS_TINTS, _draw_shape, sample_palette
from segpipe.palette import save_palette


def photos(folders: list[Path]) -> list[np.ndarray]:
    """Every colour or grey photograph (>= 256 px on its short side) in ``folders``, as RGB."""
    out = []
    for folder in folders:
        for f in sorted(folder.glob("*")):
            if f.suffix.lower() not in (".png", ".jpg", ".jpeg"):
                continue
            try:
                img = read_image(f)
            except Exception:
                continue
            if min(img.shape[:2]) >= 256:
                out.append(img)
    return out


def make_photo_dataset(root: Path, pics: list[np.ndarray], count: int, size: int, seed: int) -> Path:
    """``count`` image / colour-mask pairs of ``size``×``size`` under ``root`` (original layout)."""
    rng = np.random.default_rng(seed)
    pal = sample_palette()
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "indexes").mkdir(parents=True, exist_ok=True)
    save_palette(pal, root / "colors.csv")
    tints = np.array(_CLASS_TINTS[: len(pal.colors)], dtype=np.float32)
    for i in range(count):
        pic = pics[int(rng.integers(len(pics)))]
        h, w = pic.shape[:2]
        side = int(rng.integers(min(h, w) // 3, min(h, w) + 1))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        bg = cv2.resize(pic[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_AREA)
        mask = np.zeros((size, size), dtype=np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            _draw_shape(rng, mask, int(rng.integers(1, len(pal.colors))), size, size)
        img = bg.astype(np.float32)
        fg = mask > 0
        alpha = 0.55  # the shape's colour over the photo's texture
        img[fg] = alpha * tints[mask[fg]] + (1 - alpha) * img[fg]
        img += rng.normal(0, 4, img.shape)
        img = np.clip(img, 0, 255).astype(np.uint8)
        name = f"photo_{i:03d}"
        cv2.imwrite(
            str(root / "images" / f"{name}.jpg"),
            cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, 92],
        )
        cv2.imwrite(
            str(root / "indexes" / f"{name}_color_mask.png"),
            cv2.cvtColor(pal.array()[mask], cv2.COLOR_RGB2BGR),
        )
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, action="append", required=True, help="folder of photographs")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--count", type=int, default=160)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    pics = photos(args.photos)
    if not pics:
        raise SystemExit(f"no photographs in {', '.join(map(str, args.photos))}")
    make_photo_dataset(args.out, pics, args.count, args.size, args.seed)
    print(f"{args.count} samples on {len(pics)} photographs in {args.out}")


if __name__ == "__main__":
    main()
