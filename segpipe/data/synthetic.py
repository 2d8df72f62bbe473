"""Synthetic datasets in the seed layout: used by the tests, the benchmarks and the script that
makes the bundled sample data (``scripts/make_sample_data.py``).

Each image is a smooth background with a few shapes; every class has its own base colour, so a
small network learns it quickly while the majority class (background) covers most pixels.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from segpipe.palette import Palette, save_palette

SAMPLE_CLASSES = ("background", "disc", "box", "stripe")
SAMPLE_COLORS = ((0, 0, 0), (230, 25, 75), (60, 180, 75), (0, 130, 200))
# image colours per class (RGB): distinct from each other so the task is learnable
_CLASS_TINTS = ((90, 90, 90), (220, 60, 60), (60, 200, 80), (50, 110, 230), (230, 200, 40), (160, 60, 200))


def sample_palette() -> Palette:
    return Palette(SAMPLE_CLASSES, SAMPLE_COLORS)


def _draw_shape(rng: np.random.Generator, mask: np.ndarray, cls: int, w: int, h: int) -> None:
    kind = cls % 3
    cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
    r = int(rng.integers(max(3, min(w, h) // 10), max(4, min(w, h) // 4)))
    if kind == 1:
        cv2.circle(mask, (cx, cy), r, int(cls), -1)
    elif kind == 2:
        cv2.rectangle(mask, (cx - r, cy - r // 2), (cx + r, cy + r // 2), int(cls), -1)
    else:
        thickness = max(2, r // 3)
        cv2.line(mask, (int(rng.integers(0, w)), 0), (int(rng.integers(0, w)), h - 1), int(cls), thickness)


def make_sample(
    rng: np.random.Generator, width: int, height: int, num_classes: int, shapes: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """One (RGB image uint8, index mask uint8) pair."""
    mask = np.zeros((height, width), dtype=np.uint8)
    for _ in range(shapes):
        _draw_shape(rng, mask, int(rng.integers(1, num_classes)), width, height)
    tints = np.array([_CLASS_TINTS[c % len(_CLASS_TINTS)] for c in range(num_classes)], dtype=np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    shade = (
        0.85 + 0.15 * np.sin(xx / max(width, 1) * 3.0 + rng.uniform(0, 6)) * np.cos(yy / max(height, 1) * 2.0)
    )[..., None]
    image = tints[mask] * shade + rng.normal(0, 8, size=(height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8), mask


def make_dataset(
    root: str | Path,
    count: int = 16,
    size: tuple[int, int] = (64, 64),
    num_classes: int = 4,
    color_masks: bool = False,
    palette: Palette | None = None,
    image_ext: str = ".png",
    mask_suffix: str = "_color_mask",
    seed: int = 0,
    jpeg_quality: int = 90,
    natural: bool = False,
) -> Path:
    """Write ``count`` pairs under ``root/images`` and ``root/indexes``; returns ``root``.

    ``size`` is (width, height). Index masks are single-channel PNGs; with ``color_masks`` they are
    RGB colours of ``palette`` (default :func:`sample_palette`, extended to ``num_classes``), and the
    palette is written to ``root/colors.csv``. ``natural``: photo-like scenes
    (:func:`segpipe.data.scenes.make_scene`: textured ground, objects in natural colours varying per
    instance) instead of flat class tints.
    """
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "indexes").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pal = (palette or sample_palette()).extended(num_classes).truncated(num_classes)
    if color_masks:
        save_palette(pal, root / "colors.csv")
    width, height = size
    if natural:
        from segpipe.data.scenes import make_scene as draw
    else:
        draw = make_sample
    for i in range(count):
        image, mask = draw(rng, width, height, num_classes)
        name = f"sample_{i:03d}"
        params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if image_ext in (".jpg", ".jpeg") else []
        cv2.imwrite(
            str(root / "images" / f"{name}{image_ext}"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params
        )
        out = cv2.cvtColor(pal.array()[mask], cv2.COLOR_RGB2BGR) if color_masks else mask
        cv2.imwrite(str(root / "indexes" / f"{name}{mask_suffix}.png"), out)
    return root
