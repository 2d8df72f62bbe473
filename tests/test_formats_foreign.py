"""Files other tools wrote, read as those tools read them: ADE20K's devkit names, labelme2coco's
background category and layout, older LabelMe files with the picture embedded. Each file is built
the way its writer builds it (pycocotools encodes RLE; labelme's own ``LabelFile.save`` wrote the
committed LabelMe fixtures) and each mask is compared pixel by pixel with the writer's own reader
(pycocotools' ``annToMask``; labelme's ``shapes_to_label``, saved beside the fixtures)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segpipe.data.formats import detect_format, open_dataset
from segpipe.data.formats.ade20k import read_names
from segpipe.errors import DataError

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
FIXTURES = Path(__file__).parent / "data"


def _image(path: Path, width: int, height: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


# ---- ADE20K names ------------------------------------------------------------------------------

# rows as the devkit's objectInfo150.txt holds them (tabs, a space after some indices and names)
DEVKIT_TXT = (
    "Idx\tRatio\tTrain\tVal\tName\n"
    "1\t0.1576\t11664\t1172\twall\n"
    "2\t0.1072\t6046\t612\tbuilding, edifice\n"
    "8\t0.0231\t1906\t199\tbed \n"
    "22 \t0.0074\t709\t75\twater\n"
    "45\t0.0019\t549\t46\tchest of drawers, chest, bureau, dresser\n"
)
# the same rows as semantic-segmentation-pytorch's objectInfo150.csv (';' between every word)
CSAIL_CSV = (
    "Idx,Ratio,Train,Val,Stuff,Name\n"
    "1,0.1576,11664,1172,1,wall\n"
    "2,0.1072,6046,612,1,building;edifice\n"
    "8,0.0231,1906,199,0,bed\n"
    "22,0.0074,709,75,1,water\n"
    "45,0.0019,549,46,0,chest;of;drawers;chest;bureau;dresser\n"
)


def test_ade20k_txt_and_csv_give_the_first_synonym(tmp_path: Path) -> None:
    (tmp_path / "objectInfo150.txt").write_text(DEVKIT_TXT, encoding="utf-8")
    (tmp_path / "objectInfo150.csv").write_text(CSAIL_CSV, encoding="utf-8")
    want = ("wall", "building", "bed", "water", "chest of drawers")  # MMSegmentation's names
    assert read_names(tmp_path / "objectInfo150.txt") == want
    assert read_names(tmp_path / "objectInfo150.csv") == want


def test_ade20k_reader_names_from_the_devkit_txt(tmp_path: Path) -> None:
    base = tmp_path / "ADEChallengeData2016"
    for split in ("training", "validation"):
        _image(base / "images" / split / f"ADE_{split}_1.jpg", 8, 8)
        (base / "annotations" / split).mkdir(parents=True)
        Image.fromarray(np.full((8, 8), 2, np.uint8)).save(
            base / "annotations" / split / f"ADE_{split}_1.png"
        )
    (base / "objectInfo150.txt").write_text(DEVKIT_TXT, encoding="utf-8")
    reader = open_dataset(tmp_path)
    assert reader.classes().names[:3] == ("wall", "building", "bed")
    assert open_dataset(tmp_path, reduce_zero_label=False).classes().names[:3] == (
        "other",
        "wall",
        "building",
    )


# ---- COCO: labelme2coco's background category and layout --------------------------------------


def _labelme2coco(root: Path, w: int = 40, h: int = 30) -> dict:
    """The files labelme's examples/instance_segmentation/labelme2coco.py writes: annotations.json
    (category ids from labels.txt, -1 for __ignore__ skipped, so _background_ is 0; image and
    annotation ids from 0; file_name relative to the JSON) beside JPEGImages/ and Visualization/."""
    from pycocotools import mask as mask_utils

    names = ["_background_", "person", "car"]
    _image(root / "JPEGImages" / "2011_000003.jpg", w, h)
    _image(root / "Visualization" / "2011_000003.jpg", w, h, 1)
    polys = {1: [[4.0, 4.0, 20.0, 4.0, 20.0, 26.0, 4.0, 26.0]], 2: [[12.0, 10.0, 36.0, 10.0, 24.0, 28.0]]}
    anns = []
    for cid, seg in polys.items():
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
        anns.append({"id": len(anns), "image_id": 0, "category_id": cid, "segmentation": seg,
                     "area": float(mask_utils.area(rle)), "bbox": mask_utils.toBbox(rle).flatten().tolist(),
                     "iscrowd": 0})  # fmt: skip
    data = {
        "info": {"description": None, "url": None, "version": None, "year": 2026, "contributor": None,
                 "date_created": "2026-01-01 00:00:00.000000"},
        "licenses": [{"url": None, "id": 0, "name": None}],
        "type": "instances",
        "images": [{"license": 0, "url": None, "file_name": "JPEGImages/2011_000003.jpg", "height": h,
                    "width": w, "date_captured": None, "id": 0}],
        "categories": [{"supercategory": None, "id": i, "name": n} for i, n in enumerate(names)],
        "annotations": anns,
    }  # fmt: skip
    (root / "annotations.json").write_text(json.dumps(data), encoding="utf-8")
    return data


def test_labelme2coco_layout_background_category_is_class_0(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    _labelme2coco(tmp_path)
    name, reason = detect_format(tmp_path)
    assert name == "coco" and "annotations.json" in reason
    reader = open_dataset(tmp_path)
    # 3 classes, not 4: _background_ (id 0) is class 0 and every class sits at its id
    assert reader.classes().names == ("_background_", "person", "car")
    (sample,) = reader.samples()
    assert sample.image == tmp_path / "JPEGImages" / "2011_000003.jpg"
    coco = COCO(str(tmp_path / "annotations.json"))
    expected = np.zeros((30, 40), np.uint8)
    for a in sorted(coco.loadAnns(coco.getAnnIds(imgIds=[0])), key=lambda a: -a["area"]):
        expected[coco.annToMask(a).astype(bool)] = a["category_id"]  # class == category id here
    assert set(np.unique(expected)) == {0, 1, 2}
    assert np.array_equal(reader.read_mask(sample), expected)


@pytest.mark.parametrize(
    ("categories", "want"),
    [
        # Roboflow: id 0 is the project, no annotation uses it; the others keep their order
        ([(0, "cells-xyz"), (1, "a"), (2, "b")], ("background", "a", "b")),
        ([(3, "a"), (7, "background"), (9, "b")], ("background", "a", "b")),
        ([(1, "a"), (2, "b")], ("background", "a", "b")),  # no background category: 0 added
    ],
)
def test_coco_background_category(tmp_path: Path, categories: list, want: tuple) -> None:
    data = _labelme2coco(tmp_path)
    data["categories"] = [{"id": i, "name": n, "supercategory": None} for i, n in categories]
    ids = [i for i, n in categories if n != "background" and i != 0]
    for a, cid in zip(data["annotations"], ids, strict=False):
        a["category_id"] = cid
    (tmp_path / "annotations.json").write_text(json.dumps(data), encoding="utf-8")
    reader = open_dataset(tmp_path)
    assert reader.classes().names == want
    mask = reader.read_mask(reader.samples()[0])
    assert set(np.unique(mask)) == {0, 1, 2}


def test_annotations_json_without_jpegimages_is_not_coco(tmp_path: Path) -> None:
    _labelme2coco(tmp_path)
    shutil.rmtree(tmp_path / "JPEGImages")
    shutil.rmtree(tmp_path / "Visualization")
    with pytest.raises(DataError):
        detect_format(tmp_path)


# ---- LabelMe: the picture embedded in imageData ----------------------------------------------

LABELME = FIXTURES / "labelme_embedded"  # written by labelme's LabelFile.save (make_fixtures.py)


def _expected(stem: str) -> np.ndarray:
    return np.asarray(Image.open(LABELME / f"{stem}.expected.png"))


def test_labelme_reads_imagedata_when_imagepath_names_the_json(tmp_path: Path) -> None:
    shutil.copy(LABELME / "old.json", tmp_path)
    assert json.loads((tmp_path / "old.json").read_text())["imagePath"] == "old.json"
    reader = open_dataset(tmp_path)
    assert reader.name == "labelme" and reader.classes().names == ("_background_", "cat", "dog")
    (sample,) = reader.samples()
    image, mask = reader.load(sample)
    assert np.array_equal(mask, _expected("old"))  # labelme's own shapes_to_label, pixel by pixel
    assert np.array_equal(image, np.asarray(Image.open(LABELME / "old.image.png")))  # its imageData
    assert reader.image_size(sample) == (48, 36)


def test_labelme_imagedata_and_picture_beside_agree_or_one_line(tmp_path: Path) -> None:
    shutil.copy(LABELME / "both.json", tmp_path)
    shutil.copy(LABELME / "both.png", tmp_path)
    reader = open_dataset(tmp_path)
    (sample,) = reader.samples()
    assert sample.image == tmp_path / "both.json"  # the picture is imageData, as labelme reads it
    image, mask = reader.load(sample)
    assert np.array_equal(mask, _expected("both"))
    assert np.array_equal(image, np.asarray(Image.open(LABELME / "both.image.png")))
    Image.fromarray(np.zeros((31, 40, 3), np.uint8)).save(tmp_path / "both.png")  # another picture
    with pytest.raises(DataError) as exc:
        open_dataset(tmp_path).samples()
    msg = str(exc.value)
    assert "\n" not in msg and "imageData is 40x30" in msg and "40x31" in msg and "both.png" in msg


def test_labelme_embedded_picture_exported_as_the_image(tmp_path: Path) -> None:
    from segpipe.data.inspect import export_masks, scan_data
    from segpipe.progress import Reporter

    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(LABELME / "old.json", data)
    reader = open_dataset(data)
    report = scan_data(reader)
    assert not report.problems and report.pixels.sum() == 48 * 36
    out = export_masks(reader, reader.samples(), report.classes, tmp_path / "seed", Reporter())
    exported = out / "images" / "old.png"
    assert np.array_equal(
        np.asarray(Image.open(exported).convert("RGB")), np.asarray(Image.open(LABELME / "old.image.png"))
    )
    assert np.array_equal(np.asarray(Image.open(out / "indexes" / "old_color_mask.png")), _expected("old"))


def test_labelme_imagedata_not_base64_is_one_line(tmp_path: Path) -> None:
    doc = json.loads((LABELME / "old.json").read_text())
    doc["imageData"] = "@@not base64@@"
    (tmp_path / "old.json").write_text(json.dumps(doc))
    with pytest.raises(DataError) as exc:
        open_dataset(tmp_path).samples()
    assert "\n" not in str(exc.value) and "imageData" in str(exc.value)


# ---- COCO: crowds (datumaro's export) and boxes only (a detection export) ---------------------


def _rle_counts(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE counts as datumaro's mask_to_rle writes them: column-major runs,
    starting with the zeros."""
    flat = np.asfortranarray(mask).ravel(order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    return np.diff(np.concatenate([[0], edges])).astype(int).tolist()


def _datumaro_coco(root: Path, w: int = 40, h: int = 30) -> dict:
    """What datumaro's COCO exporter writes for mask annotations (segmentation mode 'guess'):
    images/train/, annotations/instances_train.json, every mask an uncompressed RLE with
    iscrowd 1, category ids 1 + label index."""
    from pycocotools import mask as mask_utils

    _image(root / "images" / "train" / "a.jpg", w, h)
    masks = {1: np.zeros((h, w), np.uint8), 2: np.zeros((h, w), np.uint8)}
    masks[1][2:20, 3:30] = 1
    masks[2][10:28, 20:38] = 1
    anns = []
    for cid, m in masks.items():
        seg = {"counts": _rle_counts(m), "size": [h, w]}
        area = float(mask_utils.area(mask_utils.frPyObjects(seg, h, w)))
        bbox = mask_utils.toBbox(mask_utils.encode(np.asfortranarray(m))).tolist()
        anns.append({"id": cid, "image_id": 1, "category_id": cid, "segmentation": seg, "area": area,
                     "bbox": bbox, "iscrowd": 1, "attributes": {"occluded": False}})  # fmt: skip
    data = {
        "licenses": [{"name": "", "id": 0, "url": ""}],
        "info": {"contributor": "", "date_created": "", "description": "", "url": "", "version": "", "year": ""},
        "categories": [{"id": 1, "name": "road", "supercategory": ""}, {"id": 2, "name": "car", "supercategory": ""}],
        "images": [{"id": 1, "width": w, "height": h, "file_name": "a.jpg", "license": 0, "flickr_url": "",
                    "coco_url": "", "date_captured": 0}],
        "annotations": anns,
    }  # fmt: skip
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "instances_train.json").write_text(json.dumps(data), encoding="utf-8")
    return data


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)

    warn = info

    def task(self, *a: object, **k: object):  # noqa: ANN201 - the silent reporter's progress bar
        from segpipe.progress import Reporter

        return Reporter().task(*a, **k)


