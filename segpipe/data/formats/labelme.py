"""LabelMe JSON, one file per image, rasterised the way labelme's own tools do it.

Layout::

    DATA_ROOT/NAME.json        {"version", "flags", "shapes": [{label, points, shape_type, ...}],
    DATA_ROOT/NAME.jpg          "imagePath": "NAME.jpg", "imageData": null, "imageHeight", "imageWidth"}
    DATA_ROOT/labels.txt       optional: labelme2voc's --labels file (__ignore__, _background_, ...)
    (or DATA_ROOT/{train,val}/NAME.json for splits)

Conventions (labelme's ``labelme_json_to_dataset`` / ``labelme2voc.py`` and ``utils.shape_to_mask``):

* Classes: with ``labels.txt``, its lines in order: ``__ignore__`` (first line, optional) is the
  ignore value (``ignore_index``, 255), then ``_background_`` = 0 and the others 1, 2, ...; a shape
  label not listed is refused in one line. Without it, ``_background_`` = 0 and the sorted union of
  every file's labels = 1..K (``labelme_json_to_dataset`` assigns values in sorted label order).
  A shape labelled ``__ignore__`` is ignore either way.
* Shapes are drawn in file order, a later shape over an earlier one, with Pillow as labelme does:
  ``polygon`` (>= 3 points; also the type of a shape without ``shape_type``), ``rectangle`` (2
  corners), ``circle`` (centre and a point on the rim), ``line`` (2 points) and ``linestrip``
  (width 10 px), ``point`` (disc of radius 5 px), ``mask`` (a base64 PNG placed at the box of its 2
  points).
* The picture: embedded ``imageData`` (base64) when the file holds it, as labelme's
  ``LabelFile.load`` does (labelme 4.x saved it by default, some versions with an ``imagePath``
  naming the JSON itself); else ``imagePath``, relative to the JSON's folder (backslashes read as
  folder separators), or ``NAME.<image suffix>`` beside the JSON. When both an embedded picture
  and a picture file beside the JSON (same folder) exist they must be the same size (one line
  when not); the sample's image is then the JSON itself.
  ``imageHeight``/``imageWidth`` are bounded before anything is allocated and must match the
  picture's size.

No torch here.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segpipe.data.formats._annotations import (
    MAX_POINTS,
    check_image_size,
    decode_image,
    find_image,
    image_size,
    read_json,
    read_text,
)
from segpipe.data.formats.base import SPLITS, ClassInfo, FormatReader, LabelledSample
from segpipe.data.safepaths import check_polygon, open_regular
from segpipe.errors import DataError, some

IGNORE_LABEL = "__ignore__"
BACKGROUND = "_background_"
LINE_WIDTH = 10
POINT_SIZE = 5
#: Points each shape type needs: exact count, or (minimum, None).
_POINTS = {
    "circle": 2,
    "rectangle": 2,
    "line": 2,
    "point": 1,
    "mask": 2,
    "linestrip": (2, None),
    "polygon": (3, None),
}
#: Most JSON files a data root may hold.
MAX_FILES = 1_000_000


@dataclass(frozen=True)
class LabelmeFile:
    """What the reader keeps of one JSON (not ``imageData``: only the embedded picture's size).

    ``image`` is the picture file (``imagePath`` or ``NAME.<suffix>`` beside the JSON), or the JSON
    itself when ``imageData`` holds the picture; ``embedded``: the (W, H) of ``imageData``, or
    None when the file has none."""

    path: Path
    image: Path
    width: int | None
    height: int | None
    shapes: tuple[dict[str, Any], ...]
    embedded: tuple[int, int] | None = None


def looks_like_labelme(path: Path) -> bool:
    """The head of ``path`` (64 KB) holds ``"shapes"`` and ``"imagePath"`` or ``"version"``."""
    try:
        with open_regular(path, "label file") as f:  # a FIFO named *.json: not LabelMe, never blocks
            head = f.read(65536)
    except (OSError, DataError):
        return False
    # labelme writes version, flags, shapes, imagePath...: long shapes can push imagePath past the head
    return b'"shapes"' in head and (b'"imagePath"' in head or b'"version"' in head)


def json_files(root: Path) -> list[Path]:
    """LabelMe JSONs under ``root`` (recursively), sorted."""
    out = []
    for p in root.rglob("*.json"):
        if p.is_file() and looks_like_labelme(p):
            out.append(p)
            if len(out) > MAX_FILES:
                raise DataError(f"{root}: more than {MAX_FILES} LabelMe JSON files")
    return sorted(out)


def _check_points(points: Any, shape_type: str, where: str) -> list[tuple[float, float]]:
    if not isinstance(points, list) or not all(
        isinstance(p, (list, tuple))
        and len(p) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in p)
        for p in points
    ):
        raise DataError(f"{where}: points must be a list of [x, y] numbers")
    if len(points) > MAX_POINTS:
        raise DataError(f"{where}: {len(points)} points, over the limit of {MAX_POINTS}")
    need = _POINTS[shape_type]
    if isinstance(need, int) and len(points) != need:
        raise DataError(f"{where}: a {shape_type} needs {need} point(s), got {len(points)}")
    if isinstance(need, tuple) and len(points) < need[0]:
        raise DataError(f"{where}: a {shape_type} needs at least {need[0]} points, got {len(points)}")
    return [(float(x), float(y)) for x, y in points]


def embedded_image(data: dict[str, Any], path: Path) -> bytes | None:
    """The encoded picture of ``imageData`` (None when the file has none); one line when it is not
    base64."""
    raw = data.get("imageData")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise DataError(f"{path}: imageData must be a base64 string or null, got {type(raw).__name__}")
    try:
        return base64.b64decode(raw, validate=False)
    except (binascii.Error, ValueError):
        raise DataError(f"{path}: imageData is not base64") from None


def picture_file(path: Path, raw_path: object) -> Path | None:
    """The picture file of a LabelMe JSON: ``imagePath`` (not the JSON itself), else
    ``NAME.<image suffix>`` beside it."""
    if isinstance(raw_path, str) and raw_path.strip():
        cand = path.parent / raw_path.replace("\\", "/")
        if cand.suffix.lower() != ".json" and cand.is_file():
            return cand
    return find_image(path.parent, path.stem)


def load_file(path: Path) -> LabelmeFile:
    """One LabelMe JSON, checked: fields, shape types, point counts, image size bounds; the
    embedded picture (``imageData``) and the picture file agree in size."""
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise DataError(f"{path}: not a LabelMe file ('shapes' list missing)")
    raw_path = data.get("imagePath")
    blob = embedded_image(data, path)
    embedded = image_size(path, blob, "imageData") if blob is not None else None
    del blob
    image = picture_file(path, raw_path)
    if embedded is not None:
        # the picture is the embedded one (labelme reads it); a file beside the JSON (same folder:
        # never a path outside the data set) must be its size
        if image is not None and os.path.dirname(os.path.realpath(image)) == os.path.realpath(path.parent):
            on_disk = image_size(image)
            if on_disk != embedded:
                raise DataError(
                    f"{path}: imageData is {embedded[0]}x{embedded[1]} but the picture beside it, {image}, "
                    f"is {on_disk[0]}x{on_disk[1]} (W x H); labelme reads imageData: remove {image.name} "
                    "or save the JSON again without imageData"
                )
        image = path
    if image is None:
        raise DataError(
            f"{path}: imagePath {raw_path!r} not found beside the JSON (nor {path.stem}.jpg/.png), "
            "and no imageData"
        )
    w, h = data.get("imageWidth"), data.get("imageHeight")
    if w is not None or h is not None:
        w, h = check_image_size(w, h, f"{path} imageWidth/imageHeight")
    shapes = []
    for i, shape in enumerate(data["shapes"]):
        where = f"{path} shapes[{i}]"
        if not isinstance(shape, dict) or not isinstance(shape.get("label"), str):
            raise DataError(f"{where}: a shape needs a string 'label'")
        kind = shape.get("shape_type") or "polygon"
        if kind not in _POINTS:
            raise DataError(f"{where}: shape_type {kind!r} is not one of {', '.join(_POINTS)}")
        pts = _check_points(shape.get("points"), kind, where)
        kept: dict[str, Any] = {"label": shape["label"], "shape_type": kind, "points": pts}
        if kind == "mask":
            if not isinstance(shape.get("mask"), str):
                raise DataError(f"{where}: a mask shape needs 'mask' (a base64 PNG)")
            kept["mask"] = shape["mask"]
        shapes.append(kept)
    return LabelmeFile(path, image, w, h, tuple(shapes), embedded)


def read_labels_txt(path: Path) -> tuple[list[str], bool]:
    """(class names by id, whether ``__ignore__`` is listed) from labelme2voc's ``--labels`` file."""
    lines = [ln.strip() for ln in read_text(path).splitlines() if ln.strip()]
    has_ignore = bool(lines) and lines[0] == IGNORE_LABEL
    names = lines[1:] if has_ignore else lines
    if IGNORE_LABEL in names:
        raise DataError(f"{path}: {IGNORE_LABEL} must be the first line (it is the ignore value)")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(f"{path}: label(s) listed twice: {some(dup)}")
    if not names:
        raise DataError(f"{path}: lists no labels")
    return names, has_ignore


def _decode_mask(b64: str, where: str, box: tuple[int, int]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        raw = base64.b64decode(b64, validate=False)
        with Image.open(io.BytesIO(raw)) as im:
            if im.size != box:
                raise DataError(
                    f"{where}: mask is {im.size[0]}x{im.size[1]} but its box is {box[0]}x{box[1]} (W x H)"
                )
            arr = np.asarray(im.convert("L")) > 0
    except (binascii.Error, UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
        raise DataError(f"{where}: 'mask' is not a base64 PNG") from None
    return arr


def shape_to_mask(height: int, width: int, shape: dict[str, Any], where: str) -> np.ndarray:
    """labelme's ``shape_to_mask`` for one shape: a bool H×W mask."""
    from PIL import Image, ImageDraw

    kind, xy = shape["shape_type"], shape["points"]
    check_polygon(np.ravel(xy), width, height, where)  # before Pillow draws (a far point: a long loop)
    if kind == "mask":
        (x1, y1), (x2, y2) = np.asarray(xy).astype(int)
        mask = np.zeros((height, width), dtype=bool)
        patch = _decode_mask(shape["mask"], where, (x2 - x1 + 1, y2 - y1 + 1))
        region = mask[max(y1, 0) : y2 + 1, max(x1, 0) : x2 + 1]
        region[...] = patch[max(-y1, 0) :, max(-x1, 0) :][: region.shape[0], : region.shape[1]]
        return mask
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    if kind == "circle":
        (cx, cy), (px, py) = xy
        d = float(np.hypot(cx - px, cy - py))
        draw.ellipse([cx - d, cy - d, cx + d, cy + d], outline=1, fill=1)
    elif kind == "rectangle":
        (x1, y1), (x2, y2) = xy
        draw.rectangle([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)], outline=1, fill=1)
    elif kind in ("line", "linestrip"):
        draw.line(xy=xy, fill=1, width=LINE_WIDTH)
    elif kind == "point":
        cx, cy = xy[0]
        draw.ellipse([cx - POINT_SIZE, cy - POINT_SIZE, cx + POINT_SIZE, cy + POINT_SIZE], outline=1, fill=1)
    else:
        draw.polygon(xy=xy, outline=1, fill=1)
    return np.asarray(canvas, dtype=bool)


def rasterize(lf: LabelmeFile, height: int, width: int, value_of: dict[str, int], known: str) -> np.ndarray:
    """The class map of one file: shapes in file order, each over the earlier ones."""
    top = max(value_of.values(), default=0)
    out = np.zeros((height, width), dtype=np.uint8 if top <= 255 else np.uint16)
    for i, shape in enumerate(lf.shapes):
        where = f"{lf.path} shapes[{i}]"
        value = value_of.get(shape["label"])
        if value is None:
            raise DataError(f"{where}: label {shape['label']!r} is not a known label ({known})")
        out[shape_to_mask(height, width, shape, where)] = value
    return out


class LabelmeReader(FormatReader):
    """LabelMe JSON polygons/rectangles/circles/lines/points/masks, background 0."""

    name = "labelme"
    description = "LabelMe JSON per image (shapes rasterised as labelme does), labels.txt names, background 0"
    layout = "NAME.json (LabelMe: shapes, imagePath) beside NAME.jpg, optional labels.txt"

    def __init__(self, root: str | Path, **kw: Any) -> None:
        super().__init__(root, **kw)
        self._files: dict[Path, LabelmeFile] | None = None
        self._values: dict[str, int] | None = None
        self._names: list[str] | None = None

    @classmethod
    def detect(cls, root: Path) -> str | None:
        for n, p in enumerate(sorted(root.glob("*.json")) + sorted(root.glob("*/*.json"))):
            if n >= 20:
                break
            if looks_like_labelme(p):
                return f"LabelMe JSON ({p.relative_to(root)}: shapes, imagePath)"
        return None

    def files(self) -> dict[Path, LabelmeFile]:
        if self._files is None:
            paths = json_files(self.root)
            if not paths:
                raise DataError(f"{self.root}: no LabelMe JSON (with 'shapes' and 'imagePath')")
            self._files = {p: load_file(p) for p in paths}
        return self._files

    def samples(self) -> list[LabelledSample]:
        out = []
        for p, lf in self.files().items():
            rel = p.relative_to(self.root)
            split = rel.parts[0] if len(rel.parts) > 1 and rel.parts[0] in SPLITS else None
            out.append(LabelledSample(str(rel.with_suffix("")), lf.image, p, split))
        return sorted(out, key=lambda s: s.name)

    def _mapping(self) -> tuple[list[str], dict[str, int]]:
        if self._values is None or self._names is None:
            txt = self.root / "labels.txt"
            if txt.is_file():
                names, _ = read_labels_txt(txt)
                values = {n: i for i, n in enumerate(names)}
            else:
                found = {s["label"] for lf in self.files().values() for s in lf.shapes}
                names = [BACKGROUND, *sorted(found - {IGNORE_LABEL, BACKGROUND})]
                values = {n: i for i, n in enumerate(names)}
            values[IGNORE_LABEL] = self.ignore_index
            self._names, self._values = names, values
        return self._names, self._values

    def classes(self) -> ClassInfo:
        names, _ = self._mapping()
        txt = self.root / "labels.txt"
        source = "labels.txt" if txt.is_file() else "LabelMe shape labels (sorted), _background_ added as 0"
        return ClassInfo(tuple(names), None, source)

    def _file(self, sample: LabelledSample) -> LabelmeFile:
        assert sample.label is not None
        return self.files().get(sample.label) or load_file(sample.label)

    def image_size(self, sample: LabelledSample) -> tuple[int, int]:
        lf = self._file(sample)
        return lf.embedded or image_size(lf.image)

    def read_image(self, sample: LabelledSample) -> np.ndarray:
        """The embedded picture (``imageData``) when the JSON holds one, as labelme reads it; else the
        picture file."""
        blob = self.embedded_image(sample)
        return super().read_image(sample) if blob is None else decode_image(blob, self._file(sample).path)

    def _blob(self, lf: LabelmeFile) -> bytes:
        blob = embedded_image(read_json(lf.path), lf.path)
        if blob is None:
            raise DataError(f"{lf.path}: imageData is gone (the file changed while reading)")
        return blob

    def embedded_image(self, sample: LabelledSample) -> bytes | None:
        lf = self._file(sample)
        return None if lf.embedded is None else self._blob(lf)

    def read_mask(self, sample: LabelledSample) -> np.ndarray:
        lf = self._file(sample)
        width, height = lf.embedded or image_size(lf.image)
        if lf.width is not None and (lf.width, lf.height) != (width, height):
            raise DataError(
                f"{lf.path}: imageWidth/imageHeight {lf.width}x{lf.height} but "
                f"{'imageData' if lf.embedded else 'image ' + str(lf.image)} is "
                f"{width}x{height} (W x H)"
            )
        names, values = self._mapping()
        return rasterize(lf, height, width, values, some(names, 8))
