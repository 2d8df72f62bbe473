"""``segpipe data``: what a data root holds (format, splits, classes, pixel shares, problems), and
``export_masks``: the seed layout written from any format. No torch here."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from segpipe.data.classes import ResolvedClasses, data_classes_count, resolve_classes
from segpipe.data.formats import FormatReader, LabelledSample
from segpipe.errors import ConfigError, SegpipeError
from segpipe.options.base import MAX_CLASSES
from segpipe.palette import save_palette
from segpipe.progress import Reporter


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


def scan_data(
    reader: FormatReader,
    class_names: tuple[str, ...] | None = None,
    num_classes: int | None = None,
    reporter: Reporter | None = None,
) -> DataReport:
    """Read every sample once: split counts, pixels per class, and the problems found (files that do
    not read, size mismatches, values beyond the classes), each one line naming the file."""
    reporter = reporter or Reporter()
    if num_classes is not None and not 2 <= num_classes <= MAX_CLASSES:  # 0 read as "not given"
        raise ConfigError(f"--num-classes {num_classes}: use 2..{MAX_CLASSES} (binary: 2)")
    samples = reader.samples()
    info = reader.classes()
    num = num_classes or (len(class_names) if class_names else None) or data_classes_count(info, reader.root)
    ignore = reader.ignore_index
    counts = np.zeros(65536, np.int64)
    problems: list[str] = []
    with reporter.task("Scanning", total=len(samples)) as task:
        for s in samples:
            try:
                mask = reader.load_mask(s)
                w, h = reader.image_size(s)
                if (h, w) != mask.shape[:2]:
                    problems.append(
                        f"{s.label}: mask is {mask.shape[1]}x{mask.shape[0]} but image {s.image} is {w}x{h}"
                    )
                counts += np.bincount(mask.ravel(), minlength=65536)[:65536]
            except SegpipeError as e:
                problems.append(str(e))
            task.advance()
    ignored = int(counts[ignore])
    counts[ignore] = 0
    present = np.flatnonzero(counts)
    top = int(present.max()) + 1 if present.size else 0
    if num is None:
        num = max(top, 2)
    if top > num:
        beyond = [int(v) for v in present if v >= num]
        problems.append(
            f"mask values {beyond[:5]} are beyond the {num} classes ({int(counts[beyond].sum())} pixels); "
            "give --num-classes, --class-names or map them with --class-map"
        )
    classes = resolve_classes(num, info, reader.root, class_names)
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
    )


def export_masks(
    reader: FormatReader,
    samples: list[LabelledSample],
    classes: ResolvedClasses,
    out: Path,
    reporter: Reporter,
) -> Path:
    """Write the seed layout (``images/``, ``indexes/NAME_color_mask.png`` index masks,
    ``colors.csv`` with the names) into ``out``: built in a temporary folder beside it, then renamed,
    so ``out`` is complete or absent. Never into the source folder."""
    out = Path(out)
    src = reader.root.resolve()
    dest = out.resolve()
    if dest == src or src in dest.parents or dest in src.parents:
        raise ConfigError(f"--export-masks {out}: must be outside the data root {reader.root}")
    if out.exists():
        raise ConfigError(f"--export-masks {out}: already exists; give a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        with reporter.task("Exporting masks", total=len(samples)) as task:
            for s in samples:
                rel = Path(s.name)
                img_dst = tmp / "images" / rel.parent / f"{rel.name}{s.image.suffix.lower()}"
                mask_dst = tmp / "indexes" / rel.parent / f"{rel.name}_color_mask.png"
                img_dst.parent.mkdir(parents=True, exist_ok=True)
                mask_dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(s.image, img_dst)
                if not cv2.imwrite(str(mask_dst), reader.load_mask(s)):
                    raise SegpipeError(f"cannot write {mask_dst}")
                task.advance()
        save_palette(classes.palette, tmp / "colors.csv")
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
