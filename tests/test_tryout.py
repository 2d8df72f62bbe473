"""Found by trying the label formats, schema and pictures as a newcomer and a hostile user would
(issues 17-19): each test is one defect seen through the CLI, on tiny files made as the tools write them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from format_data import save_voc_mask, voc_border
from PIL import Image

from segpipe.data.formats import open_dataset
from segpipe.palette import IGNORE_COLOR, Palette, colorize
from segpipe.pictures import draw_legend


def _voc(root: Path, names: list[str]) -> Path:
    for d in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        labels = np.zeros((32, 32), np.uint8)
        labels[4 + i : 20, 6:22] = 15
        Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(root / "JPEGImages" / f"{name}.jpg")
        save_voc_mask(root / "SegmentationClass" / f"{name}.png", voc_border(labels))
    (root / "ImageSets/Segmentation/train.txt").write_text("\n".join(names[:-1]) + "\n", encoding="utf-8")
    (root / "ImageSets/Segmentation/val.txt").write_text(names[-1] + "\n", encoding="utf-8")
    return root


def test_voc_split_file_names_may_hold_spaces(tmp_path: Path) -> None:
    """A split file lists one name per line; 'im 0 é:x:' is one name, not 'im'."""
    names = ["im 0 é:x:", "im 1", "plain"]
    samples = open_dataset(_voc(tmp_path / "VOC dév", names)).samples()
    assert sorted(s.name for s in samples) == sorted(names)
    assert [s.split for s in samples if s.name == "plain"] == ["val"]


def test_ignored_ground_truth_is_not_drawn_as_the_background(tmp_path: Path) -> None:
    """VOC's 255 border must be visible in a ground-truth picture, not black like class 0."""
    palette = Palette(("background", "person"), ((0, 0, 0), (192, 128, 128)))
    truth = np.array([[0, 255], [1, 255]], np.uint8)
    for labels in (truth, truth.astype(np.int64)):
        rgb = colorize(labels, palette, 255)
        assert tuple(rgb[0, 1]) == IGNORE_COLOR != tuple(rgb[0, 0])
        assert tuple(rgb[1, 0]) == (192, 128, 128)
    legend = draw_legend(palette, [3, 1], ignored=2)
    assert (legend == np.array(IGNORE_COLOR, np.uint8)).all(axis=2).sum() > 100


def test_train_help_does_not_promise_only_the_seed_layout() -> None:
    """Every format trains now: the summary and the defaults of the name/colour flags say so."""
    from typer.testing import CliRunner

    from segpipe.cli.app import app

    top = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "80"}).output
    train = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "80"}).output
    for text in (top, train):
        assert "DATA_ROOT/indexes" not in text and "any label format" in text, text
    assert "the palette's" not in train and "the data's" in train


def test_curves_of_a_one_epoch_run_tick_whole_epochs() -> None:
    from segpipe.training.runlog import _pyplot, curves_figure

    fig = curves_figure([{"epoch": 1, "train_loss": 1.5, "val_loss": 1.1, "miou": 0.02}])
    try:
        for ax in fig.axes:
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks == [1.0], ticks
    finally:
        _pyplot().close(fig)


