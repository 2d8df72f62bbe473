"""ADE20K (SceneParsing, ``ADEChallengeData2016``): ``images/{training,validation}/*.jpg`` +
``annotations/{training,validation}/*.png``.

Annotation value 0 is "other objects" and 1..150 the classes: like MMSegmentation, the reader
reduces the zero label by default (0 -> ignore, 1..150 -> 0..149); ``reduce_zero_label=False``
keeps the values as stored (151 classes). Names come from ``objectInfo150.csv`` / ``.txt`` when the
folder (or its parent) holds it.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from segpipe.data.formats.base import ClassInfo, FormatReader, LabelledSample, as_index_array
from segpipe.data.maskio import read_mask_file
from segpipe.errors import DataError, some

_SPLITS = {"training": "train", "validation": "val"}


def _base(root: Path) -> Path:
    """The folder holding images/ and annotations/ (the root, or its ADEChallengeData2016/)."""
    inner = root / "ADEChallengeData2016"
    return inner if inner.is_dir() else root


class Ade20kReader(FormatReader):
    name = "ade20k"
    description = "ADE20K: images/{training,validation} + annotations/ (0 = other: reduce-zero-label)"
    layout = "[ADEChallengeData2016/]images/{training,validation}/*.jpg and annotations/{training,validation}/*.png"
    index_masks = True
    reduce_zero_default = True

    @classmethod
    def detect(cls, root: Path) -> str | None:
        base = _base(root)
        if all(
            (base / d / "training").is_dir() or (base / d / "validation").is_dir()
            for d in ("images", "annotations")
        ):
            return "images/ and annotations/ with training/validation splits (ADE20K)"
        return None

    def samples(self) -> list[LabelledSample]:
        base = _base(self.root)
        out, missing = [], []
        for folder, split in _SPLITS.items():
            for image in sorted((base / "images" / folder).glob("*")):
                if image.suffix.lower() not in (".jpg", ".jpeg", ".png"):
                    continue
                label = base / "annotations" / folder / f"{image.stem}.png"
                if not label.is_file():
                    missing.append(str(image.relative_to(base)))
                    continue
                out.append(LabelledSample(f"{folder}/{image.stem}", image, label, split))
        if missing:
            raise DataError(
                f"{len(missing)} image(s) under {base / 'images'} have no annotations/SPLIT/NAME.png: {some(missing)}"
            )
        if not out:
            raise DataError(f"{base}: no images in images/training or images/validation")
        return out

    def classes(self) -> ClassInfo:
        base = _base(self.root)
        for p in (base / "objectInfo150.csv", base / "objectInfo150.txt", base.parent / "objectInfo150.csv"):
            if p.is_file():
                names = self._read_names(p)
                if names:
                    if not self.reduce_zero_label:
                        names = ("other", *names)
                    return ClassInfo(names, None, str(p))
        return ClassInfo()

    @staticmethod
    def _read_names(path: Path) -> tuple[str, ...]:
        text = path.read_text(encoding="utf-8", errors="replace")
        delim = "," if path.suffix == ".csv" else "\t"
        rows = [r for r in csv.reader(text.splitlines(), delimiter=delim) if r]
        if not rows:
            return ()
        header = [h.strip().lower() for h in rows[0]]
        col = header.index("name") if "name" in header else len(header) - 1
        return tuple(r[col].split(";")[0].strip() for r in rows[1:] if len(r) > col)

    def read_mask(self, sample: LabelledSample) -> np.ndarray:
        raw = read_mask_file(sample.label)
        if raw.ndim == 3:
            raise DataError(f"{sample.label}: ADE20K annotations are single-channel class ids, got colours")
        return as_index_array(raw, sample.label)
