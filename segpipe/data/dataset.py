"""The seed layout (segpipe's own), checked up front, and images read as RGB uint8.

Layout::

    DATA_ROOT/images/NAME.png            (PNG, JPEG, BMP or TIFF; sub-folders allowed)
    DATA_ROOT/indexes/NAME_color_mask.png

No torch here: the ONNX / TensorRT commands read images and masks through this module. The torch
``SegDataset`` the training loop reads from is in :mod:`segpipe.data.torchdata`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from segpipe.data.maskio import read_mask_file
from segpipe.data.masks import MaskDecoder
from segpipe.data.safepaths import open_regular, shown
from segpipe.data.samples import LabelledSample
from segpipe.errors import DataError, some
from segpipe.imagesize import check_image_file
from segpipe.progress import Reporter

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MASK_EXTS = (".png", ".bmp", ".tif", ".tiff")

cv2.setNumThreads(1)  # the loader parallelises across samples; cv2's own threads only contend


def sample_data_root() -> Path:
    """The small sample dataset shipped inside the package (used by ``segpipe demo``)."""
    return Path(str(resources.files("segpipe") / "data" / "sample"))


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def find_samples(
    root: str | Path,
    images_dir: str = "images",
    masks_dir: str = "indexes",
    mask_suffix: str = "_color_mask",
    reporter: Reporter | None = None,
) -> list[LabelledSample]:
    """Pair every image with its mask (the sample's ``label``); one-line errors for every way the
    layout can be wrong.

    Masks without an image are left out with one warning through ``reporter`` (count, first names).
    """
    root = Path(root)
    if root.is_file():
        raise DataError(f"data root {root} is a file, not a folder")
    if not root.is_dir():
        raise DataError(f"data root {root} does not exist")
    img_dir, mask_dir = root / images_dir, root / masks_dir
    for d, what in ((img_dir, "images"), (mask_dir, "masks")):
        if not d.is_dir():
            raise DataError(
                f"{d} is missing: the data root must hold {images_dir}/ and {masks_dir}/ ({what} folder)"
            )
    images = _list_images(img_dir)
    if not images:
        raise DataError(f"{img_dir} holds no images (read: {', '.join(IMAGE_EXTS)})")
    masks: dict[str, Path] = {}
    for p in mask_dir.rglob("*"):
        if p.suffix.lower() in MASK_EXTS and p.is_file():
            masks[str(p.relative_to(mask_dir).with_suffix(""))] = p
    samples, orphans, used = [], [], set()
    for img in images:
        rel = img.relative_to(img_dir).with_suffix("")
        key = (
            str(rel.parent / f"{rel.name}{mask_suffix}")
            if str(rel.parent) != "."
            else f"{rel.name}{mask_suffix}"
        )
        mask = masks.get(key)
        if mask is None:
            orphans.append(str(img.relative_to(root)))
        else:
            samples.append(LabelledSample(str(rel), img, mask))
            used.add(key)
    if orphans:
        raise DataError(
            f"{len(orphans)} image(s) in {img_dir} have no mask NAME{mask_suffix}.png in {mask_dir}: "
            f"{some(orphans)}"
        )
    lone = sorted(str(p.relative_to(root)) for key, p in masks.items() if key not in used)
    if lone and reporter is not None:
        reporter.warn(
            f"{len(lone)} mask(s) in {mask_dir} have no image in {img_dir} and are left out: {some(lone)}"
            f" (an image NAME.png pairs with NAME{mask_suffix}.png)"
        )
    return samples


def read_image(path: str | Path) -> np.ndarray:
    """An image as RGB uint8 H×W×3; one-line error naming the file when it cannot be decoded."""
    check_image_file(path)  # a huge declared size is refused before decoding (a FIFO: one line)
    with open_regular(path, "image") as f:
        data = np.frombuffer(f.read(), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise DataError(f"cannot read image {shown(path)}: missing, unreadable or not an image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_mask_raw(path: str | Path, as_color: bool = False) -> np.ndarray:
    """A mask as stored (indices, or BGR colours); one-line error when it cannot be decoded.

    Palette-mode PNGs are read as the indices they store (see :mod:`segpipe.data.maskio`);
    ``as_color`` gives their palette colours instead (``--mask-type color``)."""
    check_image_file(path, what="mask")  # a huge declared size is refused before decoding
    return read_mask_file(path, as_color)


def load_pair(sample: LabelledSample, decoder: MaskDecoder) -> tuple[np.ndarray, np.ndarray]:
    """Image (RGB) and mask of one sample of the seed layout decoded by ``decoder``, checked to be
    the same size; a reader's
    :meth:`~segpipe.data.formats.FormatReader.load` does this for every format."""
    image = read_image(sample.image)
    mask = decoder.decode(read_mask_raw(sample.label, decoder.mask_type == "color"), sample.label)
    if image.shape[:2] != mask.shape[:2]:
        raise DataError(
            f"{sample.label}: mask is {mask.shape[1]}x{mask.shape[0]} but image {sample.image} is "
            f"{image.shape[1]}x{image.shape[0]} (W x H)"
        )
    return image, mask


@dataclass
class DatasetStats:
    """What a scan of the whole dataset found."""

    count: int
    class_pixels: np.ndarray  # pixels per class (ignore excluded)
    ignored_pixels: int

    @property
    def majority_fraction(self) -> float:
        total = self.class_pixels.sum()
        return float(self.class_pixels.max() / total) if total else 0.0


def scan_samples(
    samples: Sequence[LabelledSample],
    reader: Any,
    reporter: Reporter | None = None,
    threads: int | None = None,
) -> DatasetStats:
    """Decode every mask (and image) once, so bad data fails before anything is written.

    Raises the first error found (one line naming the file). Also counts pixels per class.
    ``reader``: the :class:`~segpipe.data.formats.FormatReader` the ``samples`` come from, built
    with its ``num_classes``.
    """
    if not samples:
        raise DataError("the dataset is empty")
    reporter = reporter or Reporter()
    counts = np.zeros(max(reader.num_classes, 1), dtype=np.int64)
    ignored = 0

    def one(s: LabelledSample) -> np.ndarray:
        _, mask = reader.load(s)
        return np.bincount(mask.ravel(), minlength=max(reader.num_classes, reader.ignore_index + 1))

    threads = threads or min(8, (os.cpu_count() or 2) * 2)
    with reporter.task("Checking dataset", total=len(samples)) as task, ThreadPoolExecutor(threads) as pool:
        for hist in pool.map(one, samples):
            counts += hist[: len(counts)]
            if reader.ignore_index < len(hist):
                ignored += int(hist[reader.ignore_index])
            task.advance()
    return DatasetStats(len(samples), counts, ignored)
