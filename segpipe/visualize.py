"""``segpipe visualize``: run any model file over images and write what it sees.

Per input image ``NAME.ext`` (sub-folders kept with ``recursive``), in ``output_dir``:

* ``NAME_mask.png``: the colour mask at the image's original resolution (palette colours, lossless);
* ``NAME_overlay.png`` with ``overlay=ALPHA``: the mask blended on the image, background (class 0)
  left as the photo unless ``overlay_background``, region outlines with ``outline``, the legend of
  the image's classes to the right (small images scaled up by a whole factor, as side-by-side
  pictures are, so that the picture is never narrower than its legend);
* ``NAME_side.png`` with ``side_by_side``: image and mask next to each other, with the legend
  (small images scaled up to about 900 px wide);
* ``NAME_labels.png`` with ``save_labels``: the class-index PNG (uint8, uint16 above 256 classes);
* ``NAME_legend.png`` with ``legend_per_image``: the classes present in the image, their colours
  and pixel shares;

and one ``legend.png`` per run: every class present in any image. Images that cannot be read are reported and
skipped; the others are still written (the CLI then exits with code 1).

A video file (``.mp4``, ``.avi``, ``.mov``...; or the videos of a folder) becomes ``NAME_overlay.mp4``
(``.avi`` for an ``.avi``): the mask blended on every frame (``overlay`` opacity, default 0.5; background as for pictures) with
the legend of the frame's classes, at the source frame rate (see :mod:`segpipe.video`).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segpipe.data.build import open_reader
from segpipe.data.formats import FormatReader, LabelledSample, select_split
from segpipe.data.heldout import select_for_model
from segpipe.errors import DataError, SegpipeError, some
from segpipe.modelinfo import ModelInfo
from segpipe.options import VisualizeOptions
from segpipe.palette import Palette, colorize, fit_palette, load_palette
from segpipe.pictures import PNG_PARAMS, draw_legend, overlay_picture, side_by_side, write_png  # noqa: F401
from segpipe.progress import Reporter
from segpipe.runtime.base import Runner
from segpipe.runtime.pipeline import list_images, network_size, open_runner, predict
from segpipe.utils import ensure_dir
from segpipe.video import VIDEO_EXTS, is_video, list_videos, open_video, output_path, visualize_video

#: The class an overlay leaves transparent (unless ``overlay_background``): class 0, the
#: background of seg and binary masks.
BACKGROUND = 0
#: How many folders the closing line names (``--recursive`` may write hundreds); the rest are counted.
FOLDERS_NAMED = 8


@dataclass
class VisualizeResult:
    """What a visualize run did."""

    output_dir: Path
    backend: str
    size: tuple[int, int]
    images: int = 0  # images predicted and written
    files: int = 0  # files written (all kinds)
    failed: list[tuple[Path, str]] = field(default_factory=list)  # (image, one-line error)
    class_pixels: dict[str, int] = field(default_factory=dict)  # class name -> pixels, classes present
    legend: Path | None = None
    seconds: float = 0.0  # wall time of the whole run
    load_seconds: float = 0.0  # of which opening the model
    videos: list[Path] = field(default_factory=list)  # overlaid videos written
    frames: int = 0  # video frames predicted and written
    video_seconds: float = 0.0  # wall time spent on the videos (reading, predicting, writing)
    inference: str = ""  # sliding window / TTA used ("" for plain resizing)
    folders: dict[Path, int] = field(default_factory=dict)  # folder -> files written into it

    def wrote(self, folder: Path, files: int = 1) -> None:
        """Count ``files`` written into ``folder``."""
        self.files += files
        self.folders[folder] = self.folders.get(folder, 0) + files

    def where(self) -> str:
        """Where the files went, every folder named: ``7 file(s) to runs/vis`` or
        ``7 file(s): 6 to runs/vis/val, 1 to runs/vis`` (most first)."""
        if len(self.folders) <= 1:
            return f"{self.files} file(s) to {next(iter(self.folders), self.output_dir)}"
        ranked = sorted(self.folders.items(), key=lambda kv: (-kv[1], str(kv[0])))
        said = ", ".join(f"{n} to {folder}" for folder, n in ranked[:FOLDERS_NAMED])
        rest = ranked[FOLDERS_NAMED:]
        if rest:
            said += f" and {sum(n for _, n in rest)} to {len(rest)} more folder(s) under {self.output_dir}"
        return f"{self.files} file(s): {said}"

    @property
    def images_per_second(self) -> float:
        busy = self.seconds - self.video_seconds
        return self.images / busy if busy > 0 else 0.0

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.video_seconds if self.video_seconds > 0 else 0.0


def model_palette(info: ModelInfo, colors: str | Path | None, reporter: Reporter | None = None) -> Palette:
    """The palette pictures are drawn with: ``colors`` if given, else the model's, else the default.

    Names come from the model when it has them. A palette with fewer colours than classes is
    extended with distinct generated colours, with one warning.
    """
    if colors is not None:
        palette = load_palette(colors)
    elif info.colors:
        palette = Palette(
            info.class_names or tuple(f"class_{i}" for i in range(len(info.colors))),
            info.colors,
            "of the model",
        )
    else:
        palette = load_palette(None)
    palette, warning = fit_palette(palette, info.num_classes)
    if warning and reporter is not None:
        reporter.warn(warning)
    if len(info.class_names) == info.num_classes and not all(
        n == f"class_{i}" for i, n in enumerate(info.class_names)
    ):
        palette = Palette(tuple(info.class_names), palette.colors, palette.source)
    return palette


def list_inputs(images: Path, recursive: bool = False) -> tuple[list[Path], list[Path]]:
    """(images, videos) of ``--images``: one image, one video, or a folder holding either or both."""
    p = Path(images)
    if p.is_file() and is_video(p):
        return [], [p]
    if p.is_dir():
        videos = list_videos(p, recursive)
        if videos:
            try:
                return list_images(p, recursive), videos
            except DataError:
                return [], videos
    try:
        return list_images(p, recursive), []
    except DataError as e:
        if p.is_dir() or (p.is_file() and p.suffix):
            raise DataError(f"{e} or videos ({', '.join(VIDEO_EXTS)})") from None
        raise


def _stems(paths: list[Path], root: Path, recursive: bool, reporter: Reporter) -> list[Path]:
    """Output stem (relative to the output folder) per input; name clashes keep the extension."""
    out, seen, clashes = [], set(), 0
    for p in paths:
        rel = p.relative_to(root) if recursive and root.is_dir() else Path(p.name)
        stem = rel.with_suffix("")
        if stem in seen:
            stem = rel.with_name(f"{rel.stem}_{rel.suffix.lstrip('.').lower()}")
            clashes += 1
        seen.add(stem)
        out.append(stem)
    if clashes:
        reporter.warn(
            f"{clashes} image(s) share a name with another of a different type; "
            "their outputs are named NAME_EXT_mask.png"
        )
    return out


def _render(
    opts: VisualizeOptions,
    palette: Palette,
    out_stem: Path,
    image: np.ndarray,
    labels: np.ndarray,
    ignore_index: int,
    truth: np.ndarray | None = None,
) -> tuple[int, np.ndarray]:
    """Write every picture of one image; returns (files written, pixels per class)."""
    k = len(palette)
    mask = colorize(labels, palette, ignore_index)
    write_png(out_stem.with_name(f"{out_stem.name}_mask.png"), mask)
    files = 1
    counts = np.bincount(labels.ravel(), minlength=k)[:k]
    legend = draw_legend(palette, counts)
    if opts.overlay is not None:
        background = None if opts.overlay_background else BACKGROUND
        shown = legend if background is None else draw_legend(palette, counts, clear=background)
        picture = overlay_picture(image, mask, labels, shown, opts.overlay, background, opts.outline)
        write_png(out_stem.with_name(f"{out_stem.name}_overlay.png"), picture)
        files += 1
    if opts.side_by_side:
        gt, side_legend = None, legend
        if truth is not None:
            gt = colorize(truth, palette, ignore_index)
            ignored = int(np.count_nonzero(truth == ignore_index)) if ignore_index >= k else 0
            side_legend = draw_legend(palette, counts, ignored) if ignored else legend
        write_png(out_stem.with_name(f"{out_stem.name}_side.png"), side_by_side(image, mask, side_legend, gt))
        files += 1
    if opts.save_labels:
        write_png(out_stem.with_name(f"{out_stem.name}_labels.png"), labels)
        files += 1
    if opts.legend_per_image:
        write_png(out_stem.with_name(f"{out_stem.name}_legend.png"), legend)
        files += 1
    return files, counts


def visualize(
    opts: VisualizeOptions, reporter: Reporter | None = None, runner: Runner | None = None
) -> VisualizeResult:
    """Predict every image of ``opts.images`` with ``opts.model`` and write the pictures.

    ``runner``: an already open runner to use instead of opening ``opts.model`` (it stays open:
    closing it is the caller's business), e.g. to visualize several folders with one model.
    """
    reporter = reporter or Reporter()
    start = time.perf_counter()
    out_dir = Path(opts.output_dir)
    reader = None
    if opts.data_root is not None:
        reader, samples = _data_samples(opts, reporter)
        paths, videos = samples, []
    else:
        paths, videos = list_inputs(opts.images, opts.recursive)
    if (
        reader is None and Path(opts.images).is_dir()
    ):  # never read back our own output when it lies inside the input
        out_abs = out_dir.resolve()
        paths = [p for p in paths if out_abs not in p.resolve().parents] or paths
        videos = [p for p in videos if out_abs not in p.resolve().parents] or videos
    owned, t_load = runner is None, time.perf_counter()
    runner = open_runner(opts, reporter) if runner is None else runner
    load_seconds = time.perf_counter() - t_load
    with runner if owned else contextlib.nullcontext(runner):
        size = network_size(runner, opts.size)
        info = runner.info
        if reader is not None:  # which images: the ones training held out, by default
            paths, caution, selection = select_for_model(
                paths,
                opts.split,
                Path(opts.data_root),
                info.data_split,
                opts.model,  # type: ignore[arg-type]
            )
            if selection:
                (reporter.warn if caution else reporter.info)(selection)
        palette = model_palette(info, opts.colors, reporter)
        ensure_dir(out_dir)
        spec = opts.spec
        if reader is not None:
            stems = {s: Path(s.name) for s in paths}
            for stem in stems.values():
                ensure_dir((out_dir / stem).parent)
        else:
            all_stems = _stems(paths + videos, Path(opts.images), opts.recursive, reporter)
            stems = dict(zip(paths + videos, all_stems, strict=True))
        _refuse_writing_over_inputs(opts, out_dir, paths, videos, stems)
        result = VisualizeResult(
            out_dir, runner.backend, size, load_seconds=load_seconds, inference=spec.describe()
        )
        totals = np.zeros(len(palette), dtype=np.int64)
        if paths:
            _visualize_images(opts, runner, paths, stems, size, palette, result, totals, reporter, reader)
        if videos and (opts.side_by_side or opts.save_labels):
            reporter.warn("--side-by-side and --save-labels apply to images; videos get the overlay only")
        for video in videos:
            t_video = time.perf_counter()
            frame_count = video_frame_count(video)
            background = None if opts.overlay_background else BACKGROUND
            with reporter.task(f"{video.name} ({runner.backend}, frames)", total=frame_count) as task:
                done = visualize_video(
                    runner,
                    video,
                    output_path(out_dir / stems[video], video),
                    palette,
                    # the legend of pictures' overlays: the undrawn background struck through
                    draw_legend=functools.partial(draw_legend, clear=background),
                    size=size,
                    spec=spec,
                    alpha=0.5 if opts.overlay is None else opts.overlay,
                    batch_size=opts.batch_size,
                    workers=opts.workers,
                    ignore_index=info.ignore_index,
                    task=task,
                    background=background,
                )
            result.videos.append(done.output)
            result.frames += done.frames
            result.wrote(done.output.parent)
            totals[: len(done.counts)] += done.counts
            result.video_seconds += time.perf_counter() - t_video
    if result.images or result.frames:
        result.legend = write_png(out_dir / "legend.png", draw_legend(palette, totals))
        result.wrote(out_dir)
    result.class_pixels = {palette.names[i]: int(totals[i]) for i in np.flatnonzero(totals)}
    result.seconds = time.perf_counter() - start
    return result


def _data_samples(opts: VisualizeOptions, reporter: Reporter) -> tuple[FormatReader, list[LabelledSample]]:
    """The reader of ``opts.data_root`` and all its samples."""
    reader = open_reader(opts, reporter=reporter)  # says the format --format auto found
    samples = reader.samples()
    select_split(samples, opts.split, Path(opts.data_root))  # type: ignore[arg-type]  # a wrong --split: before the model loads
    return reader, samples  # the images are chosen once the model says how it was trained


def _refuse_writing_over_inputs(
    opts: VisualizeOptions, out_dir: Path, paths: list[Any], videos: list[Path], stems: dict[Any, Path]
) -> None:
    """One line, before anything is written, when an output would bear the name of an input
    (``--output-dir`` the images folder, holding ``cat_mask.png`` or ``legend.png`` of the user's)."""
    kinds = ["mask"] + ["overlay"] * (opts.overlay is not None) + ["side"] * bool(opts.side_by_side)
    kinds += ["labels"] * bool(opts.save_labels) + ["legend"] * bool(getattr(opts, "legend_per_image", False))
    planned = [out_dir / "legend.png"]
    for p in paths:
        stem = out_dir / stems[p]
        planned += [stem.with_name(f"{stem.name}_{k}.png") for k in kinds]
    planned += [output_path(out_dir / stems[v], v) for v in videos]
    inputs = {Path(getattr(p, "image", p)).resolve() for p in paths + videos}
    clashes = sorted({out for out in planned if out.exists() and out.resolve() in inputs})
    if clashes:
        raise SegpipeError(
            f"--output-dir {opts.output_dir}: {len(clashes)} output(s) would be written over input "
            f"images: {some(str(c.name) for c in clashes)}; choose another --output-dir"
        )


def video_frame_count(path: Path) -> int | None:
    """The frame count a video's container states (None when it does not), for the progress bar."""
    cap, meta = open_video(path)
    cap.release()
    return meta.frames


def _visualize_images(
    opts: VisualizeOptions,
    runner: Runner,
    paths: list[Path],
    stems: dict[Path, Path],
    size: tuple[int, int],
    palette: Palette,
    result: VisualizeResult,
    totals: np.ndarray,
    reporter: Reporter,
    reader: FormatReader | None = None,
) -> None:
    """Predict and draw every image (pictures written by ``opts.workers`` threads); with a
    ``reader``, ``paths`` are its samples and the ground truth goes beside the prediction."""
    out_dir = Path(opts.output_dir)
    info = runner.info
    writers: deque[tuple[Path, Future]] = deque()

    def collect(job: tuple[Path, Future]) -> None:
        nfiles, counts = job[1].result()
        result.wrote(job[0], nfiles)
        result.images += 1
        totals[: len(counts)] += counts

    with (
        ThreadPoolExecutor(opts.workers, thread_name_prefix="segpipe-write") as pool,
        reporter.task(f"Visualizing ({runner.backend})", total=len(paths)) as task,
    ):
        load = None
        if reader is not None:

            def load(sample: LabelledSample) -> tuple[np.ndarray, np.ndarray | None]:
                return reader.read_image(sample), (reader.load_mask(sample) if opts.side_by_side else None)

        preds = predict(
            runner, paths, size, load=load, batch_size=opts.batch_size, workers=opts.workers, spec=opts.spec
        )
        for pred in preds:
            if pred.error is not None:
                result.failed.append((pred.key, str(pred.error)))
                reporter.warn(str(pred.error))
                task.advance()
                continue
            stem = out_dir / stems[pred.key]
            args = (opts, palette, stem, pred.image, pred.labels, info.ignore_index, pred.extra)
            writers.append((stem.parent, pool.submit(_render, *args)))
            while len(writers) > 2 * opts.workers + opts.batch_size:
                collect(writers.popleft())
            task.advance()
        while writers:
            collect(writers.popleft())
