"""The annotation-format readers (ultralytics, yolo, coco, labelme, cvat) on files written in the
tests exactly as the source tools write them (tests/annotation_writers.py), masks checked pixel by
pixel against expectations drawn here independently (numpy slices, pycocotools' own decode),
detection, class names and the one-line refusals of malformed input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from annotation_writers import (  # the writers and helpers these tests share
    CVAT_COLORS,
    CVAT_LABELMAP,
    ULTRA_YAML,
    Recorder,
    _coco,
    _cvat,
    _image,
    _labelme,
    _labelme_shape,
    _one_line,
    _rect,
    _ultralytics,
    _uncompressed_rle,
    _yolo_line,
)
from PIL import Image

from segpipe.data.formats import detect_format, open_dataset
from segpipe.errors import DataError

# pycocotools 2.0.x on numpy 2 warns inside its own decode (copy=False); not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def test_ultralytics_masks_names_splits_and_ignore(tmp_path: Path) -> None:
    train = np.zeros((24, 32), np.uint8)
    train[2:10, 3:20] = 1
    train[12:20, 5:9] = 2
    train[0, :] = 255
    val = np.full((24, 32), 2, np.uint8)
    root = _ultralytics(tmp_path, {"train": train, "val": val}, ULTRA_YAML)
    name, reason = detect_format(root)
    assert name == "ultralytics" and "masks_dir" in reason
    rec = Recorder()
    reader = open_dataset(root, reporter=rec)
    assert reader.classes().names == ("background", "road", "building")
    samples = reader.samples()
    assert [(s.name, s.split) for s in samples] == [
        ("train/train_0", "train"),
        ("val/val_0", "val"),
    ]
    assert np.array_equal(reader.read_mask(samples[0]), train)
    image, mask = reader.load(samples[1])
    assert image.shape == (24, 32, 3) and np.array_equal(mask, val)
    # the docs' relative path names Ultralytics' datasets folder: said once, read beside the YAML
    assert [ln for ln in rec.lines if "path/to/my-semantic-dataset" in ln and str(root) in ln]


def test_ultralytics_label_mapping_and_palette_png(tmp_path: Path) -> None:
    raw = np.array([[7, 8, 0], [26, 7, 33]], np.uint8)  # Cityscapes label ids
    yaml_text = ULTRA_YAML.replace(
        "masks_dir: masks",
        "masks_dir: masks\nlabel_mapping:\n  0: ignore_label\n  7: 0\n  8: 1\n  26: 2\n  33: ignore_label",
    )
    root = _ultralytics(tmp_path, {"train": raw}, yaml_text.replace("val: images/val\n", ""))
    # a palette-mode PNG, as many tools save index masks: its indices are the labels, not its colours
    p = Image.fromarray(raw, mode="L").convert("P")
    p.putpalette([v for i in range(256) for v in (i * 3 % 256, 50, 200)])
    p.save(root / "masks" / "train" / "train_0.png")
    reader = open_dataset(root, format="ultralytics")
    expected = np.array([[0, 1, 255], [2, 0, 255]], np.uint8)
    assert np.array_equal(reader.read_mask(reader.samples()[0]), expected)


def test_ultralytics_refusals(tmp_path: Path) -> None:
    arr = np.zeros((8, 8), np.uint8)
    arr[0, 0] = 7  # beyond the 3 names, not 255
    train_only = ULTRA_YAML.replace("val: images/val\n", "")
    root = _ultralytics(tmp_path / "a", {"train": arr}, train_only)
    reader = open_dataset(root)
    with pytest.raises(DataError) as exc:
        reader.read_mask(reader.samples()[0])
    msg = _one_line(exc)
    assert "train_0.png" in msg and "7" in msg

    bad = "train: images/train\nmasks_dir: masks\nnames:\n  0: a\n  2: b\nlabel_mapping: [1, 2]\n"
    root = _ultralytics(tmp_path / "b", {"train": arr}, bad)
    with pytest.raises(DataError) as exc:
        open_dataset(root, format="ultralytics").samples()
    msg = _one_line(exc)
    assert "data.yaml" in msg and "names: class ids must be 0..1" in msg and "label_mapping" in msg

    root = _ultralytics(tmp_path / "c", {"train": arr}, train_only)
    (root / "masks" / "train" / "train_0.png").unlink()
    with pytest.raises(DataError) as exc:
        open_dataset(root).samples()
    assert "train_0.jpg" in _one_line(exc)


def test_yolo_rasterised_smaller_last_background_zero(tmp_path: Path) -> None:
    w, h = 64, 48
    _image(tmp_path / "images" / "train" / "a.jpg", w, h)
    _image(tmp_path / "images" / "val" / "b.jpg", w, h, 1)  # no label file: a background image
    (tmp_path / "labels" / "train").mkdir(parents=True)
    lines = [
        _yolo_line(1, _rect(10, 10, 20, 20), w, h),  # the small one first in the file
        _yolo_line(0, _rect(4, 4, 40, 30), w, h),
        _yolo_line(1, [(50, 40), (63, 40), (63, 47), (50, 47)], w, h),
    ]
    (tmp_path / "labels" / "train" / "a.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames:\n  0: person\n  1: car\n"
    )
    assert detect_format(tmp_path)[0] == "yolo"
    rec = Recorder()
    reader = open_dataset(tmp_path, reporter=rec)
    assert reader.classes().names == ("background", "person", "car")
    a, b = reader.samples()
    assert (a.split, b.split, b.label) == ("train", "val", None)
    assert any("1 image(s) have no label file" in ln and "b.jpg" in ln for ln in rec.lines)
    expected = np.zeros((h, w), np.uint8)
    expected[4:31, 4:41] = 1  # YOLO class 0 -> 1; corners inclusive (cv2.fillPoly)
    expected[10:21, 10:21] = 2  # smaller polygon drawn last, wherever it is in the file
    expected[40:48, 50:64] = 2
    assert np.array_equal(reader.read_mask(a), expected)
    assert not reader.read_mask(b).any() and reader.read_mask(b).shape == (h, w)


def test_yolo_without_yaml_names_class_ids(tmp_path: Path) -> None:
    _image(tmp_path / "images" / "x.png", 16, 16)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "x.txt").write_text(_yolo_line(2, _rect(0, 0, 7, 7), 16, 16) + "\n")
    reader = open_dataset(tmp_path, format="yolo")
    assert reader.classes().names == ("background", "class_0", "class_1", "class_2")
    assert reader.samples()[0].split is None
    assert np.unique(reader.read_mask(reader.samples()[0])).tolist() == [0, 3]


def test_yolo_data_yaml_with_names_only_names_the_classes(tmp_path: Path) -> None:
    """The README's "optional data.yaml names": a YAML with only names names the classes and the
    images/labels folders are found as without one (it was refused: train/val: neither is given)."""
    for split in ("train", "val"):
        _image(tmp_path / "images" / split / f"{split}.png", 16, 16)
        (tmp_path / "labels" / split).mkdir(parents=True)
        (tmp_path / "labels" / split / f"{split}.txt").write_text(
            _yolo_line(1, _rect(0, 0, 7, 7), 16, 16) + "\n"
        )
    (tmp_path / "data.yaml").write_text("names: {0: person, 1: car}\n")
    reader = open_dataset(tmp_path)
    assert reader.name == "yolo"
    assert reader.classes().names == ("background", "person", "car")
    assert [(s.name, s.split) for s in reader.samples()] == [("train/train", "train"), ("val/val", "val")]
    assert np.unique(reader.read_mask(reader.samples()[0])).tolist() == [0, 2]
    (tmp_path / "data.yaml").write_text("names: [person]\n")  # its names still bound the class ids
    reader = open_dataset(tmp_path, format="yolo")
    with pytest.raises(DataError, match="class 1 is beyond the 1 names"):
        reader.read_mask(reader.samples()[0])


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("0 0.1 0.1 0.5 0.1 0.5", "odd count"),
        ("0 0.1 0.1 1.5 0.1 0.5 0.5", "1.5 is outside 0..1"),
        ("5 0.1 0.1 0.5 0.1 0.5 0.5", "class 5 is beyond the 2 names"),
        ("0 0.5 0.5 0.2 0.2", "YOLO box"),
        ("x 0.1 0.1 0.5 0.1 0.5 0.5", "'x' is not an integer"),
    ],
)
def test_yolo_malformed_lines(tmp_path: Path, line: str, needle: str) -> None:
    _image(tmp_path / "images" / "a.png", 8, 8)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text(f"0 0 0 1 0 1 1\n{line}\n")
    (tmp_path / "data.yaml").write_text("train: images\nnames: [person, car]\n")
    reader = open_dataset(tmp_path, format="yolo")
    with pytest.raises(DataError) as exc:
        reader.read_mask(reader.samples()[0])
    msg = _one_line(exc)
    assert "a.txt line 2" in msg and needle in msg


def test_coco_polygons_rle_crowd_and_order(tmp_path: Path) -> None:
    from pycocotools import mask as mask_utils

    data = _coco(tmp_path)
    name, reason = detect_format(tmp_path)
    assert name == "coco" and "instances_train2017.json" in reason
    reader = open_dataset(tmp_path)
    assert reader.classes().names == ("background", "person", "car", "dog")
    first, second = reader.samples()
    assert first.split == "train" and first.image.name == "000000000009.jpg"
    # expectation from pycocotools' own decode of each annotation, composed here
    h, w = 30, 40
    anns = {a["id"]: a for a in data["annotations"]}
    dog = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(anns[1]["segmentation"], h, w))).astype(
        bool
    )
    car = mask_utils.decode(anns[2]["segmentation"]).astype(bool)
    crowd = mask_utils.decode(mask_utils.frPyObjects(anns[3]["segmentation"], h, w)).astype(bool)
    expected = np.zeros((h, w), np.uint8)
    expected[crowd] = 255  # crowd: ignore where no single object is annotated
    expected[car] = 2  # car (id 3) -> class 2, larger: drawn first
    expected[dog] = 3  # dog (id 18) -> class 3, smaller: drawn over the car
    assert dog.sum() > 0 and (car & dog).any() and (crowd & ~car & ~dog).any()
    assert np.array_equal(reader.read_mask(first), expected)
    assert not reader.read_mask(second).any()  # an image without annotations: background


def test_coco_stuff_file_adds_categories(tmp_path: Path) -> None:
    from pycocotools import mask as mask_utils

    _coco(tmp_path)
    grass = np.zeros((30, 40), np.uint8)
    grass[25:30, :] = 1
    rle = mask_utils.encode(np.asfortranarray(grass))
    rle["counts"] = rle["counts"].decode("ascii")
    stuff = {
        "info": {}, "licenses": [],
        "images": [{"id": 9, "file_name": "000000000009.jpg", "height": 30, "width": 40}],
        "annotations": [{"segmentation": rle, "area": 200.0, "iscrowd": 0, "image_id": 9, "bbox": [0, 25, 40, 5],
                         "category_id": 124, "id": 10000}],
        "categories": [{"supercategory": "plant", "id": 124, "name": "grass"}],
    }  # fmt: skip
    (tmp_path / "annotations" / "stuff_train2017.json").write_text(json.dumps(stuff))
    reader = open_dataset(tmp_path)
    assert reader.classes().names == ("background", "person", "car", "dog", "grass")
    mask = reader.read_mask(reader.samples()[0])
    assert (mask[25:30, :] == 4).all()


def test_coco_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _coco(tmp_path)
    path = tmp_path / "annotations" / "instances_train2017.json"
    monkeypatch.setenv("SEGPIPE_MAX_LABEL_MB", "0.001")
    with pytest.raises(DataError) as exc:
        open_dataset(tmp_path).samples()
    msg = _one_line(exc)
    assert "instances_train2017.json" in msg and "0.001 MB limit" in msg and "SEGPIPE_MAX_LABEL_MB" in msg
    monkeypatch.delenv("SEGPIPE_MAX_LABEL_MB")

    data["annotations"][2]["segmentation"]["counts"][-1] += 5  # runs no longer add up to H x W
    path.write_text(json.dumps(data))
    reader = open_dataset(tmp_path)
    with pytest.raises(DataError) as exc:
        reader.read_mask(reader.samples()[0])
    assert "annotation id 3" in _one_line(exc) and "1205" in str(exc.value)

    data["images"][0]["height"] = 100000
    path.write_text(json.dumps(data))
    with pytest.raises(DataError) as exc:
        open_dataset(tmp_path).samples()
    assert "100000" in _one_line(exc) and "32768" in str(exc.value)


def test_coco_rle_strings_checked_before_pycocotools(tmp_path: Path) -> None:
    """The compressed-RLE parser that guards pycocotools' decoder agrees with pycocotools on what
    it encodes; damaged strings and unknown categories are one line naming the annotation."""
    from pycocotools import mask as mask_utils

    from segpipe.data.formats.coco import rle_string_counts

    rng = np.random.default_rng(5)
    for shape in [(1, 1), (7, 5), (30, 40), (64, 3)]:
        m = (rng.random(shape) < 0.4).astype(np.uint8)
        counts = mask_utils.encode(np.asfortranarray(m))["counts"].decode("ascii")
        assert rle_string_counts(counts) == _uncompressed_rle(m)["counts"]
    data = _coco(tmp_path)
    path = tmp_path / "annotations" / "instances_train2017.json"
    data["annotations"][1]["segmentation"]["counts"] += "~~"  # a run that never ends
    path.write_text(json.dumps(data))
    reader = open_dataset(tmp_path)
    with pytest.raises(DataError) as exc:
        reader.read_mask(reader.samples()[0])
    assert "annotation id 2" in _one_line(exc) and "damaged" in str(exc.value)
    data = _coco(tmp_path)
    data["annotations"][0]["category_id"] = 99
    path.write_text(json.dumps(data))
    reader = open_dataset(tmp_path)
    with pytest.raises(DataError) as exc:
        reader.read_mask(reader.samples()[0])
    assert "annotation id 1" in _one_line(exc) and "category_id 99" in str(exc.value)


def test_coco_roboflow_export_layout(tmp_path: Path) -> None:
    """Roboflow's COCO export: {train,valid}/_annotations.coco.json beside the images."""
    data = _coco(tmp_path / "tmp")
    for split in ("train", "valid"):
        shutil.copytree(tmp_path / "tmp" / "train2017", tmp_path / split)
        (tmp_path / split / "_annotations.coco.json").write_text(json.dumps(data))
    shutil.rmtree(tmp_path / "tmp")
    assert detect_format(tmp_path)[0] == "coco"
    reader = open_dataset(tmp_path)
    assert sorted({s.split for s in reader.samples()}) == ["train", "val"]
    first = reader.samples()[0]
    assert first.image.parent.name == "train" and (reader.read_mask(first) == 3).any()


