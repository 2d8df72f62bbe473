"""Layouts users bring from other tools (issue 24, part 2): Cityscapes as MMSegmentation converts it
and with only instanceIds, CVAT for images 1.1 XML, Datumaro's common semantic segmentation,
CamVid, Mapillary Vistas; and what detection says when it finds nothing.

Each layout is written as its writer writes it (the writer itself where it is installed, e.g.
cityscapesScripts' ``json2labelImg``), and segpipe's masks are compared pixel by pixel with an
independent decoding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from segpipe.cli.app import app
from segpipe.data.formats import detect_format, open_dataset
from segpipe.errors import DataError


def cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def _noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def masks_of(root: Path, fmt: str = "auto", **kw: object) -> dict[str, np.ndarray]:
    reader = open_dataset(root, fmt, **kw)
    return {s.name: reader.load(s)[1] for s in reader.samples()}


# ---- Cityscapes: labelTrainIds (MMSegmentation), labelIds, instanceIds only ------------------------
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
            Image.fromarray(_noise(h, w, i)).save(img_dir / f"{stem}_leftImg8bit.png")
            objects = [
                {"label": lab, "polygon": [[x + i, y] for x, y in poly], "deleted": 0, "date": "", "id": k, "user": "x", "verified": 0}
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


def test_cityscapes_label_train_ids_and_instance_ids_only_equal_label_ids(tmp_path: Path) -> None:
    full = make_cityscapes_with_scripts(tmp_path / "all", ("labelIds", "labelTrainIds", "instanceIds"))
    truth = cityscapes_truth(full)
    assert len(truth) == 3
    some = next(iter(truth.values()))
    assert {0, 10, 11, 13, 255} <= set(np.unique(some).tolist())  # road, sky, person, car, ignored
    inst = np.asarray(Image.open(next((full / "gtFine").glob("train/*/*_instanceIds.png"))))
    assert inst.max() == 26001 and (inst == 26).any()  # two cars and a car group, as json2instanceImg writes
    for keep in (("labelTrainIds",), ("instanceIds",), ("labelIds",)):
        root = make_cityscapes_with_scripts(tmp_path / keep[0], keep)
        got = masks_of(root)
        assert detect_format(root)[0] == "cityscapes"
        assert set(got) == set(truth)
        for name, mask in got.items():
            np.testing.assert_array_equal(mask, truth[name], err_msg=f"{keep[0]}: {name}")
    # all three present: labelTrainIds is read (what MMSegmentation reads), equal again
    reader = open_dataset(full)
    assert all(s.label.name.endswith("_labelTrainIds.png") for s in reader.samples())


def test_cityscapes_train_ids_outside_the_19_are_one_line(tmp_path: Path) -> None:
    root = make_cityscapes_with_scripts(tmp_path / "cs", ("labelTrainIds",))
    p = next((root / "gtFine").glob("train/*/*_labelTrainIds.png"))
    a = np.asarray(Image.open(p)).copy()
    a[3, 7] = 19
    Image.fromarray(a).save(p)
    reader = open_dataset(root)
    sample = next(s for s in reader.samples() if s.label == p)
    with pytest.raises(DataError, match=r"value 19 at pixel \(x=7, y=3\) is not a Cityscapes train id"):
        reader.load(sample)


# ---- detection: the short line, the listing, one folder too deep, layouts without masks --------------
def test_no_format_is_one_short_line_pointing_at_the_listing(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("x")
    with pytest.raises(DataError) as e:
        detect_format(tmp_path / "d")
    msg = str(e.value)
    assert "no label format found" in msg and "segpipe data --formats" in msg
    assert len(msg) < 200 and "\n" not in msg
    r = cli("data", tmp_path / "d")
    assert r.exit_code == 1 and "segpipe data --formats" in r.output
    listing = cli("data", "--formats")
    assert listing.exit_code == 0
    from segpipe.data.formats import available_formats, reader_class

    for name in available_formats():  # every format, with the files that identify it
        assert f"  {name} " in listing.output
        assert reader_class(name).layout in listing.output.replace("\n", "")


@pytest.mark.parametrize(
    ("dataset", "deep"),
    [("voc", "JPEGImages"), ("cityscapes", "leftImg8bit"), ("cityscapes", "leftImg8bit/train")],
)
def test_data_root_one_folder_too_deep_names_the_parent(
    voc_root: Path, cityscapes_root: Path, dataset: str, deep: str
) -> None:
    root = voc_root if dataset == "voc" else cityscapes_root
    with pytest.raises(DataError) as e:
        detect_format(root / deep)
    assert f"the parent folder {root.resolve()} is a {dataset} data set" in str(e.value)
    assert f"use --data-root {root.resolve()}" in str(e.value)
    r = cli("train", "--data-root", root / deep, "--num-classes", "3", "--epochs", "1")
    assert r.exit_code == 1 and f"is a {dataset} data set" in r.output


def test_data_root_one_folder_too_high_names_the_data_set(voc_root: Path, tmp_path: Path) -> None:
    top = tmp_path / "VOCdevkit"
    top.mkdir()
    (top / "VOC2012").symlink_to(voc_root, target_is_directory=True)
    with pytest.raises(DataError, match=r"the folder .*VOC2012 is a voc data set .*use --data-root"):
        detect_format(top)


def test_layouts_without_masks_say_why_in_one_line(tmp_path: Path) -> None:
    det = tmp_path / "VOC2007"
    (det / "Annotations").mkdir(parents=True)
    (det / "JPEGImages").mkdir()
    (det / "Annotations" / "000001.xml").write_text("<annotation><object><bndbox/></object></annotation>")
    with pytest.raises(DataError, match="Pascal VOC detection .* cannot train segmentation"):
        detect_format(det)
    cs = tmp_path / "cityscapes"
    (cs / "leftImg8bit" / "train" / "aachen").mkdir(parents=True)
    with pytest.raises(DataError, match="without labels; unpack gtFine_trainvaltest.zip"):
        detect_format(cs)
