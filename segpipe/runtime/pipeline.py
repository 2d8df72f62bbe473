"""The inference pipeline around a runner: list, decode, resize, batch, run, resize back.

This is the one place that resizes images to the network size and predictions back to each
image's own size, so every backend sees exactly the same input and ``visualize``/``evaluate`` agree.
Images are decoded (and resized) in background threads while the model runs on the previous batch;
OpenCV releases the GIL while it decodes and resizes, so this overlaps for real.

Resizing follows training: images go to the network size with bilinear interpolation (what the
``eval`` transform does; :func:`segpipe.runtime.inputs.to_network`, the resize calibration and
every check's images go through too); logits come back with bilinear interpolation before the argmax (smoother
borders than upscaling a class map), a class map (``labels`` models) with exact nearest neighbour.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import cv2
import numpy as np

from segpipe.data.dataset import IMAGE_EXTS, read_image
from segpipe.errors import ConfigError, DataError, SegpipeError
from segpipe.imagesize import check_pixels
from segpipe.runtime import base
from segpipe.runtime.base import Runner
from segpipe.runtime.inputs import to_network
from segpipe.runtime.tiling import InferenceSpec, check_spec, run_views, tiled_scores
from segpipe.utils import check_divisible

K = TypeVar("K")


def list_images(path: str | Path, recursive: bool = False) -> list[Path]:
    """One image file, or the images of a folder (its sub-folders too with ``recursive``), sorted."""
    p = Path(path)
    if p.is_file():
        if p.suffix.lower() not in IMAGE_EXTS:
            raise DataError(
                f"--images {p}: not an image file type ({p.suffix or 'no suffix'}); "
                f"read: {', '.join(IMAGE_EXTS)}"
            )
        return [p]
    if not p.is_dir():
        raise DataError(f"--images {p} does not exist")
    pattern = p.rglob("*") if recursive else p.glob("*")
    files = sorted(f for f in pattern if f.suffix.lower() in IMAGE_EXTS and f.is_file())
    if not files:
        nested = not recursive and any(f.suffix.lower() in IMAGE_EXTS for f in p.rglob("*"))
        hint = "; its sub-folders hold images: pass --recursive" if nested else ""
        raise DataError(f"--images {p} holds no images (read: {', '.join(IMAGE_EXTS)}){hint}")
    return files


def open_runner(
    opts: Any, reporter: Any = None, *, model: Path | None = None, runtime: str | None = None, **extra: Any
) -> Runner:
    """Open the model of an inference options object (``VisualizeOptions``, ``EvaluateOptions``,
    ``BenchmarkOptions``): ``model`` (default ``opts.model``) with ``runtime`` (default
    ``opts.runtime``), ``device``, ``num_classes`` and, for a bare state_dict, ``arch``, ``encoder``,
    ``mode`` and ``trust_checkpoint``; for an ONNX model without metadata ``mean``, ``std`` and
    ``input_layout``. ``extra``: more runner keywords (``lenient``, ``threads``)."""
    return base.load_runner(  # looked up when called: the one seam that opens every model
        opts.model if model is None else model,
        device=opts.device,
        runtime=runtime or getattr(opts, "runtime", None),
        num_classes=opts.num_classes,
        arch=opts.arch,
        encoder=opts.encoder,
        mode=getattr(opts, "mode", "seg"),
        trust=opts.trust_checkpoint,
        mean=getattr(opts, "mean", None),
        std=getattr(opts, "std", None),
        input_layout=getattr(opts, "input_layout", None),
        reporter=reporter,
        **extra,
    )


def network_size(runner: Runner, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """The (W, H) fed to the network: ``size`` or the model's own; checked against its stride."""
    fixed = runner.fixed_size
    w, h = size if size is not None else (fixed or runner.input_size)
    if fixed is not None and (w, h) != tuple(fixed):
        raise ConfigError(
            f"--size {w} {h}: {runner.path} has a fixed input size; use --size {fixed[0]} {fixed[1]} "
            "(or export the model with dynamic axes)"
        )
    check_divisible(w, h, runner.info.output_stride)
    check_pixels(int(w), int(h), f"{runner.path}: the network input would be")  # before allocating it
    low = int(getattr(runner.info, "min_side", 0) or 0)  # a dynamic-size graph's minimum (PAN: 128)
    if low and min(w, h) < low:
        raise ConfigError(
            f"--size {w} {h}: {runner.path} ({runner.info.arch}/{runner.info.encoder}) takes width and "
            f"height of at least {low}; e.g. --size {max(int(w), low)} {max(int(h), low)}"
        )
    check = getattr(runner, "check_size", None)  # a runner that can check the model's own rule
    if callable(check):
        check(int(w), int(h))
    return int(w), int(h)


