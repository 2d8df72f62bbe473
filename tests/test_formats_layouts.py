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
from layout_writers import (
    CAMVID_SOME,
    DM_LABELS,
    cityscapes_truth,
    label_map,
    make_cityscapes_with_scripts,
    make_cvat_xml,
    noise,
    paint,
    save_bgr,
    unpaint,
    vistas_config,
)
from PIL import Image
from typer.testing import CliRunner

from segpipe.cli.app import app
from segpipe.data.formats import detect_format, open_dataset
from segpipe.errors import DataError


def cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def masks_of(root: Path, fmt: str = "auto", **kw: object) -> dict[str, np.ndarray]:
    reader = open_dataset(root, fmt, **kw)
    return {s.name: reader.load(s)[1] for s in reader.samples()}


# ---- Cityscapes: labelTrainIds (MMSegmentation), labelIds, instanceIds only ------------------------
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
    a[3, 7] = 20
    Image.fromarray(a).save(p)
    reader = open_dataset(root)
    sample = next(s for s in reader.samples() if s.label == p)
    with pytest.raises(DataError, match=r"value 20 at pixel \(x=7, y=3\) is not a Cityscapes train id"):
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
    assert "Pascal VOC detection: Annotations/*.xml" in listing.output


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
    what = "the folder two levels up," if "/" in deep else "the parent folder"
    assert f"{what} {root.resolve()} is a {dataset} data set" in str(e.value)
    assert f"use --data-root {root.resolve()}" in str(e.value)
    r = cli("train", "--data-root", root / deep, "--num-classes", "3", "--epochs", "1")
    assert r.exit_code == 1 and f"is a {dataset} data set" in r.output


def test_data_root_that_is_a_file_of_a_data_set_names_its_folder(tmp_path: Path) -> None:
    root = tmp_path / "cvat"
    make_cvat_xml(root)
    r = cli("data", root / "annotations.xml")
    assert r.exit_code == 1
    assert (
        f"is a file, not a folder; the parent folder {root.resolve()} is a cvat_images data set" in r.output
    )


def test_data_root_one_folder_too_high_names_the_data_set(voc_root: Path, tmp_path: Path) -> None:
    top = tmp_path / "VOCdevkit"
    top.mkdir()
    (top / "VOC2012").symlink_to(voc_root, target_is_directory=True)
    with pytest.raises(DataError, match=r"the folder .*VOC2012 is a voc data set .*use --data-root"):
        detect_format(top)
    (top / "VOC2007").symlink_to(voc_root, target_is_directory=True)
    with pytest.raises(DataError, match=r"its sub-folders VOC2007/ \(voc\), VOC2012/ \(voc\) are data sets"):
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
    (cs / "gtCoarse" / "train_extra").mkdir(parents=True)
    with pytest.raises(DataError, match=r"coarse labels only \(gtCoarse/\); segpipe reads the fine ones"):
        detect_format(cs)


# ---- CVAT for images 1.1 XML -------------------------------------------------------------------------
@pytest.mark.parametrize("project", [False, True])
def test_cvat_xml_shapes_become_the_class_maps_cvat_draws(tmp_path: Path, project: bool) -> None:
    root = tmp_path / "cvat"
    truth = make_cvat_xml(root, project)
    assert (
        (root / "annotations.xml")
        .read_bytes()
        .startswith(b'<?xml version="1.0" encoding="utf-8"?>\n<annotations>')
    )
    assert detect_format(root)[0] == "cvat_images"
    from segpipe.progress import Reporter

    class Rec(Reporter):
        def __init__(self) -> None:
            self.warnings: list[str] = []

        def warn(self, message: str) -> None:
            self.warnings.append(message)

    rec = Rec()
    reader = open_dataset(root, reporter=rec)
    info = reader.classes()
    assert info.names == ("background", "car", "person", "road")
    assert info.colors[:3] == ((0, 0, 0), (250, 50, 83), (255, 0, 204))
    got = {s.name: reader.load(s)[1] for s in reader.samples()}
    assert set(got) == set(truth)
    for name, mask in got.items():
        np.testing.assert_array_equal(mask, truth[name], err_msg=name)
    assert any("2 points, 2 polyline have no area" in m for m in rec.warnings)
    splits = {s.name: s.split for s in reader.samples()}
    if project:
        assert splits == {"Train/a": "train", "Validation/sub/b": "val", "Train/c": "train"}
    else:
        assert set(splits.values()) == {None}


