"""A bound on the pixels segpipe decodes or allocates per image, checked before the memory is taken.

A 194 KB PNG can declare 40000x40000 pixels (4.8 GB once decoded as RGB); an ONNX model can declare
a 100000x100000 input (120 GB per float32 batch item). Both are refused in one line, from the
declared size alone:

* :func:`check_image_file`: the size an image file's header declares (Pillow reads the header
  only), before OpenCV decodes it;
* :func:`check_pixels`: a size about to be allocated (a network input, a video frame).

The limit is :data:`DEFAULT_MAX_PIXELS` (2**28, about 268 million pixels: a 16384x16384 image), or
the environment variable ``SEGPIPE_MAX_IMAGE_PIXELS``. Pillow's decompression-bomb limit follows it.
OpenCV, which decodes, has its own (``CV_IO_MAX_IMAGE_PIXELS``, 2**30 by default, read when cv2 is
loaded): an image above it is refused here too, with both variables to set.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

from segpipe.errors import ConfigError, DataError

#: The environment variable that sets the limit (pixels, width x height).
ENV = "SEGPIPE_MAX_IMAGE_PIXELS"
#: Default limit: 2**28 pixels (16384x16384), 768 MB as RGB uint8.
DEFAULT_MAX_PIXELS = 2**28


def max_pixels() -> int:
    """The limit in pixels: ``SEGPIPE_MAX_IMAGE_PIXELS`` if set (a positive integer), else 2**28."""
    raw = os.environ.get(ENV, "").strip().replace("_", "")
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(raw)) if "e" in raw.lower() else int(raw)
    except ValueError:
        raise ConfigError(f"{ENV}={raw!r}: expected a whole number of pixels, e.g. {2**30}") from None
    if value <= 0:
        raise ConfigError(f"{ENV}={raw!r}: expected a positive number of pixels, e.g. {2**30}")
    return value


def _mpx(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} Mpx" if pixels >= 10**5 else f"{pixels} px"


def _too_large(what: str, width: int, height: int, limit: int) -> str:
    return (
        f"{what} {width}x{height} pixels ({_mpx(width * height)}), more than segpipe's limit of "
        f"{limit} ({_mpx(limit)}); if that is right, raise the limit: {ENV}={width * height}"
    )


def check_pixels(width: int, height: int, what: str) -> None:
    """One-line :class:`ConfigError` when ``width`` x ``height`` exceeds the limit (``what`` names
    the file and the thing, e.g. ``"m.onnx: the network input would be"``)."""
    limit = max_pixels()
    if int(width) * int(height) > limit:
        raise ConfigError(_too_large(what, int(width), int(height), limit))


def declared_size(path: str | Path, data: bytes | None = None) -> tuple[int, int] | None:
    """(W, H) an image file's header declares (Pillow reads the header only, decoding nothing);
    ``None`` when Pillow does not know the format (OpenCV then decides)."""
    from PIL import Image, UnidentifiedImageError

    from segpipe.data.safepaths import check_regular

    _align_pillow()
    if data is None:
        check_regular(path, "image")  # Pillow would block on a FIFO
    source = io.BytesIO(data) if data is not None else str(path)
    with _PILLOW_LOCK:  # Pillow's own bomb check off while reading the size: ours says it better
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(source) as im:
                return int(im.size[0]), int(im.size[1])
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            return None
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def check_image_file(path: str | Path, data: bytes | None = None, what: str = "image") -> None:
    """One-line :class:`DataError` naming ``path``, its declared size and the limit when the image
    would decode to more pixels than the limit. ``data``: the file's bytes, when already read."""
    size = declared_size(path, data)
    if size is None:
        return
    limit = max_pixels()
    width, height = size
    cv_limit = _opencv_limit()
    if limit >= width * height > cv_limit:
        raise DataError(
            f"{what} {path} declares {width}x{height} pixels ({_mpx(width * height)}), more than OpenCV "
            f"decodes ({cv_limit}); if that is right, start segpipe with CV_IO_MAX_IMAGE_PIXELS="
            f"{width * height} (and {ENV} at least as large)"
        )
    if width * height > limit:
        raise DataError(_too_large(f"{what} {path} declares", width, height, limit))


def _opencv_limit() -> int:
    """OpenCV's decoding limit in pixels (``CV_IO_MAX_IMAGE_PIXELS``, default 2**30)."""
    try:
        return int(os.environ.get("CV_IO_MAX_IMAGE_PIXELS", "") or 2**30)
    except ValueError:
        return 2**30


_ALIGNED: list[int] = []
_PILLOW_LOCK = threading.Lock()


def _align_pillow() -> None:
    """Pillow's decompression-bomb limit follows segpipe's (its error comes at twice it)."""
    from PIL import Image

    limit = max_pixels()
    if _ALIGNED != [limit]:
        Image.MAX_IMAGE_PIXELS = limit
        _ALIGNED[:] = [limit]
