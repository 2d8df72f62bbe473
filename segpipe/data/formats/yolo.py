"""YOLO segmentation polygon labels (the Ultralytics instance-segmentation layout), rasterised into
class masks when a sample is read.

Layout (https://docs.ultralytics.com/datasets/segment/)::

    DATA_ROOT/data.yaml                optional: names (dict {0: name} or list), train, val
                                       (names alone: the folders below are found as without it;
                                       Ultralytics itself wants train and val too)
    DATA_ROOT/images/{train,val}/NAME.jpg   (or flat: images/NAME.jpg)
    DATA_ROOT/labels/{train,val}/NAME.txt   one object per line: cls x1 y1 x2 y2 ... (0..1)

Conventions:

* The label file of an image is its path with the last ``images`` folder replaced by ``labels``
  and the suffix by ``.txt`` (Ultralytics' ``img2label_paths``). An image without a label file is
  a background image (Ultralytics trains those as negatives); an image list with no label file
  at all is refused.
* Classes: **0 is "background"** (pixels no polygon covers) and YOLO class ``k`` becomes class
  ``k + 1``, named from the YAML's ``names`` (``class_k`` without a YAML, the class count then
  being the largest id found + 1). Ultralytics' own semantic trainer instead appends background
  *after* the declared classes; segpipe keeps background at 0 as every other reader does.
* Rasterised at the image size (read from the image header) with ``cv2.fillPoly``; a vertex
  ``(x, y)`` lands on pixel ``round(x * W), round(y * H)`` (Ultralytics truncates; rounding keeps
  a vertex written as ``i / W`` on pixel ``i`` despite float error). Polygons are drawn largest
  first (area in pixels once rasterised, as Ultralytics sorts), so a smaller object overlapping a
  larger one stays visible; equal areas keep file order.
* Refused in one line naming the file and the line: a non-integer class, a class beyond
  ``names``, an odd number of coordinates, fewer than 3 points (a 4-value line is a YOLO *box*,
  not a polygon), more than :data:`~segpipe.data.formats._annotations.MAX_POINTS` points, or a
  coordinate outside 0..1 by more than :data:`TOLERANCE` (values within it are clipped).
* Nothing is ignore (255) here: polygon labels have no "unlabelled" value.

No torch here.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from segpipe.data.formats._annotations import MAX_POINTS, image_size, list_images, read_text
from segpipe.data.formats.base import ClassInfo, FormatReader, LabelledSample
from segpipe.data.formats.ultralytics import (
    UltralyticsConfig,
    find_yamls,
    load_config,
    sample_name,
    split_images,
    usable_config,
)
from segpipe.data.safepaths import check_label_bytes
from segpipe.errors import DataError, some

#: Largest label file of one image (MB; the environment variable raises it): parsed line by line,
#: a 100 MB file took minutes and gigabytes.
TXT_MB_ENV = "SEGPIPE_MAX_YOLO_LABEL_MB"
DEFAULT_TXT_MB = 8
#: Most polygons (lines) one image's label file may hold (each is rasterised on its own).
MAX_POLYGONS = 20_000
#: How far outside 0..1 a normalised coordinate may be (then clipped) before it is refused.
TOLERANCE = 0.01
IGNORE = 255
SPLITS = ("train", "val", "test")


def label_for(image: Path) -> Path | None:
    """``images/.../NAME.jpg`` -> ``labels/.../NAME.txt`` (None if the path has no ``images`` folder)."""
    parts = list(image.parts)
    idx = max((i for i, p in enumerate(parts[:-1]) if p == "images"), default=None)
    if idx is None:
        return None
    parts[idx] = "labels"
    return Path(*parts).with_suffix(".txt")


def parse_labels(path: Path, num_names: int | None = None) -> list[tuple[int, np.ndarray]]:
    """The polygons of one label file: ``(yolo_class, points N×2 float64 in 0..1)`` per line."""
    out: list[tuple[int, np.ndarray]] = []
    check_label_bytes(path, TXT_MB_ENV, DEFAULT_TXT_MB, "one image's YOLO labels")
    lines = read_text(path).splitlines()
    count = sum(1 for ln in lines if ln.strip())
    if count > MAX_POLYGONS:
        raise DataError(f"{path}: {count} polygons, over the limit of {MAX_POLYGONS} for one image")
    for lineno, line in enumerate(lines, start=1):
        toks = line.split()
        if not toks:
            continue
        where = f"{path} line {lineno}"
        try:
            cls_f = float(toks[0])
        except ValueError:
            raise DataError(f"{where}: class {toks[0]!r} is not an integer") from None
        if not cls_f.is_integer() or cls_f < 0:
            raise DataError(f"{where}: class {toks[0]!r} is not an integer >= 0")
        cls = int(cls_f)
        if num_names is not None and cls >= num_names:
            raise DataError(f"{where}: class {cls} is beyond the {num_names} names of the dataset YAML")
        n = len(toks) - 1
        if n % 2:
            raise DataError(f"{where}: {n} coordinates, an odd count (expected x1 y1 x2 y2 ...)")
        if n == 4:
            raise DataError(
                f"{where}: 4 values is a YOLO box (cx cy w h), not a polygon (expected >= 3 points)"
            )
        if n < 6:
            raise DataError(f"{where}: {n // 2} point(s); a polygon needs at least 3")
        if n // 2 > MAX_POINTS:
            raise DataError(f"{where}: {n // 2} points, over the limit of {MAX_POINTS} per polygon")
        try:
            coords = np.array([float(t) for t in toks[1:]], dtype=np.float64)
        except ValueError:
            bad = next(t for t in toks[1:] if not _is_float(t))
            raise DataError(f"{where}: coordinate {bad!r} is not a number") from None
        if not np.isfinite(coords).all() or (coords < -TOLERANCE).any() or (coords > 1 + TOLERANCE).any():
            bad = coords[~np.isfinite(coords) | (coords < -TOLERANCE) | (coords > 1 + TOLERANCE)][0]
            raise DataError(
                f"{where}: coordinate {bad:g} is outside 0..1 (normalised; tolerance {TOLERANCE:g})"
            )
        out.append((cls, np.clip(coords, 0.0, 1.0).reshape(-1, 2)))
    return out


def _is_float(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def _pixel_area(pts: np.ndarray) -> int:
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    canvas = np.zeros((int(y1 - y0) + 1, int(x1 - x0) + 1), dtype=np.uint8)
    cv2.fillPoly(canvas, [pts - np.array([x0, y0], dtype=np.int32)], 1)
    return int(canvas.sum(dtype=np.int64))


def rasterize(polygons: list[tuple[int, np.ndarray]], width: int, height: int) -> np.ndarray:
    """Class mask H×W: 0 background, YOLO class k -> k + 1, largest polygons drawn first."""
    top = max((c for c, _ in polygons), default=0) + 1
    mask = np.zeros((height, width), dtype=np.uint8 if top < IGNORE else np.uint16)
    scaled = []
    for cls, pts in polygons:
        px = np.rint(pts * np.array([width, height])).astype(np.int32)
        scaled.append((cls, px, _pixel_area(px)))
    order = sorted(range(len(scaled)), key=lambda i: -scaled[i][2])  # stable: ties keep file order
    for i in order:
        cls, px, _ = scaled[i]
        cv2.fillPoly(mask, [px], int(cls + 1))
    return mask


def class_names(yaml_names: list[str] | None, largest_class: int) -> list[str]:
    """``background`` then the YAML's names (or ``class_k`` for k = 0..largest_class)."""
    if yaml_names is not None:
        return ["background", *yaml_names]
    return ["background", *(f"class_{k}" for k in range(largest_class + 1))]


