"""CVAT for images 1.1 (XML): ``annotations.xml`` + ``images/``, shapes drawn into class maps.

Layout (https://docs.cvat.ai/docs/dataset_management/formats/format-cvat/)::

    DATA_ROOT/annotations.xml        <annotations><version>1.1</version><meta><task|project|job>...
                                       <labels><label><name>car</name><color>#fa3253</color>...
                                     <image id="0" name="a.jpg" [subset="Train" task_id="3"]
                                            width="640" height="480">
                                       <polygon label="car" points="x,y;x,y;..." z_order="0"/>
                                       <box label="car" xtl= ytl= xbr= ybr= [rotation=] z_order=/>
                                       <ellipse label= cx= cy= rx= ry= [rotation=] z_order=/>
                                       <mask label= rle="0, 5, 3, ..." left= top= width= height=/>
                                       <polyline .../> <points .../> <skeleton>...</skeleton> <tag/>
    DATA_ROOT/images/NAME            task export with "Save images" (project: images/SUBSET/NAME)

(another ``*.xml`` with an ``<annotations>`` root is read too, as datumaro does.)

The class maps are the ones CVAT's own "Segmentation mask 1.1" export draws from the same shapes:

* classes: ``background`` (0, colour 0,0,0) then the labels of ``<meta>`` in order with their
  ``<color>`` (CVAT's ``make_colormap``; a label named ``background`` is moved to 0); skeleton
  sub-labels (with ``<parent>``) are not classes;
* polygons, boxes (rotated about their centre by ``rotation`` degrees) through pycocotools'
  ``frPyObjects`` (datumaro's ``polygons_to_masks`` / ``boxes_to_masks``), ellipses with OpenCV's
  ``cv2.ellipse`` on the rounded centre and axes (CVAT's ``EllipsesToMasks``), masks from their RLE
  (run lengths over the ``width`` x ``height`` box at ``left``, ``top``, row by row, starting with a
  run of 0s);
* drawn in ascending ``z_order``, later shapes on top at equal ``z_order`` (rotated boxes after the
  others, as CVAT's ``RotatedBoxesToPolygons`` appends them); undrawn pixels are background;
* polylines, points, skeletons, cuboids and tags have no area and are left out (one warning
  counts them), as in CVAT's Segmentation mask export; so are shapes without a ``label``; an
  export with no shape that has an area is refused in one line;
* ``subset`` Train/Validation/Test (project exports) give the splits; an image without shapes is
  all background. "CVAT for video 1.1" (``<track>`` elements) is refused in one line.

The XML is parsed once with expat, streaming; a DOCTYPE or entity declaration is refused (CVAT
writes none), and the file size is bounded (``SEGPIPE_MAX_LABEL_MB``). No torch here.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.parsers import expat

import numpy as np

from segpipe.data.formats._annotations import check_image_size, check_label_file_size, checked_samples
from segpipe.data.formats._cvat_shapes import shape_mask
from segpipe.data.formats._labelmaps import filled_colors
from segpipe.data.formats.base import ClassInfo, FormatReader, LabelledSample
from segpipe.data.safepaths import check_regular, inside, is_regular, open_regular
from segpipe.errors import DataError, some

AREA_SHAPES = ("polygon", "box", "ellipse", "mask")
#: The attributes kept of each shape that has an area (what drawing it needs).
KEEP = {
    "polygon": ("points",),
    "box": ("xtl", "ytl", "xbr", "ybr", "rotation"),
    "ellipse": ("cx", "cy", "rx", "ry", "rotation"),
    "mask": ("rle", "left", "top", "width", "height"),
}
NO_AREA = ("polyline", "points", "skeleton", "cuboid", "tag")
SPLIT_OF = {
    "train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
    "test": "test", "testing": "test",
}  # fmt: skip


@dataclass
class CvatImage:
    name: str
    width: int
    height: int
    subset: str | None
    #: (kind, label name, z_order, late, attributes): ``late`` orders rotated boxes last.
    shapes: list[tuple[str, str, int, int, dict[str, str]]] = field(default_factory=list)


@dataclass
class CvatXml:
    path: Path
    labels: list[tuple[str, str | None]]  # (name, colour "#rrggbb")
    images: list[CvatImage]
    tracks: int
    skipped: dict[str, int]


class _Stop(Exception):
    pass


def looks_like_cvat(path: Path) -> bool:
    """The file starts (after the XML declaration and comments) with an ``<annotations>`` element."""
    if not is_regular(path):
        return False
    try:
        with open_regular(path, "label file") as f:  # O_NONBLOCK: a FIFO swapped in never blocks
            head = f.read(512)
    except (OSError, DataError):
        return False
    return b"<annotations>" in head or b"<annotations " in head


def parse_xml(path: Path) -> CvatXml:
    """The labels, images and shapes of a CVAT XML file; one line per problem."""
    check_label_file_size(path)
    labels: dict[str, str | None] = {}
    images: list[CvatImage] = []
    stack: list[str] = []
    text: list[str] = []
    label: dict[str, str] = {}
    state: dict[str, Any] = {"image": None, "tracks": 0}
    skipped: dict[str, int] = {}

    def refuse(*_: Any) -> None:
        raise DataError(f"{path}: holds a DOCTYPE or entity declaration, which CVAT never writes (refused)")

    def start(tag: str, attrs: dict[str, str]) -> None:
        parent = stack[-1] if stack else None
        stack.append(tag)
        if parent == "image":  # a shape: the hot path
            img: CvatImage | None = state["image"]
            keep = KEEP.get(tag)
            if img is None:
                return
            if keep is None or not attrs.get("label"):
                what = tag if keep is None else "unlabelled shape"
                skipped[what] = skipped.get(what, 0) + 1
                return
            rotation = attrs.get("rotation")
            try:
                z = int(attrs.get("z_order", "0"))
                late = int(tag == "box" and rotation is not None and float(rotation) != 0)
            except ValueError:
                raise DataError(
                    f"{path} <image name={img.name!r}> <{tag}>: z_order {attrs.get('z_order')!r} or "
                    f"rotation {rotation!r} is not a number"
                ) from None
            img.shapes.append((tag, attrs["label"], z, late, {k: attrs[k] for k in keep if k in attrs}))
            return
        text.clear()
        if parent is None and tag != "annotations":
            raise DataError(f"{path}: root element is <{tag}>, not CVAT's <annotations>")
        if tag == "label" and parent == "labels":
            label.clear()
            label["_open"] = "1"
        elif tag == "track":
            state["tracks"] += 1
        elif tag == "image" and parent == "annotations":
            where = f"{path} <image name={attrs.get('name')!r}>"
            name = attrs.get("name")
            if not name:
                raise DataError(f"{where}: no name attribute")
            try:
                w, h = int(attrs.get("width", "")), int(attrs.get("height", ""))
            except ValueError:
                raise DataError(
                    f"{where}: width/height {attrs.get('width')!r}x{attrs.get('height')!r} are not integers"
                ) from None
            check_image_size(w, h, where)
            state["image"] = CvatImage(name, w, h, attrs.get("subset"))

    def end(tag: str) -> None:
        stack.pop()
        parent = stack[-1] if stack else ""
        if parent == "image":
            return
        if parent == "label" and label.get("_open") and tag in ("name", "color", "parent"):
            label[tag] = "".join(text).strip()
        elif tag == "label" and label.get("_open"):
            name = label.get("name", "")
            if name and not label.get("parent") and name not in labels:
                labels[name] = label.get("color") or None
            label.clear()
        elif tag == "image" and state["image"] is not None:
            images.append(state["image"])
            state["image"] = None
        text.clear()

    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text.append
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        with open_regular(path, "label file") as f:
            parser.ParseFile(f)
    except expat.ExpatError as e:
        raise DataError(
            f"{path}: not valid XML: {expat.errors.messages[e.code]} at line {e.lineno}"
        ) from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    if state["tracks"] and not images:
        raise DataError(
            f"{path}: CVAT for video 1.1 ({state['tracks']} <track> elements, no <image>); export the "
            "task as 'CVAT for images 1.1' instead"
        )
    if not labels:
        raise DataError(f"{path}: <meta> lists no labels (<labels><label><name>)")
    return CvatXml(path, list(labels.items()), images, state["tracks"], skipped)


def hex_color(value: str | None) -> tuple[int, int, int] | None:
    """``#rrggbb`` as (r, g, b); None for anything else."""
    if value and len(value) == 7 and value.startswith("#"):
        try:
            return (int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16))
        except ValueError:
            return None
    return None


