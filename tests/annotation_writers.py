"""Writers of the annotation formats (ultralytics, yolo, coco, labelme, cvat) as their tools write
them, for tests/test_formats_annotations.py and tests/test_formats_native.py."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from segpipe.progress import Reporter


def _image(path: Path, width: int, height: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


class Recorder(Reporter):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)

    warn = info


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def _ultralytics(root: Path, mask_values: dict[str, np.ndarray], yaml_text: str) -> Path:
    for split, arr in mask_values.items():
        _image(root / "images" / split / f"{split}_0.jpg", arr.shape[1], arr.shape[0])
        (root / "masks" / split).mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(root / "masks" / split / f"{split}_0.png")  # mode L, as Ultralytics reads
    (root / "data.yaml").write_text(yaml_text, encoding="utf-8")
    return root


ULTRA_YAML = """\
# as in Ultralytics' docs: path is relative to Ultralytics' own datasets folder
path: path/to/my-semantic-dataset
train: images/train
val: images/val
masks_dir: masks

names:
    0: background
    1: road
    2: building
"""


def _yolo_line(cls: int, pts: list[tuple[float, float]], w: int, h: int) -> str:
    coords = [v for x, y in pts for v in (x / w, y / h)]
    return ("%g " * (len(coords) + 1)).rstrip() % (cls, *coords)  # as Ultralytics' converters write


def _rect(x0: int, y0: int, x1: int, y1: int) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """An ``iscrowd: 1`` segmentation as COCO's JSON holds it: column-major run lengths, from 0."""
    flat = mask.flatten(order="F").astype(np.uint8)
    counts, value, run = [], 0, 0
    for v in flat:
        if v != value:
            counts.append(run)
            value, run = v, 0
        run += 1
    counts.append(run)
    return {"counts": [int(c) for c in counts], "size": [int(mask.shape[0]), int(mask.shape[1])]}


def _coco(root: Path, w: int = 40, h: int = 30) -> dict:
    from pycocotools import mask as mask_utils

    _image(root / "train2017" / "000000000009.jpg", w, h)
    _image(root / "train2017" / "000000000025.jpg", w, h, 1)
    car = np.zeros((h, w), np.uint8)
    car[5:25, 2:30] = 1  # the large one
    crowd = np.zeros((h, w), np.uint8)
    crowd[0:12, 20:40] = 1
    rle = mask_utils.encode(np.asfortranarray(car))  # what pycocotools writes: counts bytes
    rle["counts"] = rle["counts"].decode("ascii")  # and how it is stored in JSON
    dog_poly = [10.0, 8.0, 24.0, 8.0, 24.0, 20.0, 10.0, 20.0]
    data = {
        "info": {
            "description": "test",
            "version": "1.0",
            "year": 2017,
            "contributor": "",
            "date_created": "",
        },
        "licenses": [{"url": "", "id": 1, "name": "test"}],
        "images": [
            {
                "license": 1,
                "file_name": "000000000009.jpg",
                "coco_url": "",
                "height": h,
                "width": w,
                "date_captured": "",
                "flickr_url": "",
                "id": 9,
            },
            {
                "license": 1,
                "file_name": "000000000025.jpg",
                "coco_url": "",
                "height": h,
                "width": w,
                "date_captured": "",
                "flickr_url": "",
                "id": 25,
            },
        ],
        "annotations": [
            {
                "segmentation": [dog_poly],
                "area": 168.0,
                "iscrowd": 0,
                "image_id": 9,
                "bbox": [10.0, 8.0, 14.0, 12.0],
                "category_id": 18,
                "id": 1,
            },
            {
                "segmentation": rle,
                "area": float(car.sum()),
                "iscrowd": 0,
                "image_id": 9,
                "bbox": [2.0, 5.0, 28.0, 20.0],
                "category_id": 3,
                "id": 2,
            },
            {
                "segmentation": _uncompressed_rle(crowd),
                "area": float(crowd.sum()),
                "iscrowd": 1,
                "image_id": 9,
                "bbox": [20.0, 0.0, 20.0, 12.0],
                "category_id": 1,
                "id": 3,
            },
        ],
        "categories": [
            {"supercategory": "person", "id": 1, "name": "person"},
            {"supercategory": "vehicle", "id": 3, "name": "car"},
            {"supercategory": "animal", "id": 18, "name": "dog"},
        ],
    }
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "instances_train2017.json").write_text(json.dumps(data), encoding="utf-8")
    return data


def _labelme_shape(label: str, points: list, shape_type: str = "polygon") -> dict:
    return {"label": label, "points": points, "group_id": None, "description": "", "shape_type": shape_type,
            "flags": {}, "mask": None}  # fmt: skip