def list_pairs(images: list[Path]) -> list[tuple[Path, Path | None]]:
    """``(image, label file or None for a background image)``; refuses a list where no image has
    a label file (the wrong folder, not a dataset of negatives)."""
    pairs = []
    for img in images:
        lab = label_for(img)
        pairs.append((img, lab if lab is not None and lab.is_file() else None))
    if pairs and all(lab is None for _, lab in pairs):
        raise DataError(
            f"none of the {len(pairs)} image(s) has a label file (images/.../NAME.jpg pairs with "
            f"labels/.../NAME.txt): {some(str(i) for i, _ in pairs)}"
        )
    return pairs


def default_splits(root: Path) -> dict[str | None, list[Path]]:
    """Images by split without a YAML: ``images/{train,val,test}/`` when present, else ``images/``."""
    base = root / "images"
    subs = {s: base / s for s in SPLITS if (base / s).is_dir()}
    if subs:
        return {s: list_images(d) for s, d in subs.items()}
    return {None: list_images(base)}


def detect_reason(root: Path) -> str | None:
    """Why ``root`` looks like YOLO polygon labels, or None."""
    labels, images = root / "labels", root / "images"
    if not (labels.is_dir() and images.is_dir()):
        return None
    for n, p in enumerate(labels.rglob("*.txt")):
        if p.is_file():
            return "images/ with labels/*.txt (YOLO polygon labels)"
        if n > 1000:
            break
    return None


