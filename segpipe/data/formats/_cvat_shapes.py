"""Drawing CVAT shapes into masks as CVAT's "Segmentation mask 1.1" export draws them (used by
:mod:`segpipe.data.formats.cvat_xml`): polygons and (rotated) boxes through pycocotools'
``frPyObjects``, ellipses with ``cv2.ellipse``, masks from CVAT's RLE. Every coordinate is bounded
(:func:`segpipe.data.safepaths.check_polygon`) before a C rasteriser sees it, then rounded to
float32 as datumaro (which CVAT's exporters go through) stores shape points: a point on a pixel's
edge falls as it falls there. No torch here.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from segpipe.data.formats._annotations import MAX_POINTS
from segpipe.data.safepaths import check_polygon
from segpipe.errors import DataError


def _float(attrs: dict[str, str], key: str, where: str) -> float:
    try:
        v = float(attrs[key])
    except (KeyError, ValueError):
        raise DataError(f"{where}: attribute {key}={attrs.get(key)!r} is not a number") from None
    if not math.isfinite(v):
        raise DataError(f"{where}: attribute {key}={attrs[key]!r} is not finite")
    return v


def _poly_mask(flat: list[float], w: int, h: int, where: str) -> np.ndarray | None:
    from pycocotools import mask as mask_utils

    if len(flat) % 2:
        raise DataError(f"{where}: {len(flat)} coordinates, not x,y pairs")
    if len(flat) < 6:  # fewer than 3 points: no area (pycocotools would read 4 values as a box)
        return None
    if len(flat) > 2 * MAX_POINTS:
        raise DataError(f"{where}: polygon of {len(flat) // 2} points (limit {MAX_POINTS})")
    pts = check_polygon(flat, w, h, where).astype(np.float32).astype(np.float64)  # as datumaro stores them
    with warnings.catch_warnings():  # pycocotools' own numpy-2 DeprecationWarning (copy=False)
        warnings.simplefilter("ignore", DeprecationWarning)
        rles = mask_utils.frPyObjects([pts.ravel().tolist()], h, w)
        return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def _rle_mask(attrs: dict[str, str], w: int, h: int, where: str) -> np.ndarray:
    try:
        left, top = int(attrs["left"]), int(attrs["top"])
        bw, bh = int(attrs["width"]), int(attrs["height"])
        counts = np.array([int(v) for v in attrs["rle"].split(",") if v.strip()], dtype=np.int64)
    except (KeyError, ValueError):
        raise DataError(f"{where}: mask needs integer rle, left, top, width, height") from None
    if not (0 <= left and 0 <= top and 1 <= bw and 1 <= bh and left + bw <= w and top + bh <= h):
        raise DataError(f"{where}: mask box left={left} top={top} {bw}x{bh} lies outside the {w}x{h} image")
    if (counts < 0).any() or int(counts.sum()) != bw * bh:
        raise DataError(f"{where}: mask rle covers {int(counts.sum())} pixels, its box {bw}x{bh} = {bw * bh}")
    values = np.arange(len(counts)) % 2 == 1  # runs of 0s first
    box = np.repeat(values, counts).reshape(bh, bw)
    out = np.zeros((h, w), bool)
    out[top : top + bh, left : left + bw] = box
    return out


def shape_mask(kind: str, attrs: dict[str, str], w: int, h: int, where: str) -> np.ndarray | None:
    """The pixels one CVAT shape covers (H×W bool), as CVAT's Segmentation mask export draws it."""
    if kind == "polygon":
        try:
            flat = [float(v) for p in attrs.get("points", "").split(";") if p for v in p.split(",")]
        except ValueError:
            raise DataError(f"{where}: points {attrs.get('points')!r} are not 'x,y;x,y;...'") from None
        return _poly_mask(flat, w, h, where)
    if kind == "box":
        x0, y0, x1, y1 = (_float(attrs, k, where) for k in ("xtl", "ytl", "xbr", "ybr"))
        check_polygon([x0, y0, x1, y1], w, h, where)
        # datumaro's Bbox(x, y, w, h): corners x, y, x + w, y + h stored as float32
        x0, y0, x1, y1 = np.array([x0, y0, x0 + (x1 - x0), y0 + (y1 - y0)], np.float32).tolist()
        corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        angle = math.radians(float(attrs.get("rotation", "0") or 0))
        if angle:
            cx, cy = x0 + (x1 - x0) / 2, y0 + (y1 - y0) / 2
            corners = [
                (
                    cx + math.cos(angle) * (x - cx) - math.sin(angle) * (y - cy),
                    cy + math.sin(angle) * (x - cx) + math.cos(angle) * (y - cy),
                )
                for x, y in corners
            ]
        return _poly_mask([v for p in corners for v in p], w, h, where)
    if kind == "ellipse":
        import cv2

        cx, cy, rx, ry = (_float(attrs, k, where) for k in ("cx", "cy", "rx", "ry"))
        check_polygon([cx - rx, cy - ry, cx + rx, cy + ry], w, h, where)
        mat = np.zeros((h, w), np.uint8)
        angle = float(attrs.get("rotation", "0") or 0)
        cv2.ellipse(mat, (round(cx), round(cy)), (round(rx), round(ry)), angle, 0, 360, 255, thickness=-1)
        return mat > 0
    return _rle_mask(attrs, w, h, where)