def label_dtype(num_classes: int) -> type[np.unsignedinteger]:
    """uint8 for up to 256 classes, else uint16 (what a class-index PNG can hold)."""
    return np.uint8 if num_classes <= 256 else np.uint16


def restore_labels(
    output: np.ndarray,
    image_hw: tuple[int, int],
    mode: str = "seg",
    output_kind: str = "logits",
    num_classes: int = 256,
) -> np.ndarray:
    """One image's network output (C×h×w logits/probs or h×w class map) -> class map at ``image_hw``.

    Logits are resized bilinearly per channel and the argmax taken at full size (binary mode: the
    single channel thresholded); a class map is resized with exact nearest neighbour.
    """
    h, w = image_hw
    dtype = label_dtype(num_classes)
    if output_kind == "labels" or output.ndim == 2:
        labels = output.astype(dtype, copy=False)
        if labels.shape != (h, w):
            labels = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)
        return labels
    same = output.shape[1:] == (h, w)
    buf = np.empty((h, w), dtype=np.float32)

    def channel(c: int) -> np.ndarray:
        x = output[c].astype(np.float32, copy=False)
        return x if same else cv2.resize(x, (w, h), dst=buf, interpolation=cv2.INTER_LINEAR)

    if mode == "binary" and output.shape[0] == 1:
        threshold = 0.5 if output_kind == "probs" else 0.0
        return (channel(0) > threshold).astype(dtype)
    # C passes of OpenCV calls (no GIL, SIMD): half the time of numpy's compare + boolean indexing,
    # and far cheaper than an argmax over a last axis of C; ties go to the lower class, as argmax.
    best = channel(0).copy()
    labels = np.zeros((h, w), dtype=dtype)
    fill = np.empty((h, w), dtype=dtype)
    for c in range(1, output.shape[0]):
        x = channel(c)
        better = cv2.compare(x, best, cv2.CMP_GT)
        cv2.max(best, x, dst=best)
        fill.fill(c)
        cv2.copyTo(fill, better, labels)
    return labels


def tiled_labels(
    runner: Runner,
    image: np.ndarray,
    spec: InferenceSpec,
    size: tuple[int, int] | None = None,
    batch_size: int = 4,
) -> np.ndarray:
    """Class map H×W of one RGB image by sliding window (see :mod:`segpipe.runtime.tiling`):
    windows of ``spec.tile`` fed at the network ``size``, averaged, one band of rows at a time."""
    info = runner.info
    wh = network_size(runner, size)
    kind = "logits" if runner.output_kind == "labels" else runner.output_kind  # labels vote
    labels = np.empty(image.shape[:2], dtype=label_dtype(info.num_classes))
    for y0, y1, scores in tiled_scores(runner, image, wh, spec, batch_size):
        labels[y0:y1] = restore_labels(scores, (y1 - y0, scores.shape[2]), info.mode, kind, info.num_classes)
    return labels


@dataclass
class Prediction(Generic[K]):
    """One input's result: its key, RGB image, class map at the image's size, loader extras.

    When the input could not be loaded, ``error`` holds the one-line error and the rest is None.
    """

    key: K
    image: np.ndarray | None = None
    labels: np.ndarray | None = None
    extra: Any = None
    error: SegpipeError | None = None


def _load_image(key: Any) -> tuple[np.ndarray, None]:
    return read_image(key), None


