"""CVAT "Segmentation mask 1.1" exports: colour masks decoded through the export's labelmap.txt.

Layout (https://docs.cvat.ai/docs/dataset_management/formats/format-smask/)::

    DATA_ROOT/labelmap.txt                       # label:color_rgb:parts:actions
                                                 background:0,0,0::
                                                 car:250,50,83::
    DATA_ROOT/ImageSets/Segmentation/default.txt image names without suffix (or train.txt, val.txt)
    DATA_ROOT/SegmentationClass/NAME.png         RGB colour masks (one colour per label)
    DATA_ROOT/SegmentationObject/NAME.png        instance masks (not read)
    DATA_ROOT/JPEGImages/NAME.jpg                the images ("Save images" when exporting)

Conventions:

* Classes are the labelmap lines in order (id 0, 1, ...), with their names and colours; the
  colours decode the masks. A pixel whose colour is not in labelmap.txt is refused in one line
  naming the file, the pixel, the colour and the known colours. Two labels with one colour are
  refused. A single-channel mask is read as class indices.
* Splits: ``ImageSets/Segmentation/{train,val,test}.txt`` give them; CVAT's ``default`` subset
  (and any other subset name) has none. Without ImageSets every mask is a sample.
* An image listed without a mask has no annotation: all background when labelmap.txt has a label
  coloured 0,0,0 (CVAT's default background), refused otherwise.

No torch here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from segpipe.data.formats._annotations import (
    checked_samples,
    find_image,
    image_size,
    opened_label_image,
    read_text,
)
from segpipe.data.formats.base import SPLITS, ClassInfo, FormatReader, LabelledSample
from segpipe.errors import DataError, some

MAX_LABELS = 65535


def read_labelmap(path: Path) -> tuple[list[str], list[tuple[int, int, int]]]:
    """(names, RGB colours) from a CVAT/Datumaro ``labelmap.txt``; one line per problem."""
    names: list[str] = []
    colors: list[tuple[int, int, int]] = []
    seen: set[str] = set()  # names and colours looked up, not searched: 65,535 labels in under a second
    owner: dict[tuple[int, int, int], str] = {}  # colour -> the label that has it
    for lineno, raw in enumerate(read_text(path).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        where = f"{path} line {lineno}"
        if len(fields) < 2:
            raise DataError(f"{where}: expected 'name:r,g,b:parts:actions', got {line!r}")
        name, color = fields[0].strip(), fields[1].strip()
        if not name:
            raise DataError(f"{where}: empty label name in {line!r}")
        try:
            rgb = tuple(int(v) for v in color.split(","))
        except ValueError:
            rgb = ()
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise DataError(f"{where}: colour {color!r} of {name!r} is not r,g,b with values 0..255")
        if name in seen:
            raise DataError(f"{where}: label {name!r} is listed twice")
        other = owner.get(rgb)  # type: ignore[call-overload]
        if other is not None:
            raise DataError(
                f"{where}: {name!r} has the colour {color} of {other!r}; masks could not tell them apart"
            )
        names.append(name)
        seen.add(name)
        colors.append(rgb)  # type: ignore[arg-type]
        owner[rgb] = name  # type: ignore[index]
        if len(names) > MAX_LABELS:
            raise DataError(f"{path}: more than {MAX_LABELS} labels")
    if not names:
        raise DataError(f"{path}: lists no labels (lines 'name:r,g,b::')")
    return names, colors


def decode_colors(
    rgb: np.ndarray,
    colors: list[tuple[int, int, int]],
    names: list[str],
    path: Path,
    source: str = "labelmap.txt",
) -> np.ndarray:
    """H×W×3 RGB -> class ids through ``colors``; one line for the first unknown colour (``source``:
    the file that lists the colours, named in it)."""
    keys = np.array([(r << 16) | (g << 8) | b for r, g, b in colors], dtype=np.int64)
    px = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    order = np.argsort(keys)
    pos = np.clip(np.searchsorted(keys[order], px), 0, len(keys) - 1)
    found = keys[order][pos] == px
    if not found.all():
        y, x = (int(v[0]) for v in np.nonzero(~found))
        known = some([f"{n} {','.join(map(str, c))}" for n, c in zip(names, colors, strict=True)], 6)
        raise DataError(
            f"{path}: colour {','.join(str(int(c)) for c in rgb[y, x])} at pixel (x={x}, y={y}) is not in "
            f"{source} (known: {known})"
        )
    ids = order[pos]
    return ids.astype(np.uint8 if len(colors) <= 255 else np.uint16)


def read_color_mask(path: Path) -> tuple[np.ndarray, bool]:
    """(array, is_rgb): an RGB mask as H×W×3 (palette PNGs through their palette), a greyscale
    one as H×W indices."""
    with opened_label_image(path) as im:
        if im.mode in ("L", "I;16", "I"):
            return np.asarray(im).astype(np.uint16 if im.mode != "L" else np.uint8), False
        return np.asarray(im.convert("RGB")), True


class CvatReader(FormatReader):
    """CVAT Segmentation mask 1.1: labelmap.txt names and colours decode SegmentationClass/ PNGs."""

    name = "cvat"
    description = "CVAT Segmentation mask 1.1: labelmap.txt + SegmentationClass/ colour PNGs + JPEGImages/"
    layout = "labelmap.txt, SegmentationClass/*.png, JPEGImages/, ImageSets/Segmentation/*.txt"
    refines = ("voc",)

    def __init__(self, root: str | Path, **kw: Any) -> None:
        super().__init__(root, **kw)
        self._labelmap: tuple[list[str], list[tuple[int, int, int]]] | None = None

    @classmethod
    def detect(cls, root: Path) -> str | None:
        if (root / "labelmap.txt").is_file() and (root / "SegmentationClass").is_dir():
            return "labelmap.txt and SegmentationClass/ (CVAT Segmentation mask 1.1)"
        return None

    def labelmap(self) -> tuple[list[str], list[tuple[int, int, int]]]:
        if self._labelmap is None:
            path = self.root / "labelmap.txt"
            if not path.is_file():
                raise DataError(f"{path} is missing: a CVAT Segmentation mask export holds labelmap.txt")
            self._labelmap = read_labelmap(path)
        return self._labelmap

    def samples(self) -> list[LabelledSample]:
        masks = self.root / "SegmentationClass"
        images = self.root / "JPEGImages"
        if not images.is_dir():
            if (self.root / "annotations.xml").is_file():
                raise DataError(
                    f"{self.root} holds annotations.xml, a 'CVAT for images 1.1' export: read it with "
                    "--format cvat_images"
                )
            raise DataError(f"{images} is missing: export from CVAT with 'Save images' on")
        sets = self.root / "ImageSets" / "Segmentation"
        lists = sorted(sets.glob("*.txt")) if sets.is_dir() else []
        wanted: list[tuple[str, str | None]] = []
        for lst in lists:
            split = lst.stem if lst.stem in SPLITS else None
            wanted += [(ln.strip(), split) for ln in read_text(lst).splitlines() if ln.strip()]
        if not lists:
            wanted = [(p.stem, None) for p in sorted(masks.glob("*.png"))]
        names, colors = self.labelmap()
        background = (0, 0, 0) in colors  # looked up once, not per listed name
        out, missing = [], []
        for name, split in dict(wanted).items():
            image = find_image(images, name)
            mask = masks / f"{name}.png"
            if image is None:
                missing.append(f"{name} (image)")
                continue
            if not mask.is_file():
                if not background:
                    missing.append(f"{name} (mask)")
                    continue
                mask = None
            out.append(LabelledSample(name, image, mask, split))
        return checked_samples(
            out,
            f"{masks} holds no masks (NAME.png)",
            missing,
            "listed name(s) lack JPEGImages/NAME.jpg or SegmentationClass/NAME.png",
        )

    def classes(self) -> ClassInfo:
        names, colors = self.labelmap()
        return ClassInfo(tuple(names), tuple(colors), "labelmap.txt")

    def read_mask(self, sample: LabelledSample) -> np.ndarray:
        names, colors = self.labelmap()
        if sample.label is None:  # listed without a mask: all background (the 0,0,0 label)
            width, height = image_size(sample.image)
            # the dtype decode_colors gives: above 255 labels the background id may not fit a byte
            dtype = np.uint8 if len(colors) <= 255 else np.uint16
            return np.full((height, width), colors.index((0, 0, 0)), dtype=dtype)
        arr, is_rgb = read_color_mask(sample.label)
        if not is_rgb:
            return arr
        return decode_colors(arr, colors, names, sample.label)