def xml_files(root: Path) -> list[Path]:
    """``annotations.xml``, else the ``*.xml`` files of the root with an ``<annotations>`` root."""
    main = root / "annotations.xml"
    if looks_like_cvat(main) or (os.path.lexists(main) and not is_regular(main)):
        return [main]  # (a FIFO or device there is said as such when read)
    return [p for p in sorted(root.glob("*.xml"))[:50] if looks_like_cvat(p)]


class CvatXmlReader(FormatReader):
    """CVAT for images 1.1: shapes of annotations.xml drawn as CVAT's Segmentation mask export does."""

    name = "cvat_images"
    description = "CVAT for images 1.1 XML: polygons, boxes, ellipses and masks drawn by z_order"
    layout = "annotations.xml (<annotations> with <meta> labels and <image> shapes) + images/"

    def __init__(self, root: str | Path, **kw: Any) -> None:
        super().__init__(root, **kw)
        self._index: dict[str, tuple[CvatImage, Path]] = {}

    @classmethod
    def detect(cls, root: Path) -> str | None:
        found = xml_files(root)
        return f"{found[0].name} with an <annotations> root (CVAT for images 1.1)" if found else None

    def parsed(self) -> list[CvatXml]:
        """The CVAT XML files of the data root, parsed once (what has no area is said once)."""
        return self._parsed

    @functools.cached_property
    def _parsed(self) -> list[CvatXml]:
        files = xml_files(self.root)
        if not files:
            raise DataError(f"{self.root}: no annotations.xml (CVAT for images 1.1 export)")
        parsed = [parse_xml(p) for p in files]
        skipped: dict[str, int] = {}
        for px in parsed:
            for k, n in px.skipped.items():
                skipped[k] = skipped.get(k, 0) + n
        what = ", ".join(f"{n} {k}" for k, n in sorted(skipped.items()))
        if not any(img.shapes for px in parsed for img in px.images):
            raise DataError(
                f"{files[0]}: no <image> holds a polygon, box, ellipse or mask"
                + (f" ({what} have no area)" if what else "")
                + ": nothing to learn segmentation from; annotate areas in CVAT and export again"
            )
        if skipped:
            self.reporter.warn(
                f"{self.root}: {what} have no area and are left out (as in CVAT's Segmentation mask export)"
            )
        return parsed

    def _labels(self) -> list[tuple[str, tuple[int, int, int] | None]]:
        seen: dict[str, tuple[int, int, int] | None] = {}
        for px in self.parsed():
            for name, color in px.labels:
                seen.setdefault(name, hex_color(color))
        names = [n for n in seen if n != "background"]
        return [("background", seen.get("background") or (0, 0, 0))] + [(n, seen[n]) for n in names]

    def samples(self) -> list[LabelledSample]:
        out: list[LabelledSample] = []
        missing: list[str] = []
        self._index = {}
        for px in self.parsed():
            subset_default = None if px.path.name == "annotations.xml" else px.path.stem
            for img in px.images:
                subset = img.subset or subset_default
                where = f"{px.path} <image name>"
                candidates = ([f"images/{subset}/{img.name}"] if subset else []) + [
                    f"images/{img.name}",
                    img.name,
                ]
                image = next(
                    (
                        p
                        for c in candidates
                        if os.path.lexists(p := inside(self.root, c, where, allow_outside=self.outside_root))
                        and check_regular(p, "image", where)
                    ),
                    None,
                )
                if image is None:
                    missing.append(img.name)
                    continue
                stem = img.name.rsplit(".", 1)[0] if "." in Path(img.name).name else img.name
                name = f"{subset}/{stem}" if img.subset else stem
                split = SPLIT_OF.get((subset or "").lower())
                if (
                    name in self._index
                ):  # the same image twice (two tasks of a project): one item, as datumaro
                    first = self._index[name][0]
                    if first is not img:
                        first.shapes.extend(img.shapes)
                        img.shapes = []
                    continue
                out.append(LabelledSample(name, image, px.path, split, key=name))
                self._index[name] = (img, px.path)
        return checked_samples(
            out,
            f"{self.root}: the CVAT XML lists no <image>",
            missing,
            f"image(s) named in {self.root}'s CVAT XML are not under images/ (export "
            "with 'Save images' on, or put them in images/)",
        )

    def classes(self) -> ClassInfo:
        labels = self._labels()
        return ClassInfo(tuple(n for n, _ in labels), filled_colors(labels), "CVAT XML <meta> labels")

    def read_mask(self, sample: LabelledSample) -> np.ndarray:
        if not self._index:
            self.samples()
        img, path = self._index[sample.key]
        ids = {n: i for i, (n, _) in enumerate(self._labels())}
        out = np.zeros((img.height, img.width), np.uint8 if len(ids) <= 256 else np.uint16)
        order = sorted(range(len(img.shapes)), key=lambda k: (img.shapes[k][2], img.shapes[k][3], k))
        for k in order:
            kind, label, _, _, attrs = img.shapes[k]
            where = f"{path} <image name={img.name!r}> <{kind} label={label!r}>"
            if label not in ids:
                raise DataError(f"{where}: label {label!r} is not in <meta> labels ({some(list(ids), 6)})")
            m = shape_mask(kind, attrs, img.width, img.height, where)
            if m is not None:
                out[m] = ids[label]
        return out
