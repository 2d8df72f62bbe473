"""Photo-like synthetic scenes: the bundled sample data (``scripts/make_sample_data.py``).

Each image is a textured ground (grass, moss, soil or slate: low-frequency noise under a lighting
gradient) with a few objects in natural colours that vary per instance: discs are shaded fruit or
balls (yellows, limes, oranges), boxes are cardboard or wood with grain and a darker rim, stripes
are pipes (steel, white or pale-blue plastic) with a cylinder's shading. The palette colours appear
only in the masks, so an overlay of a prediction on the photo shows the prediction, not the photo.
Each class keeps its own look (shape, texture, hue range), so a small network trained from scratch
for a few dozen steps still learns it.
"""

from __future__ import annotations

import cv2
import numpy as np

# (dark, light) RGB ends of each ground; an image's ground lies between them, per pixel
_GROUNDS = (
    ((46, 82, 34), (112, 150, 62)),  # grass
    ((70, 80, 40), (128, 130, 74)),  # moss / olive
    ((40, 32, 26), (88, 70, 54)),  # dark soil
    ((52, 62, 76), (104, 116, 128)),  # slate
)
# saturated fruit and balls (yellow, lime, orange) against desaturated cardboard and wood: the
# classes stay apart in colour as well as shape, so a few dozen training steps learn them
_DISC_COLORS = ((245, 205, 40), (200, 225, 60), (245, 140, 25), (235, 185, 30))
_BOX_COLORS = ((178, 150, 112), (150, 122, 94), (208, 190, 152), (160, 140, 120))
_PIPE_COLORS = ((196, 202, 210), (236, 236, 228), (170, 198, 222), (150, 156, 164))


def _noise(rng: np.random.Generator, width: int, height: int, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1]: a ``cells`` x ``cells`` random grid, cubic-upsampled."""
    grid = rng.random((cells, cells)).astype(np.float32)
    return np.clip(cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC), 0, 1)


def _jitter(rng: np.random.Generator, colors: tuple, spread: float = 12.0) -> np.ndarray:
    """One of ``colors``, mixed towards another and shifted a little: every instance differs."""
    a, b = (np.array(colors[int(i)], np.float32) for i in rng.integers(0, len(colors), 2))
    return np.clip(a + rng.uniform(0, 0.4) * (b - a) + rng.normal(0, spread, 3), 0, 255)


def _ground(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    dark, light = (np.array(c, np.float32) for c in _GROUNDS[int(rng.integers(0, len(_GROUNDS)))])
    t = 0.55 * _noise(rng, width, height, 5) + 0.45 * _noise(rng, width, height, 14)
    ground = dark + t[..., None] * (light - dark)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)  # daylight from one side
    ramp = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)[..., None]
    return ground * (0.9 + 0.2 * ramp)


def _disc(rng, image, region, cx, cy, r, xx, yy) -> None:
    base = _jitter(rng, _DISC_COLORS)
    hx, hy = cx - 0.35 * r, cy - 0.35 * r  # the highlight, up and to the left
    d = np.sqrt((xx - hx) ** 2 + (yy - hy) ** 2) / (1.4 * r)
    shade = (1.25 - 0.65 * np.clip(d, 0, 1))[..., None]
    spots = 0.92 + 0.08 * _noise(rng, image.shape[1], image.shape[0], 20)[..., None]  # peel / leather
    image[region] = np.clip(base * shade * spots, 0, 255)[region]


def _box(rng, image, region, xx, yy) -> None:
    base = _jitter(rng, _BOX_COLORS)
    freq, phase = rng.uniform(0.5, 1.2), rng.uniform(0, 6)
    axis = xx if rng.random() < 0.5 else yy
    grain = 0.88 + 0.12 * np.sin(axis * freq + 3 * _noise(rng, image.shape[1], image.shape[0], 6) + phase)
    body = base * grain[..., None]
    rim = region & ~cv2.erode(region.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    body[rim] *= 0.6  # the darker edge of a lid or a plank
    image[region] = np.clip(body, 0, 255)[region]


def _pipe(rng, image, region, p0, p1, half, xx, yy) -> None:
    base = _jitter(rng, _PIPE_COLORS, spread=8.0)
    (x0, y0), (x1, y1) = p0, p1
    length = max(np.hypot(x1 - x0, y1 - y0), 1e-6)
    across = ((xx - x0) * (y1 - y0) - (yy - y0) * (x1 - x0)) / length / max(half, 1)
    shade = (0.55 + 0.55 * np.cos(np.clip(across - 0.3, -1.5, 1.5)))[..., None]  # a cylinder, lit
    image[region] = np.clip(base * shade, 0, 255)[region]


def make_scene(
    rng: np.random.Generator, width: int, height: int, num_classes: int, shapes: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """One (RGB image uint8, index mask uint8) pair; classes 1, 2, 3 (then again, cycling) are
    drawn as disc, box and stripe (pipe); class 0 is the ground."""
    image = _ground(rng, width, height)
    mask = np.zeros((height, width), dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for _ in range(shapes):
        cls = int(rng.integers(1, num_classes))
        kind = cls % 3
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(max(3, min(width, height) // 10), max(4, min(width, height) // 4)))
        layer = np.zeros((height, width), dtype=np.uint8)
        if kind == 1:
            cv2.circle(layer, (cx, cy), r, 1, -1)
            _disc(rng, image, layer.astype(bool), cx, cy, r, xx, yy)
        elif kind == 2:
            cv2.rectangle(layer, (cx - r, cy - r // 2), (cx + r, cy + r // 2), 1, -1)
            _box(rng, image, layer.astype(bool), xx, yy)
        else:
            thickness = max(2, r // 3)
            p0, p1 = (int(rng.integers(0, width)), 0), (int(rng.integers(0, width)), height - 1)
            cv2.line(layer, p0, p1, 1, thickness)
            _pipe(rng, image, layer.astype(bool), p0, p1, thickness / 2, xx, yy)
        mask[layer.astype(bool)] = cls
    image = cv2.GaussianBlur(image, (3, 3), 0.7) + rng.normal(0, 2.5, size=image.shape)  # a lens, a sensor
    return np.clip(image + 0.5, 0, 255).astype(np.uint8), mask
