"""Tiny data folders of every label format, with one hostile thing in them (see test_hostile_data.py).

A sandbox holds ``data/`` (the data root), ``outside/`` (a secret picture and text beside it, which
nothing may read) and is where ``out/`` gets exported. Hostile things: a name a label file gives
(``..``, absolute, NUL, newline, ESC, bytes that are not UTF-8), an image that is a symlink out of
the root or a FIFO, a label file that is a FIFO.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

SECRET_RGB = (7, 77, 177)
#: Names a label file may give (formatted with the sandbox's absolute ``outside`` folder).
NAME_KINDS = {
    "dotdot": "../outside/secret",
    "dotdot_deep": "x/../../../outside/secret",
    "absolute": "{outside}/secret",
    "nul": "a\x00b",
    "newline": "a\nerror: forged",
    "esc": "a\x1b[2Jb",
    "non_utf8": "a\udcffb",
}
#: Things done to the files of a correct folder.
FILE_KINDS = ("symlink_out", "fifo_image", "fifo_label", "name_newline", "name_non_utf8")
FORMATS = (
    "coco", "voc", "cvat", "labelme", "ultralytics", "yolo", "cityscapes", "ade20k", "seed",
    "cvat_images", "camvid", "mapillary_vistas", "common_semantic_segmentation",
)  # fmt: skip
#: Formats whose label files name the images (NAME_KINDS apply).
NAMING = ("coco", "voc", "cvat", "labelme", "ultralytics", "cvat_images", "camvid")


def sandbox(base: Path) -> tuple[Path, Path, Path]:
    """(sandbox, data root, outside folder); the outside folder holds secret.png and secret.txt."""
    (base / "data").mkdir(parents=True)
    (base / "outside").mkdir()
    img = np.zeros((8, 8, 3), np.uint8)
    img[:] = SECRET_RGB[::-1]
    cv2.imwrite(str(base / "outside" / "secret.png"), img)
    (base / "outside" / "secret.txt").write_text("secret\n")
    return base, base / "data", base / "outside"


def _png(path: Path | bytes, arr: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", arr)
    assert ok
    p = os.fsencode(path)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(buf.tobytes())


def _image() -> np.ndarray:
    return np.full((8, 8, 3), 90, np.uint8)


def _mask(values: int = 1) -> np.ndarray:
    m = np.zeros((8, 8), np.uint8)
    m[2:6, 2:6] = values
    return m


def build(fmt: str, root: Path, name: str = "a") -> dict[str, Path]:
    """A correct folder of ``fmt`` with one sample named ``name`` (what the label file says, for
    the formats that name images: any string). Returns the image and label paths of a plain
    sample ``b`` (the one file kinds are applied to)."""
    outside = root.parent / "outside"
    name = name.replace("{outside}", str(outside))
    if fmt == "coco":
        (root / "annotations").mkdir()
        _png(root / "train2017" / "b.png", _image())
        images = [{"id": 1, "file_name": "b.png", "width": 8, "height": 8}]
        if name != "a":
            images.append({"id": 2, "file_name": name + ".png", "width": 8, "height": 8})
        ann = [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 6, 1, 6, 6]], "iscrowd": 0}]
        label = root / "annotations" / "instances_train2017.json"
        label.write_text(json.dumps({"images": images, "annotations": ann, "categories": [{"id": 1, "name": "t"}]}))
        return {"image": root / "train2017" / "b.png", "label": label}
    if fmt in ("voc", "cvat"):
        _png(root / "JPEGImages" / "b.png", _image())
        mask = _mask() if fmt == "voc" else np.dstack([np.zeros((8, 8), np.uint8)] * 2 + [_mask(255)])
        _png(root / "SegmentationClass" / "b.png", mask)
        lst = root / "ImageSets" / "Segmentation" / ("train.txt" if fmt == "voc" else "default.txt")
        lst.parent.mkdir(parents=True)
        lst.write_bytes(os.fsencode("b\n" + (name + "\n" if name != "a" else "")))
        if fmt == "cvat":
            (root / "labelmap.txt").write_text("# label:color_rgb:parts:actions\nbackground:0,0,0::\nthing:255,0,0::\n")
        return {"image": root / "JPEGImages" / "b.png", "label": root / "SegmentationClass" / "b.png", "list": lst}
    if fmt == "labelme":
        _png(root / "b.png", _image())
        shape = {"label": "t", "points": [[1, 1], [6, 1], [6, 6]], "shape_type": "polygon", "group_id": None, "flags": {}}
        for stem, path in (("b", "b.png"), ("c", name + ".png")):
            if stem == "c" and name == "a":
                continue
            doc = {"version": "5.0.1", "flags": {}, "shapes": [shape], "imagePath": path, "imageData": None,
                   "imageHeight": 8, "imageWidth": 8}  # fmt: skip
            (root / f"{stem}.json").write_text(json.dumps(doc))
        return {"image": root / "b.png", "label": root / "b.json"}
    if fmt == "ultralytics":
        _png(root / "images" / "train" / "b.png", _image())
        _png(root / "masks" / "train" / "b.png", _mask())
        lines = "images/train/b.png\n" + (name + ".png\n" if name != "a" else "")
        (root / "train.txt").write_bytes(os.fsencode(lines))
        (root / "data.yaml").write_text("path: .\ntrain: train.txt\nnames:\n  0: bg\n  1: t\nmasks_dir: masks\n")
        return {"image": root / "images" / "train" / "b.png", "label": root / "masks" / "train" / "b.png",
                "list": root / "train.txt"}  # fmt: skip
    if fmt == "yolo":
        _png(root / "images" / "train" / "b.png", _image())
        (root / "labels" / "train").mkdir(parents=True)
        (root / "labels" / "train" / "b.txt").write_text("0 0.1 0.1 0.7 0.1 0.7 0.7\n")
        return {"image": root / "images" / "train" / "b.png", "label": root / "labels" / "train" / "b.txt"}
    if fmt == "cityscapes":
        img = root / "leftImg8bit" / "train" / "c" / "b_000000_000000_leftImg8bit.png"
        lab = root / "gtFine" / "train" / "c" / "b_000000_000000_gtFine_labelIds.png"
        _png(img, _image())
        _png(lab, _mask(7))
        return {"image": img, "label": lab}
    if fmt == "ade20k":
        _png(root / "images" / "training" / "b.png", _image())
        _png(root / "annotations" / "training" / "b.png", _mask(3))
        return {"image": root / "images" / "training" / "b.png", "label": root / "annotations" / "training" / "b.png"}
    if fmt == "seed":
        _png(root / "images" / "b.png", _image())
        _png(root / "indexes" / "b_color_mask.png", _mask())
        return {"image": root / "images" / "b.png", "label": root / "indexes" / "b_color_mask.png"}
    return build_layouts(fmt, root, name)


def build_layouts(fmt: str, root: Path, name: str) -> dict[str, Path]:
    """:func:`build` for the layouts of tests/test_formats_layouts.py."""
    from xml.sax.saxutils import quoteattr

    if fmt == "cvat_images":
        _png(root / "images" / "b.png", _image())
        poly = '<polygon label="t" occluded="0" points="1.00,1.00;6.00,1.00;6.00,6.00" z_order="0"/>'
        images = "".join(
            f'<image id="{k}" name={quoteattr(n + ".png")} width="8" height="8">{poly}</image>'
            for k, n in enumerate(["b"] + ([name] if name != "a" else []))
        )
        label = root / "annotations.xml"
        xml = '<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version><meta><task><labels>'
        xml += f"<label><name>t</name></label></labels></task></meta>{images}</annotations>"
        label.write_bytes(xml.encode("utf-8", "surrogateescape"))
        return {"image": root / "images" / "b.png", "label": label}
    if fmt == "camvid":
        _png(root / "train" / "b.png", _image())
        _png(root / "trainannot" / "b.png", np.dstack([np.zeros((8, 8), np.uint8)] * 2 + [_mask(255)]))
        (root / "label_colors.txt").write_text("0 0 0 Void\n255 0 0 thing\n")
        lines = "/train/b.png trainannot/b.png\n" + (f"{name}.png trainannot/b.png\n" if name != "a" else "")
        (root / "train.txt").write_bytes(os.fsencode(lines))
        return {"image": root / "train" / "b.png", "label": root / "trainannot" / "b.png", "list": root / "train.txt"}
    if fmt == "mapillary_vistas":
        labels = [{"name": "bg", "color": [0, 0, 0]}, {"name": "t", "color": [255, 0, 0]}]
        (root / "config_v2.0.json").write_text(json.dumps({"labels": labels}))
        _png(root / "training" / "images" / "b.png", _image())
        _png(root / "training" / "v2.0" / "labels" / "b.png", _mask())
        return {"image": root / "training" / "images" / "b.png", "label": root / "training" / "v2.0" / "labels" / "b.png"}
    if fmt == "common_semantic_segmentation":
        (root / "dataset_meta.json").write_text(json.dumps({"label_map": {"0": "bg", "1": "t"}}))
        _png(root / "images" / "b.png", _image())
        _png(root / "masks" / "b.png", _mask())
        return {"image": root / "images" / "b.png", "label": root / "masks" / "b.png"}
    raise ValueError(fmt)


def apply_file_kind(kind: str, files: dict[str, Path], outside: Path) -> None:
    """Turn the plain sample's files hostile: image a symlink out of the root, image or label file a
    FIFO, or the image (and its label) renamed with a newline or bytes that are not UTF-8."""
    image, label = files["image"], files["label"]
    if kind == "symlink_out":
        image.unlink()
        image.symlink_to(outside / "secret.png")
    elif kind == "fifo_image":
        image.unlink()
        os.mkfifo(image)
    elif kind == "fifo_label":
        target = files.get("list", label)
        target.unlink()
        os.mkfifo(target)
    elif kind in ("name_newline", "name_non_utf8"):
        prefix = b"z\nerror: forged" if kind == "name_newline" else b"z\xff\xfe"
        coco = label.name.startswith("instances_")
        for p in (image,) if coco else (image, label):
            head, tail = os.path.split(os.fsencode(p))
            os.rename(os.path.join(head, tail), os.path.join(head, prefix + tail))
        if "list" in files:  # a split list names the renamed sample
            lst = files["list"]
            lst.write_bytes(
                lst.read_bytes()
                .replace(b"b\n", prefix + b"b\n", 1)
                .replace(b"images/train/b.png", b"images/train/" + prefix + b"b.png")
            )
        if label.suffix == ".json":  # LabelMe imagePath / COCO file_name name the image
            json_path = label if coco else Path(os.fsdecode(os.path.join(os.path.dirname(os.fsencode(label)), prefix + b"b.json")))
            doc = json.loads(json_path.read_text())
            if coco:
                doc["images"][0]["file_name"] = os.fsdecode(prefix + b"b.png")
            else:
                doc["imagePath"] = os.fsdecode(prefix + b"b.png")
            json_path.write_text(json.dumps(doc))
    else:
        raise ValueError(kind)


def tree(folder: Path) -> dict[bytes, tuple[int, int]]:
    """Every entry under ``folder`` (bytes path -> (mode, size)), links not followed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(os.fsencode(folder)):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            out[p] = (st.st_mode, st.st_size if not os.path.isdir(p) else 0)
    return out


def cli(*args: str | Path) -> list[str]:
    """``python -m segpipe ARGS`` as a subprocess command line."""
    return [sys.executable, "-m", "segpipe", *(str(a) for a in args)]