def predict(
    runner: Runner,
    keys: Iterable[K],
    size: tuple[int, int] | None = None,
    load: Callable[[K], tuple[np.ndarray, Any]] | None = None,
    batch_size: int = 4,
    workers: int = 2,
    spec: InferenceSpec | None = None,
) -> Iterator[Prediction[K]]:
    """Run ``runner`` over inputs, yielding one :class:`Prediction` per key, in order.

    Args:
        runner: an open runner (any backend).
        keys: what ``load`` reads (default: image paths).
        size: network (W, H); default the model's (see :func:`network_size`).
        load: ``key -> (RGB uint8 image, extra)``; runs in background threads. A
            :class:`SegpipeError` it raises becomes a Prediction with ``error`` set; the
            pipeline goes on with the rest.
        batch_size: images per runner call.
        workers: decoding threads (and as many threads resizing predictions back, which
            overlaps the next model call).
        spec: sliding window and test-time augmentation (:class:`InferenceSpec`); default none.
            With a sliding window the windows of one image are batched (``batch_size`` windows
            per call) instead of the images.
    """
    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size}: must be at least 1")
    wh = network_size(runner, size)
    spec = spec or InferenceSpec()
    check_spec(runner, spec, wh)
    load_fn = load or _load_image
    info = runner.info
    if spec.tile is not None:
        yield from _predict_tiled(runner, keys, wh, load_fn, batch_size, workers, spec)
        return

    def job(key: K) -> tuple[np.ndarray, np.ndarray, Any]:
        image, extra = load_fn(key)
        return image, to_network(image, wh), extra

    def restore(key: K, image: np.ndarray, extra: Any, out: np.ndarray) -> Prediction[K]:
        labels = restore_labels(out, image.shape[:2], info.mode, runner.output_kind, info.num_classes)
        return Prediction(key, image, labels, extra)

    workers = max(1, workers)
    ready: deque[Prediction[K] | Future] = deque()  # failed, or being resized back, in input order
    with (
        ThreadPoolExecutor(workers, thread_name_prefix="segpipe-decode") as decoders,
        ThreadPoolExecutor(workers, thread_name_prefix="segpipe-restore") as restorers,
    ):
        ahead = _ReadAhead(decoders, job, keys, 2 * batch_size + workers)
        try:
            ahead.refill()
            while ahead:
                batch: list[tuple[K, np.ndarray, Any]] = []
                inputs: list[np.ndarray] = []
                while ahead and len(batch) < batch_size:
                    key, done = ahead.take()
                    if isinstance(done, SegpipeError):
                        ready.append(Prediction(key, error=done))
                        continue
                    image, net, extra = done
                    batch.append((key, image, extra))
                    inputs.append(net)
                if batch:  # the decoders prepare the next batch meanwhile
                    out = run_views(runner, np.stack(inputs), spec)
                    for (key, image, extra), o in zip(batch, out, strict=True):
                        ready.append(restorers.submit(restore, key, image, extra, o))
                # hand over all but the newest batch, whose resizing overlaps the next model call
                while len(ready) > len(batch):
                    item = ready.popleft()
                    yield item if isinstance(item, Prediction) else item.result()
            while ready:
                item = ready.popleft()
                yield item if isinstance(item, Prediction) else item.result()
        finally:
            ahead.cancel()
            for item in ready:
                if isinstance(item, Future):
                    item.cancel()


def _predict_tiled(
    runner: Runner,
    keys: Iterable[K],
    wh: tuple[int, int],
    load_fn: Callable[[K], tuple[np.ndarray, Any]],
    batch_size: int,
    workers: int,
    spec: InferenceSpec,
) -> Iterator[Prediction[K]]:
    """:func:`predict` with a sliding window: images decode in threads, windows run in batches."""
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="segpipe-decode") as decoders:
        ahead = _ReadAhead(decoders, load_fn, keys, max(2, workers))
        try:
            ahead.refill()
            while ahead:
                key, done = ahead.take()
                if isinstance(done, SegpipeError):
                    yield Prediction(key, error=done)
                    continue
                image, extra = done
                labels = tiled_labels(runner, image, spec, wh, batch_size)
                yield Prediction(key, image, labels, extra)
        finally:
            ahead.cancel()


class _ReadAhead(Generic[K]):
    """``fn(key)`` for the keys, in input order, run in ``pool`` up to ``depth`` keys ahead of the
    one taken: the decoding of the next images overlaps the model call on this one."""

    def __init__(
        self, pool: ThreadPoolExecutor, fn: Callable[[K], Any], keys: Iterable[K], depth: int
    ) -> None:
        self._pool, self._fn, self._keys, self._depth = pool, fn, iter(keys), depth
        self._pending: deque[tuple[K, Future]] = deque()

    def __bool__(self) -> bool:
        return bool(self._pending)

    def refill(self) -> None:
        """Submit the next keys until ``depth`` are pending (or the keys run out)."""
        while len(self._pending) < self._depth:
            try:
                key = next(self._keys)
            except StopIteration:
                return
            self._pending.append((key, self._pool.submit(self._fn, key)))

    def take(self) -> tuple[K, Any]:
        """(the oldest key, its result, or the :class:`SegpipeError` it raised); refills."""
        key, fut = self._pending.popleft()
        try:
            return key, fut.result()
        except SegpipeError as e:
            return key, e
        finally:
            self.refill()

    def cancel(self) -> None:
        """Cancel what has not started (the consumer stopped early, or failed)."""
        for _, fut in self._pending:
            fut.cancel()


def predict_arrays(
    runner: Runner,
    images: Sequence[np.ndarray],
    size: tuple[int, int] | None = None,
    batch_size: int = 4,
    spec: InferenceSpec | None = None,
) -> list[np.ndarray]:
    """Class maps (at each image's size) for RGB uint8 arrays already in memory; ``spec``: sliding
    window / test-time augmentation (:class:`~segpipe.runtime.tiling.InferenceSpec`)."""
    preds = predict(
        runner, range(len(images)), size, load=lambda i: (images[i], None), batch_size=batch_size, spec=spec
    )
    return [p.labels for p in preds]  # type: ignore[misc]
