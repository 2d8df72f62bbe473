"""``segpipe data``: what a data root holds (format, splits, classes, pixel shares, problems), and
``export_masks``: the seed layout written from any format. No torch here."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from segpipe.data import safepaths
from segpipe.data.classes import ResolvedClasses, resolve_classes
from segpipe.data.formats import FormatReader, LabelledSample
from segpipe.data.formats.base import data_classes_count
from segpipe.errors import ConfigError, DataError, SegpipeError, some
from segpipe.options.base import MAX_CLASSES
from segpipe.outpaths import check_output_dir
from segpipe.palette import save_palette
from segpipe.progress import Reporter
from segpipe.utils import disk_full_error, temp_dir_beside


@dataclass
class DataReport:
    """What one scan of a data root found."""

    root: Path
    format: str
    reason: str
    splits: dict[str, int]
    classes: ResolvedClasses
    pixels: np.ndarray  # per class id
    ignored: int
    problems: list[str] = field(default_factory=list)
    #: What reading the masks found worth saying besides problems (pixels crowds made ignore).
    notes: list[str] = field(default_factory=list)


#: Class rows ``segpipe data`` draws: every class of a data set with up to this many (ADE20K's 150,
#: COCO-Stuff's 182 in full); above, only classes that have pixels, and one row for the rest.
TABLE_ROWS = 256


def table_ids(pixels: np.ndarray, limit: int = TABLE_ROWS) -> np.ndarray:
    """The class ids the class table lists, in id order: every id when there are at most ``limit``
    classes; above, the ids with pixels, at most ``limit`` of them (the largest shares, a tie to
    the lower id). Drawing 65,535 rows took ~80 s and a terminal nobody reads."""
    if len(pixels) <= limit:
        return np.arange(len(pixels))
    present = np.flatnonzero(pixels)
    if present.size > limit:
        present = np.sort(present[np.argsort(-pixels[present], kind="stable")[:limit]])
    return present


def scan_data(
    reader: FormatReader,
    class_names: tuple[str, ...] | None = None,
    num_classes: int | None = None,
    reporter: Reporter | None = None,
    ignore_given: bool = True,
    colors: str | Path | None = None,
) -> DataReport:
    """Read every sample once: split counts, pixels per class, and the problems found (files that do
    not read, size mismatches, values beyond the classes), each one line naming the file.
    ``ignore_given`` False (``segpipe data`` without ``--ignore-index``): above 255 classes the
    reader's ignore value becomes 65535, as training's default does. ``colors``: the ``--colors``
    palette, whose colours win as in training (:func:`segpipe.data.classes.resolve_classes`)."""
    reporter = reporter or Reporter()
    if num_classes is not None and not 2 <= num_classes <= MAX_CLASSES:  # 0 read as "not given"
        raise ConfigError(f"--num-classes {num_classes}: use 2..{MAX_CLASSES} (binary: 2)")
    reader.survey = True  # what training refuses about the data as a whole is listed, not raised
    samples = reader.samples()
    info = reader.classes()
    num = num_classes or (len(class_names) if class_names else None) or data_classes_count(info, reader.root)
    if num is not None:
        safepaths.check_class_count(num, str(reader.root))
        if num > 255 and not ignore_given and reader.ignore_index == 255:
            reader.set_ignore_index(65535)  # above 255 classes 255 is a class: 65535 marks ignored pixels
    ignore = reader.ignore_index
    counts = np.zeros(65536, np.int64)
    problems: list[str] = []
    tops: list[tuple[int, str]] = []  # (largest value that is not ignore, file) per sample
    with reporter.task("Scanning", total=len(samples)) as task:
        for s in samples:
            try:
                mask = reader.load_mask(s)
                w, h = reader.image_size(s)
                if (h, w) != mask.shape[:2]:
                    problems.append(
                        f"{safepaths.shown(s.label)}: mask is {mask.shape[1]}x{mask.shape[0]} but image "
                        f"{safepaths.shown(s.image)} is {w}x{h}"
                    )
                hist = np.bincount(mask.ravel(), minlength=65536)[:65536]
                counts += hist
                hist[ignore] = 0
                nz = np.flatnonzero(hist)
                if nz.size:
                    tops.append((int(nz[-1]), safepaths.shown(s.label or s.image)))
            except SegpipeError as e:
                problems.append(str(e))
            task.advance()
    problems[:0] = reader.data_problems()
    ignored = int(counts[ignore])
    counts[ignore] = 0
    present = np.flatnonzero(counts)
    top = int(present.max()) + 1 if present.size else 0
    if num is None:
        num = max(top, 2)
    if top > num:
        beyond = [int(v) for v in present if v >= num]
        files = [f for top_value, f in tops if top_value >= num]
        problems.append(
            f"mask values {beyond[:5]} are beyond the {num} classes ({int(counts[beyond].sum())} pixels) in "
            f"{len(files)} file(s): {some(files)}; give --num-classes, --class-names or map them with --class-map"
        )
    classes = resolve_classes(num, info, reader.root, class_names, colors)
    splits: dict[str, int] = {}
    for s in samples:
        splits[s.split or "all"] = splits.get(s.split or "all", 0) + 1
    return DataReport(
        reader.root,
        reader.name,
        getattr(reader, "detected", ""),
        splits,
        classes,
        counts[:num].copy(),
        ignored,
        problems,
        reader.notes(),
    )


def _write_new(path: Path, chunks: Any) -> None:
    """Create ``path`` (never an existing file, never through a link) and write ``chunks``."""
    fd = os.open(
        path,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0),
        0o666,
    )
    with os.fdopen(fd, "wb") as f:
        for chunk in chunks:
            f.write(chunk)


def _copy_chunks(src: Path, where: str) -> Any:
    with safepaths.open_regular(src, "image", where) as f:
        yield from iter(lambda: f.read(1 << 20), b"")


def _check_export(
    reader: FormatReader, s: LabelledSample, mask: np.ndarray, classes: ResolvedClasses
) -> None:
    """The mask about to be written is the image's size and holds classes or the ignore value only."""
    label = safepaths.shown(s.label or s.image)
    w, h = reader.image_size(s)
    if (h, w) != mask.shape[:2]:
        raise DataError(
            f"{label}: sample {safepaths.shown(s.name)}: mask is {mask.shape[1]}x{mask.shape[0]} but image "
            f"{safepaths.shown(s.image)} is {w}x{h} (W x H); not exported"
        )
    num = len(classes.names)
    values = np.unique(mask)
    bad = [int(v) for v in values if v >= num and v != reader.ignore_index]
    if bad:
        raise DataError(
            f"{label}: sample {safepaths.shown(s.name)}: mask values {bad[:5]} are beyond the {num} classes "
            f"(nor ignore {reader.ignore_index}); not exported: give --num-classes or map them with --class-map"
        )


