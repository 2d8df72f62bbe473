"""Shared bounds and small readers for the annotation-format readers (ultralytics, yolo, coco,
labelme, cvat).

Everything a reader takes from a label file is bounded before it is used:

* a label file (JSON, txt) larger than ``SEGPIPE_MAX_LABEL_MB`` megabytes (default 1024) is
  refused before it is parsed;
* an image size read from a file (``imageHeight``/``imageWidth``, COCO ``height``/``width``, an
  image header) must be 1..:data:`MAX_SIDE` pixels a side and at most ``SEGPIPE_MAX_IMAGE_MPIX``
  megapixels (default 256), checked before any mask is allocated;
* a polygon holds at most :data:`MAX_POINTS` points.

No torch here.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np

from segpipe.data.safepaths import check_regular, env_number, is_regular, open_regular
from segpipe.errors import DataError, some
from segpipe.progress import Reporter

_S = TypeVar("_S")

LABEL_MB_ENV = "SEGPIPE_MAX_LABEL_MB"
DEFAULT_LABEL_MB = 1024
IMAGE_MPIX_ENV = "SEGPIPE_MAX_IMAGE_MPIX"
DEFAULT_IMAGE_MPIX = 256
#: Largest image side (pixels) a label file may declare.
MAX_SIDE = 32768
#: Most points one polygon may hold.
MAX_POINTS = 100_000
#: Image suffixes the readers look for (lower case).
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def check_label_file_size(path: Path) -> None:
    """Refuse a label file over ``SEGPIPE_MAX_LABEL_MB`` megabytes, or that is not a regular file
    (a FIFO would block), before reading it."""
    limit_mb = env_number(LABEL_MB_ENV, DEFAULT_LABEL_MB)
    size = check_regular(path, "label file").st_size
    if size > limit_mb * 1024 * 1024:
        raise DataError(
            f"{path} is {size / 2**20:.0f} MB, over the {limit_mb:g} MB limit for a label file "
            f"(raise it with {LABEL_MB_ENV}=MB)"
        )


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector paused (restored as it was): while millions of containers are
    built that hold no reference cycles (a parsed COCO train file and its index), it would only
    scan them again and again (about a quarter of the parse time)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def read_json(path: Path) -> Any:
    """Parse a JSON label file (size bounded); one-line error naming the file and the position."""
    check_label_file_size(path)
    try:
        with open_regular(path, "label file") as f:
            data = f.read()
        with gc_paused():  # parsed JSON holds no reference cycles
            return json.loads(data)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not valid JSON: not UTF-8 text") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply") from None
    except ValueError:  # Python's bound on digits (4300) refuses a longer integer
        raise DataError(f"{path}: not valid JSON: a number too long to read") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_text(path: Path) -> str:
    """A text label file (size bounded), decoded as UTF-8."""
    check_label_file_size(path)
    try:
        with open_regular(path, "label file") as f:
            return f.read().decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None


def check_image_size(width: object, height: object, where: str) -> tuple[int, int]:
    """``(width, height)`` as ints after checking them against the bounds; ``where`` names the
    file and fields (``"a.json imageWidth/imageHeight"``)."""
    ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (width, height))
    if not ok or not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):  # type: ignore[operator]
        raise DataError(
            f"{where}: image size {width!r}x{height!r} (W x H) is not 1..{MAX_SIDE} pixels a side"
        )
    limit = env_number(IMAGE_MPIX_ENV, DEFAULT_IMAGE_MPIX)
    if width * height > limit * 1e6:  # type: ignore[operator]
        raise DataError(
            f"{where}: image size {width}x{height} (W x H) is over the {limit:g} megapixel limit "
            f"(raise it with {IMAGE_MPIX_ENV}=MPIX)"
        )
    return int(width), int(height)  # type: ignore[arg-type]


def image_size(path: Path, data: bytes | None = None, what: str = "") -> tuple[int, int]:
    """``(width, height)`` of an image from its header, as segpipe will read it (EXIF orientation
    applied, as OpenCV does), bounded by :func:`check_image_size`. ``data``: the encoded bytes
    (an image embedded in ``path``, named ``what`` there, e.g. LabelMe's ``imageData``)."""
    from PIL import Image, UnidentifiedImageError

    if data is None:
        check_regular(path, "image")
    where = f"{path} {what}" if what else str(path)
    try:
        with Image.open(io.BytesIO(data) if data is not None else path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except Image.DecompressionBombError:
        raise DataError(
            f"{where}: over Pillow's decompression-bomb pixel limit (refused before decoding)"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError):
        if data is not None:
            raise DataError(f"{where} is not an image") from None
        raise DataError(f"cannot read image {path}: missing, unreadable or not an image") from None
    if orientation in (5, 6, 7, 8):  # rotated by 90 degrees
        w, h = h, w
    return check_image_size(w, h, where)


def decode_image(data: bytes, path: Path, what: str = "imageData") -> np.ndarray:
    """An image embedded in ``path`` (encoded ``data``) as RGB uint8 H×W×3, decoded as segpipe
    decodes image files (OpenCV, EXIF orientation applied), bounded before decoding."""
    import cv2

    from segpipe.imagesize import check_image_file

    check_image_file(f"{path} {what}", data)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"{path}: {what} is not an image OpenCV decodes")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@contextlib.contextmanager
def opened_label_image(path: Path, what: str = "mask", source: IO[bytes] | None = None) -> Iterator[Any]:
    """Pillow's image of the label file ``path`` (read from ``source`` when given), its declared
    size bounded by :func:`check_image_size` before anything is decoded. A decompression bomb, or a
    file Pillow cannot read or decode inside the block, is one line naming ``path`` (``what`` it
    is: ``"mask"``, ``"panoptic PNG"``)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path if source is None else source) as im:
            check_image_size(*im.size, str(path))
            yield im
    except Image.DecompressionBombError:
        raise DataError(
            f"{path}: over Pillow's decompression-bomb pixel limit (refused before decoding)"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise DataError(f"cannot read {what} {path}: missing, unreadable or not an image") from None


def read_index_png(path: Path) -> np.ndarray:
    """A single-channel label image as its stored values (H×W uint8/uint16).

    Palette-mode (P) PNGs give their indices (never the palette colours), greyscale gives its
    values, and an RGB image whose three channels are equal gives one channel; anything else is
    refused in one line.
    """
    check_regular(path, "mask")
    with opened_label_image(path) as im:
        mode = im.mode
        arr = np.array(im)
    if mode in ("P", "L"):
        return arr.astype(np.uint8, copy=False)
    if mode in ("I;16", "I;16B", "I;16L", "I", "1"):
        if arr.dtype == bool:
            return arr.astype(np.uint8)
        if arr.min(initial=0) < 0 or arr.max(initial=0) > 65535:
            raise DataError(f"{path}: mask values outside 0..65535")
        return arr.astype(np.uint16)
    if arr.ndim == 3 and arr.shape[2] >= 3:
        rgb = arr[..., :3]
        if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
            return np.ascontiguousarray(rgb[..., 0]).astype(np.uint8)
    raise DataError(
        f"{path}: mask is a {mode} image with differing channels; this format needs single-channel "
        "class indices (greyscale or palette PNG)"
    )


def check_indices(mask: np.ndarray, num_classes: int, ignore_index: int, path: Path) -> np.ndarray:
    """Refuse a mask holding a value that is neither a class (0..num_classes-1) nor ignore."""
    values = np.unique(mask)
    bad = [int(v) for v in values if v >= num_classes and v != ignore_index]
    if bad:
        shown = ", ".join(str(v) for v in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise DataError(
            f"{path}: mask value(s) {shown} are not classes 0..{num_classes - 1} nor ignore ({ignore_index})"
        )
    return mask


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS and is_regular(p))


def find_image(folder: Path, stem: str) -> Path | None:
    """The image ``folder/stem.EXT`` for the first known EXT (either case), or None."""
    for ext in IMAGE_EXTS:
        for cand in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if is_regular(cand):
                return cand
    return None


def checked_samples(
    out: list[_S],
    none: str,
    missing: Sequence[str] = (),
    lacking: str = "",
    warn: Reporter | None = None,
    by_name: bool = True,
) -> list[_S]:
    """The end of a reader's ``samples()``: the files it could not pair (``missing``, one entry
    each) refused in one line ``"N {lacking}: a, b, c and 7 more"`` (with ``warn``: said there and
    left out); no sample at all refused in one line (``none``); else ``out``, sorted by name unless
    ``by_name`` is False (the reader's own order)."""
    if missing:
        line = f"{len(missing)} {lacking}: {some(missing)}"
        if warn is None:
            raise DataError(line)
        warn.warn(line)
    if not out:
        raise DataError(none)
    return sorted(out, key=lambda s: s.name) if by_name else out  # type: ignore[attr-defined]