def test_cvat_xml_problems_are_one_line(tmp_path: Path) -> None:
    root = tmp_path / "cvat"
    make_cvat_xml(root)
    (root / "images" / "a.jpg").unlink()
    with pytest.raises(
        DataError, match=r"1 image\(s\) named in .* are not under images/ .*'Save images'.*a\.jpg"
    ):
        open_dataset(root).samples()
    r = cli("data", root, "--format", "cvat")  # the Segmentation mask reader points at this one
    assert r.exit_code == 1 and "--format cvat_images" in r.output
    xml = (root / "annotations.xml").read_text()
    (root / "annotations.xml").write_text(xml.replace('label="person"', 'label="bike"', 1))
    Image.fromarray(noise(40, 48)).save(root / "images" / "a.jpg")
    reader = open_dataset(root)
    with pytest.raises(DataError, match=r"label 'bike' is not in <meta> labels"):
        [reader.load(s) for s in reader.samples()]
    video = tmp_path / "video"
    video.mkdir()
    (video / "annotations.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version><meta><task><labels>'
        "<label><name>car</name></label></labels></task></meta>"
        '<track id="0" label="car"><box frame="0" outside="0" occluded="0" keyframe="1" xtl="1" ytl="1" '
        'xbr="5" ybr="5" z_order="0"/></track></annotations>'
    )
    with pytest.raises(DataError, match="CVAT for video 1.1 .* export the task as 'CVAT for images 1.1'"):
        open_dataset(video).samples()
    odd = xml.replace('points="0.00,30.00;', 'points="0.00,30.00;7;', 1)
    (root / "annotations.xml").write_text(odd)
    reader = open_dataset(root)
    with pytest.raises(DataError, match=r"<polygon label='road'>: 9 coordinates, not x,y pairs"):
        [reader.load(s) for s in reader.samples()]
    (root / "annotations.xml").write_text(xml.replace('rotation="90.00"', 'rotation="ninety"'))
    with pytest.raises(DataError, match=r"<box>: z_order '0' or rotation 'ninety' is not a number"):
        open_dataset(root).samples()
    lines = tmp_path / "lines"
    (lines / "images").mkdir(parents=True)
    Image.fromarray(noise(8, 8)).save(lines / "images" / "a.png")
    (lines / "annotations.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version><meta><task><labels>'
        '<label><name>lane</name></label></labels></task></meta><image id="0" name="a.png" width="8" '
        'height="8"><polyline label="lane" occluded="0" points="0.00,0.00;7.00,7.00" z_order="0"/></image>'
        "</annotations>"
    )
    r = cli("data", lines)
    assert (
        r.exit_code == 1
        and "no <image> holds a polygon, box, ellipse or mask (1 polyline have no area)" in r.output
    )
    bomb = tmp_path / "bomb"
    bomb.mkdir()
    (bomb / "annotations.xml").write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE annotations [<!ENTITY a "aaaa">]>\n<annotations>&a;</annotations>'
    )
    with pytest.raises(DataError, match="DOCTYPE or entity declaration"):
        open_dataset(bomb, "cvat_images").samples()