def export_masks(
    reader: FormatReader,
    samples: list[LabelledSample],
    classes: ResolvedClasses,
    out: Path,
    reporter: Reporter,
) -> Path:
    """Write the seed layout (``images/``, ``indexes/NAME_color_mask.png`` index masks,
    ``colors.csv`` with the names) into ``out``: built in a temporary folder beside it (removed on
    an error, Ctrl-C, SIGTERM or SIGHUP), then renamed, so ``out`` is complete or absent, with the
    mode ``mkdir`` gives (umask applied). Never into the source folder; every file lands inside
    ``out`` under the sample's sanitised name; the images are copied only from regular files
    inside the data root; each mask is checked (size, values) before it is written."""
    out = Path(out)
    src = reader.root.resolve()
    dest = out.resolve()
    if dest == src or src in dest.parents or dest in src.parents:
        raise ConfigError(
            f"--export-masks {safepaths.shown(out)}: must be outside the data root {reader.root}"
        )
    if os.path.lexists(out):
        raise ConfigError(f"--export-masks {safepaths.shown(out)}: already exists; give a new folder")
    check_output_dir(out, "--export-masks")
    try:
        with temp_dir_beside(out) as tmp:
            with reporter.task("Exporting masks", total=len(samples)) as task:
                for s in samples:
                    _export_one(reader, s, classes, tmp)
                    task.advance()
            save_palette(classes.palette, tmp / "colors.csv")
            for folder in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
                safepaths.chmod_like_mkdir(folder)
            tmp.rename(out)
    except OSError as e:
        raise (
            disk_full_error(out, e) or SegpipeError(f"cannot write {safepaths.shown(out)}: {e.strerror or e}")
        ) from None
    return out


def _export_one(reader: FormatReader, s: LabelledSample, classes: ResolvedClasses, tmp: Path) -> None:
    where = f"{safepaths.shown(s.label or s.image)}: sample {safepaths.shown(s.name)}"
    mask = reader.load_mask(s)
    _check_export(reader, s, mask, classes)
    blob = reader.embedded_image(s)  # LabelMe's imageData: written as the picture
    if blob is not None:
        suffix = ".png" if blob.startswith(b"\x89PNG") else ".jpg"
    else:
        suffix = safepaths.safe_relname(s.image.suffix.lower()) if s.image.suffix else ""
    img_dst = safepaths.output_path(tmp / "images", s.name, suffix)
    mask_dst = safepaths.output_path(tmp / "indexes", s.name, "_color_mask.png")
    ok, buf = cv2.imencode(".png", mask)  # encoded here: no file name ever reaches OpenCV
    if not ok:
        raise SegpipeError(f"{where}: cannot encode its mask as PNG")
    img_dst.parent.mkdir(parents=True, exist_ok=True)
    mask_dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        _write_new(img_dst, [blob] if blob is not None else _copy_chunks(s.image, where))
        _write_new(mask_dst, [buf.tobytes()])
    except FileExistsError:
        raise DataError(
            f"{where}: two samples export to {safepaths.shown(img_dst.relative_to(tmp))}"
        ) from None