def test_coco_crowds_said_and_kept_with_crowds_class(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    from segpipe.data.inspect import scan_data

    _datumaro_coco(tmp_path)
    coco = COCO(str(tmp_path / "annotations" / "instances_train.json"))
    road, car = (coco.annToMask(coco.anns[i]).astype(bool) for i in (1, 2))
    lines = _Lines()
    reader = open_dataset(tmp_path, reporter=lines)
    (sample,) = reader.samples()
    (said,) = [ln for ln in lines.lines if "crowds" in ln]
    assert "2 of 2 annotation(s) are crowds" in said and "--crowds class" in said
    mask = reader.read_mask(sample)
    assert np.array_equal(mask == 255, road | car) and not (mask == 1).any()  # crowds: ignore only
    report = scan_data(open_dataset(tmp_path, reporter=lines))
    (note,) = report.notes
    assert f"{int((road | car).sum()):,} pixels ignore" in note
    kept = open_dataset(tmp_path, crowds="class")
    expected = np.zeros(mask.shape, np.uint8)
    expected[road] = 1  # the larger first, as for any annotation
    expected[car] = 2
    assert road.sum() > car.sum() and np.array_equal(kept.read_mask(kept.samples()[0]), expected)
    assert not scan_data(kept).notes


def test_crowds_flag_on_the_command_line(tmp_path: Path, voc_root: Path) -> None:
    from typer.testing import CliRunner

    from segpipe.cli.app import app

    _datumaro_coco(tmp_path)
    res = CliRunner().invoke(app, ["data", str(tmp_path)])
    assert res.exit_code == 0 and "are crowds" in res.output and "pixels ignore" in res.output
    res = CliRunner().invoke(app, ["data", str(tmp_path), "--crowds", "class"])
    assert res.exit_code == 0 and "kept as their class" in res.output and "pixels ignore" not in res.output
    res = CliRunner().invoke(app, ["data", str(tmp_path), "--crowds", "maybe"])
    assert res.exit_code != 0 and "--crowds maybe" in res.output
    res = CliRunner().invoke(app, ["data", str(voc_root), "--crowds", "class"])
    assert res.exit_code != 0 and "--crowds class: applies to COCO crowds" in " ".join(res.output.split())


def _detection_export(root: Path) -> Path:
    """Roboflow's COCO export of a detection project: boxes, 'segmentation': []."""
    data = _labelme2coco(root / "tmp")
    for a in data["annotations"]:
        a["segmentation"] = []
    data["categories"] = [{"id": 0, "name": "cells", "supercategory": "none"}] + [
        {"id": i, "name": n, "supercategory": "cells"} for i, n in ((1, "person"), (2, "car"))
    ]
    (root / "train").mkdir(parents=True)
    shutil.copy(root / "tmp" / "JPEGImages" / "2011_000003.jpg", root / "train" / "2011_000003.jpg")
    data["images"][0]["file_name"] = "2011_000003.jpg"
    (root / "train" / "_annotations.coco.json").write_text(json.dumps(data), encoding="utf-8")
    shutil.rmtree(root / "tmp")
    return root


def test_coco_boxes_only_refused_for_training_and_reported_by_data(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from segpipe.cli.app import app
    from segpipe.data.inspect import scan_data

    root = _detection_export(tmp_path)
    with pytest.raises(DataError) as exc:
        open_dataset(root).samples()
    msg = str(exc.value)
    assert (
        "\n" not in msg
        and "none of its 2 annotation(s) has a mask" in msg
        and "_annotations.coco.json" in msg
    )
    report = scan_data(open_dataset(root))
    assert any("has a mask" in p for p in report.problems)
    res = CliRunner().invoke(app, ["data", str(root)])
    assert "has a mask" in " ".join(res.output.split()) and "no problems found" not in res.output


def test_coco_some_boxes_only_are_counted(tmp_path: Path) -> None:
    data = _labelme2coco(tmp_path)
    data["annotations"][1].pop("segmentation")
    (tmp_path / "annotations.json").write_text(json.dumps(data), encoding="utf-8")
    lines = _Lines()
    reader = open_dataset(tmp_path, reporter=lines)
    mask = reader.read_mask(reader.samples()[0])
    assert any("1 of 2 annotation(s) have no mask" in ln for ln in lines.lines)
    assert set(np.unique(mask)) == {0, 1}


def test_labelme_imagedata_wins_over_an_imagepath_outside_the_data_set(tmp_path: Path) -> None:
    """Saved elsewhere: imagePath names a picture outside the data root, imageData holds it. labelme
    reads imageData; so does segpipe, without opening the outside file."""
    data = tmp_path / "data"
    data.mkdir()
    _image(tmp_path / "outside.png", 5, 5)  # another size: it must not be looked at
    doc = json.loads((LABELME / "both.json").read_text())
    doc["imagePath"] = "..\\outside.png"
    (data / "both.json").write_text(json.dumps(doc))
    reader = open_dataset(data)
    (sample,) = reader.samples()
    assert sample.image == data / "both.json"
    assert np.array_equal(reader.load(sample)[1], _expected("both"))