def test_val_samples_legend_does_not_cover_the_pictures(tmp_path: Path) -> None:
    """21 VOC classes make a 4-row legend: it goes below the grid, never over the last row."""
    from segpipe.data.formats.voc import VOC_CLASSES, voc_colormap
    from segpipe.training.runlog import plot_val_samples

    rng = np.random.default_rng(0)
    img = np.full((64, 64, 3), 100, np.uint8)  # grey pictures: a legend drawn over them shows
    truth = voc_border(np.kron(np.arange(16, dtype=np.uint8).reshape(4, 4), np.ones((16, 16), np.uint8)))
    pred = rng.integers(0, 21, (64, 64)).astype(np.uint8)
    out = plot_val_samples(
        [img] * 2, [truth] * 2, [pred] * 2, voc_colormap(21), VOC_CLASSES, tmp_path / "v.png"
    )
    pic = np.asarray(Image.open(out).convert("RGB")).astype(int)
    grey = (pic[:, : pic.shape[1] // 3] == 100).all(axis=2)
    rows = np.flatnonzero(grey.sum(axis=1) > 100)  # rows of the pictures (not anti-aliased text)
    ys, xs = rows, np.flatnonzero(grey[rows].any(axis=0))
    bottom = pic[ys.max() - 20 : ys.max() + 1, xs.min() + 2 : xs.max() - 1]
    assert (bottom == 100).all(), "the legend covers the last row of pictures"
    assert (pic == np.array([224, 224, 192])).all(axis=2).sum() > 50  # ignored border drawn


def test_a_choice_refused_in_a_config_file_names_the_file_and_line(tmp_path: Path) -> None:
    """Types and ranges named the file and line; choices (optimizer, mask_type, format...) said
    '--optimizer adamx' as if typed, sending the user looking for a flag they never wrote."""
    from typer.testing import CliRunner

    from segpipe.cli.app import app

    (tmp_path / "data").mkdir()
    for key, value in (("optimizer", "adamx"), ("mask_type", "colr"), ("format", "cocoo")):
        cfg = tmp_path / f"{key}.yaml"
        cfg.write_text(f"epochs: 1\n{key}: {value}\n", encoding="utf-8")
        r = CliRunner().invoke(app, ["train", "--config", str(cfg), "--data-root", str(tmp_path / "data")])
        line = r.output.strip().splitlines()[-1]
        assert r.exit_code == 1 and f"{cfg} line 2: {key} {value}: use" in line, r.output
    # typed on the command line it stays the flag
    r = CliRunner().invoke(app, ["train", "--optimizer", "adamx", "--data-root", str(tmp_path / "data")])
    assert "--optimizer adamx: use one of" in r.output, r.output


def test_class_names_the_model_would_refuse_are_refused_before_training(tmp_path: Path) -> None:
    """A data.yaml name holding ESC (or a newline) trained a whole epoch, then saving the checkpoint
    failed on the metadata schema. Refused at once, naming where the name came from."""
    import pytest

    from segpipe.data.classes import resolve_classes
    from segpipe.data.formats.base import ClassInfo
    from segpipe.errors import DataError

    for bad in ("bg\x1b[31m", "a\nb", "x" * 201):
        info = ClassInfo(("background", bad), None, "data.yaml names")
        with pytest.raises(DataError, match=r", data.yaml names: class 1 name .*(control|longer)") as e:
            resolve_classes(2, info, tmp_path)
        assert "\x1b" not in str(e.value) and "\n" not in str(e.value)
    assert resolve_classes(2, ClassInfo(("bg", "öl :x:"), None, "y"), tmp_path).names == ("bg", "öl :x:")


def test_written_folder_says_its_files_not_zero_bytes(tmp_path: Path, capsys) -> None:
    """`segpipe data --export-masks DIR` ended with 'wrote seed layout DIR (0 B)'."""
    from segpipe.cli.common import print_written

    out = tmp_path / "seed ü"
    (out / "images").mkdir(parents=True)
    (out / "images" / "a.png").write_bytes(b"x" * 3000)
    (out / "colors.csv").write_text("id,name,r,g,b\n", encoding="utf-8")
    print_written(out, "seed layout")
    text = " ".join(capsys.readouterr().out.split())
    assert "(2 files, " in text and "(0 B)" not in text, text


def test_voc_split_file_naming_a_missing_image_names_that_file(tmp_path: Path) -> None:
    import pytest

    from segpipe.errors import DataError

    root = _voc(tmp_path / "VOC", ["a", "b", "c"])
    with (root / "ImageSets/Segmentation/val.txt").open("a", encoding="utf-8") as f:
        f.write("ghost one\n")
    with pytest.raises(DataError) as e:
        open_dataset(root).samples()
    msg = str(e.value)
    assert "val.txt" in msg and "train.txt" not in msg and "'ghost one' (image and mask)" in msg, msg


def test_two_classes_with_one_name_are_said(tmp_path: Path) -> None:
    """COCO categories 7 and 9 both named 'person' became two silent 'person' classes."""
    from segpipe.data.classes import resolve_classes
    from segpipe.data.formats.base import ClassInfo

    info = ClassInfo(("background", "person", "car", "person"), None, "COCO categories")
    hint = resolve_classes(4, info, tmp_path).hint
    assert hint is not None and "classes 1 and 3 are both called 'person'" in hint
    assert resolve_classes(4, info, tmp_path, ["bg", "p1", "car", "p2"]).hint is None


def _laughs(levels: int) -> str:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nnames: *l{levels - 1}\npath: .\ntrain: images/train\nval: images/val\n"


def test_dataset_yaml_and_json_bombs_are_one_line(tmp_path: Path) -> None:
    """A dataset YAML of nested aliases (Ultralytics/YOLO data.yaml) was expanded without bound
    (MemoryError at 9 levels); a deeply nested COCO JSON was a RecursionError traceback."""
    import pytest

    from segpipe.data.formats._annotations import read_json
    from segpipe.data.formats.ultralytics import load_config
    from segpipe.errors import DataError

    yml = tmp_path / "data.yaml"
    yml.write_text(_laughs(6), encoding="utf-8")  # 531441 values: over the bound, small enough here
    with pytest.raises(DataError, match="data.yaml: refused, its anchors and aliases expand"):
        load_config(yml)
    for d in ("images/train", "masks/train"):
        (tmp_path / d).mkdir(parents=True)
    with pytest.raises(DataError, match="refused"):  # detection says ultralytics, the reader why not
        open_dataset(tmp_path).samples()
    deep = tmp_path / "instances_val2017.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(DataError, match="JSON nested too deeply"):
        read_json(deep)


def test_data_refuses_a_class_count_train_would_refuse(tmp_path: Path) -> None:
    """`segpipe data ROOT --num-classes 0` was taken as 'not given'; -5 printed 'mask values
    [0, 1, 2] are beyond the -5 classes'."""
    import pytest

    from segpipe.data.inspect import scan_data
    from segpipe.errors import ConfigError

    reader = open_dataset(_voc(tmp_path / "VOC", ["a", "b"]))
    for bad in (0, 1, -5, 70000):
        with pytest.raises(ConfigError, match=f"--num-classes {bad}: use 2..65535"):
            scan_data(reader, num_classes=bad)
    assert scan_data(reader, num_classes=21).classes.names[15] == "person"


def test_an_empty_data_root_is_called_empty(tmp_path: Path) -> None:
    """It got the 1,000-character list of every format's layout."""
    import pytest

    from segpipe.errors import DataError

    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as e:
        open_dataset(tmp_path / "empty")
    assert str(e.value) == f"data root {tmp_path / 'empty'} is an empty folder"