def test_labelme_shapes_order_ignore_and_names(tmp_path: Path) -> None:
    _labelme(
        tmp_path,
        "a",
        [
            _labelme_shape("road", [[0, 20], [39, 20], [39, 29], [0, 29]]),
            _labelme_shape("car", [[5, 2], [15, 12]], "rectangle"),
            _labelme_shape("road", [[10, 10], [12, 25]], "rectangle"),  # later: over the car
            _labelme_shape("__ignore__", [[30, 0], [39, 5]], "rectangle"),
            _labelme_shape("tree", [[30, 15], [33, 15]], "circle"),
        ],
    )
    _labelme(tmp_path, "b", [])
    name, reason = detect_format(tmp_path)
    assert name == "labelme" and "a.json" in reason
    reader = open_dataset(tmp_path)
    # labelme_json_to_dataset: _background_ = 0, then the labels in sorted order
    assert reader.classes().names == ("_background_", "car", "road", "tree")
    a, b = reader.samples()
    assert a.image.name == "a.jpg" and a.split is None
    expected = np.zeros((30, 40), np.uint8)
    expected[20:30, 0:40] = 2
    expected[2:13, 5:16] = 1  # rectangle corners inclusive (Pillow, as labelme draws)
    expected[10:26, 10:13] = 2
    expected[0:6, 30:40] = 255
    mask = reader.read_mask(a)
    circle = mask == 3
    assert circle[15, 30] and circle[15, 27] and circle[12, 30] and not circle[15, 26] and not circle[10, 30]
    mask[circle] = expected[circle]  # the circle's edge pixels are Pillow's to decide; checked above
    assert np.array_equal(mask, expected)
    assert not reader.read_mask(b).any()