def _labelme(root: Path, stem: str, shapes: list[dict], w: int = 40, h: int = 30) -> Path:
    _image(root / f"{stem}.jpg", w, h)
    doc = {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": f"{stem}.jpg", "imageData": None,
           "imageHeight": h, "imageWidth": w}  # fmt: skip
    (root / f"{stem}.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return root / f"{stem}.json"


CVAT_LABELMAP = "# label:color_rgb:parts:actions\nbackground:0,0,0::\ncar:250,50,83::\nperson:61,245,61::\n"


CVAT_COLORS = np.array([(0, 0, 0), (250, 50, 83), (61, 245, 61)], np.uint8)


def _cvat(root: Path) -> np.ndarray:
    ids = np.zeros((20, 30), np.uint8)
    ids[2:8, 3:15] = 1
    ids[10:18, 20:28] = 2
    (root / "labelmap.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "labelmap.txt").write_text(CVAT_LABELMAP)
    for d in ("SegmentationClass", "SegmentationObject", "ImageSets/Segmentation", "JPEGImages"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "Segmentation" / "default.txt").write_text("frame_000000\nframe_000001\n")
    for i in range(2):
        _image(root / "JPEGImages" / f"frame_00000{i}.jpg", 30, 20, i)
        cv2.imwrite(str(root / "SegmentationClass" / f"frame_00000{i}.png"), CVAT_COLORS[ids][:, :, ::-1])
        cv2.imwrite(
            str(root / "SegmentationObject" / f"frame_00000{i}.png"), (ids * 40)[:, :, None].repeat(3, 2)
        )
    return ids


E2E_NAMES = {
    "ultralytics": ("background", "road", "building"),
    "yolo": ("background", "person", "car"),
    "coco": ("background", "person", "car"),
    "labelme": ("_background_", "car", "person"),
    "cvat": ("background", "car", "person"),
}


def _e2e_rects(i: int) -> list[tuple[int, int, int, int, int]]:
    """Two rectangles (class, x0, y0, x1, y1; corners inclusive) for sample ``i`` of a 64x64 set."""
    rng = np.random.default_rng(i)
    x, y = (int(v) for v in rng.integers(0, 24, 2))
    return [(1, x, y, x + 30, y + 20), (2, 63 - x - 16, 63 - y - 20, 63 - x, 63 - y)]


def _make_e2e(fmt: str, root: Path, count: int = 8) -> Path:
    from pycocotools import mask as mask_utils

    w = h = 64
    split = {i: "val" if i >= count - 2 else "train" for i in range(count)}
    names = E2E_NAMES[fmt]
    coco: dict[str, dict] = {}
    for i in range(count):
        ids = np.zeros((h, w), np.uint8)
        for c, x0, y0, x1, y1 in _e2e_rects(i):
            ids[y0 : y1 + 1, x0 : x1 + 1] = c
        s, stem = split[i], f"img{i}"
        if fmt == "ultralytics":
            _image(root / "images" / s / f"{stem}.jpg", w, h, i)
            (root / "masks" / s).mkdir(parents=True, exist_ok=True)
            Image.fromarray(ids).save(root / "masks" / s / f"{stem}.png")
        elif fmt == "yolo":
            _image(root / "images" / s / f"{stem}.jpg", w, h, i)
            (root / "labels" / s).mkdir(parents=True, exist_ok=True)
            lines = [_yolo_line(c - 1, _rect(x0, y0, x1, y1), w, h) for c, x0, y0, x1, y1 in _e2e_rects(i)]
            (root / "labels" / s / f"{stem}.txt").write_text("\n".join(lines) + "\n")
        elif fmt == "coco":
            _image(root / f"{s}2017" / f"{stem}.jpg", w, h, i)
            doc = coco.setdefault(s, {"info": {}, "licenses": [], "images": [], "annotations": [],
                                      "categories": [{"supercategory": "x", "id": 1, "name": "person"},
                                                     {"supercategory": "x", "id": 3, "name": "car"}]})  # fmt: skip
            doc["images"].append({"id": i, "file_name": f"{stem}.jpg", "height": h, "width": w})
            for c in (1, 2):
                rle = mask_utils.encode(np.asfortranarray((ids == c).astype(np.uint8)))
                rle["counts"] = rle["counts"].decode("ascii")
                doc["annotations"].append({"id": len(doc["annotations"]) + 1, "image_id": i, "category_id": [1, 3][c - 1],
                                           "segmentation": rle, "area": float((ids == c).sum()), "iscrowd": 0,
                                           "bbox": [0, 0, 1, 1]})  # fmt: skip
        elif fmt == "labelme":
            shapes = [
                _labelme_shape(names[c], [[x0, y0], [x1, y1]], "rectangle")
                for c, x0, y0, x1, y1 in _e2e_rects(i)
            ]
            _labelme(root, stem, shapes, w, h)
        elif fmt == "cvat":
            if i == 0:
                _cvat(root)  # labelmap.txt and the folders (its two frames are 30x20: replaced below)
                for p in (root / "JPEGImages").glob("*"):
                    p.unlink()
                for p in (root / "SegmentationClass").glob("*"):
                    p.unlink()
            _image(root / "JPEGImages" / f"{stem}.jpg", w, h, i)
            Image.fromarray(CVAT_COLORS[ids]).save(root / "SegmentationClass" / f"{stem}.png")
    if fmt == "ultralytics":
        (root / "data.yaml").write_text(ULTRA_YAML)
    elif fmt == "yolo":
        (root / "data.yaml").write_text(
            "path: .\ntrain: images/train\nval: images/val\nnames:\n  0: person\n  1: car\n"
        )
    elif fmt == "coco":
        (root / "annotations").mkdir()
        for s, doc in coco.items():
            (root / "annotations" / f"instances_{s}2017.json").write_text(json.dumps(doc))
    elif fmt == "cvat":
        (root / "ImageSets" / "Segmentation" / "default.txt").write_text(
            "".join(f"img{i}\n" for i in range(count))
        )
    return root
