"""What the COCO readers (instances/stuff :mod:`.coco`, panoptic :mod:`.coco_panoptic`) share:
their base :class:`CocoJsonReader` (the ``crowds`` option, label files parsed once, categories),
the structure check, the background category, and segmentations turned into pycocotools RLEs,
checked before pycocotools sees them. No torch here."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from segpipe.data.formats._annotations import MAX_POINTS, check_image_size, read_json
from segpipe.data.formats.base import FormatReader
from segpipe.data.safepaths import check_polygon
from segpipe.errors import DataError, some

#: ``--crowds`` values: ``ignore`` (crowd regions are the ignore value where no object covers
#: them) or ``class`` (drawn as their category, like any annotation).
CROWDS = ("ignore", "class")


def check_crowds(value: object) -> str:
    """``value`` when it is a ``--crowds`` value, else one line."""
    if value not in CROWDS:
        from segpipe.errors import ConfigError

        raise ConfigError(f"--crowds {value}: use {' or '.join(CROWDS)}")
    return str(value)


def is_crowd(ann: dict[str, Any]) -> bool:
    """COCO's ``iscrowd: 1`` (also ``true``)."""
    return ann.get("iscrowd", 0) in (1, True)


def has_mask(ann: dict[str, Any]) -> bool:
    """The annotation holds a segmentation (a detection export leaves it out, ``null`` or ``[]``)."""
    seg = ann.get("segmentation")
    return seg is not None and seg != [] and seg != {}


#: Category names that mean the background (lower case).
BACKGROUND_NAMES = ("_background_", "background")


def background_category(cats: dict[int, str]) -> int | None:
    """The id of the category that is the background: one named ``_background_``/``background``,
    else id 0; None when there is none."""
    named = [cid for cid, name in cats.items() if name.strip().lower() in BACKGROUND_NAMES]
    if named:
        return min(named)
    return 0 if 0 in cats else None


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_images_and_categories(data: Any, path: Path) -> None:
    """What every COCO file holds (instances, stuff, panoptic): an object with the lists
    ``images``, ``annotations`` and ``categories``, each category an integer ``id`` and a string
    ``name``, each image an integer ``id``, a string ``file_name`` and a bounded size; one line
    naming the file and the entry."""
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object with images, annotations and categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(f"{path}: '{key}' is missing or not a list")
    for i, cat in enumerate(data["categories"]):
        if not (isinstance(cat, dict) and _int(cat.get("id")) and isinstance(cat.get("name"), str)):
            raise DataError(
                f"{path}: categories[{i}] needs an integer 'id' and a string 'name', got {cat!r:.80}"
            )
    for i, im in enumerate(data["images"]):
        if not (isinstance(im, dict) and _int(im.get("id")) and isinstance(im.get("file_name"), str)):
            raise DataError(f"{path}: images[{i}] needs an integer 'id' and a string 'file_name'")
        check_image_size(
            im.get("width"), im.get("height"), f"{path} images[{i}] (id {im['id']}) width/height"
        )


def check_structure(data: Any, path: Path) -> None:
    """The fields the instances/stuff reader uses, with their types; one line naming the file and
    the field."""
    check_images_and_categories(data, path)
    for i, a in enumerate(data["annotations"]):  # (type() is: 860k annotations in COCO train)
        if type(a) is not dict or type(a.get("image_id")) is not int or type(a.get("category_id")) is not int:
            raise DataError(f"{path}: annotations[{i}] needs integer 'image_id' and 'category_id'")


