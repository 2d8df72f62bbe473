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
    assert "voc format, found JPEGImages/ and SegmentationClass/ with ImageSets" in r.output
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


def _cvat_with_labels(root: Path, labels: int, colours: list[tuple[int, int, int]]) -> None:
    """A CVAT Segmentation mask export whose labelmap.txt declares ``labels`` labels (label i
    coloured i // 256, i % 256, 0) and one 8x8 mask of the ``colours`` in four quarters."""
    for d in ("SegmentationClass", "JPEGImages"):
        (root / d).mkdir(parents=True)
    rows = "".join(f"c{i}:{i // 256},{i % 256},0::\n" for i in range(labels))
    (root / "labelmap.txt").write_text("# label:color_rgb:parts:actions\n" + rows)
    mask = np.zeros((8, 8, 3), np.uint8)
    for k, colour in enumerate(colours):
        mask[4 * (k // 2) : 4 * (k // 2) + 4, 4 * (k % 2) : 4 * (k % 2) + 4] = colour
    Image.fromarray(mask).save(root / "SegmentationClass" / "a.png")
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(root / "JPEGImages" / "a.jpg")


def test_65535_classes_list_those_with_pixels_and_every_class_goes_to_colors_csv(tmp_path: Path) -> None:
    """A labelmap of 65,535 labels drew 65,535 rows (~80 s); the table lists the classes with pixels
    and one row for the rest, and --export-masks writes every class to colors.csv."""
    root, out = tmp_path / "cvat", tmp_path / "seed"
    _cvat_with_labels(root, 65535, [(0, 0, 0), (1, 2, 0), (0, 0, 0), (255, 254, 0)])
    r = cli("data", root, "--export-masks", out)
    assert r.exit_code == 0, r.output
    assert len(r.output.splitlines()) < 40, r.output
    assert "3 of 65,535 listed: those with pixels" in r.output and "(65,532 more)" in r.output
    rows = [ln.split("│")[1:5] for ln in r.output.splitlines() if ln.startswith("│")]
    listed = [(i.strip(), name.strip(), share.strip()) for i, name, _, share in rows]
    assert listed[:3] == [("0", "c0", "50.00"), ("258", "c258", "25.00"), ("65534", "c65534", "25.00")]
    said = f"65,532 classes not listed; every class is written to {out}/colors.csv"
    assert "".join(said.split()) in "".join(r.output.split())  # a long temporary path may wrap
    written = (out / "colors.csv").read_text().splitlines()
    assert sum(1 for ln in written if ln.split(",")[1].startswith("c")) == 65535
    assert any(ln.startswith("65533,c65533,255,253,0") for ln in written)


def test_the_table_lists_every_class_up_to_256_and_the_largest_shares_above() -> None:
    from segpipe.data.inspect import TABLE_ROWS, table_ids

    assert TABLE_ROWS >= 182  # COCO-Stuff's classes, all listed
    assert table_ids(np.zeros(256, np.int64)).tolist() == list(range(256))  # no pixels: still all
    pixels = np.zeros(1000, np.int64)
    pixels[[3, 500, 999]] = 7
    assert table_ids(pixels).tolist() == [3, 500, 999]
    pixels = np.arange(1000, dtype=np.int64)  # 999 classes with pixels: the 4 largest, in id order
    assert table_ids(pixels, limit=4).tolist() == [996, 997, 998, 999]
    pixels[[10, 20]] = 5000
    assert table_ids(pixels, limit=4).tolist() == [10, 20, 998, 999]


def test_the_format_line_says_what_and_why_without_brackets_in_brackets(
    index_dataset: Path, tmp_path: Path
) -> None:
    shutil.copytree(index_dataset, tmp_path / "outer" / "inner")  # the folder above: the hint names it
    r = cli("data", tmp_path / "outer")
    said = " ".join(r.output.split())
    assert r.exit_code == 1 and "is a seed data set with images/ and indexes/ (segpipe's layout): use" in said
    for args, says in (
        ((), "seed format, found images/ and indexes/ (segpipe's layout)"),
        (("--format", "seed"), "seed format, given by --format"),
    ):
        r = cli("data", index_dataset, *args)
        assert r.exit_code == 0, r.output
        said = " ".join(r.output.split())  # a long temporary path may wrap
        assert f": {says} " in said and "((" not in said and "))" not in said


def test_colors_give_the_colours_as_in_training(voc_root: Path, tmp_path: Path) -> None:
    """``--colors`` was read by no reader but the seed layout's, so ``segpipe data`` showed and
    exported VOC's own colours; the table and colors.csv now take the file's, as ``train`` does
    (the names stay the data's)."""
    colors = tmp_path / "colors.csv"
    colors.write_text("id,name,r,g,b\n" + "".join(f"{i},n{i},{i},{200 - i},7\n" for i in range(21)))
    r = cli("data", voc_root, "--colors", colors, "--export-masks", tmp_path / "seed")
    assert r.exit_code == 0, r.output
    assert "(0, 200, 7)" in r.output and "(15, 185, 7)" in r.output and "(128, 0, 0)" not in r.output
    written = (tmp_path / "seed" / "colors.csv").read_text().splitlines()
    assert "0,background,0,200,7" in written and "15,person,15,185,7" in written