# ---- colour-mask layouts: datumaro common semantic segmentation, CamVid, Mapillary Vistas -----------
@pytest.mark.parametrize("layout", ["flat", "splits", "prefixed"])
def test_common_semantic_segmentation(tmp_path: Path, layout: str) -> None:
    root = tmp_path / "css"
    colors = [c for _, c in DM_LABELS]
    meta = {  # datumaro's save_meta_file
        "labels": [n for n, _ in DM_LABELS],
        "label_map": {str(i): n for i, (n, _) in enumerate(DM_LABELS)},
        "segmentation_colors": [list(c) for c in colors],
        "background_label": "0",
    }
    truth = {}
    for split in ("train", "val") if layout == "splits" else ("",):
        d = root / split
        (d / "images").mkdir(parents=True)
        (d / "dataset_meta.json").write_text(json.dumps(meta, indent=2))
        for i in range(2):
            ids = label_map(i + len(split), len(colors))
            img, gt = (f"image_{i:04d}", f"gt_{i:04d}") if layout == "prefixed" else (f"{i:04d}", f"{i:04d}")
            Image.fromarray(noise(*ids.shape, i)).save(d / "images" / f"{img}.png")
            save_bgr(d / "masks" / f"{gt}.png", paint(ids, colors))
            truth[f"{split}/{i:04d}" if split else f"{i:04d}"] = unpaint(
                np.asarray(Image.open(d / "masks" / f"{gt}.png").convert("RGB")), colors
            )
    assert detect_format(root)[0] == "common_semantic_segmentation"
    reader = open_dataset(root)
    assert reader.classes().names == tuple(n for n, _ in DM_LABELS)
    assert reader.classes().colors == tuple(colors)
    got = {s.name: reader.load(s)[1] for s in reader.samples()}
    assert set(got) == set(truth) and len(truth) >= 2
    for name, mask in got.items():
        np.testing.assert_array_equal(mask, truth[name], err_msg=name)
    if layout == "splits":
        assert {s.split for s in reader.samples()} == {"train", "val"}
    bad = next((root / ("train" if layout == "splits" else "")).glob("masks/*.png"))
    rgb = np.asarray(Image.open(bad).convert("RGB")).copy()
    rgb[1, 2] = (1, 2, 3)
    save_bgr(bad, rgb)
    sample = next(s for s in reader.samples() if s.label == bad)
    with pytest.raises(DataError, match=r"colour 1,2,3 at pixel \(x=2, y=1\) is not in dataset_meta.json"):
        reader.load(sample)
    import cv2  # a 16-bit colour mask: its values are not the 8-bit colours of the label map

    cv2.imwrite(str(bad), (rgb.astype(np.uint16) * 257)[:, :, ::-1])
    with pytest.raises(DataError, match="a uint16 colour mask; colour masks are 8 bits a channel"):
        reader.load(sample)