def test_labelme_labels_txt_and_refusals(tmp_path: Path) -> None:
    _labelme(tmp_path, "a", [_labelme_shape("dog", [[1, 1], [5, 1], [5, 5]])])
    (tmp_path / "labels.txt").write_text("__ignore__\n_background_\ncat\ndog\n")
    reader = open_dataset(tmp_path, format="labelme")
    assert reader.classes().names == ("_background_", "cat", "dog")
    assert set(np.unique(reader.read_mask(reader.samples()[0]))) == {0, 2}

    (tmp_path / "labels.txt").write_text("__ignore__\n_background_\ncat\n")
    reader = open_dataset(tmp_path, format="labelme")
    with pytest.raises(DataError) as exc:
        reader.read_mask(reader.samples()[0])
    assert "a.json shapes[0]" in _one_line(exc) and "'dog'" in str(exc.value)

    doc = json.loads((tmp_path / "a.json").read_text())
    doc["imageHeight"] = 100000
    (tmp_path / "a.json").write_text(json.dumps(doc))
    with pytest.raises(DataError) as exc:
        open_dataset(tmp_path, format="labelme").samples()
    assert "imageWidth/imageHeight" in _one_line(exc) and "32768" in str(exc.value)

    doc["imageHeight"] = 31  # the image is 30 high
    (tmp_path / "a.json").write_text(json.dumps(doc))
    reader = open_dataset(tmp_path, format="labelme")
    with pytest.raises(DataError) as exc:
        reader.read_mask(reader.samples()[0])
    assert "40x31" in _one_line(exc) and "40x30" in str(exc.value)


