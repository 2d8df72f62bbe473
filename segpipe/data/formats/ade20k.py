"""ADE20K (SceneParsing, ``ADEChallengeData2016``): ``images/{training,validation}/*.jpg`` +
``annotations/{training,validation}/*.png``.

Annotation value 0 is "other objects" and 1..150 the classes: like MMSegmentation, the reader
reduces the zero label by default (0 -> ignore, 1..150 -> 0..149); ``reduce_zero_label=False``
keeps the values as stored (151 classes).

Names come from the devkit's ``objectInfo150.txt`` (tab-separated, ``Name`` column
``building, edifice``) or the ``objectInfo150.csv`` of CSAIL's semantic-segmentation-pytorch
(``building;edifice``: its ``;`` also replaced the spaces inside a name, ``chest;of;drawers;...``)
when the folder (or its parent) holds one. Both give MMSegmentation's names: the first synonym
(``building``, ``chest of drawers``); the ``.csv``'s split multi-word names are rejoined through
:data:`ADE20K_150` when its words start the row.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from segpipe.data.formats._annotations import checked_samples, read_text
from segpipe.data.formats.base import ClassInfo, FormatReader, LabelledSample, as_index_array
from segpipe.data.maskio import read_mask_file
from segpipe.data.safepaths import is_regular, shown
from segpipe.errors import DataError

_SPLITS = {"training": "train", "validation": "val"}
#: Files that name the classes, looked for in the data set folder, then its parent.
NAME_FILES = ("objectInfo150.txt", "objectInfo150.csv")

#: The 150 classes as MMSegmentation names them (first synonym of the devkit's objectInfo150.txt).
ADE20K_150: tuple[str, ...] = tuple(
    n.replace("_", " ")
    for n in """
wall building sky floor tree ceiling road bed windowpane grass cabinet sidewalk person earth door
table mountain plant curtain chair car water painting sofa shelf house sea mirror rug field armchair seat
fence desk rock wardrobe lamp bathtub railing cushion base box column signboard chest_of_drawers counter
sand sink skyscraper fireplace refrigerator grandstand path stairs runway case pool_table pillow
screen_door stairway river bridge bookcase blind coffee_table toilet flower book hill bench countertop
stove palm kitchen_island computer swivel_chair boat bar arcade_machine hovel bus towel light truck tower
chandelier awning streetlight booth television airplane dirt_track apparel pole land bannister escalator
ottoman bottle buffet poster stage van ship fountain conveyer_belt canopy washer plaything swimming_pool
stool barrel basket waterfall tent bag minibike cradle oven ball food step tank trade_name microwave pot
animal bicycle lake dishwasher screen blanket sculpture hood sconce vase traffic_light tray ashcan fan
pier crt_screen plate monitor bulletin_board shower radiator glass clock flag
""".split()
)


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
        return checked_samples(
            out,
            f"{base}: no images in images/training or images/validation",
            missing,
            f"image(s) under {base / 'images'} have no annotations/SPLIT/NAME.png",
            by_name=False,
        )

    def classes(self) -> ClassInfo:
        base = _base(self.root)
        # the parent only when it is inside the data root (beside ADEChallengeData2016/)
        folders = (base, base.parent) if base != self.root else (base,)
        for p in [folder / n for folder in folders for n in NAME_FILES]:
            if is_regular(p):
                names = read_names(p)
                empty = [i for i, n in enumerate(names) if not n.strip()]
                if empty:
                    raise DataError(f"{shown(p)}: class {empty[0]} has an empty name (no 'Name' column?)")
                if names:
                    if not self.reduce_zero_label:
                        names = ("other", *names)
                    return ClassInfo(names, None, str(p))
        return ClassInfo()

    def read_mask(self, sample: LabelledSample) -> np.ndarray:
        raw = read_mask_file(sample.label)
        if raw.ndim == 3:
            raise DataError(f"{sample.label}: ADE20K annotations are single-channel class ids, got colours")
        return as_index_array(raw, sample.label)


def _first_synonym(field: str, index: int, csv_words: bool) -> str:
    """The first synonym of one ``Name`` field. ``.txt``: synonyms are comma-separated. ``.csv``:
    every word is ``;``-separated, so a known multi-word name (``chest of drawers``) is rejoined when
    the row's words start with it."""
    if not csv_words:
        return field.split(",")[0].strip()
    words = [w.strip() for w in field.split(";")]
    if 1 <= index <= len(ADE20K_150):
        known = ADE20K_150[index - 1]
        if words[: len(known.split())] == known.split():
            return known
    return words[0]


def read_names(path: Path) -> tuple[str, ...]:
    """Class names by index from ``objectInfo150.txt`` (tabs) or ``.csv`` (commas), first synonym
    of the ``Name`` column (the last column when there is no header naming it)."""

    csv_words = path.suffix.lower() == ".csv"
    text = read_text(path)
    lines = text.splitlines()
    delim = "," if csv_words else "\t"
    rows = [r for r in csv.reader(lines, delimiter=delim) if any(c.strip() for c in r)]
    if not rows:
        return ()
    header = [h.strip().lower() for h in rows[0]]
    col = header.index("name") if "name" in header else len(header) - 1
    idx = header.index("idx") if "idx" in header else None
    names = []
    for n, r in enumerate(rows[1:], start=1):
        if len(r) <= col:
            continue
        try:
            index = int(r[idx].strip()) if idx is not None else n
        except ValueError:
            index = n
        names.append(_first_synonym(r[col], index, csv_words))
    return tuple(names)
