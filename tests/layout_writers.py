"""Writers of the layouts other tools produce, for tests/test_formats_layouts.py and
benchmarks/compare_datumaro.py: each writes the files as its tool does (CVAT's XML writer, datumaro's
painted masks and label files, cityscapesScripts' json2labelImg / json2instanceImg, Mapillary
Vistas' palette PNGs and config) and knows the class maps they mean, decoded independently."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


CS_OBJECTS = [  # drawn in order, as cityscapesScripts draws a polygons JSON
    ("road", [[0, 20], [63, 20], [63, 31], [0, 31]]),
    ("sky", [[0, 0], [63, 0], [63, 9], [0, 9]]),
    ("car", [[5, 14], [20, 14], [20, 25], [5, 25]]),
    ("car", [[30, 15], [44, 15], [44, 24], [30, 24]]),  # a second instance: id 26002
    ("cargroup", [[48, 16], [60, 16], [60, 22], [48, 22]]),  # a group: 26, no instance number
    ("person", [[22, 10], [27, 10], [27, 28], [22, 28]]),
    ("license plate", [[10, 20], [14, 20], [14, 22], [10, 22]]),  # id -1: not drawn
    ("ego vehicle", [[0, 29], [63, 29], [63, 31], [0, 31]]),
]


def make_cityscapes_with_scripts(root: Path, keep: tuple[str, ...]) -> Path:
    """A Cityscapes folder whose gtFine files cityscapesScripts writes from polygon JSONs
    (``json2labelImg`` ids / trainIds, ``json2instanceImg``); ``keep``: which of labelIds,
    labelTrainIds, instanceIds stay."""
    scripts = pytest.importorskip("cityscapesscripts.preparation.json2labelImg")
    inst = pytest.importorskip("cityscapesscripts.preparation.json2instanceImg")
    annotation = pytest.importorskip("cityscapesscripts.helpers.annotation")
    w, h = 64, 32
    for split, city, n in (("train", "aachen", 2), ("val", "lindau", 1)):
        img_dir, gt_dir = root / "leftImg8bit" / split / city, root / "gtFine" / split / city
        img_dir.mkdir(parents=True)
        gt_dir.mkdir(parents=True)
        for i in range(n):
            stem = f"{city}_{i:06d}_000019"
            Image.fromarray(noise(h, w, i)).save(img_dir / f"{stem}_leftImg8bit.png")
            objects = [
                {
                    "label": lab,
                    "polygon": [[x + i, y] for x, y in poly],
                    "deleted": 0,
                    "date": "",
                    "id": k,
                    "user": "x",
                    "verified": 0,
                }
                for k, (lab, poly) in enumerate(CS_OBJECTS)
            ]
            js = gt_dir / f"{stem}_gtFine_polygons.json"
            js.write_text(json.dumps({"imgHeight": h, "imgWidth": w, "objects": objects}))
            if "labelIds" in keep:
                scripts.json2labelImg(str(js), str(gt_dir / f"{stem}_gtFine_labelIds.png"), "ids")
            if "labelTrainIds" in keep:
                scripts.json2labelImg(str(js), str(gt_dir / f"{stem}_gtFine_labelTrainIds.png"), "trainIds")
            if "instanceIds" in keep:  # json2instanceImg's image, saved 16-bit as the release ships it
                # (Pillow >= 11 no longer writes its mode-I image to PNG as 16 bits by itself)
                ann = annotation.Annotation()
                ann.fromJsonFile(str(js))
                ids = np.asarray(inst.createInstanceImage(ann, "ids"), dtype=np.int64)
                Image.fromarray(ids.astype(np.uint16)).save(gt_dir / f"{stem}_gtFine_instanceIds.png")
    return root


def cityscapes_truth(root: Path) -> dict[str, np.ndarray]:
    """Train ids from the labelIds files through cityscapesScripts' own labels table."""
    from cityscapesscripts.helpers.labels import id2label

    out = {}
    for p in sorted((root / "gtFine").glob("*/*/*_gtFine_labelIds.png")):
        ids = np.asarray(Image.open(p))
        lut = np.full(256, 255, np.uint8)
        for i, lab in id2label.items():
            if 0 <= i < 256 and 0 <= lab.trainId < 255:
                lut[i] = lab.trainId
        name = f"{p.parts[-3]}/{p.parts[-2]}/{p.name[: -len('_gtFine_labelIds.png')]}"
        out[name] = lut[ids]
    return out


