"""Reading mask files as their class indices, palette-mode PNGs included.

A palette-mode (``P``) PNG -- how Pascal VOC, many labelling tools and Pillow write label maps --
stores class indices; the palette only colours them. OpenCV expands such a file to its palette
colours (``cv2.IMREAD_UNCHANGED`` gives H×W×3 BGR), so a channel of it is a colour byte, not a
class: ``read_mask_file`` reads P-mode PNGs with Pillow as the indices they store.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from segpipe.data.safepaths import check_regular, open_regular, shown
from segpipe.errors import DataError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def is_palette_png(path: str | Path) -> bool:
    """The file is a PNG whose IHDR colour type is 3 (palette): read from its first 26 bytes."""
    try:
        with open_regular(path, "mask") as f:
            head = f.read(26)
    except (OSError, DataError):
        return False
    return len(head) == 26 and head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR" and head[25] == 3


def read_palette_png(path: str | Path, as_color: bool = False) -> np.ndarray:
    """A P-mode PNG as H×W uint8 indices (``as_color``: H×W×3 BGR colours of its palette)."""
    from PIL import Image

    from segpipe.imagesize import check_image_file

    check_image_file(path, what="mask")  # Pillow's DecompressionBombError never reaches the user
    try:
        with Image.open(path) as im:
            if as_color:
                return np.ascontiguousarray(np.asarray(im.convert("RGB"))[:, :, ::-1])
            return np.asarray(im).copy()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise DataError(f"cannot read mask {shown(path)}: {e}") from None


def read_mask_file(path: str | Path, as_color: bool = False) -> np.ndarray:
    """A mask as stored: H×W indices (palette PNGs as their indices, 8/16-bit grey as is) or
    H×W×3(4) BGR colours; ``as_color`` turns a palette PNG into its colours instead.
    One line naming the file when it cannot be decoded."""
    from segpipe.imagesize import check_image_file

    p = Path(path)
    check_regular(p, "mask")
    if is_palette_png(p):
        return read_palette_png(p, as_color)
    check_image_file(p, what="mask")  # the pixel bound before OpenCV decodes
    with open_regular(p, "mask") as f:
        data = np.frombuffer(f.read(), dtype=np.uint8)
    mask = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if mask is None:
        raise DataError(f"cannot read mask {shown(p)}: missing, unreadable or not an image")
    return mask