def test_labelme_mask_line_and_point_shapes(tmp_path: Path) -> None:
    import base64
    import io

    patch = np.zeros((6, 8), np.uint8)
    patch[1:5, 2:7] = 1
    buf = io.BytesIO()
    Image.fromarray(patch * 255).save(buf, format="PNG")  # labelme stores masks as base64 PNGs
    mask_shape = _labelme_shape("blob", [[20, 3], [27, 8]], "mask")
    mask_shape["mask"] = base64.b64encode(buf.getvalue()).decode("ascii")
    _labelme(
        tmp_path,
        "a",
        [
            mask_shape,
            _labelme_shape("wire", [[0, 25], [39, 25]], "line"),
            _labelme_shape("pin", [[8, 8]], "point"),
        ],
    )
    reader = open_dataset(tmp_path, format="labelme")
    assert reader.classes().names == ("_background_", "blob", "pin", "wire")
    mask = reader.read_mask(reader.samples()[0])
    blob = np.zeros((30, 40), bool)
    blob[3:9, 20:28] = patch.astype(bool)  # placed at the box of its two points, as labelme does
    assert np.array_equal(mask == 1, blob)
    assert (mask[21:30, 0:40] == 3).sum() >= 9 * 40 * 0.9 and (mask[25, :] == 3).all()  # 10 px wide line
    assert mask[8, 8] == 2 and mask[8, 12] == 2 and mask[8, 14] == 0  # 5 px radius disc

    doc = json.loads((tmp_path / "a.json").read_text())
    doc["shapes"][0]["points"] = [[20, 3], [28, 8]]  # the box no longer fits the PNG
    (tmp_path / "a.json").write_text(json.dumps(doc))
    reader = open_dataset(tmp_path, format="labelme")
    with pytest.raises(DataError) as exc:
        reader.read_mask(reader.samples()[0])
    assert "a.json shapes[0]" in _one_line(exc) and "8x6" in str(exc.value)


