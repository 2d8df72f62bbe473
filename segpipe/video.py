"""Video files for ``segpipe visualize``: read frames with OpenCV, predict, write the overlaid video.

Frames are read in a background thread (OpenCV releases the GIL while it decodes), go through the
shared inference pipeline (:func:`segpipe.runtime.pipeline.predict`: batches, sliding window, TTA),
are drawn (mask blended on the frame, the legend of the classes in the frame in the top-left
corner) in worker threads and written in order at the source frame rate. ``.avi`` is written as
Motion-JPEG, everything else as MPEG-4 Part 2 (``mp4v``) in an ``.mp4`` file: the two codecs every
OpenCV build can write. The file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from segpipe.errors import DataError, SegpipeError
from segpipe.imagesize import check_pixels
from segpipe.options import InferenceSpec
from segpipe.palette import Palette, colorize, overlay
from segpipe.progress import Task
from segpipe.runtime.base import Runner
from segpipe.utils import atomic_path

#: Video file types ``visualize`` reads (through OpenCV's FFmpeg backend).
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg")
#: Frame rate assumed when a file does not tell it.
DEFAULT_FPS = 25.0


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTS


def list_videos(path: str | Path, recursive: bool = False) -> list[Path]:
    """One video file, or the videos of a folder (sub-folders too with ``recursive``), sorted."""
    p = Path(path)
    if p.is_file():
        return [p] if is_video(p) else []
    pattern = p.rglob("*") if recursive else p.glob("*")
    return sorted(f for f in pattern if is_video(f) and f.is_file())


@dataclass
class VideoInfo:
    """What OpenCV tells about a video before reading it."""

    fps: float
    frames: int | None  # None when the container does not say
    size: tuple[int, int]  # (W, H)


def open_video(path: Path) -> tuple[Any, VideoInfo]:
    """``cv2.VideoCapture`` of ``path`` and its frame rate, frame count and size; one-line error."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise DataError(f"{path}: OpenCV cannot open this video (unsupported codec or not a video)")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    fps = fps if math.isfinite(fps) and 0.0 < fps < 1000.0 else DEFAULT_FPS
    try:
        check_pixels(*size, f"video {path}: frames of")  # before the first frame is decoded
    except SegpipeError as e:
        cap.release()
        raise DataError(str(e)) from None
    return cap, VideoInfo(fps, count if count > 0 else None, size)