@pytest.mark.parametrize("layout", ["original", "kaggle", "datumaro", "segnet", "segnet_no_lists"])
def test_camvid_layouts(tmp_path: Path, layout: str) -> None:
    root = tmp_path / "camvid"
    root.mkdir()
    # classes as datumaro gives them: the 0,0,0 label moved to id 0
    ordered = [CAMVID_SOME[3]] + CAMVID_SOME[:3]
    colors = [c for _, c in ordered]
    if layout == "original":  # label_colors.txt as CamVid ships it: 'R G B\tName'
        (root / "label_colors.txt").write_text("".join(f"{r} {g} {b}\t{n}\n" for n, (r, g, b) in CAMVID_SOME))
    elif layout == "kaggle":
        (root / "class_dict.csv").write_text(
            "name,r,g,b\n" + "".join(f"{n},{r},{g},{b}\n" for n, (r, g, b) in CAMVID_SOME)
        )
    elif layout == "datumaro":  # datumaro's write_label_map: 'r g b name'
        (root / "label_colors.txt").write_text("".join(f"{r} {g} {b} {n}\n" for n, (r, g, b) in ordered))
    truth: dict[str, np.ndarray] = {}
    for split, names in (("train", ["0001TP_006690", "0001TP_006720"]), ("val", ["0016E5_07959"])):
        lines = []
        for k, stem in enumerate(names):
            ids = label_map(k + len(split), len(colors))
            image = noise(*ids.shape, k)
            if layout == "original":
                (root / "701_StillsRaw_full").mkdir(exist_ok=True)
                Image.fromarray(image).save(root / "701_StillsRaw_full" / f"{stem}.png")
                save_bgr(root / "LabeledApproved_full" / f"{stem}_L.png", paint(ids, colors))
                name, label = stem, root / "LabeledApproved_full" / f"{stem}_L.png"
            elif layout == "kaggle":
                (root / split).mkdir(exist_ok=True)
                Image.fromarray(image).save(root / split / f"{stem}.png")
                save_bgr(root / f"{split}_labels" / f"{stem}_L.png", paint(ids, colors))
                name, label = f"{split}/{stem}", root / f"{split}_labels" / f"{stem}_L.png"
            else:
                (root / split).mkdir(exist_ok=True)
                Image.fromarray(image).save(root / split / f"{stem}.png")
                (root / f"{split}annot").mkdir(exist_ok=True)
                label = root / f"{split}annot" / f"{stem}.png"
                if layout == "datumaro":
                    save_bgr(label, paint(ids, colors))
                    lines.append(f"/{split}/{stem}.png {split}annot/{stem}.png")
                else:  # SegNet: grey indices 0..11 (11 unlabelled), lists with SegNet's own paths
                    seg = ids.copy()
                    seg[0, :] = 11
                    Image.fromarray(seg, mode="L").save(label)
                    lines.append(f"/SegNet/CamVid/{split}/{stem}.png /SegNet/CamVid/{split}annot/{stem}.png")
                name = f"{split}/{stem}"
            if layout.startswith("segnet"):
                expect = np.asarray(Image.open(label)).copy()
                expect[expect == 11] = 255
            else:
                expect = unpaint(np.asarray(Image.open(label).convert("RGB")), colors)
            truth[name] = expect
        if lines and layout != "segnet_no_lists":
            (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    assert detect_format(root)[0] == "camvid"
    reader = open_dataset(root)
    info = reader.classes()
    if layout.startswith("segnet"):
        assert info.names[:4] == ("Sky", "Building", "Pole", "Road") and len(info.names) == 11
    else:
        assert info.names == tuple(n for n, _ in ordered) and info.colors == tuple(colors)
    got = {s.name: reader.load(s)[1] for s in reader.samples()}
    assert set(got) == set(truth)
    for name, mask in got.items():
        np.testing.assert_array_equal(mask, truth[name], err_msg=name)
    if layout != "original":
        assert {s.split for s in reader.samples()} == {"train", "val"}


def test_camvid_list_paths_stay_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "camvid"
    (root / "trainannot").mkdir(parents=True)
    (root / "train.txt").write_text("/../../etc/passwd trainannot/x.png\n")
    with pytest.raises(DataError, match="resolves outside the data root"):
        open_dataset(root).samples()


@pytest.mark.parametrize("version", ["v2.0", "v1.2", "v1.1"])
def test_mapillary_vistas_label_pngs(tmp_path: Path, version: str) -> None:
    root = tmp_path / "vistas"
    config = {"v2.0": "config_v2.0.json", "v1.2": "config_v1.2.json", "v1.1": "config.json"}[version]
    labels_dir = {"v2.0": "v2.0/labels", "v1.2": "v1.2/labels", "v1.1": "labels"}[version]
    cfg = vistas_config(4)
    root.mkdir()
    (root / config).write_text(json.dumps(cfg))
    palette = [v for lab in cfg["labels"] for v in lab["color"]]
    truth = {}
    for split in ("training", "validation"):
        (root / split / "images").mkdir(parents=True)
        (root / split / labels_dir).mkdir(parents=True)
        for k in range(2):
            key = f"{split[:3]}{k}Kq2tT8dDvA5b0Ltgg"
            ids = label_map(k + len(split), 4)
            Image.fromarray(noise(*ids.shape, k)).save(root / split / "images" / f"{key}.jpg")
            im = Image.fromarray(ids, mode="P")  # as Vistas ships them: 8-bit palette PNGs
            im.putpalette(palette + [0] * (768 - len(palette)))
            im.save(root / split / labels_dir / f"{key}.png")
            truth[f"{split}/{key}"] = np.asarray(Image.open(root / split / labels_dir / f"{key}.png"))
    (root / "testing" / "images").mkdir(parents=True)  # no labels: left out
    assert detect_format(root)[0] == "mapillary_vistas"
    reader = open_dataset(root)
    info = reader.classes()
    assert info.names == tuple(lab["name"] for lab in cfg["labels"])
    assert info.colors == tuple(tuple(lab["color"]) for lab in cfg["labels"])
    got = {s.name: reader.load(s)[1] for s in reader.samples()}
    assert set(got) == set(truth)
    for name, mask in got.items():
        np.testing.assert_array_equal(mask, truth[name], err_msg=name)
    assert {s.split for s in reader.samples()} == {"train", "val"}
    # a value beyond the config's labels is one line
    p = next((root / "training" / labels_dir).glob("*.png"))
    a = np.asarray(Image.open(p)).copy()
    a[2, 3] = 9
    im = Image.fromarray(a, mode="P")
    im.putpalette(palette + [0] * (768 - len(palette)))
    im.save(p)
    with pytest.raises(
        DataError, match=rf"value 9 at pixel \(x=3, y=2\) is beyond the 4 classes of {config}"
    ):
        reader.load(next(s for s in reader.samples() if s.label == p))


def _broken(root: Path, kind: str) -> tuple[str, str]:
    """A data set of ``kind`` with one broken label file: (file named, what the line says)."""
    if kind == "vistas":
        (root / "training" / "images").mkdir(parents=True)
        (root / "training" / "v2.0" / "labels").mkdir(parents=True)
        (root / "config_v2.0.json").write_text('{"labels": [{"name": "a", "color": [1, 2]}]}')
        return "config_v2.0.json", "colour [1, 2] is not r, g, b"
    if kind == "camvid_txt":
        (root / "x_L.png").write_bytes(b"")
        (root / "label_colors.txt").write_text("64 128 64\tAnimal\n1 2\tBad\n")
        return "label_colors.txt", "line 2: expected 'R G B Name'"
    if kind == "camvid_csv":
        (root / "x_L.png").write_bytes(b"")
        (root / "class_dict.csv").write_text("label,red,green,blue\nAnimal,64,128,64\n")
        return "class_dict.csv", "is not name,r,g,b"
    if kind == "css":
        (root / "images").mkdir(parents=True)
        (root / "masks").mkdir()
        (root / "dataset_meta.json").write_text('["Void", "Road"]')
        return "dataset_meta.json", "expected a JSON object"
    (root / "images").mkdir(parents=True)
    (root / "annotations.xml").write_text('<?xml version="1.0"?>\n<annotations><meta><task><labels><label>')
    return "annotations.xml", "not valid XML"


@pytest.mark.parametrize("kind", ["vistas", "camvid_txt", "camvid_csv", "css", "cvat_xml"])
def test_a_broken_label_file_is_one_line_naming_it(tmp_path: Path, kind: str) -> None:
    root = tmp_path / kind
    root.mkdir()
    name, says = _broken(root, kind)
    r = cli("data", root)
    assert r.exit_code == 1, r.output
    line = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(line) == 1 and name in line[0] and says in line[0], r.output
    assert "Traceback" not in r.output


def test_cvat_xml_the_same_image_twice_is_one_sample_with_both_shapes(tmp_path: Path) -> None:
    root = tmp_path / "cvat"
    (root / "images" / "Train").mkdir(parents=True)
    Image.fromarray(noise(10, 10)).save(root / "images" / "Train" / "a.png")
    image = '<image id="{}" name="a.png" subset="Train" task_id="{}" width="10" height="10">{}</image>'
    (root / "annotations.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version><meta><project><labels>'
        "<label><name>a</name></label><label><name>b</name></label></labels></project></meta>"
        + image.format(0, 1, '<box label="a" occluded="0" xtl="0" ytl="0" xbr="4" ybr="4" z_order="0"/>')
        + image.format(1, 2, '<box label="b" occluded="0" xtl="5" ytl="5" xbr="9" ybr="9" z_order="0"/>')
        + "</annotations>"
    )
    reader = open_dataset(root)
    (sample,) = reader.samples()
    mask = reader.load(sample)[1]
    assert (mask[0:4, 0:4] == 1).all() and (mask[5:9, 5:9] == 2).all() and mask[4, 4] == 0


@pytest.mark.parametrize(
    "name, text, says",
    [
        (
            "dataset_meta.json",
            '{"labels": ["a"], "label_map": {"0": "a"}, "segmentation_colors": [[Infinity, 0, 0]]}',
            "segmentation_colors[0]: colour [inf, 0, 0] is not r, g, b",
        ),
        (
            "dataset_meta.json",
            '{"labels": ["a", "b"], "label_map": {"-1": "a", "1": "b"}, '
            '"segmentation_colors": [[0, 0, 0], [1, 2, 3]]}',
            "label_map['-1']: no segmentation_colors entry",
        ),
        ("class_dict.csv", "name,r,g,b\n" + "A" * 200_000 + ",1,2,3\n", "not a CSV label file (field larger"),
    ],
    ids=["infinity", "negative-key", "huge-field"],
)
def test_a_malformed_label_map_is_one_line(tmp_path: Path, name: str, text: str, says: str) -> None:
    from segpipe.data.formats._labelmaps import read_class_dict, read_dataset_meta

    path = tmp_path / name
    path.write_text(text)
    read = read_dataset_meta if name.endswith(".json") else read_class_dict
    with pytest.raises(DataError) as err:  # was OverflowError, a silent colours[-1], _csv.Error
        read(path)
    assert says in str(err.value) and str(path) in str(err.value)


def test_a_label_map_of_the_most_labels_is_checked_without_a_hang(tmp_path: Path) -> None:
    import signal

    from segpipe.data.formats._labelmaps import MAX_LABELS, read_class_dict

    rows = "".join(f"c{i},{i % 256},{i // 256},0\n" for i in range(MAX_LABELS - 1)) + "c0,1,1,1\n"
    (tmp_path / "class_dict.csv").write_text("name,r,g,b\n" + rows)

    def hang(signum, frame):  # the duplicate check compared each name with all before it: ~100 s
        raise TimeoutError("still checking names after 20 s")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(20)
    try:
        with pytest.raises(DataError, match="label 'c0' is listed twice"):
            read_class_dict(tmp_path / "class_dict.csv")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_a_camvid_list_line_of_megabytes_is_shortened_in_the_error(tmp_path: Path) -> None:
    root = tmp_path / "camvid"
    for sub in ("train", "trainannot"):
        (root / sub).mkdir(parents=True)
    Image.fromarray(noise(4, 4)).save(root / "train" / "a.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "trainannot" / "a.png")
    (root / "train.txt").write_text("a" * 1_000_000 + " b\n")
    with pytest.raises(DataError) as err:
        open_dataset(root).samples()
    assert "train.txt:1 aaaa" in str(err.value) and len(str(err.value)) < 1000  # was the whole line


def test_label_map_errors_stay_short(tmp_path: Path) -> None:
    from segpipe.data.formats._labelmaps import read_class_dict, read_dataset_meta, read_label_colors

    big = "x" * 500_000
    cases = [
        (
            "dataset_meta.json",
            json.dumps({"labels": ["a"], "label_map": {"0": "a"}, "segmentation_colors": [[1] * 200_000]}),
            read_dataset_meta,
        ),
        ("dataset_meta.json", json.dumps({"label_map": {big: 5}}), read_dataset_meta),
        ("label_colors.txt", f"1 {big}\n", read_label_colors),
        ("class_dict.csv", f"{big},r\n", read_class_dict),
    ]
    for name, text, read in cases:
        (tmp_path / name).write_text(text)
        with pytest.raises(DataError) as err:
            read(tmp_path / name)
        assert len(str(err.value)) < 400, (name, str(err.value)[:300])
