"""Pictures a person opens: the legend, an overlay with its legend, image and mask side by side.

Each keeps the image's own pixels somewhere a test (or a person) can find them: the overlay at
``[0:H, 0:W]`` of its picture, the side-by-side panels at ``[SIDE_TITLE:, :W]`` and
``[SIDE_TITLE:, W + SIDE_GAP:]``, H and W once scaled (:func:`overlay_scale`, :func:`side_scale`:
small images are scaled up by a whole factor, the masks by nearest neighbour). Used by
:mod:`segpipe.visualize` and the demo.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from segpipe.errors import SegpipeError
from segpipe.palette import IGNORE_COLOR, Palette, overlay
from segpipe.utils import atomic_write_bytes

SIDE_GAP = 12  #: white pixels between the panels of a side-by-side picture
SIDE_TITLE = 24  #: height of the title strip above each panel
#: Side-by-side pictures narrower than this are scaled up by a whole factor (nearest neighbour
#: for the mask, so class edges stay sharp): a 64 x 48 image is otherwise a stamp on a screen.
SIDE_MIN_WIDTH = 900
# Fastest zlib level and one fixed PNG filter ("up"): about 4x quicker to encode than libpng's
# adaptive filtering for the same size on masks (OpenCV >= 4.10 has the flag; older ones ignore it).
PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1]
if hasattr(cv2, "IMWRITE_PNG_FILTER"):
    PNG_PARAMS += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]


def write_png(path: Path, rgb: np.ndarray) -> Path:
    """Encode an RGB (or single-channel) image as PNG and write it atomically."""
    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    ok, buf = cv2.imencode(".png", img, PNG_PARAMS)
    if not ok:
        raise SegpipeError(f"cannot encode {path} as PNG")
    try:
        return atomic_write_bytes(path, buf.tobytes())
    except OSError as e:
        raise SegpipeError(f"cannot write {path}: {e.strerror or e}") from e


def share_text(count: int, total: int) -> str:
    """A legend row's share of pixels: ``"6.5%"``; a class that is present but under 0.05% reads
    ``"<0.1%"``, never ``"0.0%"`` (which reads as absent beside a swatch drawn for it)."""
    share = 100 * count / max(total, 1)
    return "<0.1%" if count > 0 and share < 0.05 else f"{share:.1f}%"


def draw_legend(
    palette: Palette, counts: Sequence[int] | np.ndarray, ignored: int = 0, clear: int | None = None
) -> np.ndarray:
    """An RGB legend: one row per class with a non-zero count (swatch, name, share of pixels);
    ``ignored`` > 0 (ignored pixels in a ground truth shown beside it) adds an "ignored" row.

    One style for every picture: a swatch is the class's colour as the masks draw it, in a grey
    frame. Class ``clear`` (the background an overlay leaves as the photo) keeps its swatch, struck
    through, and its row says "(not drawn)": the same colour as in ``legend.png`` and the masks, and
    no doubt that the overlay shows the photo there."""
    counts = np.asarray(counts, dtype=np.int64)
    total = max(int(counts.sum()), 1)
    present = [int(i) for i in np.flatnonzero(counts) if i < len(palette)]
    font, scale, thick, row = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1, 22
    texts = [
        f"{i} {palette.names[i]}  {share_text(int(counts[i]), total)}" + (" (not drawn)" if i == clear else "")
        for i in present
    ] or ["(no class)"]
    swatches = [tuple(int(c) for c in palette.colors[i]) for i in present] or [None]
    struck = [i == clear for i in present] or [False]
    if ignored > 0:
        texts.append("ignored (ground truth)")
        swatches.append(IGNORE_COLOR)
        struck.append(False)
    width = 36 + max(cv2.getTextSize(t, font, scale, thick)[0][0] for t in texts) + 8
    img = np.full((row * len(texts) + 8, width, 3), 255, dtype=np.uint8)
    for r, text in enumerate(texts):
        y = 4 + r * row
        color = swatches[r]
        if color is not None:
            cv2.rectangle(img, (6, y + 3), (26, y + row - 3), color, -1)
            if struck[r]:  # not drawn in this picture: the swatch crossed out, in both greys
                cv2.line(img, (7, y + row - 4), (25, y + 4), (255, 255, 255), 3, cv2.LINE_AA)
                cv2.line(img, (7, y + row - 4), (25, y + 4), (96, 96, 96), 1, cv2.LINE_AA)
            cv2.rectangle(img, (6, y + 3), (26, y + row - 3), (96, 96, 96), 1)
        cv2.putText(img, text, (34, y + row - 7), font, scale, (0, 0, 0), thick, cv2.LINE_AA)
    return img


def with_legend(picture: np.ndarray, legend: np.ndarray) -> np.ndarray:
    """``picture`` at ``[0:H, 0:W]`` with a white gap and the legend to its right, on white."""
    h, w = picture.shape[:2]
    lh, lw = legend.shape[:2]
    canvas = np.full((max(h, lh), w + SIDE_GAP + lw, 3), 255, dtype=np.uint8)
    canvas[:h, :w] = picture
    canvas[:lh, w + SIDE_GAP :] = legend
    return canvas


def overlay_scale(width: int, legend_width: int) -> int:
    """The whole factor an overlay of a ``width``-pixel image is scaled by: as a side-by-side
    picture's panels (:func:`side_scale`, one panel), and never narrower than its legend."""
    return max(side_scale(width, legend_width, panels=1), math.ceil(legend_width / max(width, 1)))