class CocoJsonReader(FormatReader):
    """What both COCO readers (instances/stuff, panoptic) share: the ``crowds`` option, label files
    found by :meth:`find_files` (one line when there is none), each parsed once (cached) and
    checked by :meth:`check_file`, and :meth:`categories` merged over all of them."""

    options = {"crowds": "ignore"}
    #: The label files as they are named (``"annotations/panoptic_*.json"``), said when none is found.
    file_pattern = ""

    def __init__(self, root: str | Path, **kw: Any) -> None:
        super().__init__(root, **kw)
        self.crowds = check_crowds(self.opts["crowds"])

    @staticmethod
    def find_files(root: Path) -> list[Path]:
        """The label files of a data root, sorted."""
        raise NotImplementedError

    @staticmethod
    def check_file(data: Any, path: Path) -> None:
        """The structure check of one parsed file; one line naming the file on a problem."""
        raise NotImplementedError

    def label_files(self) -> list[Path]:
        """:meth:`find_files` of the data root; one line when there is none."""
        files = self.find_files(self.root)
        if not files:
            raise DataError(f"{self.root}: no {self.file_pattern}")
        return files

    @functools.cached_property
    def _parsed(self) -> dict[Path, dict[str, Any]]:
        return {}

    def _load(self, path: Path) -> dict[str, Any]:
        if path not in self._parsed:
            data = read_json(path)
            self.check_file(data, path)
            self._parsed[path] = data
        return self._parsed[path]

    @functools.cached_property
    def _categories(self) -> dict[int, str]:
        cats: dict[int, tuple[str, Path]] = {}
        for f in self.label_files():
            for c in self._load(f)["categories"]:
                seen = cats.get(c["id"])
                if seen is not None and seen[0] != c["name"]:
                    raise DataError(
                        f"{f}: category id {c['id']} is {c['name']!r} but {seen[1]} calls it {seen[0]!r}"
                    )
                cats[c["id"]] = (c["name"], f)
        if not cats:
            raise DataError(f"{some([str(f) for f in self.label_files()])}: no categories")
        return {k: cats[k][0] for k in sorted(cats)}

    def categories(self) -> dict[int, str]:
        """Category id -> name over every label file, sorted by id (one line when two files give
        an id two names)."""
        return self._categories


def rle_string_counts(s: str) -> list[int]:
    """The run lengths of a compressed COCO RLE string (pycocotools' ``rleFrString``, in Python, so
    a damaged string is caught before pycocotools decodes it into a fixed-size buffer)."""
    counts: list[int] = []
    p, n = 0, len(s)
    while p < n:
        x, k, more = 0, 0, True
        while more:
            if p >= n:
                raise ValueError("truncated")
            c = ord(s[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"character {s[p]!r}")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def to_rle(seg: Any, height: int, width: int, where: str) -> Any:
    """One annotation's segmentation as a pycocotools RLE (None when it has no area), checked."""
    from pycocotools import mask as mask_utils

    if isinstance(seg, list):
        polys = []
        for poly in seg:
            if not isinstance(poly, list) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in poly
            ):
                raise DataError(f"{where}: a polygon must be a list of numbers x1 y1 x2 y2 ...")
            if len(poly) % 2:
                raise DataError(f"{where}: polygon with {len(poly)} coordinates, an odd count")
            if len(poly) // 2 > MAX_POINTS:
                raise DataError(
                    f"{where}: polygon with {len(poly) // 2} points, over the limit of {MAX_POINTS}"
                )
            check_polygon(poly, width, height, where)  # a far point crashes pycocotools (SIGSEGV)
            if len(poly) >= 6:  # fewer than 3 points: no area (pycocotools would read 4 values as a box)
                polys.append([float(v) for v in poly])
        if not polys:
            return None
        return mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    if not isinstance(seg, dict) or "counts" not in seg or "size" not in seg:
        raise DataError(f"{where}: segmentation is neither a polygon list nor an RLE {{size, counts}}")
    size = seg["size"]
    if not isinstance(size, list) or size != [height, width]:
        raise DataError(
            f"{where}: RLE size {seg['size']!r} is not the image's [height, width] [{height}, {width}]"
        )
    counts = seg["counts"]
    if isinstance(counts, list):
        if not all(_int(c) and c >= 0 for c in counts):
            raise DataError(f"{where}: RLE counts must be integers >= 0")
        total = sum(counts)
        rle: Any = mask_utils.frPyObjects(seg, height, width)
    elif isinstance(counts, (str, bytes)):
        text = counts.decode("ascii", "replace") if isinstance(counts, bytes) else counts
        try:
            runs = rle_string_counts(text)
        except ValueError as exc:
            raise DataError(f"{where}: compressed RLE counts are damaged ({exc})") from None
        if any(c < 0 for c in runs):
            raise DataError(f"{where}: compressed RLE counts are damaged (negative run)")
        total = sum(runs)
        rle = {"size": [height, width], "counts": text.encode("ascii")}
    else:
        raise DataError(f"{where}: RLE counts must be a list or a string, got {type(counts).__name__}")
    if total != height * width:
        raise DataError(
            f"{where}: RLE counts add up to {total} pixels, not {height}x{width} = {height * width}"
        )
    return rle
