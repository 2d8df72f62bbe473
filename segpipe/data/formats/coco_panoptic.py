"""COCO panoptic: ``annotations/panoptic_*.json`` + one RGB PNG of segment ids per image, read as
semantic classes through ``segments_info``.

Layout (as the COCO download unpacks, and as datumaro's ``coco_panoptic`` export writes)::

    DATA_ROOT/annotations/panoptic_train2017.json
    DATA_ROOT/annotations/panoptic_train2017/NAME.png   (the folder named as the JSON, panopticapi's
                                                         default; also panoptic_train2017/ beside it)
    DATA_ROOT/train2017/NAME.jpg                        (or images/train2017/, images/train/, images/)

Conventions (panopticapi's ``rgb2id`` and ``panoptic2semantic_segmentation``):

* A PNG pixel's segment id is ``R + 256 G + 256² B``; ``segments_info`` gives each id its
  ``category_id``. Id 0 (panopticapi's VOID: unlabelled) is **ignore** (``ignore_index``, 255);
  panopticapi's converter writes it as 0 and each category as its id.
* Classes: the categories sorted by id -> 0..K-1 named from ``categories`` (a category named
  ``_background_``/``background`` first: see :func:`~segpipe.data.formats._coco.background_category`).
  Pixel for pixel the segments are panopticapi's; only the values differ (class index, not id).
* ``iscrowd: 1`` segments are ignore, as in the COCO instances reader; ``crowds="class"``
  (``--crowds class``) keeps them as their category, as panopticapi's converter does.
* A segment id in a PNG that ``segments_info`` does not list, or a PNG of another size than its
  image, is refused in one line naming the PNG.
* Not detected when the folder also holds ``instances_*.json`` (then read as COCO instances;
  ``--format coco_panoptic`` reads the panoptic files).

No torch here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from segpipe.data.formats._annotations import check_image_size, checked_samples, opened_label_image
from segpipe.data.formats._coco import (
    CocoJsonReader,
    _int,
    background_category,
    check_images_and_categories,
    is_crowd,
)
from segpipe.data.formats.base import ClassInfo, LabelledSample
from segpipe.data.formats.coco import BACKGROUND_NAMES, find_label_files, image_dirs, split_of
from segpipe.data.safepaths import is_regular, open_regular
from segpipe.errors import DataError, some

_PANOPTIC = re.compile(r"^panoptic_(.+)\.json$", re.IGNORECASE)


def panoptic_files(root: Path) -> list[Path]:
    """``annotations/panoptic_*.json`` of a data root, sorted."""
    ann = root / "annotations"
    if not ann.is_dir():
        return []
    return sorted(p for p in ann.glob("*.json") if _PANOPTIC.match(p.name) and is_regular(p))


def png_dir(label_file: Path) -> Path:
    """Where the PNGs of ``label_file`` are: the folder named as the JSON beside it (panopticapi's
    default), else that name at the data root."""
    inner = label_file.with_suffix("")
    outer = label_file.parent.parent / label_file.stem
    return inner if inner.is_dir() or not outer.is_dir() else outer


def check_structure(data: Any, path: Path) -> None:
    """The fields this reader uses, with their types; one line naming the file and the entry."""
    check_images_and_categories(data, path)
    for i, a in enumerate(data["annotations"]):
        ok = isinstance(a, dict) and _int(a.get("image_id")) and isinstance(a.get("file_name"), str)
        if not ok or not isinstance(a.get("segments_info"), list):
            raise DataError(
                f"{path}: annotations[{i}] needs 'image_id', 'file_name' and a 'segments_info' list"
            )
        for j, seg in enumerate(a["segments_info"]):
            if not (isinstance(seg, dict) and _int(seg.get("id")) and _int(seg.get("category_id"))):
                raise DataError(
                    f"{path}: annotations[{i}] segments_info[{j}] needs integer 'id' and 'category_id'"
                )
            if not 0 < seg["id"] < 256**3:
                raise DataError(f"{path}: annotations[{i}] segment id {seg['id']} is not 1..{256**3 - 1}")


def read_segment_ids(path: Path, where: str) -> np.ndarray:
    """An RGB panoptic PNG as segment ids (``R + 256 G + 256² B``), H×W uint32; bounded before
    decoding, one line when it is not an RGB(A) image."""
    with open_regular(path, "panoptic PNG", where) as f, opened_label_image(path, "panoptic PNG", f) as im:
        if im.mode not in ("RGB", "RGBA"):
            raise DataError(f"{path}: a panoptic PNG is RGB (segment ids), got mode {im.mode}")
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint32)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


class CocoPanopticReader(CocoJsonReader):
    """COCO panoptic JSON + segment-id PNGs as semantic classes (categories sorted, VOID ignored)."""

    name = "coco_panoptic"
    description = "COCO panoptic: annotations/panoptic_*.json + PNG segment ids, categories -> classes"
    layout = (
        "annotations/panoptic_{train,val}*.json with annotations/panoptic_*/ PNGs and train2017/ or images/"
    )
    check_file = staticmethod(check_structure)
    find_files = staticmethod(panoptic_files)
    file_pattern = "annotations/panoptic_*.json"

    def __init__(self, root: str | Path, **kw: Any) -> None:
        super().__init__(root, **kw)
        self._entries: dict[tuple[str | None, int], tuple[Path, dict[str, Any], dict[str, Any]]] = {}

    @classmethod
    def detect(cls, root: Path) -> str | None:
        found = panoptic_files(root)
        if not found or find_label_files(root):  # with instances_*.json: read as COCO instances
            return None
        return f"COCO panoptic {some([p.name for p in found], 2)}"

    def _order(self) -> list[int]:
        cats = self.categories()
        bg = background_category(cats)
        bg = bg if bg is not None and cats[bg].strip().lower() in BACKGROUND_NAMES else None
        return ([bg] if bg is not None else []) + [c for c in cats if c != bg]

    def classes(self) -> ClassInfo:
        cats = self.categories()
        return ClassInfo(
            tuple(cats[c] for c in self._order()), None, "COCO panoptic categories (sorted by id)"
        )

    def samples(self) -> list[LabelledSample]:
        out: list[LabelledSample] = []
        missing: list[str] = []
        crowds = 0
        for f in self.label_files():
            data = self._load(f)
            split = split_of(f.stem)
            images = {im["id"]: im for im in data["images"]}
            dirs = image_dirs(self.root, f, split, _PANOPTIC.match(f.name).group(1))  # type: ignore[union-attr]
            first = data["images"][0]["file_name"] if data["images"] else ""
            base = next((d for d in dirs if (d / first).is_file()), dirs[0])
            pngs = png_dir(f)
            for a in data["annotations"]:
                im = images.get(a["image_id"])
                if im is None:
                    raise DataError(
                        f"{f}: annotation of {a['file_name']!r} names image_id {a['image_id']} not in 'images'"
                    )
                image = self.inside(im["file_name"], f"{f} image id {im['id']}", base)
                label = self.inside(a["file_name"], f"{f} image id {im['id']}", pngs)
                if not image.is_file() or not label.is_file():
                    missing.append(str(image if not image.is_file() else label))
                    continue
                crowds += sum(1 for s in a["segments_info"] if is_crowd(s))
                key = (split, im["id"])
                self._entries[key] = (f, im, a)
                name = str(Path(split or "") / Path(im["file_name"]).with_suffix(""))
                out.append(LabelledSample(name, image, label, split, key))
        out = checked_samples(
            out,
            f"{some([str(f) for f in self.label_files()])}: no annotated images",
            missing,
            "file(s) the panoptic JSON names are missing",
        )
        if crowds and self.crowds == "ignore":
            self.reporter.warn(
                f"{self.root}: {crowds} segment(s) are crowds (iscrowd 1): ignored ({self.ignore_index}); "
                "--crowds class keeps them as their class"
            )
        return out

    def read_mask(self, sample: LabelledSample) -> np.ndarray:
        if not self._entries:
            self.samples()
        f, im, ann = self._entries[sample.key]
        assert sample.label is not None
        ids = read_segment_ids(sample.label, f"{f} image id {im['id']}")
        width, height = check_image_size(im.get("width"), im.get("height"), f"{f} image id {im['id']}")
        if ids.shape != (height, width):
            raise DataError(
                f"{sample.label}: panoptic PNG is {ids.shape[1]}x{ids.shape[0]} but {f} gives image id "
                f"{im['id']} {width}x{height} (W x H)"
            )
        class_of = {cid: i for i, cid in enumerate(self._order())}
        value = {0: self.ignore_index}  # VOID
        for seg in ann["segments_info"]:
            if seg["category_id"] not in class_of:
                raise DataError(
                    f"{f}: segment {seg['id']} of {ann['file_name']}: category_id {seg['category_id']} is not in categories"
                )
            crowd = is_crowd(seg) and self.crowds == "ignore"
            value[seg["id"]] = self.ignore_index if crowd else class_of[seg["category_id"]]
        uniq, inverse = np.unique(ids, return_inverse=True)
        unknown = [int(u) for u in uniq if int(u) not in value]
        if unknown:
            raise DataError(
                f"{sample.label}: segment id(s) {some([str(u) for u in unknown])} are not in {f} segments_info"
            )
        top = max(len(class_of), self.ignore_index)
        lut = np.array([value[int(u)] for u in uniq], dtype=np.uint8 if top <= 255 else np.uint16)
        return lut[inverse.reshape(ids.shape)]
