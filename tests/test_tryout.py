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
