"""Sliding-window inference and test-time augmentation around any runner (numpy + OpenCV only).

**Sliding window** (MMSegmentation's ``slide`` mode): an image is covered by overlapping windows of
``tile`` (W, H) image pixels, ``overlap`` of a window apart (stride ``round(W * (1 - overlap))``; the
last window of a row or column is moved back to end at the image's edge, as MMSegmentation does).
Each window is fed at the network size (as it is when the window *is* the network size, resized
otherwise), the windows of an image are batched, and the outputs (logits or probabilities) are
averaged where windows overlap. An image smaller than a window is padded by reflection first.
Memory stays bounded on very large images: scores are kept for one band of rows only (the rows the
windows in flight touch); rows no later window reaches are turned into labels and dropped.

A model whose output is the class map (argmax inside the graph) cannot be averaged: its windows
*vote* instead, each vote weighted by how deep the pixel lies inside the window (a tent: 1 at the
border, largest at the centre), so a pixel takes the class the window that sees it with the most
context gives it, and ties (two windows at the same depth) stay rare.

**Test-time augmentation**: ``flip`` adds the horizontally mirrored input (its output mirrored
back); ``scales`` run the input at several sizes (snapped to the output stride) and resize the
outputs back to the network size. Every view's output is averaged. With a sliding window the
views are taken of each window. Scales need a model that takes other sizes (a ``.pth``, a dynamic
ONNX graph, an engine whose profile covers them); a labels model cannot be averaged at all.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from segpipe.errors import ConfigError
from segpipe.options import InferenceSpec, parse_tta
from segpipe.runtime.base import Runner
from segpipe.runtime.inputs import to_network

__all__ = [
    "InferenceSpec",
    "check_spec",
    "parse_tta",
    "run_views",
    "scaled_size",
    "tiled_scores",
    "window_starts",
    "windows",
]


# ---- views (test-time augmentation) ----------------------------------------------------------------
def scaled_size(size: tuple[int, int], scale: float, stride: int) -> tuple[int, int]:
    """(W, H) of the network size times ``scale``, rounded to multiples of ``stride`` (at least one)."""
    w, h = size
    return (
        max(stride, int(round(w * scale / stride)) * stride),
        max(stride, int(round(h * scale / stride)) * stride),
    )


def check_spec(runner: Runner, spec: InferenceSpec, size: tuple[int, int]) -> None:
    """One-line errors for what this runner cannot do: average a class map, take other sizes."""
    if spec.tta and runner.output_kind == "labels":
        raise ConfigError(
            f"--tta: {runner.path} outputs the class map (argmax inside the graph), which cannot be "
            "averaged; export it with --output logits (or probs) for test-time augmentation"
        )
    stride = runner.info.output_stride
    sizes = [scaled_size(size, s, stride) for s in spec.scales]
    scales = ",".join(f"{s:g}" for s in spec.scales)
    if len(set(sizes)) < len(sizes):  # never average a size twice behind the user's back
        shown = ", ".join(f"{s:g} -> {w}x{h}" for s, (w, h) in zip(spec.scales, sizes, strict=True))
        raise ConfigError(
            f"--tta scales={scales}: at {size[0]}x{size[1]} with output stride {stride} these scales "
            f"give the same input size twice ({shown}); use scales further apart or a larger --size"
        )
    other = [wh for wh in sizes if wh != tuple(size)]
    if not other:
        return
    if runner.fixed_size is not None:
        w, h = runner.fixed_size
        raise ConfigError(
            f"--tta scales={scales}: {runner.path} only takes {w}x{h} inputs; scales need a model "
            "that takes other sizes (a .pth, an ONNX model exported with dynamic axes, an engine "
            "with a profile covering them); --tta flip works with any model"
        )
    input_range = getattr(runner, "input_range", None)  # TensorRT: the optimisation profile
    if input_range is not None:
        lo, hi = input_range()
        for w, h in other:
            if len(lo) == 4 and not (lo[1] <= h <= hi[1] and lo[2] <= w <= hi[2]):
                raise ConfigError(
                    f"--tta scales={scales}: {runner.path} takes {lo[2]}x{lo[1]} to {hi[2]}x{hi[1]} "
                    f"inputs, not {w}x{h}; rebuild it with --min-shapes/--max-shapes covering the scales"
                )


def resize_scores(scores: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """C×h×w (or N×C×h×w) scores resized bilinearly to (W, H) per channel."""
    w, h = size
    if scores.shape[-2:] == (h, w):
        return scores
    if scores.ndim == 4:
        return np.stack([resize_scores(s, size) for s in scores])
    x = np.ascontiguousarray(scores.astype(np.float32, copy=False).transpose(1, 2, 0))
    if x.shape[2] <= 512:  # OpenCV resizes up to 512 channels at once
        out = cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR)
        return (out[:, :, None] if out.ndim == 2 else out).transpose(2, 0, 1)
    return np.stack(
        [cv2.resize(np.ascontiguousarray(c), (w, h), interpolation=cv2.INTER_LINEAR) for c in scores]
    )


def run_views(runner: Runner, batch: np.ndarray, spec: InferenceSpec) -> np.ndarray:
    """The runner's output for a batch N×H×W×3 at the network size, averaged over the views of
    ``spec`` (flip and scales; both flips of a scale go in one call). Without TTA: ``runner(batch)``."""
    if not spec.tta:
        return runner(batch)
    n, h, w = batch.shape[:3]
    stride = runner.info.output_stride
    total: np.ndarray | None = None
    views = 0
    for scale in spec.scales:
        sw, sh = scaled_size((w, h), scale, stride)
        x = batch if (sw, sh) == (w, h) else np.stack([to_network(im, (sw, sh)) for im in batch])
        if spec.flip:
            x = np.concatenate([x, x[:, :, ::-1]])
        out = np.asarray(runner(np.ascontiguousarray(x)), dtype=np.float32)
        if spec.flip:
            out = out[:n] + out[n:, :, :, ::-1]
        out = resize_scores(out, (w, h))
        total = out if total is None else total + out
        views += 2 if spec.flip else 1
    assert total is not None
    return total / np.float32(views)


# ---- sliding window ----------------------------------------------------------------------------------
def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start offsets covering ``length`` with windows of ``window`` every ``stride`` (the last one
    moved back to end at ``length``), as MMSegmentation's slide inference."""
    if length <= window:
        return [0]
    count = -(-(length - window) // stride) + 1
    return [min(i * stride, length - window) for i in range(count)]


def tile_size(spec: InferenceSpec, network: tuple[int, int]) -> tuple[int, int]:
    """The window (W, H) in image pixels: ``spec.tile``, or the network size for ``(0, 0)``."""
    assert spec.tile is not None
    return network if spec.tile == (0, 0) else spec.tile  # type: ignore[return-value]


def windows(image_hw: tuple[int, int], tile: tuple[int, int], overlap: float) -> list[tuple[int, int]]:
    """(y, x) of every window over an image of ``image_hw`` (already padded to at least the tile),
    row by row."""
    h, w = image_hw
    tw, th = tile
    sx, sy = max(1, round(tw * (1.0 - overlap))), max(1, round(th * (1.0 - overlap)))
    return [(y, x) for y in window_starts(h, th, sy) for x in window_starts(w, tw, sx)]


def _tent(n: int) -> np.ndarray:
    i = np.arange(n, dtype=np.float32)
    return np.minimum(i + 1, n - i)


def _band_rows(boxes: list[tuple[int, int]], th: int, height: int, batch_size: int) -> int:
    """The most rows :func:`tiled_scores` holds at once: from the first unfinished row to the bottom
    of the last window of a batch (windows go row by row, ``batch_size`` per call)."""
    rows, top = 0, 0
    for start in range(0, len(boxes), batch_size):
        bottom = boxes[min(start + batch_size, len(boxes)) - 1][0] + th
        rows = max(rows, bottom - top)
        top = max(top, boxes[start + batch_size][0] if start + batch_size < len(boxes) else height)
    return rows


def tiled_scores(
    runner: Runner,
    image: np.ndarray,
    network: tuple[int, int],
    spec: InferenceSpec,
    batch_size: int = 4,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Sliding-window scores of one RGB image, one finished band of rows at a time.

    Yields ``(y0, y1, scores)`` with ``scores`` C×(y1-y0)×W: the outputs averaged over the windows
    covering those rows (logits / probabilities), or the depth-weighted votes of a labels model. The
    bands cover the image's rows top to bottom exactly once. ``scores`` is a view into a ring
    buffer of rows, valid until the next band is asked for (copy it to keep it): the buffer holds
    only the rows the windows in flight touch (about one window height plus one stride), whatever
    the image's height.
    """
    h_img, w_img = image.shape[:2]
    tw, th = tile_size(spec, network)
    pad_h, pad_w = max(th - h_img, 0), max(tw - w_img, 0)
    if pad_h or pad_w:
        image = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_REFLECT_101)
    height, width = image.shape[:2]
    boxes = windows((height, width), (tw, th), spec.overlap)
    labels_model = runner.output_kind == "labels"
    num_classes = max(int(runner.info.num_classes), 2)
    vote = np.outer(_tent(th), _tent(tw)) if labels_model else None
    cap = _band_rows(boxes, th, height, batch_size)
    acc: np.ndarray | None = None  # C × cap × width: logical row r lives at physical row r % cap
    weight = np.zeros((cap, width), dtype=np.float32)

    def segments(y0: int, y1: int) -> Iterator[tuple[int, slice]]:
        """(first logical row, physical rows) of the at most two pieces of rows [y0, y1)."""
        while y0 < y1:
            p = y0 % cap
            n = min(y1 - y0, cap - p)
            yield y0, slice(p, p + n)
            y0 += n

    top = 0
    for start in range(0, len(boxes), batch_size):
        group = boxes[start : start + batch_size]
        crops = [image[y : y + th, x : x + tw] for y, x in group]
        net = np.stack([to_network(c, network) for c in crops])  # as a whole image is fed
        out = run_views(runner, net, spec)
        if acc is None:
            acc = np.zeros((num_classes if labels_model else out.shape[1], cap, width), np.float32)
        for (y, x), o in zip(group, out, strict=True):
            if labels_model:
                lab = (
                    o
                    if o.shape == (th, tw)
                    else cv2.resize(o.astype(np.uint16), (tw, th), interpolation=cv2.INTER_NEAREST_EXACT)
                )
                lab = np.minimum(lab.astype(np.int64), acc.shape[0] - 1)
                scores = np.zeros((acc.shape[0], th, tw), np.float32)
                for c in np.unique(lab):
                    hit = lab == c
                    scores[c][hit] = vote[hit]  # type: ignore[index]
            else:
                scores = resize_scores(o.astype(np.float32, copy=False), (tw, th))
            for ly, rows in segments(y, y + th):
                n = rows.stop - rows.start
                acc[:, rows, x : x + tw] += scores[:, ly - y : ly - y + n]
                weight[rows, x : x + tw] += 1.0
        done = boxes[start + batch_size][0] if start + batch_size < len(boxes) else height
        for ly, rows in segments(top, done):
            band, counts = acc[:, rows], weight[rows]
            if not labels_model:
                np.divide(band, counts, out=band)  # every row here is covered: counts >= 1
            stop = min(ly + rows.stop - rows.start, h_img)
            if stop > ly:
                yield ly, stop, band[:, : stop - ly, :w_img]
            band.fill(0.0)
            counts.fill(0.0)
        top = max(top, done)
