"""segpipe never writes over what it reads (issue 18): visualize into the images folder, reports and
models named like an input."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from segpipe.cli.app import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    from segpipe.cli import common

    monkeypatch.setitem(common._state, "debug", False)


def one_error(r) -> str:
    lines = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert r.exit_code == 1 and len(lines) == 1 and "Traceback" not in r.output, r.output
    return lines[0]


@pytest.fixture()
def pics(tmp_path: Path) -> Path:
    """The user's folder: a photo, their own hand-made cat_mask.png and a legend.png."""
    d = tmp_path / "pics"
    d.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(d / "cat.png"), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    cv2.imwrite(str(d / "cat_mask.png"), np.full((64, 64, 3), 7, np.uint8))
    cv2.imwrite(str(d / "legend.png"), np.full((20, 40, 3), 9, np.uint8))
    return d


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_visualize_into_the_images_folder_is_refused(pics: Path, tiny_checkpoint: Path) -> None:
    before = _contents(pics)
    r = runner.invoke(
        app, ["visualize", "--images", str(pics), "-m", str(tiny_checkpoint), "--output-dir", str(pics)]
    )
    line = one_error(r)
    assert f"--output-dir {pics} is the input folder" in line and "--exist-ok" in line
    assert _contents(pics) == before


def test_visualize_into_a_folder_inside_the_images_folder_is_refused(
    pics: Path, tiny_checkpoint: Path
) -> None:
    out = pics / "masks"
    r = runner.invoke(app, ["visualize", "-i", str(pics), "-m", str(tiny_checkpoint), "-o", str(out)])
    assert "lies inside the input folder" in one_error(r)
    assert not out.exists()


def test_exist_ok_still_never_writes_over_an_input(pics: Path, tiny_checkpoint: Path) -> None:
    before = _contents(pics)
    r = runner.invoke(
        app, ["visualize", "-i", str(pics), "-m", str(tiny_checkpoint), "-o", str(pics), "--exist-ok"]
    )
    line = one_error(r)
    assert "2 output(s) would be written over input images: cat_mask.png, legend.png" in line, line
    assert _contents(pics) == before  # nothing written at all: checked before the first picture


def test_exist_ok_writes_beside_the_inputs_when_no_name_clashes(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    d = tmp_path / "photos"
    d.mkdir()
    cv2.imwrite(str(d / "dog.png"), np.full((64, 64, 3), 50, np.uint8))
    original = (d / "dog.png").read_bytes()
    r = runner.invoke(
        app, ["visualize", "-i", str(d), "-m", str(tiny_checkpoint), "-o", str(d), "--exist-ok"]
    )
    assert r.exit_code == 0, r.output
    assert (d / "dog_mask.png").is_file() and (d / "dog.png").read_bytes() == original


def test_one_image_and_the_output_in_its_folder_is_fine(tmp_path: Path, tiny_checkpoint: Path) -> None:
    img = tmp_path / "one.png"
    cv2.imwrite(str(img), np.full((64, 64, 3), 50, np.uint8))
    r = runner.invoke(app, ["visualize", "-i", str(img), "-m", str(tiny_checkpoint), "-o", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "one_mask.png").is_file()


def test_outputs_named_like_an_input_file(tmp_path: Path, tiny_checkpoint: Path, index_dataset: Path) -> None:
    palette = tmp_path / "colors.csv"
    palette.write_text("id,name,r,g,b\n0,bg,0,0,0\n1,a,255,0,0\n2,b,0,255,0\n")
    before = palette.read_bytes()
    r = runner.invoke(
        app,
        ["evaluate", "--data-root", str(index_dataset), "-m", str(tiny_checkpoint), "--colors", str(palette),
         "--report", str(palette)],
    )  # fmt: skip
    assert f"--report {palette} is the input {palette}" in one_error(r)
    assert palette.read_bytes() == before

    model = tmp_path / "m.onnx"
    model.write_bytes(b"the user's FP32 model")
    calib = tmp_path / "calib"
    calib.mkdir()
    cv2.imwrite(str(calib / "a.png"), np.zeros((64, 64, 3), np.uint8))
    r = runner.invoke(app, ["quantize", str(model), "--calib-images", str(calib), "--output", str(model)])
    assert f"--output {model} is the input {model}" in one_error(r)
    assert model.read_bytes() == b"the user's FP32 model"

    link = tmp_path / "link.onnx"
    link.symlink_to(model)
    r = runner.invoke(app, ["quantize", str(model), "--calib-images", str(calib), "--output", str(link)])
    assert "is the input" in one_error(r)  # the same file under another name
