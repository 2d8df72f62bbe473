"""COCO JSON annotations (instances and stuff), polygons and RLE, decoded with pycocotools.

Layout (as the COCO download unpacks)::

    DATA_ROOT/annotations/instances_train2017.json   (and/or stuff_train2017.json)
    DATA_ROOT/annotations/instances_val2017.json
    DATA_ROOT/train2017/NAME.jpg                     (or images/train2017/, images/train/, images/)
    DATA_ROOT/val2017/NAME.jpg

Also read: a Roboflow-style export, ``{train,valid,test}/_annotations.coco.json`` beside the images,
and labelme's ``labelme2coco.py`` output, ``annotations.json`` beside ``JPEGImages/`` (and
``Visualization/``), its ``file_name`` relative to the JSON's folder.
Panoptic, caption, keypoint and ``image_info`` files are not label files for this reader.

Conventions:

* Classes: **0 is "background"** (pixels no annotation covers); the categories of every file,
  sorted by id, become classes 1..K named from ``categories`` (a category id with two different
  names in two files is refused). ``stuff_*`` files add their categories to the instances' ones.
  A category that *is* the background becomes class 0 and the others keep their order: one named
  ``_background_`` or ``background`` (``labelme2coco`` writes ``_background_`` with id 0), else
  the one with id 0 (Roboflow's id 0 is its project name, a category no annotation uses).
* Segmentations as pycocotools reads them (``COCO.annToRLE``): a polygon list (merged), an
  uncompressed RLE (``counts`` a list) or a compressed RLE (``counts`` a string). Polygons of
  fewer than 3 points have no area and are skipped (as detectron2 does); an odd coordinate count,
  more than :data:`~segpipe.data.formats._annotations.MAX_POINTS` points, an RLE whose ``size`` is
  not the image's or whose counts do not add up to H×W is refused in one line naming the file
  and the annotation id (checked before pycocotools sees it).
* Overlaps: annotations are drawn largest area first, so a smaller object on a larger one stays
  visible. ``iscrowd: 1`` regions are **ignore** (``ignore_index``, 255) where no single object
  is annotated (the MMSegmentation / COCO-stuff convention: a crowd is not a clean label); the
  reader says how many annotations are crowds (datumaro's COCO export marks every RLE mask a
  crowd) and, once masks are read, how many pixels they made ignore. ``crowds="class"``
  (``--crowds class``) draws them as their category instead, like any annotation.
* An annotation without a segmentation (missing, ``null`` or ``[]``: a box only) draws nothing
  and is counted in one warning; when *no* annotation has one (a detection export, e.g.
  Roboflow's for a detection project) the reader refuses in one line (``segpipe data`` lists it
  among the problems instead).
* Each JSON is parsed once per reader (cached); a JSON over ``SEGPIPE_MAX_LABEL_MB`` megabytes
  (default 1024) is refused before parsing, saying how to raise the limit; image sizes are
  bounded before a mask is allocated.

No torch here.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from segpipe.data.formats._annotations import check_image_size, checked_samples, gc_paused
from segpipe.data.formats._coco import (  # noqa: F401 - rle_string_counts re-exported
    BACKGROUND_NAMES,
    CocoJsonReader,
    background_category,
    check_crowds,
    check_structure,
    has_mask,
    is_crowd,
    rle_string_counts,
    to_rle,
)
from segpipe.data.formats.base import ClassInfo, LabelledSample
from segpipe.data.safepaths import check_regular, open_regular
from segpipe.errors import DataError, some

_LABEL_FILE = re.compile(r"^(instances|stuff)_(.+)\.json$", re.IGNORECASE)
_SPLIT = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def split_of(stem: str) -> str | None:
    """``instances_train2017`` -> ``train``; ``valid`` -> ``val``; None when the name has no split."""
    low = stem.lower()
    for token, split in (("train", "train"), ("valid", "val"), ("val", "val"), ("test", "test")):
        if token in low:
            return split
    return None


def _coco_head(path: Path) -> bool:
    """The first 64 KB of ``path`` name COCO's top-level lists (``images`` and ``categories`` or
    ``annotations``)."""
    try:
        with open_regular(path, "label file") as f:  # a FIFO is not COCO, and never blocks
            head = f.read(65536)
    except (OSError, DataError):
        return False
    return b'"images"' in head and (b'"categories"' in head or b'"annotations"' in head)


def find_label_files(root: Path) -> list[Path]:
    """The COCO label files of a data root: ``annotations/{instances,stuff}_*.json``, else
    ``*/_annotations.coco.json`` (Roboflow), else ``annotations.json`` beside ``JPEGImages/``
    (labelme2coco)."""
    ann = root / "annotations"
    found = sorted(p for p in ann.glob("*.json") if _LABEL_FILE.match(p.name)) if ann.is_dir() else []
    if not found and root.is_dir():
        found = sorted(p for p in root.glob("*/_annotations.coco.json") if p.is_file())
    single = root / "annotations.json"
    if not found and single.is_file() and (root / "JPEGImages").is_dir() and _coco_head(single):
        found = [single]
    return found


def image_dirs(root: Path, label_file: Path, split: str | None, tag: str | None = None) -> list[Path]:
    """Where the images of ``label_file`` may be, most specific first (``tag``: the file's
    ``train2017`` part when its name is not ``instances_*``/``stuff_*``)."""
    m = _LABEL_FILE.match(label_file.name)
    tag = tag or (m.group(2) if m else label_file.parent.name)  # train2017 / valid
    cands = [root / tag, root / "images" / tag]
    if split:
        cands += [root / "images" / split, root / split]
    cands += [label_file.parent, root / "images", root]
    return list(dict.fromkeys(cands))


class CocoReader(CocoJsonReader):
    """COCO instances/stuff JSON: polygons and RLE through pycocotools, background 0."""

    name = "coco"
    description = "COCO JSON: annotations/instances_*.json (or stuff_*), polygons and RLE, background 0"
    layout = (
        "annotations/instances_{train,val}*.json (or stuff_*) with train2017/, val2017/ or images/; "
        "SPLIT/_annotations.coco.json; annotations.json + JPEGImages/"
    )

    check_file = staticmethod(check_structure)
    find_files = staticmethod(find_label_files)
    file_pattern = "annotations/instances_*.json or stuff_*.json"

    def __init__(self, root: str | Path, **kw: Any) -> None:
        super().__init__(root, **kw)
        #: Pixels crowds made ignore and pixels read, over the masks read so far (:meth:`notes`).
        self.crowd_pixels = 0
        self.pixels_read = 0
        self._problems: list[str] = []
        self._samples: list[LabelledSample] | None = None
        self._anns: dict[tuple[str | None, int], list[tuple[Path, dict[str, Any]]]] = {}
        self._images: dict[tuple[str | None, int], tuple[Path, dict[str, Any]]] = {}
        self._class_of: dict[int, int] | None = None
        self._names: tuple[str, ...] | None = None

    @classmethod
    def detect(cls, root: Path) -> str | None:
        found = find_label_files(root)
        if not found:
            return None
        return f"COCO annotations {some([p.name for p in found], 2)}"

    def samples(self) -> list[LabelledSample]:
        if self._samples is None:
            with gc_paused():  # the index holds no reference cycles (860k annotations in COCO train)
                self._samples = self._index()
        return list(self._samples)

    def _index(self) -> list[LabelledSample]:
        out: dict[tuple[str | None, int], LabelledSample] = {}
        missing: list[str] = []
        for f in self.label_files():
            data = self._load(f)
            split = split_of(f.stem if f.name != "_annotations.coco.json" else f.parent.name)
            dirs = image_dirs(self.root, f, split)
            base = next(
                (d for d in dirs if data["images"] and (d / data["images"][0]["file_name"]).is_file()),
                dirs[0],
            )
            for im in data["images"]:
                key = (split, im["id"])
                known = self._images.get(key)
                if known is not None:
                    if known[1]["file_name"] != im["file_name"]:
                        raise DataError(
                            f"{f}: image id {im['id']} is {im['file_name']!r} but {known[0]} says "
                            f"{known[1]['file_name']!r}"
                        )
                    continue
                image = base / im["file_name"]
                if not image.is_file():
                    if image.exists():  # a folder, FIFO, socket or device: said so, not "missing"
                        check_regular(image, "image", f"{f} image id {im['id']}")
                    missing.append(str(image))
                    continue
                self._images[key] = (f, im)
                stem = os.path.splitext(im["file_name"])[0]  # (str ops: 118k images in COCO train)
                name = f"{split}/{stem}" if split else stem
                out[key] = LabelledSample(name, image, f, split, key)
            self._count(f, data["annotations"])
            for a in data["annotations"]:
                self._anns.setdefault((split, a["image_id"]), []).append((f, a))
        found = checked_samples(
            list(out.values()),
            f"{some([str(f) for f in self.label_files()])}: no images listed",
            missing,
            "image(s) listed in the COCO JSON are missing",
        )
        orphans = [(f, a) for key, anns in self._anns.items() if key not in out for f, a in anns]
        if orphans:  # annotations of an image id that 'images' does not list are left out, said once
            ids = sorted({str(a["image_id"]) for _, a in orphans})
            self.reporter.warn(
                f"{orphans[0][0]}: {len(orphans)} annotation(s) name image ids that 'images' does not "
                f"list and are left out: image_id {some(ids)}"
            )
        return found

    def _count(self, f: Path, anns: list[dict[str, Any]]) -> None:
        """Say how many annotations of ``f`` are crowds and how many have no mask; refuse a file
        set where none has one (a detection export), or list it among :meth:`data_problems` when
        :attr:`survey` is set (``segpipe data``)."""
        total, masked, crowds, area = len(anns), 0, 0, 0.0
        for a in anns:  # one pass, no call per annotation (860k in COCO train)
            seg = a.get("segmentation")
            if seg is None or seg == [] or seg == {}:
                continue
            masked += 1
            if a.get("iscrowd", 0) in (1, True):
                crowds += 1
                ar = a.get("area")
                area += ar if isinstance(ar, (int, float)) else 0.0
        if total and not masked:
            line = (
                f"{f}: none of its {total} annotation(s) has a mask ('segmentation' missing or empty: "
                "boxes only, a detection export); export the data set with polygons or masks "
                "(instance segmentation)"
            )
            if not self.survey:
                raise DataError(line)
            self._problems.append(line)
        elif masked < total:
            self.reporter.warn(
                f"{f}: {total - masked} of {total} annotation(s) have no mask ('segmentation' missing "
                "or empty: boxes only) and draw nothing"
            )
        if crowds:
            if self.crowds == "ignore":
                self.reporter.warn(
                    f"{f}: {crowds} of {total} annotation(s) are crowds (iscrowd 1, {area:,.0f} pixels by "
                    f"their 'area'): ignored ({self.ignore_index}) where no object covers them; "
                    "--crowds class keeps them as their class"
                )
            else:
                self.reporter.info(f"{f}: {crowds} crowd annotation(s) kept as their class (--crowds class)")

    def data_problems(self) -> list[str]:
        if self._samples is None:
            self.samples()
        return list(self._problems)

    def notes(self) -> list[str]:
        if not self.crowd_pixels:
            return []
        share = 100 * self.crowd_pixels / max(self.pixels_read, 1)
        return [
            f"crowds (iscrowd 1) made {self.crowd_pixels:,} pixels ignore ({share:.2f}% of the pixels "
            "read); --crowds class keeps them as their class"
        ]

    def class_of(self) -> dict[int, int]:
        """Category id -> class: the background category (:func:`background_category`) -> 0, the
        others in id order -> 1..K."""
        if self._class_of is None:
            cats = self.categories()
            bg = background_category(cats)
            others = [c for c in cats if c != bg]
            self._class_of = {cid: i + 1 for i, cid in enumerate(others)}
            if bg is not None:
                self._class_of[bg] = 0
            name0 = cats[bg] if bg is not None and cats[bg].lower() in BACKGROUND_NAMES else "background"
            self._names = (name0, *(cats[c] for c in others))
        return self._class_of

    def classes(self) -> ClassInfo:
        self.class_of()
        assert self._names is not None
        bg = background_category(self.categories())
        how = "added as 0" if bg is None else f"category id {bg} ({self.categories()[bg]!r}) as 0"
        return ClassInfo(self._names, None, f"COCO categories (sorted by id), background {how}")

    def read_mask(self, sample: LabelledSample) -> np.ndarray:
        from pycocotools import mask as mask_utils

        if not self._images:
            self.samples()
        f, im = self._images[sample.key]
        width, height = check_image_size(im.get("width"), im.get("height"), f"{f} image id {im['id']}")
        cls_of = self.class_of()
        top = max(len(cls_of), self.ignore_index)
        # column-major like pycocotools' decoded masks: each layer is copied in without a stride
        out = np.zeros((height, width), dtype=np.uint8 if top <= 255 else np.uint16, order="F")
        layers: list[tuple[int, int, int, Any]] = []
        with warnings.catch_warnings():  # pycocotools' own numpy-2 DeprecationWarning (copy=False)
            warnings.simplefilter("ignore", DeprecationWarning)
            for jf, a in self._anns.get(sample.key, []):
                where = f"{jf} annotation id {a.get('id', '?')}"
                if a["category_id"] not in cls_of:
                    raise DataError(f"{where}: category_id {a['category_id']} is not in categories")
                if not has_mask(a):
                    continue
                rle = to_rle(a["segmentation"], height, width, where)
                if rle is None:
                    continue
                crowd = is_crowd(a) and self.crowds == "ignore"
                value = self.ignore_index if crowd else cls_of[a["category_id"]]
                layers.append((0 if crowd else 1, -int(mask_utils.area(rle)), value, rle))
            # crowd (ignore) first, then objects largest first: a stable sort keeps file order on ties
            for _, _, value, rle in sorted(layers, key=lambda t: (t[0], t[1])):
                np.copyto(out, value, where=mask_utils.decode(rle).view(bool))  # decode: 0/1 uint8
        if any(t[0] == 0 for t in layers) and self.ignore_index > 0:
            self.crowd_pixels += int(np.count_nonzero(out == self.ignore_index))
        self.pixels_read += out.size
        return np.ascontiguousarray(out)
