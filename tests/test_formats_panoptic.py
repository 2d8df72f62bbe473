"""COCO panoptic read as semantic classes: files written as the COCO download and datumaro's
``coco_panoptic`` export hold them (segment ids encoded with panopticapi's ``id2rgb``), masks
compared pixel by pixel with panopticapi's own semantic conversion (``rgb2id``, then
``semantic[pan == id] = category_id``, as ``panoptic2semantic_segmentation.py`` does)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segpipe.data.formats import detect_format, open_dataset
from segpipe.errors import DataError

W, H = 40, 30
CATEGORIES = [
    {"supercategory": "person", "isthing": 1, "id": 1, "name": "person", "color": [220, 20, 60]},
    {"supercategory": "vehicle", "isthing": 1, "id": 3, "name": "car", "color": [0, 0, 142]},
    {"supercategory": "sky", "isthing": 0, "id": 187, "name": "sky-other-merged", "color": [70, 130, 180]},
]


def id2rgb(ids: np.ndarray) -> np.ndarray:
    """panopticapi.utils.id2rgb: id -> (id % 256, id // 256 % 256, id // 256**2 % 256)."""
    rgb = np.zeros((*ids.shape, 3), np.uint8)
    for c in range(3):
        rgb[..., c] = ids % 256
        ids = ids // 256
    return rgb


def rgb2id(rgb: np.ndarray) -> np.ndarray:
    """panopticapi.utils.rgb2id."""
    rgb = rgb.astype(np.int32)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def _panoptic(root: Path, stem: str = "panoptic_val2017", images: str = "val2017") -> dict:
    ids = np.zeros((H, W), np.int64)  # 0: VOID (unlabelled)
    ids[:10, :] = 5000000  # sky: a large id uses all three channels
    ids[12:28, 2:18] = 1 + 256 * 7  # a person
    ids[14:26, 20:36] = 70000  # a car
    ids[0:4, 30:40] = 300  # a crowd of people
    segments = [
        {"id": 5000000, "category_id": 187, "iscrowd": 0, "bbox": [0, 0, W, 10], "area": 400},
        {"id": 1 + 256 * 7, "category_id": 1, "iscrowd": 0, "bbox": [2, 12, 16, 16], "area": 256},
        {"id": 70000, "category_id": 3, "iscrowd": 0, "bbox": [20, 14, 16, 12], "area": 192},
        {"id": 300, "category_id": 1, "iscrowd": 1, "bbox": [30, 0, 10, 4], "area": 40},
    ]
    (root / images).mkdir(parents=True)
    Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(root / images / "000000000139.jpg")
    pngs = root / "annotations" / stem
    pngs.mkdir(parents=True)
    Image.fromarray(id2rgb(ids)).save(pngs / "000000000139.png")
    data = {
        "info": {"description": "test"},
        "licenses": [],
        "images": [{"file_name": "000000000139.jpg", "height": H, "width": W, "id": 139}],
        "annotations": [{"segments_info": segments, "file_name": "000000000139.png", "image_id": 139}],
        "categories": CATEGORIES,
    }
    (root / "annotations" / f"{stem}.json").write_text(json.dumps(data), encoding="utf-8")
    return data


def _panopticapi_semantic(root: Path, data: dict, stem: str = "panoptic_val2017") -> np.ndarray:
    pan = rgb2id(np.asarray(Image.open(root / "annotations" / stem / "000000000139.png"), dtype=np.uint32))
    semantic = np.zeros(pan.shape, np.uint8)
    for seg in data["annotations"][0]["segments_info"]:
        semantic[pan == seg["id"]] = seg["category_id"]
    return semantic


def test_panoptic_segments_become_classes_as_panopticapi_reads_them(tmp_path: Path) -> None:
    data = _panoptic(tmp_path)
    name, reason = detect_format(tmp_path)
    assert name == "coco_panoptic" and "panoptic_val2017.json" in reason
    reader = open_dataset(tmp_path)
    assert reader.classes().names == ("person", "car", "sky-other-merged")
    (sample,) = reader.samples()
    assert sample.split == "val" and sample.image.name == "000000000139.jpg"
    semantic = _panopticapi_semantic(tmp_path, data)
    crowd = rgb2id(np.asarray(Image.open(sample.label))) == 300
    lut = np.full(256, 255, np.uint8)  # VOID (0) -> ignore; category id -> its class
    lut[[1, 3, 187]] = [0, 1, 2]
    expected = lut[semantic]
    expected[crowd] = 255  # crowds: ignore, as segpipe's COCO reader
    assert set(np.unique(expected)) == {0, 1, 2, 255}
    image, mask = reader.load(sample)
    assert np.array_equal(mask, expected)
    kept = open_dataset(tmp_path, crowds="class")
    assert np.array_equal(kept.read_mask(kept.samples()[0]), lut[semantic])  # panopticapi's, as classes


def test_panoptic_datumaro_layout(tmp_path: Path) -> None:
    """datumaro's coco_panoptic export: annotations/panoptic_default.json + panoptic_default/,
    images/default/."""
    _panoptic(tmp_path, "panoptic_default", "images/default")
    reader = open_dataset(tmp_path)
    (sample,) = reader.samples()
    assert reader.name == "coco_panoptic" and sample.image.parent.name == "default" and sample.split is None
    assert (reader.read_mask(sample) == 2).sum() == 10 * W - 4 * 10  # sky, less the crowd on it


def test_panoptic_with_instances_is_read_as_coco_unless_asked(tmp_path: Path) -> None:
    _panoptic(tmp_path)
    inst = {"images": [{"id": 139, "file_name": "000000000139.jpg", "width": W, "height": H}],
            "annotations": [], "categories": CATEGORIES}  # fmt: skip
    (tmp_path / "annotations" / "instances_val2017.json").write_text(json.dumps(inst))
    assert detect_format(tmp_path)[0] == "coco"
    assert open_dataset(tmp_path, "coco_panoptic").name == "coco_panoptic"


def test_panoptic_refusals_are_one_line(tmp_path: Path) -> None:
    data = _panoptic(tmp_path)
    data["annotations"][0]["segments_info"].pop(2)  # the car's id is in the PNG, not in the JSON
    (tmp_path / "annotations" / "panoptic_val2017.json").write_text(json.dumps(data))
    reader = open_dataset(tmp_path)
    with pytest.raises(DataError) as exc:
        reader.read_mask(reader.samples()[0])
    assert "\n" not in str(exc.value) and "segment id(s) 70000" in str(exc.value)
    png = tmp_path / "annotations" / "panoptic_val2017" / "000000000139.png"
    Image.fromarray(np.zeros((H, W + 1, 3), np.uint8)).save(png)
    with pytest.raises(DataError, match="41x30"):
        open_dataset(tmp_path).read_mask(reader.samples()[0])
    shutil.rmtree(png.parent)
    with pytest.raises(DataError, match="missing"):
        open_dataset(tmp_path).samples()