def test_cvat_colours_names_and_detection(tmp_path: Path) -> None:
    ids = _cvat(tmp_path)
    name, reason = detect_format(tmp_path)
    assert name == "cvat" and "labelmap.txt" in reason
    reader = open_dataset(tmp_path)
    info = reader.classes()
    assert info.names == ("background", "car", "person")
    assert info.colors == ((0, 0, 0), (250, 50, 83), (61, 245, 61))
    samples = reader.samples()
    assert [s.name for s in samples] == ["frame_000000", "frame_000001"] and samples[0].split is None
    assert np.array_equal(reader.read_mask(samples[0]), ids)


def test_cvat_unknown_colour_is_one_line(tmp_path: Path) -> None:
    ids = _cvat(tmp_path)
    rgb = CVAT_COLORS[ids].copy()
    rgb[4, 7] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "SegmentationClass" / "frame_000001.png")
    reader = open_dataset(tmp_path, format="cvat")
    with pytest.raises(DataError) as exc:
        reader.read_mask(reader.samples()[1])
    msg = _one_line(exc)
    assert "frame_000001.png" in msg and "1,2,3" in msg and "(x=7, y=4)" in msg and "car 250,50,83" in msg


@pytest.mark.parametrize(
    "extra, says",
    [
        ("car:1,2,3::\n", "labelmap.txt line 5: label 'car' is listed twice"),
        (
            "truck:250,50,83::\n",
            "labelmap.txt line 5: 'truck' has the colour 250,50,83 of 'car'; masks could not tell them apart",
        ),
    ],
)
def test_cvat_labelmap_duplicates_are_one_line(tmp_path: Path, extra: str, says: str) -> None:
    from segpipe.data.formats.cvat import read_labelmap

    _cvat(tmp_path)
    (tmp_path / "labelmap.txt").write_text(CVAT_LABELMAP + extra)
    with pytest.raises(DataError) as exc:
        read_labelmap(tmp_path / "labelmap.txt")
    assert _one_line(exc).endswith(says)


