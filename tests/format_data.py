"""Tiny data sets written exactly as the public data sets ship them (Pascal VOC, Cityscapes),
for tests/test_formats.py and tests/test_data_command.py (fixtures in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from segpipe.data.formats.voc import voc_colormap


def _shapes(rng: np.random.Generator, h: int, w: int, classes: list[int]) -> np.ndarray:
    """A label map with a few rectangles of ``classes`` over 0."""
    labels = np.zeros((h, w), np.uint8)
    for c in classes:
        y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
        y1, x1 = y0 + rng.integers(h // 4, h // 2), x0 + rng.integers(w // 4, w // 2)
        labels[y0:y1, x0:x1] = c
    return labels


def _image(labels: np.ndarray, lut: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An RGB image whose colours follow the labels (learnable), with noise."""
    img = lut[labels].astype(np.int16) + rng.integers(-20, 21, labels.shape + (3,))
    return np.clip(img, 0, 255).astype(np.uint8)


def voc_border(labels: np.ndarray, width: int = 1) -> np.ndarray:
    """VOC's void border: 255 on the pixels where the class changes (``width`` pixels)."""
    out = labels.copy()
    edge = np.zeros(labels.shape, bool)
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    edge[1:, :] |= labels[:-1, :] != labels[1:, :]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:, 1:] |= labels[:, :-1] != labels[:, 1:]
    for _ in range(width - 1):
        edge[1:, :] |= edge[:-1, :].copy()
    out[edge] = 255
    return out


def save_voc_mask(path: Path, indices: np.ndarray) -> None:
    """As VOC writes SegmentationClass: a palette-mode PNG of the indices with the VOC colour map."""
    im = Image.fromarray(indices, mode="P")
    im.putpalette(voc_colormap(256).ravel().tolist())
    im.save(path)


def make_voc(root: Path, count: int = 12, size: int = 64, seed: int = 0, val: int = 4) -> Path:
    """``JPEGImages/``, ``SegmentationClass/`` (P-mode, 255 borders) and ImageSets splits; classes
    0 (background), 1 aeroplane, 15 person."""
    rng = np.random.default_rng(seed)
    for d in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / d).mkdir(parents=True, exist_ok=True)
    lut = np.zeros((256, 3), np.uint8)
    lut[0], lut[1], lut[15] = (40, 40, 40), (230, 60, 60), (60, 200, 230)
    names = [f"2007_{i:06d}" for i in range(count)]
    for name in names:
        labels = _shapes(rng, size, size, [1, 15])
        Image.fromarray(_image(labels, lut, rng)).save(root / "JPEGImages" / f"{name}.jpg", quality=95)
        save_voc_mask(root / "SegmentationClass" / f"{name}.png", voc_border(labels))
    sets = root / "ImageSets" / "Segmentation"
    (sets / "train.txt").write_text("\n".join(names[val:]) + "\n")
    (sets / "val.txt").write_text("\n".join(names[:val]) + "\n")
    return root


#: (label id, train id) pairs the generated Cityscapes masks use; 0 unlabeled, 1 ego vehicle and
#: 255 (the license plate's -1 as stored) are ignored.
CITYSCAPES_IDS = {7: 0, 26: 13, 23: 10}


def make_cityscapes(root: Path, size: tuple[int, int] = (64, 32), seed: int = 0) -> Path:
    """``leftImg8bit/{train,val}/CITY/*_leftImg8bit.png`` + ``gtFine/.../*_gtFine_labelIds.png``
    (8-bit grey label ids: 7 road, 26 car, 23 sky, 0 unlabeled, 1 ego vehicle, 255 license plate)."""
    rng = np.random.default_rng(seed)
    w, h = size
    lut = np.zeros((256, 3), np.uint8)
    lut[7], lut[26], lut[23] = (128, 64, 128), (0, 0, 142), (70, 130, 180)
    for split, city, n in (("train", "aachen", 6), ("val", "frankfurt", 2)):
        img_dir = root / "leftImg8bit" / split / city
        gt_dir = root / "gtFine" / split / city
        img_dir.mkdir(parents=True)
        gt_dir.mkdir(parents=True)
        for i in range(n):
            ids = np.full((h, w), 23, np.uint8)  # sky on top
            ids[h // 2 :] = 7  # road below
            x = int(rng.integers(0, w // 2))
            ids[h // 2 - 4 : h // 2 + 6, x : x + w // 4] = 26  # a car
            ids[h - 3 :, :] = 1  # ego vehicle
            ids[h // 2 + 2 : h // 2 + 4, x + 2 : x + 6] = 255  # its license plate (-1)
            ids[0, :] = 0  # unlabeled
            stem = f"{city}_{i:06d}_000019"
            Image.fromarray(_image(ids, lut, rng)).save(img_dir / f"{stem}_leftImg8bit.png")
            Image.fromarray(ids, mode="L").save(gt_dir / f"{stem}_gtFine_labelIds.png")
    return root
