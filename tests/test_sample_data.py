"""The bundled sample data looks like photographs: its palette colours are in the masks only."""

from __future__ import annotations

import cv2
import numpy as np

from segpipe.data.dataset import find_samples, load_pair, sample_data_root
from segpipe.data.masks import MaskDecoder
from segpipe.palette import load_palette


def _pairs() -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    root = sample_data_root()
    palette = load_palette(root / "colors.csv")
    decoder = MaskDecoder(len(palette), palette)
    return [load_pair(s, decoder) for s in find_samples(root)], palette.array().astype(np.float32)


def test_objects_are_not_painted_in_their_palette_colour() -> None:
    """An overlay of the palette on the photo must show something: no object is drawn in (or near)
    its class's colour, and next to no object pixel is."""
    pairs, colors = _pairs()
    near = total = 0
    for image, mask in pairs:
        for cls in range(1, len(colors)):
            region = mask == cls
            if not region.any():
                continue
            pixels = image[region].astype(np.float32)
            assert np.linalg.norm(pixels.mean(0) - colors[cls]) > 80
            near += int(np.count_nonzero(np.linalg.norm(pixels - colors[cls], axis=1) < 50))
            total += len(pixels)
    assert near < 0.01 * total


def test_instances_vary_and_the_ground_is_textured() -> None:
    """The same class in different images has different colours (not one tint per class), and the
    background is a texture, not a flat colour with sensor noise."""
    pairs, colors = _pairs()
    for cls in range(1, len(colors)):
        means = [
            image[mask == cls].astype(np.float32).mean(0) for image, mask in pairs if (mask == cls).sum() > 50
        ]
        assert len(means) >= 5
        assert np.linalg.norm(np.std(means, axis=0)) > 12, f"class {cls}: every instance has one colour"
    for image, mask in pairs:
        ground = cv2.GaussianBlur(image, (9, 9), 0)[mask == 0].astype(np.float32)  # sensor noise out
        assert ground.std(0).max() > 6  # shades left after blurring: a texture or a gradient
