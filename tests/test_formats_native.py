"""Each annotation format end to end: the same rectangles written in every native layout decode the
same, and one tiny train + evaluate per format (writers: tests/annotation_writers.py)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from annotation_writers import (  # the writers and helpers these tests share
    E2E_NAMES,
    _coco,
    _e2e_rects,
    _make_e2e,
)

from segpipe.data.formats import open_dataset
from segpipe.progress import Reporter

# pycocotools 2.0.x on numpy 2 warns inside its own decode (copy=False); not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.mark.parametrize("fmt", sorted(E2E_NAMES))
def test_every_reader_decodes_the_same_rectangles(fmt: str, tmp_path: Path) -> None:
    """One set of rectangles written as each tool writes it reads back as the same class map."""
    root = _make_e2e(fmt, tmp_path / "data")
    reader = open_dataset(root)
    assert reader.name == fmt and reader.classes().names == E2E_NAMES[fmt]
    samples = reader.samples()
    assert len(samples) == 8
    for s in samples:
        expected = np.zeros((64, 64), np.uint8)
        for c, x0, y0, x1, y1 in _e2e_rects(int(s.name.rsplit("img", 1)[1])):
            expected[y0 : y1 + 1, x0 : x1 + 1] = c
        image, mask = reader.load(s)
        assert image.shape == (64, 64, 3) and np.array_equal(mask, expected), s.name


@pytest.mark.parametrize(
    "fmt",
    ["yolo", *(pytest.param(f, marks=pytest.mark.slow) for f in ("ultralytics", "coco", "labelme", "cvat"))],
)
def test_trains_and_evaluates_from_native_layout(fmt: str, tmp_path: Path) -> None:
    import torch
    from conftest import TRAIN_FLAGS
    from typer.testing import CliRunner

    from segpipe.cli.app import app

    root = _make_e2e(fmt, tmp_path / "data")
    run = tmp_path / "run"
    args = ["train", "--data-root", root, "--epochs", "1", "--output-dir", run, *TRAIN_FLAGS]
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    assert f"{fmt} format" in r.output and "3 classes" in r.output
    ckpt = torch.load(run / "best.pth", weights_only=True)
    assert tuple(ckpt["model_info"]["class_names"]) == E2E_NAMES[fmt]
    report = tmp_path / "eval.json"
    args = [
        "evaluate",
        "--data-root",
        root,
        "--model",
        run / "best.pth",
        "--device",
        "cpu",
        "--report",
        report,
    ]
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    got = json.loads(report.read_text())
    # 2 of 8 either way: the layout's own val split, or (no split of its own) the images training held out
    assert got["images"] == 2 and 0 <= got["miou"] <= 1
    own_split = fmt in ("ultralytics", "yolo", "coco")
    held = [line for line in r.output.splitlines() if "held out: the 2 of 8 images" in line]
    assert len(held) == (0 if own_split else 1), r.output
    if not own_split:
        assert got["images_from"].startswith("held out") and "--split all" in held[0]
        r = CliRunner().invoke(app, [str(a) for a in [*args, "--split", "all"]])
        assert r.exit_code == 0, r.output
        assert json.loads(report.read_text())["images"] == 8
        assert "6 of these 8 images trained" in " ".join(r.output.split()), r.output
    out = tmp_path / "vis"
    args = [
        "visualize",
        "--data-root",
        root,
        "--model",
        run / "best.pth",
        "--output-dir",
        out,
        "--side-by-side",
    ]
    r = CliRunner().invoke(app, [str(a) for a in [*args, "--device", "cpu"]])
    assert r.exit_code == 0, r.output
    sides = sorted(out.rglob("*_side.png"))
    assert (
        len(sides) == got["images"] and cv2.imread(str(sides[0])).shape[1] >= 3 * 64
    )  # image, truth, prediction


def test_coco_annotations_of_unlisted_images_are_left_out_with_one_warning(tmp_path: Path) -> None:

    class Collect(Reporter):
        def __init__(self) -> None:
            super().__init__()
            self.warnings: list[str] = []

        def warn(self, message: str) -> None:
            self.warnings.append(message)

    data = _coco(tmp_path)
    data["annotations"].append(dict(data["annotations"][0], id=77, image_id=404))
    (tmp_path / "annotations" / "instances_train2017.json").write_text(json.dumps(data))
    reporter = Collect()
    samples = open_dataset(tmp_path, reporter=reporter).samples()
    assert {s.key[1] for s in samples} == {im["id"] for im in data["images"]}
    (orphans,) = [w for w in reporter.warnings if "image ids" in w]  # (the crowd count is another line)
    assert "1 annotation(s)" in orphans
    assert "image_id 404" in orphans and "instances_train2017.json" in orphans
