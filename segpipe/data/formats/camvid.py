"""CamVid, in the layouts it ships in and the ones tools write.

1. The original release and the Kaggle copy: colour labels ``NAME_L.png`` beside the images, with
   ``label_colors.txt`` (``R G B Name`` lines) or ``class_dict.csv`` (``name,r,g,b``)::

       701_StillsRaw_full/NAME.png + LabeledApproved_full/NAME_L.png + label_colors.txt
       train/NAME.png + train_labels/NAME_L.png, val/, val_labels/, test/, test_labels/ + class_dict.csv

2. The SegNet layout that datumaro (and CVAT's "CamVid 1.0" export) reads and writes: list files
   ``SPLIT.txt`` of ``/SPLIT/NAME.png SPLITannot/NAME.png`` lines (quoted when a path holds a
   space; SegNet's own lists start with ``/SegNet/CamVid/``), ``SPLITannot/`` masks, optional
   ``label_colors.txt`` (or datumaro's ``dataset_meta.json``); without list files the
   ``SPLIT/`` + ``SPLITannot/`` folders are paired by file name.

Classes, as datumaro's ``make_camvid_categories`` gives them: the label map's labels with the one
coloured 0,0,0 moved to id 0 (``background`` added at 0 when none is); without a label map, the
32 CamVid classes (``Void`` 0) for colour masks. Colour masks are decoded through the colours (a
colour not listed is refused in one line naming file, pixel and colour). Single-channel masks are
class indices; without a label map those are SegNet's 11 classes with 11 ("Unlabelled") ignored.
Splits come from the folder or list names (train/val/test). No torch here.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import numpy as np

from segpipe.data.formats._annotations import checked_samples, find_image, image_size, list_images, read_text
from segpipe.data.formats._labelmaps import (
    LabelMap,
    LabelMapReader,
    read_class_dict,
    read_dataset_meta,
    read_label,
    read_label_colors,
)
from segpipe.data.formats.base import SPLITS, LabelledSample
from segpipe.data.safepaths import check_regular, inside, is_regular
from segpipe.errors import DataError, shorten, some

CAMVID_32: LabelMap = [
    ("Void", (0, 0, 0)), ("Animal", (64, 128, 64)), ("Archway", (192, 0, 128)), ("Bicyclist", (0, 128, 192)),
    ("Bridge", (0, 128, 64)), ("Building", (128, 0, 0)), ("Car", (64, 0, 128)), ("CartLuggagePram", (64, 0, 192)),
    ("Child", (192, 128, 64)), ("Column_Pole", (192, 192, 128)), ("Fence", (64, 64, 128)),
    ("LaneMkgsDriv", (128, 0, 192)), ("LaneMkgsNonDriv", (192, 0, 64)), ("Misc_Text", (128, 128, 64)),
    ("MotorcycleScooter", (192, 0, 192)), ("OtherMoving", (128, 64, 64)), ("ParkingBlock", (64, 192, 128)),
    ("Pedestrian", (64, 64, 0)), ("Road", (128, 64, 128)), ("RoadShoulder", (128, 128, 192)),
    ("Sidewalk", (0, 0, 192)), ("SignSymbol", (192, 128, 128)), ("Sky", (128, 128, 128)),
    ("SUVPickupTruck", (64, 128, 192)), ("TrafficCone", (0, 0, 64)), ("TrafficLight", (0, 64, 64)),
    ("Train", (192, 64, 128)), ("Tree", (128, 128, 0)), ("Truck_Bus", (192, 128, 192)), ("Tunnel", (64, 0, 64)),
    ("VegetationMisc", (192, 192, 0)), ("Wall", (64, 192, 0)),
]  # fmt: skip
#: SegNet's CamVid: 11 classes (index 11 "Unlabelled" is ignored), colours of its tutorial scripts.
SEGNET_11: LabelMap = [
    ("Sky", (128, 128, 128)), ("Building", (128, 0, 0)), ("Pole", (192, 192, 128)), ("Road", (128, 64, 128)),
    ("Pavement", (60, 40, 222)), ("Tree", (128, 128, 0)), ("SignSymbol", (192, 128, 128)), ("Fence", (64, 64, 128)),
    ("Car", (64, 0, 128)), ("Pedestrian", (64, 64, 0)), ("Bicyclist", (0, 128, 192)),
]  # fmt: skip
LABEL_FILES = ("dataset_meta.json", "label_colors.txt", "class_dict.csv")
_SPLIT = {"training": "train", "validation": "val", "valid": "val", "testing": "test"}


def split_of(folder: str) -> str | None:
    low = folder.lower().removesuffix("_labels").removesuffix("annot")
    return low if low in SPLITS else _SPLIT.get(low)


def list_files(root: Path) -> list[Path]:
    """``SPLIT.txt`` lists that have a ``SPLITannot/`` folder beside them."""
    return [
        p
        for p in sorted(root.glob("*.txt"))
        if p.name != "label_colors.txt" and (root / f"{p.stem}annot").is_dir()
    ]


def annot_pairs(root: Path) -> list[tuple[Path, Path]]:
    """``(SPLIT/, SPLITannot/)`` folder pairs (SegNet's layout without its list files)."""
    return [
        (root / p.name[: -len("annot")], p)
        for p in sorted(root.glob("*annot"))
        if p.is_dir() and (root / p.name[: -len("annot")]).is_dir()
    ]


def color_labels(root: Path, limit: int = 100_000) -> list[Path]:
    out = []
    for n, p in enumerate(root.rglob("*_L.png")):
        if n >= limit:
            break
        if is_regular(p):
            out.append(p)
    return sorted(out)


def with_background_first(pairs: LabelMap) -> LabelMap:
    """datumaro's rule: the label coloured 0,0,0 is class 0; ``background`` is added when none is."""
    black = next((i for i, (_, c) in enumerate(pairs) if c == (0, 0, 0)), None)
    if black is not None:
        return [pairs[black]] + pairs[:black] + pairs[black + 1 :]
    if any(n == "background" for n, _ in pairs):
        i = next(i for i, (n, _) in enumerate(pairs) if n == "background")
        return [pairs[i]] + pairs[:i] + pairs[i + 1 :]
    has_colors = any(c is not None for _, c in pairs)
    return [("background", (0, 0, 0) if has_colors else None)] + pairs


class CamvidReader(LabelMapReader):
    """CamVid _L.png colour labels, or the SegNet/datumaro SPLIT.txt + SPLITannot/ layout."""

    name = "camvid"
    description = "CamVid: NAME_L.png colour labels (label_colors.txt / class_dict.csv) or SegNet's SPLIT.txt + SPLITannot/"
    layout = "*_L.png with label_colors.txt or class_dict.csv; or train.txt / train/ + trainannot/ (+ label_colors.txt)"
    #: Read as SegNet's 11 classes (index masks without a label file; index 11 is ignored).
    _segnet = False

    @classmethod
    def detect(cls, root: Path) -> str | None:
        lists = list_files(root)
        if lists:
            return f"{lists[0].name} with {lists[0].stem}annot/ (CamVid, SegNet layout)"
        pairs = annot_pairs(root)
        if pairs:
            return f"{pairs[0][0].name}/ with {pairs[0][1].name}/ (CamVid, SegNet layout)"
        maps = [f for f in ("label_colors.txt", "class_dict.csv") if is_regular(root / f)]
        if maps and color_labels(root, limit=2000):
            return f"*_L.png colour labels with {maps[0]} (CamVid)"
        return None

    def read_labels(self) -> tuple[LabelMap, str]:
        found = next((self.root / f for f in LABEL_FILES if is_regular(self.root / f)), None)
        if found is not None:
            read = {"dataset_meta.json": read_dataset_meta, "label_colors.txt": read_label_colors}
            return with_background_first(read.get(found.name, read_class_dict)(found)), found.name
        first = next(iter(self.samples()), None)
        self._segnet = first is not None and first.label is not None and not read_label(first.label)[1]
        if self._segnet:
            return SEGNET_11, "SegNet's CamVid (built in)"
        return CAMVID_32, "CamVid (built in, 32 classes)"

    def _from_lists(self, lists: list[Path]) -> list[LabelledSample]:
        out, missing = [], []
        for lst in lists:
            split = split_of(lst.stem)
            for lineno, line in enumerate(read_text(lst).splitlines(), start=1):
                if not line.strip():
                    continue
                where = f"{lst} line {lineno}"
                try:
                    parts = shlex.split(line) if '"' in line else line.split()
                except ValueError:
                    raise DataError(f"{where}: unbalanced quotes in {shorten(line)!r}") from None
                paths = [self._resolve(p, where) for p in parts[:2]]
                if paths[0] is None or (len(paths) > 1 and paths[1] is None):
                    missing.append(f"{lst.name}:{lineno} {shorten(line)}")  # a 10 MB line: not all of it
                    continue
                name = f"{lst.stem}/{Path(parts[0]).stem}"
                out.append(LabelledSample(name, paths[0], paths[1] if len(paths) > 1 else None, split))  # type: ignore[arg-type]
        if missing:
            raise DataError(
                f"{len(missing)} list line(s) name a file that is not in {self.root}: {some(missing)}"
            )
        return out

    def _resolve(self, text: str, where: str) -> Path | None:
        """A list path: as written under the root (a leading ``/`` is the root, as datumaro reads
        it), else its last two parts (SegNet's lists name ``/SegNet/CamVid/train/NAME.png``);
        confined to the root. An absolute path that names an existing file outside the root is
        refused as such."""
        parts = Path(text.lstrip("/")).parts
        for cand in (Path(*parts) if parts else None, Path(*parts[-2:]) if len(parts) > 2 else None):
            if cand is not None:
                p = inside(self.root, str(cand), where, allow_outside=self.outside_root)
                if os.path.lexists(p):
                    check_regular(p, "file", where)  # a FIFO or device: said as such
                    return p
        if text.startswith("/") and os.path.lexists(text):
            p = inside(self.root, text, where, allow_outside=self.outside_root)
            return p if is_regular(p) else None
        return None

    def _from_folders(self) -> list[LabelledSample]:
        out, missing = [], []
        for images, annot in annot_pairs(self.root):
            for mask in list_images(annot):
                rel = mask.relative_to(annot).with_suffix("")
                image = find_image(images / rel.parent, rel.name)
                if image is None:
                    missing.append(str(mask.relative_to(self.root)))
                    continue
                out.append(LabelledSample(f"{images.name}/{rel}", image, mask, split_of(images.name)))
        if missing:
            self.reporter.warn(
                f"{len(missing)} mask(s) have no image of the same name and are left out: {some(missing)}"
            )
        return out

    def _from_color_labels(self) -> list[LabelledSample]:
        images: dict[str, list[Path]] = {}
        for p in list_images(self.root):
            if not p.stem.endswith("_L"):
                images.setdefault(p.stem, []).append(p)
        out, missing = [], []
        for label in color_labels(self.root):
            stem = label.name[: -len("_L.png")]
            beside = label.parent.parent / label.parent.name.removesuffix("_labels")
            image = find_image(beside, stem) if beside != label.parent else None
            cands = images.get(stem, [])
            image = image or (cands[0] if len(cands) == 1 else None)
            if image is None:
                missing.append(str(label.relative_to(self.root)))
                continue
            split = split_of(label.parent.name) or split_of(image.parent.name)
            out.append(LabelledSample(stem if split is None else f"{split}/{stem}", image, label, split))
        if missing:
            self.reporter.warn(
                f"{len(missing)} _L.png label(s) have no (single) image NAME.png and are left out: {some(missing)}"
            )
        return out

    def samples(self) -> list[LabelledSample]:
        if any(is_regular(self.root / f) for f in LABEL_FILES):
            self.labels()  # a broken label file is said first
        lists = list_files(self.root)
        if lists:
            out = self._from_lists(lists)
        elif annot_pairs(self.root):
            out = self._from_folders()
        else:
            out = self._from_color_labels()
        return checked_samples(
            out, f"{self.root}: no CamVid samples (SPLIT.txt lines, or NAME_L.png with NAME.png)"
        )

    def read_mask(self, sample: LabelledSample) -> np.ndarray:
        self.labels()
        if sample.label is None:  # listed without a mask: no annotation, all class 0
            w, h = image_size(sample.image)
            return np.zeros((h, w), np.uint8)
        return super().read_mask(sample)

    def convention(self, ids: np.ndarray, is_rgb: bool) -> np.ndarray:
        if self._segnet and not is_rgb:  # SegNet's index 11, "Unlabelled", is ignored
            ids = ids.astype(np.uint16) if self.ignore_index > 255 else ids.copy()
            ids[ids == len(SEGNET_11)] = self.ignore_index
        return ids
