"""``segpipe data``: format, splits, classes with names and shares, problems; --export-masks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from format_data import save_voc_mask
from PIL import Image
from typer.testing import CliRunner

from segpipe.cli.app import app
from segpipe.data.formats import open_dataset


def cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_data_shows_voc_format_splits_and_names(voc_root: Path) -> None:
    r = cli("data", voc_root)
    assert r.exit_code == 0, r.output
    assert "voc format (JPEGImages/ and SegmentationClass/ with ImageSets" in r.output
    assert "8 train, 4 val" in r.output
    assert "aeroplane" in r.output and "Pascal VOC (built in)" in r.output
    assert "no problems found" in r.output


def test_data_takes_the_folder_as_data_root_as_every_command_does(voc_root: Path, tmp_path: Path) -> None:
    """``segpipe data --data-root X`` (what a newcomer types, as for train/evaluate) reads the same
    data set as ``segpipe data X``; neither is a usage error naming both; two different ones refused."""
    first = cli("data", voc_root).output.splitlines()[0]
    assert "voc format" in first
    for spelling in ("--data-root", "--data_root"):
        r = cli("data", spelling, voc_root)
        assert r.exit_code == 0, r.output
        assert r.output.splitlines()[0] == first and "8 train, 4 val" in r.output
    r = cli("data")
    assert r.exit_code == 2 and "--data-root" in r.output
    r = cli("data", voc_root, "--data-root", tmp_path)
    assert r.exit_code != 0 and "given twice" in " ".join(r.output.split())


def test_data_reports_problems_one_line_each(voc_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "voc"
    shutil.copytree(voc_root, root)
    name = (root / "ImageSets/Segmentation/val.txt").read_text().split()[0]
    save_voc_mask(root / "SegmentationClass" / f"{name}.png", np.full((10, 12), 40, np.uint8))
    r = cli("data", root)
    assert r.exit_code == 0, r.output
    assert f"{name}.png: mask is 12x10 but image" in r.output
    assert "mask value 40 is >= 21" in r.output or "values [40]" in r.output


def test_data_without_names_says_how_to_name_them(index_dataset: Path, tmp_path: Path) -> None:
    root = tmp_path / "d"
    shutil.copytree(index_dataset, root)
    (root / "colors.csv").unlink(missing_ok=True)
    r = cli("data", root)
    assert r.exit_code == 0, r.output
    assert "class_2" in r.output and r.output.count("--class-names a,b,c") == 1
    assert "background" not in r.output


def test_export_masks_writes_the_seed_layout(cityscapes_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "seed"
    r = cli("data", cityscapes_root, "--export-masks", out)
    assert r.exit_code == 0, r.output
    assert (out / "colors.csv").read_text().splitlines()[14].startswith("13,car,")
    src = open_dataset(cityscapes_root)
    exported = open_dataset(out)
    assert exported.name == "seed" and len(exported.samples()) == len(src.samples())
    s = src.samples()[0]
    mask = np.asarray(Image.open(out / "indexes" / f"{s.name}_color_mask.png"))
    np.testing.assert_array_equal(mask, src.load_mask(s))
    r = cli("data", cityscapes_root, "--export-masks", cityscapes_root / "x")
    assert r.exit_code == 1 and "must be outside the data root" in r.output
    assert not (cityscapes_root / "x").exists()


def test_data_command_imports_no_torch(voc_root: Path) -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from segpipe.cli.app import app\n"
        f"r = CliRunner().invoke(app, ['data', {str(voc_root)!r}])\n"
        "print('EXIT', r.exit_code, 'torch' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert "EXIT 0 False" in out.stdout, out.stdout + out.stderr
