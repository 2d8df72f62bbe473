"""The inputs every verification feeds both sides of a comparison (export-onnx: ONNX Runtime vs
PyTorch; quantize's gate: INT8 vs FP32; build-trt: TensorRT vs ONNX Runtime): smooth seeded random
images and real ones from a folder (calibration images too), in batches of exactly the graph's
batch size. Built one way, here, for every check (:mod:`segpipe.runtime.comparator`), and resized
to the network by the function inference uses too (:func:`to_network`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segpipe.errors import ConfigError, DataError, SegpipeError


@dataclass(frozen=True)
class VerifyBatch:
    """One batch fed to both backends: ``images`` N×H×W×3 uint8, of which the first ``count`` count."""

    source: str
    images: np.ndarray
    count: int


def random_images(n: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """``n`` smooth random RGB images (W, H) = ``size``: blurred colour blobs plus a little noise.

    Smooth images look more like photographs to a network than white noise does, so the outputs
    (and their argmax) are as decided as on real inputs.
    """
    import cv2

    width, height = size
    rng = np.random.default_rng(seed)
    out = np.empty((n, height, width, 3), dtype=np.uint8)
    for i in range(n):
        coarse = rng.uniform(0, 255, (max(2, height // 8), max(2, width // 8), 3)).astype(np.float32)
        img = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        img += rng.normal(0, 6, img.shape).astype(np.float32)
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def image_files(folder: Path, flag: str, error: type[SegpipeError] = ConfigError) -> list[Path]:
    """The images of ``folder`` (recursively, sorted by path); a missing or empty folder is one
    ``error`` naming ``flag``."""
    from segpipe.data.dataset import IMAGE_EXTS

    folder = Path(folder)
    if not folder.is_dir():
        raise error(f"{flag} {folder}: folder does not exist")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise error(f"{flag} {folder}: no images ({', '.join(IMAGE_EXTS)}) in it")
    return files


def to_network(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An RGB image resized to the network's (W, H) ``size`` with bilinear interpolation (as
    training's ``eval`` transform resizes), or the image itself when it has that size already.

    The one resize of images fed to a model: inference (:mod:`segpipe.runtime.pipeline`, the
    sliding window's windows), calibration and the INT8 gate's images (:func:`load_images`), and
    export-onnx's and build-trt's ``--verify-images`` (:func:`folder_images`). So calibration sees
    the pixels inference will feed, and a check measures what a deployment runs.
    """
    import cv2

    w, h = size
    if image.shape[1] == w and image.shape[0] == h:
        return image
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)


def load_images(files: list[Path], size: tuple[int, int], flag: str) -> tuple[np.ndarray, int]:
    """RGB uint8 N×H×W×3 at (W, H) ``size`` (read as inference reads an image, resized by
    :func:`to_network`) and how many images had to be resized.

    An unreadable file is a one-line error naming it (a folder with a broken file is more likely a
    wrong folder than something to skip silently).
    """
    from segpipe.data.dataset import read_image

    width, height = size
    out = np.empty((len(files), height, width, 3), dtype=np.uint8)
    resized = 0
    for i, f in enumerate(files):
        try:
            img = read_image(f)
        except DataError as e:
            raise DataError(f"{flag}: {e}") from e
        resized += img.shape[:2] != (height, width)
        out[i] = to_network(img, size)
    return out, resized


def folder_images(
    folder: Path, size: tuple[int, int], max_images: int, error: type[SegpipeError] = ConfigError
) -> np.ndarray:
    """Up to ``max_images`` images of ``folder`` (sorted by name), RGB, resized to (W, H) ``size``;
    a missing or empty folder is one ``error`` naming ``--verify-images``."""
    files = image_files(folder, "--verify-images", error)[:max_images]
    return load_images(files, size, "--verify-images")[0]


def fixed_batches(source: str, images: np.ndarray, batch: int) -> list[VerifyBatch]:
    """Split into batches of exactly ``batch`` images (a fixed-batch graph takes no other); the last
    one is padded with repeats that are left out of the comparison."""
    out = []
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        count = len(chunk)
        if count < batch:
            chunk = np.concatenate([chunk, np.resize(chunk, (batch - count, *chunk.shape[1:]))])
        out.append(VerifyBatch(source, chunk, count))
    return out


def verification_inputs(
    size: tuple[int, int], batch: int, n_random: int, folder: Path | None, max_images: int, seed: int = 0
) -> list[VerifyBatch]:
    """The batches export verification runs: ``n_random`` random images, then those of ``folder``."""
    out: list[VerifyBatch] = []
    if n_random:
        out += fixed_batches("random", random_images(n_random, size, seed), batch)
    if folder is not None:
        out += fixed_batches("images", folder_images(folder, size, max_images), batch)
    return out