class CvatXmlWriter:
    """The XML as CVAT's ``XmlAnnotationWriter`` writes it: ``XMLGenerator`` (utf-8), two-space
    indents, attributes in CVAT's order, coordinates as ``{:.2f}``, mask RLE as ``1, 2, 3``."""

    def __init__(self, f) -> None:
        from xml.sax.saxutils import XMLGenerator

        self.gen, self.level = XMLGenerator(f, "utf-8"), 0
        self.gen.startDocument()
        self.gen.startElement("annotations", {})
        self.level = 1
        self.leaf("version", "1.1")

    def indent(self) -> None:
        self.gen.ignorableWhitespace("\n" + "  " * self.level)

    def leaf(self, tag: str, text: str) -> None:
        self.indent()
        self.gen.startElement(tag, {})
        self.gen.characters(text)
        self.gen.endElement(tag)

    def open(self, tag: str, attrs: dict[str, str] | None = None) -> None:
        self.indent()
        self.gen.startElement(tag, attrs or {})
        self.level += 1

    def close(self, tag: str) -> None:
        self.level -= 1
        self.indent()
        self.gen.endElement(tag)

    def meta(self, kind: str, labels: list[tuple[str, str]], subsets: list[str] | None = None) -> None:
        self.open("meta")
        self.open(kind)
        self.leaf("id", "7")
        self.leaf("name", "segpipe test")
        if subsets:  # a project: its tasks, one per subset, then the subset list
            self.open("tasks")
            for k, subset in enumerate(subsets):
                self.open("task")
                for tag, text in (
                    ("id", str(k + 3)),
                    ("name", f"task {k}"),
                    ("mode", "annotation"),
                    ("subset", subset),
                ):
                    self.leaf(tag, text)
                self.close("task")
            self.close("tasks")
            self.leaf("subsets", "\n".join(subsets))
        self.open("labels")
        for name, color in labels:
            self.open("label")
            self.leaf("name", name)
            self.leaf("color", color)
            self.leaf("type", "any")
            self.open("attributes")
            self.open("attribute")
            self.leaf("name", "occluded_by")  # an attribute's <name> is not a label
            self.leaf("input_type", "text")
            self.close("attribute")
            self.close("attributes")
            self.close("label")
        self.close("labels")
        self.close(kind)
        self.leaf("dumped", "2026-01-01 00:00:00.000000+00:00")
        self.close("meta")

    def shape(self, tag: str, label: str, z: int, **geometry: object) -> None:
        attrs = {"label": label, "source": "manual", "occluded": "0"}
        for k, v in geometry.items():
            attrs[k] = f"{v:.2f}" if isinstance(v, float) else str(v)
        attrs["z_order"] = str(z)
        self.open(tag, attrs)
        self.close(tag)

    def end(self) -> None:
        self.level -= 1
        self.indent()
        self.gen.endElement("annotations")
        self.gen.endDocument()


def cvat_points(pts: list[tuple[float, float]]) -> str:
    return ";".join(f"{x:.2f},{y:.2f}" for x, y in pts)


def cvat_rle(mask: np.ndarray) -> str:
    """CVAT's mask RLE: run lengths over the box, row by row, starting with a run of 0s."""
    flat = mask.ravel().astype(int)
    runs, cur, n = [], 0, 0
    for v in flat:
        if v == cur:
            n += 1
        else:
            runs.append(n)
            cur, n = v, 1
    runs.append(n)
    return f"{runs}"[1:-1]


CVAT_LABELS = [("car", "#fa3253"), ("person", "#ff00cc"), ("road", "#7a7a7a")]


