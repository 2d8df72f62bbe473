"""Cityscapes: ``leftImg8bit/{split}/CITY/X_leftImg8bit.png`` + ``gtFine/{split}/CITY/X_gtFine_labelIds.png``.

The label ids (0 unlabeled .. 33 bicycle; the license plate's -1 is stored as 255) become the 19
training ids of the official mapping (cityscapesScripts ``helpers/labels.py``); every other id is
ignored. Which file of an image is read, the first that exists:

1. ``*_gtFine_labelTrainIds.png``: already train ids (``createTrainIdLabelImgs``, what
   MMSegmentation's ``cityscapes.py`` converter writes and its dataset reads; datumaro reads it
   first too): read as they are, 255 ignored (and 19, the "background" datumaro's Cityscapes
   export writes), any other value above 18 refused in one line;
2. ``*_gtFine_labelIds.png``: label ids -> train ids;
3. ``*_gtFine_instanceIds.png`` alone (16-bit, ``json2instanceImg``): ``id // 1000`` for ids >= 1000
   (instances of a class), the id itself below, then label id -> train id.

The ``test`` split (no public labels) is left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segpipe.data.formats._annotations import checked_samples
from segpipe.data.formats.base import ClassInfo, FormatReader, LabelledSample, as_index_array
from segpipe.data.maskio import read_mask_file
from segpipe.data.safepaths import is_regular
from segpipe.errors import DataError

#: (label id, train id, name, colour) of the 19 evaluated classes, from cityscapesScripts labels.py.
TRAIN_LABELS = (
    (7, 0, "road", (128, 64, 128)),
    (8, 1, "sidewalk", (244, 35, 232)),
    (11, 2, "building", (70, 70, 70)),
    (12, 3, "wall", (102, 102, 156)),
    (13, 4, "fence", (190, 153, 153)),
    (17, 5, "pole", (153, 153, 153)),
    (19, 6, "traffic light", (250, 170, 30)),
    (20, 7, "traffic sign", (220, 220, 0)),
    (21, 8, "vegetation", (107, 142, 35)),
    (22, 9, "terrain", (152, 251, 152)),
    (23, 10, "sky", (70, 130, 180)),
    (24, 11, "person", (220, 20, 60)),
    (25, 12, "rider", (255, 0, 0)),
    (26, 13, "car", (0, 0, 142)),
    (27, 14, "truck", (0, 0, 70)),
    (28, 15, "bus", (0, 60, 100)),
    (31, 16, "train", (0, 80, 100)),
    (32, 17, "motorcycle", (0, 0, 230)),
    (33, 18, "bicycle", (119, 11, 32)),
)
SPLITS = ("train", "val")
#: Label files of one image, in the order they are looked for.
SUFFIXES = ("_gtFine_labelTrainIds.png", "_gtFine_labelIds.png", "_gtFine_instanceIds.png")


def label_id_lut(ignore_index: int = 255) -> np.ndarray:
    """256-entry table label id -> train id (ignore for the 15 ids not evaluated and 255 = -1)."""
    lut = np.full(256, ignore_index, dtype=np.uint16)
    for label_id, train_id, _, _ in TRAIN_LABELS:
        lut[label_id] = train_id
    return lut


class CityscapesReader(FormatReader):
    name = "cityscapes"
    description = (
        "Cityscapes: leftImg8bit/ + gtFine/ labelTrainIds (MMSegmentation), labelIds (34 ids -> 19 "
        "train ids) or instanceIds"
    )
    layout = (
        "leftImg8bit/{train,val}/CITY/*_leftImg8bit.png and gtFine/{train,val}/CITY/"
        "*_gtFine_{labelTrainIds,labelIds,instanceIds}.png"
    )

    @classmethod
    def detect(cls, root: Path) -> str | None:
        if (root / "leftImg8bit").is_dir() and (root / "gtFine").is_dir():
            return "leftImg8bit/ and gtFine/"
        return None

    def samples(self) -> list[LabelledSample]:
        out, missing = [], []
        for split in SPLITS:
            for image in sorted((self.root / "leftImg8bit" / split).glob("*/*_leftImg8bit.png")):
                stem = image.name[: -len("_leftImg8bit.png")]
                gt = self.root / "gtFine" / split / image.parent.name
                label = next((gt / f"{stem}{s}" for s in SUFFIXES if is_regular(gt / f"{stem}{s}")), None)
                if label is None:
                    missing.append(str(image.relative_to(self.root)))
                    continue
                out.append(LabelledSample(f"{split}/{image.parent.name}/{stem}", image, label, split))
        return checked_samples(
            out,
            f"{self.root}: no leftImg8bit/{{train,val}}/CITY/*_leftImg8bit.png images found",
            missing,
            f"image(s) in {self.root / 'leftImg8bit'} have no gtFine/SPLIT/CITY/"
            "NAME_gtFine_labelIds.png (or _labelTrainIds, _instanceIds)",
            by_name=False,
        )

    def classes(self) -> ClassInfo:
        return ClassInfo(
            tuple(n for _, _, n, _ in TRAIN_LABELS),
            tuple(c for _, _, _, c in TRAIN_LABELS),
            "Cityscapes (built in, 19 train ids)",
        )

    def read_mask(self, sample: LabelledSample) -> np.ndarray:
        path = sample.label
        assert path is not None
        raw = as_index_array(read_mask_file(path), path)
        if path.name.endswith("_instanceIds.png"):
            ids = raw.astype(np.int64)
            raw = np.where(ids >= 1000, ids // 1000, ids)
            if raw.max(initial=0) > 255:
                raise DataError(f"{path}: instance id {int(ids.max())} is no Cityscapes label id (x1000)")
            raw = raw.astype(np.uint8)
        elif raw.dtype != np.uint8:
            raise DataError(f"{path}: Cityscapes label ids are 8-bit, got {raw.dtype}")
        if path.name.endswith("_labelTrainIds.png"):
            bad = (raw > 19) & (raw != 255)
            if bad.any():
                y, x = (int(v[0]) for v in np.nonzero(bad))
                raise DataError(
                    f"{path}: value {int(raw[y, x])} at pixel (x={x}, y={y}) is not a Cityscapes train id "
                    "(0..18; 19 and 255 ignored)"
                )
            out = raw.astype(np.uint16 if self.ignore_index > 255 else np.uint8)
            out[(raw == 255) | (raw == 19)] = self.ignore_index
            return out
        labels = label_id_lut(self.ignore_index)[raw]
        return labels.astype(np.uint8) if self.ignore_index <= 255 else labels