def read_frames(cap: Any, lookahead: int = 8) -> Iterator[tuple[int, np.ndarray]]:
    """(index, RGB frame) of an open capture, decoded in a background thread ``lookahead`` ahead."""
    q: queue.Queue[tuple[int, np.ndarray] | BaseException | None] = queue.Queue(max(1, lookahead))
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            index = 0
            while not stop.is_set():
                ok, frame = cap.read()
                if not ok:
                    break
                if not put((index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))):
                    return
                index += 1
            put(None)
        except BaseException as e:  # handed to the consumer
            put(e)

    thread = threading.Thread(target=reader, name="segpipe-video-read", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def output_path(out_stem: Path, source: Path) -> Path:
    """``STEM_overlay.avi`` for an ``.avi`` source, ``STEM_overlay.mp4`` otherwise."""
    ext = ".avi" if source.suffix.lower() == ".avi" else ".mp4"
    return out_stem.with_name(f"{out_stem.name}_overlay{ext}")


class AtomicVideoWriter:
    """``cv2.VideoWriter`` writing under a temporary name beside ``path``, renamed by :meth:`commit`.

    The temporary file is an :func:`~segpipe.utils.atomic_path` one (``.NAME.HOST-PID-XXXX.tmp.EXT``:
    OpenCV picks the container from the extension): removed by :meth:`abort`, on Ctrl-C, SIGTERM
    and SIGHUP, and after a SIGKILL by the next write of ``path``; a full disk is one line."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path)
        self._stack = contextlib.ExitStack()
        self.tmp = self._stack.enter_context(atomic_path(self.path, keep_suffix=True))
        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
        # OpenCV's FFmpeg encoders round an odd width or height down (97x63 came out 96x62, a column
        # and a row lost). An .avi is written by OpenCV's own MJPEG encoder, which keeps any size; an
        # .mp4 of odd size gets one replicated column/row instead, so every pixel is kept
        width, height = (int(v) for v in size)
        self.pad = (0, 0)
        if self.path.suffix.lower() == ".avi" and (width % 2 or height % 2):
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.CAP_OPENCV_MJPEG, fourcc, float(fps), (width, height))
        else:
            self.pad = (width % 2, height % 2)
            even = (width + self.pad[0], height + self.pad[1])
            self.writer = cv2.VideoWriter(str(self.tmp), fourcc, float(fps), even)
        if not self.writer.isOpened():
            self.abort()
            raise SegpipeError(f"cannot write the video {self.path}: OpenCV has no encoder for it here")

    def write(self, rgb: np.ndarray) -> None:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if any(self.pad):
            bgr = cv2.copyMakeBorder(bgr, 0, self.pad[1], 0, self.pad[0], cv2.BORDER_REPLICATE)
        self.writer.write(bgr)

    def commit(self) -> Path:
        self.writer.release()
        if self.tmp.stat().st_size == 0:  # OpenCV reports no write error: a full disk shows here
            self.abort()
            raise SegpipeError(f"cannot write the video {self.path}: nothing was written (disk full?)")
        self._stack.close()  # renamed onto path
        return self.path

    def abort(self) -> None:
        if hasattr(self, "writer"):
            self.writer.release()
        self._stack.__exit__(SegpipeError, SegpipeError("aborted"), None)  # removes the temporary file


def paste_legend(frame: np.ndarray, legend: np.ndarray, margin: int = 8) -> np.ndarray:
    """The legend copied into the top-left corner of ``frame`` (shrunk to at most half of it)."""
    fh, fw = frame.shape[:2]
    lh, lw = legend.shape[:2]
    scale = min(1.0, (fh / 2) / max(lh, 1), (fw / 2) / max(lw, 1))
    if scale < 1.0:
        legend = cv2.resize(
            legend, (max(1, int(lw * scale)), max(1, int(lh * scale))), interpolation=cv2.INTER_AREA
        )
        lh, lw = legend.shape[:2]
    m = min(margin, max(0, fh - lh), max(0, fw - lw))
    frame[m : m + lh, m : m + lw] = legend[: fh - m, : fw - m]
    return frame


def render_frame(
    image: np.ndarray,
    labels: np.ndarray,
    palette: Palette,
    alpha: float,
    ignore_index: int,
    draw_legend: Callable[[Palette, np.ndarray], np.ndarray],
    background: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(overlaid RGB frame with the legend of the classes in it, pixels per class); pixels of class
    ``background`` keep the frame's own (see :func:`segpipe.palette.overlay`)."""
    k = len(palette)
    mask = colorize(labels, palette, ignore_index)
    counts = np.bincount(labels.ravel(), minlength=k)[:k]
    out = overlay(image, mask, alpha, labels, background=background)
    return paste_legend(np.ascontiguousarray(out), draw_legend(palette, counts)), counts


@dataclass
class VideoResult:
    """One video written."""

    source: Path
    output: Path
    frames: int
    fps: float
    counts: np.ndarray


def visualize_video(
    runner: Runner,
    source: Path,
    output: Path,
    palette: Palette,
    *,
    draw_legend: Callable[[Palette, np.ndarray], np.ndarray],
    size: tuple[int, int],
    spec: InferenceSpec | None = None,
    alpha: float = 0.5,
    batch_size: int = 4,
    workers: int = 2,
    ignore_index: int = 255,
    task: Task | None = None,
    background: int | None = None,
) -> VideoResult:
    """Predict every frame of ``source`` and write the overlaid video to ``output`` at its frame rate.

    ``draw_legend(palette, pixels per class) -> RGB`` draws the legend (visualize's); ``task`` is
    advanced once per frame written.
    """
    from segpipe.runtime.pipeline import predict

    cap, info = open_video(source)
    writer: AtomicVideoWriter | None = None
    totals = np.zeros(len(palette), dtype=np.int64)
    frames = 0
    pending: deque[Future] = deque()

    def collect(fut: Future) -> None:
        nonlocal writer, frames
        rgb, counts = fut.result()
        if writer is None:
            writer = AtomicVideoWriter(output, info.fps, (rgb.shape[1], rgb.shape[0]))
        writer.write(rgb)
        totals[: len(counts)] += counts
        frames += 1
        if task is not None:
            task.advance()

    try:
        with ThreadPoolExecutor(max(1, workers), thread_name_prefix="segpipe-draw") as pool:
            keys = read_frames(cap, lookahead=2 * batch_size + workers)
            try:
                for pred in predict(
                    runner,
                    keys,
                    size,
                    load=lambda key: (key[1], None),
                    batch_size=batch_size,
                    workers=workers,
                    spec=spec,
                ):
                    assert pred.image is not None and pred.labels is not None
                    pending.append(
                        pool.submit(
                            render_frame,
                            pred.image,
                            pred.labels,
                            palette,
                            alpha,
                            ignore_index,
                            draw_legend,
                            background,
                        )
                    )
                    while len(pending) > 2 * workers:
                        collect(pending.popleft())
                while pending:
                    collect(pending.popleft())
            finally:
                keys.close()
        if writer is None:
            raise DataError(f"{source}: no frame could be read")
        path = writer.commit()
        writer = None
    finally:
        cap.release()
        for fut in pending:
            fut.cancel()
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.abort()
    return VideoResult(source, path, frames, info.fps, totals)