def make_cvat_xml(root: Path, project: bool = False) -> dict[str, np.ndarray]:
    """A CVAT for images 1.1 export (task, or project with subsets) and the class maps it means,
    painted independently: rectangles as slices, the RLE decoded pixel by pixel, the ellipse with
    OpenCV as CVAT's EllipsesToMasks does."""
    import cv2

    w, h = 48, 40
    ids = {"background": 0, "car": 1, "person": 2, "road": 3}
    blob = np.zeros((12, 10), bool)
    blob[2:9, 1:8] = True
    blob[5, 3] = False
    images = [("a.jpg", "Train"), ("sub/b.png", "Validation"), ("c.jpg", "Train")]
    root.mkdir(parents=True)
    truth = {}
    with open(root / "annotations.xml", "w", encoding="utf-8") as f:
        xml = CvatXmlWriter(f)
        xml.meta("project" if project else "task", CVAT_LABELS, ["Train", "Validation"] if project else None)
        for k, (name, subset) in enumerate(images):
            attrs = {"id": str(k), "name": name}
            if project:
                attrs.update(subset=subset, task_id="3")
            attrs.update(width=str(w), height=str(h))
            xml.open("image", attrs)
            expect = np.zeros((h, w), np.uint8)
            if name != "c.jpg":  # c.jpg: no shapes, all background
                off = 2 * k
                xml.shape("polygon", "road", 0, points=cvat_points([(0, 30), (48, 30), (48, 40), (0, 40)]))
                expect[30:40, :] = ids["road"]
                xml.shape("mask", "car", 2, rle=cvat_rle(blob), left=20 + off, top=25, width=10, height=12)
                box = np.zeros((h, w), bool)
                box[25:37, 20 + off : 30 + off] = blob
                xml.shape("box", "car", 1, xtl=float(4 + off), ytl=5.0, xbr=20.0, ybr=15.0)
                expect[5:15, 4 + off : 20] = ids["car"]
                xml.shape("polygon", "person", 1, points=cvat_points([(10, 8), (16, 8), (16, 34), (10, 34)]))
                expect[8:34, 10:16] = ids["person"]  # same z as the box, later: on top
                expect[box] = ids["car"]  # z 2: over the road
                # rotated by 90 degrees about its centre (20, 23): x 17..23, y 13..33; z 0 but
                # drawn after the road (CVAT appends rotated boxes), under everything at z >= 1
                xml.shape("box", "road", 0, xtl=10.0, ytl=20.0, xbr=30.0, ybr=26.0, rotation=90.0)
                rot = np.zeros((h, w), bool)
                rot[13:33, 17:23] = True
                low = np.isin(expect, [0, ids["road"]]) & rot
                expect[low] = ids["road"]
                xml.shape("ellipse", "person", 3, cx=38.0, cy=10.0, rx=6.0, ry=4.0, rotation=30.0)
                ell = np.zeros((h, w), np.uint8)
                cv2.ellipse(ell, (38, 10), (6, 4), 30.0, 0, 360, 255, thickness=-1)
                expect[ell > 0] = ids["person"]
                xml.shape("polyline", "road", 5, points=cvat_points([(0, 0), (47, 39)]))
                xml.shape("points", "car", 5, points=cvat_points([(1, 1)]))
            xml.close("image")
            folder = root / "images" / (subset if project else "")
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(noise(h, w, k)).save(folder / name)
            stem = name.rsplit(".", 1)[0]
            truth[f"{subset}/{stem}" if project else stem] = expect
        xml.end()
    return truth


def paint(ids: np.ndarray, colors: list[tuple[int, int, int]]) -> np.ndarray:
    return np.array(colors, np.uint8)[ids]


def unpaint(rgb: np.ndarray, colors: list[tuple[int, int, int]]) -> np.ndarray:
    """The independent decoding: each pixel's colour looked up in a dict."""
    lookup = {c: i for i, c in enumerate(colors)}
    return np.array([[lookup[tuple(int(v) for v in px)] for px in row] for row in rgb], np.uint8)


def label_map(seed: int, n: int, h: int = 12, w: int = 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = np.zeros((h, w), np.uint8)
    for c in range(1, n):
        y, x = rng.integers(0, h - 4), rng.integers(0, w - 4)
        ids[y : y + 4, x : x + 5] = c
    return ids


def save_bgr(path: Path, rgb: np.ndarray) -> None:
    """As datumaro's save_image writes a painted mask: OpenCV, BGR."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))


DM_LABELS = [
    ("Void", (0, 0, 0)),
    ("Animal", (64, 128, 64)),
    ("Archway", (192, 0, 128)),
    ("Road", (128, 64, 128)),
]


CAMVID_SOME = [
    ("Animal", (64, 128, 64)),
    ("Building", (128, 0, 0)),
    ("Car", (64, 0, 128)),
    ("Void", (0, 0, 0)),
]


def vistas_config(n: int) -> dict:
    names = ["animal--bird", "construction--flat--road", "object--vehicle--car", "void--unlabeled"][:n]
    colors = [(165, 42, 42), (128, 64, 128), (0, 0, 142), (0, 0, 0)][:n]
    return {
        "labels": [
            {
                "color": list(c),
                "instances": True,
                "readable": nm.split("--")[-1].title(),
                "name": nm,
                "evaluate": True,
            }
            for nm, c in zip(names, colors, strict=True)
        ],
        "version": "2.0",
        "mapping": "public",
        "folder_structure": "{split}/{content}/{key:.{22}}.{ext}",
    }
