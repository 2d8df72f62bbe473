"""One test per crash, hang and wrong result crafted data folders caused (issue 23), each written the
way it broke: a segfault in a subprocess, a hang under an alarm, a traceback as a non-SegpipeError."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hostile_data import build, cli, sandbox
from test_hostile_data import run_everything, watched

from segpipe.data import inspect as inspect_mod
from segpipe.data import safepaths
from segpipe.data.formats import open_dataset
from segpipe.data.inspect import export_masks, scan_data
from segpipe.errors import ConfigError, DataError, SegpipeError
from segpipe.progress import Reporter

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "COLUMNS": "200"}


def _run(*args: str | Path, timeout: int = 60, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cli(*args), capture_output=True, timeout=timeout, env=ENV, cwd=cwd)


def _coco(root: Path, images: list[dict], anns: list[dict], cats: int = 1) -> Path:
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for im in images:
        p = root / "train2017" / im["file_name"]
        if not p.exists() and not os.path.isabs(im["file_name"]):
            p.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(p), np.full((im["height"], im["width"], 3), 90, np.uint8))
    label = root / "annotations" / "instances_train2017.json"
    categories = [{"id": i + 1, "name": f"c{i + 1}"} for i in range(cats)]
    label.write_text(json.dumps({"images": images, "annotations": anns, "categories": categories}))
    return label


def _png_header(path: Path, width: int, height: int, color_type: int) -> None:
    """A PNG that declares ``width`` x ``height`` (8-bit, ``color_type``) and holds one tiny IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    body = chunk(b"IHDR", ihdr)
    if color_type == 3:
        body += chunk(b"PLTE", bytes(range(3)) * 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


# ---- crashes ---------------------------------------------------------------------------------------
def test_coco_coordinate_1e9_is_one_line_not_a_segfault(tmp_path: Path) -> None:
    ann = {"id": 5, "image_id": 1, "category_id": 1, "segmentation": [[0, 0, 1e9, 0, 1e9, 1e9]], "iscrowd": 0}
    _coco(tmp_path / "d", [{"id": 1, "file_name": "a.png", "width": 8, "height": 8}], [ann])
    r = _run("data", tmp_path / "d")
    assert r.returncode != -signal.SIGSEGV
    assert r.returncode == 0  # the scan reports the sample as a problem and goes on
    assert b"annotation id 5" in r.stderr and b"1e+09" in r.stderr


def test_non_utf8_image_name_exports_without_segfault(tmp_path: Path) -> None:
    base, root, _ = sandbox(tmp_path)
    build("seed", root)
    os.rename(root / "images" / "b.png", os.fsencode(root / "images") + b"/\xff.png")
    os.rename(root / "indexes" / "b_color_mask.png", os.fsencode(root / "indexes") + b"/\xff_color_mask.png")
    r = _run("data", root, "--export-masks", base / "out", "--num-classes", "2")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(base / "out" / "images")) == ["_.png"]
    assert not [n for n in os.listdir(base) if n.startswith(".out.")]


def test_absolute_file_name_inside_the_root_is_no_same_file_error(tmp_path: Path) -> None:
    base, root, _ = sandbox(tmp_path)
    build("coco", root)
    label = root / "annotations" / "instances_train2017.json"
    doc = json.loads(label.read_text())
    doc["images"][0]["file_name"] = str(root / "train2017" / "b.png")
    label.write_text(json.dumps(doc))
    assert run_everything(root, base / "out") == "ok"
    assert [p.name for p in (base / "out" / "images").rglob("*.png")] == ["b.png"]


def test_voc_split_list_not_utf8_is_one_line(tmp_path: Path) -> None:
    build("voc", tmp_path)
    (tmp_path / "ImageSets" / "Segmentation" / "train.txt").write_bytes(b"b\n\xff\xfe\n")
    with pytest.raises(DataError, match="train.txt: not UTF-8"):
        open_dataset(tmp_path).samples()


@pytest.mark.parametrize(("side", "color_type"), [(25000, 3), (20000, 0)])
def test_huge_declared_mask_is_refused_before_decoding(tmp_path: Path, side: int, color_type: int) -> None:
    """A 25000x25000 palette mask was a DecompressionBombError traceback; a 20000x20000 greyscale
    VOC mask was decoded (3.5 GB) and exported."""
    build("voc", tmp_path)
    _png_header(tmp_path / "SegmentationClass" / "b.png", side, side, color_type)
    reader = open_dataset(tmp_path, "voc")
    with pytest.raises(DataError, match=f"{side}x{side}"):
        reader.load_mask(reader.samples()[0])


