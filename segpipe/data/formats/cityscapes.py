"""Cityscapes: ``leftImg8bit/{split}/CITY/X_leftImg8bit.png`` + ``gtFine/{split}/CITY/X_gtFine_labelIds.png``.

The label ids (0 unlabeled .. 33 bicycle; the license plate's -1 is stored as 255) become the 19
training ids of the official mapping (cityscapesScripts ``helpers/labels.py``); every other id is
ignored. ``*_gtFine_labelTrainIds.png`` (already mapped by ``createTrainIdLabelImgs``) are read as
they are when no labelIds file is there. The ``test`` split (no public labels) is left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segpipe.data.formats.base import ClassInfo, FormatReader, LabelledSample, as_index_array
from segpipe.data.maskio import read_mask_file
from segpipe.errors import DataError, some

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


def label_id_lut(ignore_index: int = 255) -> np.ndarray:
    """256-entry table label id -> train id (ignore for the 15 ids not evaluated and 255 = -1)."""
    lut = np.full(256, ignore_index, dtype=np.uint16)
    for label_id, train_id, _, _ in TRAIN_LABELS:
        lut[label_id] = train_id
    return lut


class CityscapesReader(FormatReader):
    name = "cityscapes"
    description = "Cityscapes: leftImg8bit/ + gtFine/*_labelIds.png (34 ids -> 19 train ids)"
    layout = (
        "leftImg8bit/{train,val}/CITY/*_leftImg8bit.png and gtFine/{train,val}/CITY/*_gtFine_labelIds.png"
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
                label = gt / f"{stem}_gtFine_labelIds.png"
                if not label.is_file() and (gt / f"{stem}_gtFine_labelTrainIds.png").is_file():
                    label = gt / f"{stem}_gtFine_labelTrainIds.png"
                if not label.is_file():
                    missing.append(str(image.relative_to(self.root)))
                    continue
                out.append(LabelledSample(f"{split}/{image.parent.name}/{stem}", image, label, split))
        if missing:
            raise DataError(
                f"{len(missing)} image(s) in {self.root / 'leftImg8bit'} have no gtFine/SPLIT/CITY/"
                f"NAME_gtFine_labelIds.png: {some(missing)}"
            )
        if not out:
            raise DataError(f"{self.root}: no leftImg8bit/{{train,val}}/CITY/*_leftImg8bit.png images found")
        return out

    def classes(self) -> ClassInfo:
        return ClassInfo(
            tuple(n for _, _, n, _ in TRAIN_LABELS),
            tuple(c for _, _, _, c in TRAIN_LABELS),
            "Cityscapes (built in, 19 train ids)",
        )

    def read_mask(self, sample: LabelledSample) -> np.ndarray:
        raw = as_index_array(read_mask_file(sample.label), sample.label)
        if raw.dtype != np.uint8:
            raise DataError(f"{sample.label}: Cityscapes label ids are 8-bit, got {raw.dtype}")
        if sample.label is not None and sample.label.name.endswith("_labelTrainIds.png"):
            if self.ignore_index == 255:
                return raw
            out = raw.astype(np.uint16)
            out[raw == 255] = self.ignore_index
            return out
        labels = label_id_lut(self.ignore_index)[raw]
        return labels.astype(np.uint8) if self.ignore_index <= 255 else labels