def largest_class(paths: list[Path]) -> int:
    """The largest YOLO class id in the label files (-1 when there is none)."""
    top = -1
    for p in paths:
        for cls, _ in parse_labels(p):
            top = max(top, cls)
    return top


class YoloReader(FormatReader):
    """YOLO polygon labels rasterised at load; class 0 background, YOLO class k -> k + 1."""

    name = "yolo"
    description = "YOLO polygon labels: images/ + labels/*.txt (cls x1 y1 ... normalised), background 0"
    layout = "images/{train,val}/ and labels/{train,val}/NAME.txt (or flat), optional data.yaml names"
    generic = True

    def __init__(self, root: str | Path, **kw: object) -> None:
        super().__init__(root, **kw)
        self._samples: list[LabelledSample] | None = None
        self._names: list[str] | None = None

    @classmethod
    def detect(cls, root: Path) -> str | None:
        return detect_reason(root)

    def config(self) -> UltralyticsConfig | None:
        """The dataset YAML naming the classes (``data.yaml`` first), or None without one."""
        return self._cfg

    @functools.cached_property
    def _cfg(self) -> UltralyticsConfig | None:
        # data.yaml when there is one (its problems reported), else a YAML that loads
        data = [p for p in find_yamls(self.root) if p.stem.lower() == "data"]
        found = usable_config(self.root, want_masks=False) or usable_config(self.root, want_masks=True)
        return load_config(data[0], splits_required=False) if data else (found[0] if found else None)

    def samples(self) -> list[LabelledSample]:
        if self._samples is None:
            cfg = self.config()
            groups: dict[str | None, list[Path]] = {}
            if cfg is not None and any(cfg.splits.values()):
                for split, entries in cfg.splits.items():
                    for entry in entries:
                        groups.setdefault(split, []).extend(split_images(cfg, entry, split))
                base = cfg.root
            else:
                groups = default_splits(self.root)
                base = self.root
            every = [img for imgs in groups.values() for img in imgs]
            if not every:
                raise DataError(f"{self.root / 'images'} holds no images")
            labels = dict(list_pairs(every))
            bare = [str(img) for img, lab in labels.items() if lab is None]
            if bare:
                self.reporter.info(
                    f"{len(bare)} image(s) have no label file and are all background (as Ultralytics trains "
                    f"them): {some(bare)}"
                )
            if cfg is not None and cfg.path_note:
                self.reporter.info(cfg.path_note)
            out = []
            for split, imgs in groups.items():
                for img in imgs:
                    name = sample_name(img, base)
                    out.append(LabelledSample(name, img, labels[img], split))
            self._samples = sorted(out, key=lambda s: s.name)
        return list(self._samples)

    def names(self) -> list[str]:
        """``background`` then the YOLO classes' names."""
        if self._names is None:
            cfg = self.config()
            if cfg is not None:
                self._names = class_names(list(cfg.names), -1)
            else:
                files = [s.label for s in self.samples() if s.label is not None]
                self._names = class_names(None, largest_class(files))
        return self._names

    def classes(self) -> ClassInfo:
        cfg = self.config()
        if cfg is not None:
            return ClassInfo(tuple(self.names()), None, f"{cfg.file.name} names, background added as 0")
        return ClassInfo(
            tuple(self.names()), None, "YOLO class ids (no data.yaml names them), background added as 0"
        )

    def read_mask(self, sample: LabelledSample) -> np.ndarray:
        width, height = image_size(sample.image)
        if sample.label is None:
            return np.zeros((height, width), dtype=np.uint8)
        cfg = self.config()
        num = len(cfg.names) if cfg is not None else None
        return rasterize(parse_labels(sample.label, num), width, height)