def test_export_problems_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base, root, _ = sandbox(tmp_path)
    build("seed", root)
    reader = open_dataset(root)
    report = scan_data(reader, num_classes=2)
    (base / "afile").write_text("x")
    with pytest.raises(ConfigError, match="afile is a file"):
        export_masks(reader, reader.samples(), report.classes, base / "afile" / "out", Reporter())

    def full(path: Path, chunks: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(inspect_mod, "_write_new", full)
    with pytest.raises(SegpipeError, match="cannot write") as e:
        export_masks(reader, reader.samples(), report.classes, base / "out", Reporter())
    assert "\n" not in str(e.value)
    assert not (base / "out").exists() and not [n for n in os.listdir(base) if n.startswith(".out")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_export_into_a_read_only_folder_is_one_line(tmp_path: Path) -> None:
    base, root, _ = sandbox(tmp_path)
    build("seed", root)
    (base / "ro").mkdir()
    (base / "ro").chmod(0o555)
    reader = open_dataset(root)
    with pytest.raises(ConfigError, match="not writable"):
        export_masks(reader, reader.samples(), scan_data(reader, num_classes=2).classes, base / "ro" / "out", Reporter())


def test_train_dataset_that_is_not_a_dataset_is_one_line(tmp_path: Path) -> None:
    from segpipe.data.build import _custom_dataset

    with pytest.raises(ConfigError, match="collections:OrderedDict"):
        _custom_dataset("collections:OrderedDict", tmp_path, "train", None)


# ---- hangs -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["coco_json", "labelme_root_json", "cvat_list", "cityscapes_image", "ultralytics_image"])
def test_fifo_is_one_line_never_a_hang(tmp_path: Path, where: str) -> None:
    base, root, outside = sandbox(tmp_path)
    fmt = where.split("_")[0]
    files = build(fmt, root)
    target = {
        "coco_json": files["label"],
        "labelme_root_json": root / "x.json",
        "cvat_list": files.get("list"),
        "cityscapes_image": files["image"],
        "ultralytics_image": files["image"],
    }[where]
    if target.exists():
        target.unlink()
    os.mkfifo(target)
    # a subprocess: the old code blocked in open() inside a loader thread, which no alarm ends
    r = _run("data", root, timeout=120)
    if where == "labelme_root_json":
        assert r.returncode == 0, r.stderr  # the FIFO is passed over by detection, never opened
        assert b"labelme format" in r.stdout
    else:
        assert r.returncode == 1 and b"FIFO" in r.stderr, r.stderr
        assert len(r.stderr.decode().strip().splitlines()) == 1


def test_more_than_3800_classes_get_distinct_colours_and_70000_is_refused() -> None:
    from segpipe.palette import Palette

    with watched(Path("/nonexistent"), seconds=20):
        pal = Palette((), ()).extended(5000)
    assert len(set(pal.colors)) == 5000
    with pytest.raises(ConfigError, match="70000"):
        Palette((), ()).extended(70000)


def test_100mb_yolo_label_file_is_refused_at_once(tmp_path: Path) -> None:
    build("yolo", tmp_path)
    with open(tmp_path / "labels" / "train" / "b.txt", "r+b") as f:
        f.truncate(100 * 2**20)  # sparse: nothing written
    start = time.monotonic()
    reader = open_dataset(tmp_path, "yolo")
    with pytest.raises(DataError, match="100.0 MB, over the 8 MB limit"):
        for s in reader.samples():
            reader.load_mask(s)
    assert time.monotonic() - start < 10


# ---- silently wrong --------------------------------------------------------------------------------
def test_over_255_classes_ignore_is_65535_and_crowds_export_as_it(tmp_path: Path) -> None:
    base, root, _ = sandbox(tmp_path)
    anns = [
        {"id": 1, "image_id": 1, "category_id": 256, "segmentation": [[0, 0, 3, 0, 3, 3, 0, 3]], "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [[4, 4, 7, 4, 7, 7, 4, 7]], "iscrowd": 1},
    ]
    _coco(root, [{"id": 1, "file_name": "a.png", "width": 8, "height": 8}], anns, cats=300)
    reader = open_dataset(root)
    report = scan_data(reader, ignore_given=False)
    assert reader.ignore_index == 65535 and len(report.classes.names) == 301
    assert report.pixels[255] == 0 and report.pixels[256] > 0  # class 255 is a class, not ignored
    export_masks(reader, reader.samples(), report.classes, base / "out", Reporter())
    mask = cv2.imread(str(base / "out" / "indexes" / "train" / "a_color_mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint16 and mask[5, 5] == 65535 and mask[1, 1] == 256


def test_segpipe_data_takes_ignore_index(tmp_path: Path) -> None:
    base, root, _ = sandbox(tmp_path)
    build("voc", root)
    r = _run("data", root, "--ignore-index", "254", "--export-masks", base / "out")
    assert r.returncode == 0, r.stderr


def test_export_folder_follows_the_umask(tmp_path: Path) -> None:
    base, root, _ = sandbox(tmp_path)
    build("seed", root)
    old = os.umask(0o022)
    try:
        assert run_everything(root, base / "out") == "ok"
    finally:
        os.umask(old)
    assert stat.S_IMODE((base / "out").stat().st_mode) == 0o755
    assert stat.S_IMODE((base / "out" / "images").stat().st_mode) == 0o755
    assert stat.S_IMODE((base / "out" / "colors.csv").stat().st_mode) == 0o644


def test_coco_size_unlike_the_picture_is_not_exported(tmp_path: Path) -> None:
    base, root, _ = sandbox(tmp_path)
    build("coco", root)
    cv2.imwrite(str(root / "train2017" / "b.png"), np.zeros((10, 12, 3), np.uint8))  # JSON says 8x8
    result = run_everything(root, base / "out")
    assert "mask is 8x8 but image" in result and "12x10" in result
    assert not (base / "out").exists()


@pytest.mark.parametrize("ext", [".avi", ".mp4"])
def test_odd_size_video_keeps_every_pixel(tmp_path: Path, ext: str) -> None:
    from segpipe.video import AtomicVideoWriter

    frame = np.zeros((63, 97, 3), np.uint8)
    frame[:, -1] = 255  # the last column and row are what rounding down lost
    frame[-1, :] = 255
    writer = AtomicVideoWriter(tmp_path / f"v{ext}", 10.0, (97, 63))
    for _ in range(3):
        writer.write(frame)
    writer.commit()
    ok, got = cv2.VideoCapture(str(tmp_path / f"v{ext}")).read()
    assert ok
    if ext == ".avi":
        assert got.shape[:2] == (63, 97)
    assert got.shape[0] >= 63 and got.shape[1] >= 97
    assert got[30, 96].mean() > 128 and got[62, 50].mean() > 128


# ---- left behind -----------------------------------------------------------------------------------
def test_sigterm_during_export_leaves_nothing(tmp_path: Path) -> None:
    base, root, _ = sandbox(tmp_path)
    build("seed", root)
    for i in range(30):
        cv2.imwrite(str(root / "images" / f"s{i}.png"), np.full((8, 8, 3), 90, np.uint8))
        cv2.imwrite(str(root / "indexes" / f"s{i}_color_mask.png"), np.zeros((8, 8), np.uint8))
    slow = (
        "import sys, time\n"
        "import segpipe.data.inspect as m\n"
        "one = m._export_one\n"
        "m._export_one = lambda *a: (time.sleep(0.2), one(*a))\n"
        "from segpipe.cli.app import main\n"
        "sys.argv = ['segpipe', 'data', sys.argv[1], '--num-classes', '2', '--export-masks', sys.argv[2]]\n"
        "main()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", slow, str(root), str(base / "out")], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not [n for n in os.listdir(base) if n.startswith(".out.")]:
            assert proc.poll() is None and time.monotonic() < deadline, "the export never started"
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM
    finally:
        proc.kill()
    assert sorted(os.listdir(base)) == ["data", "outside"]


# ---- misleading --------------------------------------------------------------------------------------
def test_values_beyond_the_classes_name_the_file_and_are_not_exported(tmp_path: Path) -> None:
    base, root, _ = sandbox(tmp_path)
    build("voc", root)
    mask = np.zeros((8, 8), np.uint8)
    mask[0, 0] = 30
    cv2.imwrite(str(root / "SegmentationClass" / "b.png"), mask)
    reader = open_dataset(root)
    report = scan_data(reader)
    assert any("[30]" in p and "b.png" in p for p in report.problems), report.problems
    with pytest.raises(DataError, match=r"b\.png.*values \[30\].*not exported"):
        export_masks(reader, reader.samples(), report.classes, base / "out", Reporter())


def test_image_path_to_etc_passwd_names_the_json(tmp_path: Path) -> None:
    base, root, _ = sandbox(tmp_path)
    build("labelme", root, "/etc/passwd")  # imagePath "/etc/passwd.png" ...
    doc = json.loads((root / "c.json").read_text())
    doc["imagePath"] = "/etc/passwd"
    (root / "c.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"c\.json.*/etc/passwd.*outside the data root"):
        open_dataset(root).samples()


def test_garbage_objectinfo_is_one_line(tmp_path: Path) -> None:
    build("ade20k", tmp_path)
    (tmp_path / "objectInfo150.csv").write_bytes(b"\x00\x01garbage,junk\nfoo,\n")
    with pytest.raises(DataError, match="objectInfo150.csv"):
        open_dataset(tmp_path).classes()


def test_newline_in_a_name_forges_no_output_line(tmp_path: Path) -> None:
    """A picture named ``z<newline>error: forged...`` whose mask is of another size: the problem
    line that names it stays one line."""
    base, root, _ = sandbox(tmp_path)
    build("seed", root)
    bad = b"z\nerror: forged"
    cv2.imwrite(str(root / "images" / "c.png"), np.zeros((6, 6, 3), np.uint8))  # 6x6, its mask 8x8
    cv2.imwrite(str(root / "indexes" / "c_color_mask.png"), np.zeros((8, 8), np.uint8))
    os.rename(root / "images" / "c.png", os.fsencode(root / "images") + b"/" + bad + b".png")
    os.rename(root / "indexes" / "c_color_mask.png", os.fsencode(root / "indexes") + b"/" + bad + b"_color_mask.png")
    r = _run("data", root, "--num-classes", "2")
    lines = (r.stdout + r.stderr).decode("utf-8", "replace").splitlines()
    assert any("forged" in ln for ln in lines), lines  # the problem is reported...
    assert not [ln for ln in lines if ln.startswith("error: forged")], lines  # ...on its own line


def test_fifo_data_root_and_config_folder_say_what_they_are(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "root")
    with pytest.raises(DataError, match="FIFO"):
        open_dataset(tmp_path / "root")
    from segpipe.schema.options import check_yaml_file

    with pytest.raises(ConfigError, match="is a folder"):
        check_yaml_file(tmp_path, "config file")


def test_shown_escapes_what_a_terminal_would_act_on() -> None:
    assert safepaths.shown("a\x1b[2Jb\nc") == "a\\x1b[2Jb\\nc"


# ---- every command ---------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["visualize", "evaluate"])
def test_visualize_and_evaluate_write_only_inside_their_output(
    command: str, tmp_path: Path, tiny_checkpoint: Path
) -> None:
    """A COCO file_name that climbs (inside the root) made visualize write NAME_mask.png outside
    --output-dir; one that leaves the root is refused in one line naming the JSON."""
    from hostile_data import tree
    from typer.testing import CliRunner

    from segpipe.cli.app import app

    base, root, _ = sandbox(tmp_path)
    build("coco", root, "../../data/train2017/b")  # the same picture, by a name climbing out and back
    out = base / "vis"
    before = tree(base)
    args = [command, "--data-root", str(root), "--model", str(tiny_checkpoint), "--device", "cpu", "--split", "all"]
    if command == "visualize":
        args += ["--output-dir", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    new = set(tree(base)) - set(before)
    assert all(p.startswith(os.fsencode(out)) for p in new), sorted(new)
    doc = json.loads((root / "annotations" / "instances_train2017.json").read_text())
    doc["images"][1]["file_name"] = "../../outside/secret.png"
    (root / "annotations" / "instances_train2017.json").write_text(json.dumps(doc))
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1 and "outside the data root" in res.output and "instances_train2017.json" in res.output


def test_a_json_number_too_long_for_python_is_one_line(tmp_path: Path) -> None:
    """json.loads refuses an integer of more than 4300 digits with a ValueError (not a
    JSONDecodeError): every JSON label reader (COCO, LabelMe, dataset_meta, Vistas) says it in one line."""
    from segpipe.data.formats._annotations import read_json

    path = tmp_path / "instances.json"
    path.write_text('{"images": [{"id": ' + "9" * 5000 + "}]}")
    with pytest.raises(DataError, match=r"instances\.json: not valid JSON: a number too long to read$"):
        read_json(path)