def test_cvat_labelmap_of_the_most_labels_is_checked_without_a_hang(tmp_path: Path) -> None:
    """65,535 labels: each name and colour was compared with all before it (82 s of CPU); a colour
    used twice at the very end is still found, with the label that had it first."""
    import signal

    from segpipe.data.formats.cvat import MAX_LABELS, read_labelmap

    rows = "".join(f"c{i}:{i // 256},{i % 256},0::\n" for i in range(MAX_LABELS - 1))
    (tmp_path / "labelmap.txt").write_text(rows + "last:0,7,0::\n")

    def hang(signum, frame):
        raise TimeoutError("still checking labels after 20 s")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(20)
    try:
        with pytest.raises(DataError, match=r"'last' has the colour 0,7,0 of 'c7'"):
            read_labelmap(tmp_path / "labelmap.txt")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_cvat_image_without_mask_is_background_above_255_labels(tmp_path: Path) -> None:
    """An image listed without a mask is all background; with 300 labels and background the 300th,
    its id does not fit a byte (was an OverflowError) and the mask has decode_colors' uint16."""
    _cvat(tmp_path)
    rows = "".join(f"c{i}:{i // 256},{i % 256},1::\n" for i in range(299))
    (tmp_path / "labelmap.txt").write_text(rows + "background:0,0,0::\n")
    (tmp_path / "SegmentationClass" / "frame_000001.png").unlink()
    (tmp_path / "SegmentationClass" / "frame_000000.png").unlink()
    reader = open_dataset(tmp_path, format="cvat")
    mask = reader.read_mask(reader.samples()[1])
    assert mask.dtype == np.uint16 and mask.shape == (20, 30) and (mask == 299).all()