def _grow(a: np.ndarray, k: int) -> np.ndarray:
    """Nearest-neighbour scaling by a whole factor (any dtype: class maps, colour masks)."""
    return a if k == 1 else np.repeat(np.repeat(a, k, axis=0), k, axis=1)


def overlay_picture(
    image: np.ndarray,
    mask: np.ndarray,
    labels: np.ndarray,
    legend: np.ndarray,
    alpha: float,
    background: int | None = None,
    outline: bool = False,
) -> np.ndarray:
    """The colour ``mask`` blended on ``image`` (:func:`segpipe.palette.overlay`) with the legend
    beside it (:func:`with_legend`). A small image is first scaled up by :func:`overlay_scale`
    (the photo smoothly, the mask and class map by nearest neighbour, so class edges stay sharp)."""
    k = overlay_scale(image.shape[1], legend.shape[1])
    if k > 1:
        image = cv2.resize(image, (image.shape[1] * k, image.shape[0] * k), interpolation=cv2.INTER_LINEAR)
        mask, labels = _grow(mask, k), _grow(labels, k)
    return with_legend(overlay(image, mask, alpha, labels, background=background, outline=outline), legend)


def side_scale(width: int, legend_width: int, panels: int = 2) -> int:
    """The whole factor a side-by-side picture's panels are scaled by to reach :data:`SIDE_MIN_WIDTH`."""
    room = SIDE_MIN_WIDTH - panels * SIDE_GAP - legend_width
    return max(1, math.ceil(room / max(panels * width, 1)))


def side_by_side(
    image: np.ndarray, mask: np.ndarray, legend: np.ndarray, truth: np.ndarray | None = None
) -> np.ndarray:
    """Image and colour mask next to each other on white, a gap between them, a title above each
    ("image", "prediction") and the legend to the right. ``truth`` (a colour mask of the ground
    truth): drawn between them, titled "ground truth".

    Small images are scaled up by :func:`side_scale` (the photo smoothly, the masks by nearest
    neighbour); then the image sits at ``[SIDE_TITLE:, :W]`` and the mask at
    ``[SIDE_TITLE:, W + SIDE_GAP : 2W + SIDE_GAP]`` (after the ground truth when there is one),
    W the scaled width."""
    n = 3 if truth is not None else 2
    k = side_scale(image.shape[1], legend.shape[1], n)
    if k > 1:
        size = (image.shape[1] * k, image.shape[0] * k)
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
        truth = cv2.resize(truth, size, interpolation=cv2.INTER_NEAREST) if truth is not None else None
    h, w = image.shape[:2]
    lh, lw = legend.shape[:2]
    panels = (
        [(image, "image")] + ([(truth, "ground truth")] if truth is not None else []) + [(mask, "prediction")]
    )
    canvas = np.full((SIDE_TITLE + max(h, lh), n * w + n * SIDE_GAP + lw, 3), 255, dtype=np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i, (panel, title) in enumerate(panels):
        x = i * (w + SIDE_GAP)
        canvas[SIDE_TITLE : SIDE_TITLE + h, x : x + w] = panel
        # the title shrinks to its panel's width (small images), never into the next one
        width = cv2.getTextSize(title, font, 0.5, 1)[0][0]
        scale = min(0.5, 0.5 * (w + SIDE_GAP - 6) / max(width, 1))
        cv2.putText(canvas, title, (x + 2, SIDE_TITLE - 7), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    x_legend = n * (w + SIDE_GAP)
    canvas[SIDE_TITLE : SIDE_TITLE + lh, x_legend:] = legend
    cv2.putText(canvas, "classes", (x_legend + 4, SIDE_TITLE - 7), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas
