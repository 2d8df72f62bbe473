"""Label formats read from their native layouts, files written as the data sets write them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import TRAIN_FLAGS
from format_data import CITYSCAPES_IDS, save_voc_mask, voc_border
from PIL import Image
from typer.testing import CliRunner

from segpipe.cli.app import app
from segpipe.data.dataset import find_samples, load_pair
from segpipe.data.formats import detect_format, open_dataset
from segpipe.data.formats.voc import VOC_CLASSES
from segpipe.data.masks import MaskDecoder
from segpipe.errors import ConfigError, DataError
from segpipe.models import load_checkpoint


def cli(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def seed_with_voc_masks(root: Path, count: int = 3) -> Path:
    """The seed layout holding masks written as VOC writes them (P-mode, 255 borders)."""
    rng = np.random.default_rng(3)
    (root / "images").mkdir(parents=True)
    (root / "indexes").mkdir()
    for i in range(count):
        idx = np.zeros((32, 32), np.uint8)
        idx[8:24, 4:20] = 15  # person: VOC colour (192, 128, 128)
        idx[2:10, 20:30] = 1
        cv2.imwrite(str(root / "images" / f"s{i}.png"), rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
        save_voc_mask(root / "indexes" / f"s{i}_color_mask.png", voc_border(idx))
    return root


def test_pmode_png_is_read_as_indices_not_palette_colours(tmp_path: Path) -> None:
    """The P-mode bug: OpenCV expands a palette PNG to colours, so --mask-type index took a colour
    byte as the class (class 0 nearly everywhere); the indices are what Pillow reads."""
    root = seed_with_voc_masks(tmp_path / "ds")
    sample = find_samples(root)[0]
    truth = np.asarray(Image.open(sample.label))
    assert Image.open(sample.label).mode == "P" and set(np.unique(truth)) == {0, 1, 15, 255}
    as_cv2 = cv2.imread(str(sample.label), cv2.IMREAD_UNCHANGED)
    assert as_cv2.ndim == 3  # what the old code decoded: BGR palette colours
    assert not np.array_equal(as_cv2[:, :, 0], truth)
    for mask_type in ("index", "auto"):  # auto used to refuse the border colour (224, 224, 192)
        _, mask = load_pair(sample, MaskDecoder(21, mask_type=mask_type))
        np.testing.assert_array_equal(mask, truth)


def test_detection_picks_the_format_and_says_why(
    voc_root: Path, cityscapes_root: Path, index_dataset: Path
) -> None:
    assert detect_format(voc_root)[0] == "voc"
    assert detect_format(cityscapes_root) == ("cityscapes", "leftImg8bit/ and gtFine/")
    assert detect_format(index_dataset)[0] == "seed"


def test_nothing_or_a_file_is_one_line(tmp_path: Path, tiny_checkpoint: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not a data set")  # (an empty folder says so)
    with pytest.raises(DataError, match="no label format found; pass --format") as e:
        detect_format(tmp_path / "empty")
    assert "segpipe data --formats" in str(e.value) and "\n" not in str(e.value)
    f = tmp_path / "f.txt"
    f.write_text("x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        open_dataset(f)
    r = cli("train", "--data-root", f, "--num-classes", "3", *TRAIN_FLAGS)
    assert r.exit_code == 1 and "is a file, not a folder" in r.output
    for command in ("evaluate", "visualize"):
        r = cli(command, "--data-root", f, "--model", tiny_checkpoint, "--device", "cpu")
        assert r.exit_code == 1 and f"data root {f} is a file, not a folder" in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1


def test_two_specific_formats_are_ambiguous(tmp_path: Path) -> None:
    for d in ("JPEGImages", "SegmentationClass", "leftImg8bit", "gtFine"):
        (tmp_path / d).mkdir()
    with pytest.raises(
        DataError, match=r"could be read as several formats: cityscapes .*; voc .*pick one with --format"
    ):
        detect_format(tmp_path)


def test_ade20k_reduces_the_zero_label_and_reads_its_names(tmp_path: Path) -> None:
    base = tmp_path / "ADEChallengeData2016"
    for split in ("training", "validation"):
        (base / "images" / split).mkdir(parents=True)
        (base / "annotations" / split).mkdir(parents=True)
        ann = np.zeros((16, 16), np.uint8)
        ann[4:, :] = 1  # wall
        ann[8:, 8:] = 3  # floor
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(base / "images" / split / f"ADE_{split}_1.jpg")
        Image.fromarray(ann).save(base / "annotations" / split / f"ADE_{split}_1.png")
    (base / "objectInfo150.csv").write_text(
        "Idx,Ratio,Train,Val,Name\n1,0.1,1,1,wall\n2,0.1,1,1,building;edifice\n3,0.1,1,1,sky\n"
    )
    reader = open_dataset(tmp_path)
    assert reader.name == "ade20k" and reader.classes().names == ("wall", "building", "sky")
    s = reader.samples()[0]
    mask = reader.load_mask(s)
    assert mask[0, 0] == 255 and mask[5, 0] == 0 and mask[15, 15] == 2
    assert {x.split for x in reader.samples()} == {"train", "val"}
    kept = open_dataset(tmp_path, reduce_zero_label=False)
    assert kept.load_mask(s)[0, 0] == 0 and kept.classes().names[0] == "other"


def test_readers_pickle_for_spawned_loader_workers(voc_root: Path, color_dataset: Path) -> None:
    import pickle
    import threading

    from segpipe.progress import Reporter

    class Loud(Reporter):
        def __init__(self) -> None:
            self.lock = threading.Lock()  # like a rich console: not picklable

    for root in (voc_root, color_dataset):
        reader = open_dataset(root, num_classes=21, reporter=Loud())
        s = reader.samples()[0]
        before = reader.load_mask(s)
        again = pickle.loads(pickle.dumps(reader))
        np.testing.assert_array_equal(again.load_mask(s), before)


def test_voc_reader(voc_root: Path) -> None:
    reader = open_dataset(voc_root)
    samples = reader.samples()
    assert [s.split for s in samples].count("val") == 4 and len(samples) == 12
    info = reader.classes()
    assert info.names == VOC_CLASSES and info.colors[15] == (192, 128, 128)
    s = samples[0]
    image, mask = reader.load(s)
    np.testing.assert_array_equal(mask, np.asarray(Image.open(s.label)))
    assert image.shape == (64, 64, 3) and 255 in mask
    with pytest.raises(ConfigError, match="--images-dir pics: applies to the seed layout"):
        open_dataset(voc_root, "voc", images_dir="pics")


def test_cityscapes_label_ids_become_train_ids(cityscapes_root: Path) -> None:
    reader = open_dataset(cityscapes_root)
    assert len(reader.classes().names) == 19 and reader.classes().names[13] == "car"
    s = reader.samples()[0]
    ids = np.asarray(Image.open(s.label))
    mask = reader.load_mask(s)
    for label_id, train_id in CITYSCAPES_IDS.items():
        assert (mask[ids == label_id] == train_id).all()
    for ignored in (0, 1, 255):  # unlabeled, ego vehicle, license plate (-1)
        assert (ids == ignored).any() and (mask[ids == ignored] == 255).all()
    assert {x.split for x in reader.samples()} == {"train", "val"}


def test_reduce_zero_label(tmp_path: Path) -> None:
    root = seed_with_voc_masks(tmp_path / "ds", 1)
    reader = open_dataset(root, reduce_zero_label=True)
    raw = np.asarray(Image.open(reader.samples()[0].label))
    mask = reader.load_mask(reader.samples()[0])
    assert (mask[raw == 0] == 255).all() and (mask[raw == 15] == 14).all() and (mask[raw == 255] == 255).all()
    with pytest.raises(ConfigError, match="--reduce-zero-label applies to index masks"):
        open_dataset(root, format="cityscapes", reduce_zero_label=True)


def test_class_weight_file_matches_names(tmp_path: Path) -> None:
    from segpipe.training.losses import read_class_weights

    f = tmp_path / "w.txt"
    f.write_text("bird,4\nbackground,1\ncat,2\n")
    assert read_class_weights(f, 3, ("background", "cat", "bird")) == (1.0, 2.0, 4.0)
    f.write_text("bird,4\nbackground,1\ndog,2\n")
    with pytest.raises(ConfigError, match=r"w.txt line 3: 'dog' is not a class"):
        read_class_weights(f, 3, ("background", "cat", "bird"))
    f.write_text("bird,4\nbackground,1\n")
    with pytest.raises(ConfigError, match=r"w.txt: no weight for class 'cat'"):
        read_class_weights(f, 3, ("background", "cat", "bird"))
    f.write_text("1\n2\n4\n")
    assert read_class_weights(f, 3, ("background", "cat", "bird")) == (1.0, 2.0, 4.0)


def _miou_by_hand(model: Path, reader_samples, num_classes: int) -> float:
    """mIoU from Pillow-read indices and the model's own predictions, in numpy."""
    from segpipe.runtime.base import load_runner
    from segpipe.runtime.pipeline import predict_arrays

    images = [np.asarray(Image.open(s.image).convert("RGB")) for s in reader_samples]
    truths = [np.asarray(Image.open(s.label)) for s in reader_samples]
    with load_runner(model, "cpu") as runner:
        preds = predict_arrays(runner, images)
    cm = np.zeros((num_classes, num_classes), np.int64)
    for t, p in zip(truths, preds, strict=True):
        keep = t != 255
        cm += np.bincount(num_classes * t[keep].astype(np.int64) + p[keep], minlength=num_classes**2).reshape(
            num_classes, num_classes
        )
    inter = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - inter
    present = union > 0
    return float((inter[present] / union[present]).mean())


@pytest.mark.slow
def test_voc_trains_evaluates_and_visualizes(voc_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    r = cli("train", "--data-root", voc_root, "--epochs", "1", "--output-dir", run, *TRAIN_FLAGS)
    assert r.exit_code == 0, r.output
    assert "voc format" in r.output and "21 classes" in r.output
    assert load_checkpoint(run / "best.pth").info.class_names == VOC_CLASSES
    report = tmp_path / "eval.json"
    r = cli(
        "evaluate",
        "--data-root",
        voc_root,
        "--model",
        run / "best.pth",
        "--device",
        "cpu",
        "--report",
        report,
    )
    assert r.exit_code == 0, r.output
    got = json.loads(report.read_text())
    assert got["images"] == 4  # the val split
    reader = open_dataset(voc_root)
    val = [s for s in reader.samples() if s.split == "val"]
    assert got["miou"] == pytest.approx(_miou_by_hand(run / "best.pth", val, 21), abs=1e-9)
    out = tmp_path / "vis"
    r = cli("visualize", "--data-root", voc_root, "--model", run / "best.pth", "--output-dir", out,
            "--side-by-side", "--device", "cpu")  # fmt: skip
    assert r.exit_code == 0, r.output
    side = cv2.imread(str(out / f"{val[0].name}_side.png"))
    assert side is not None and side.shape[1] > 3 * 64  # image, ground truth and prediction


def test_voc_evaluation_equals_numpy_and_index_mode_agrees(voc_root: Path, tmp_path: Path) -> None:
    """evaluate on VOC (val split) = numpy on Pillow-read indices and the model's predictions; the
    same P-mode masks in the seed layout with --mask-type index score the same (the old code read
    them as colours: class 0 nearly everywhere, or values beyond the classes)."""
    from inference_helpers import make_checkpoint, tiny_info

    from segpipe.evaluate import evaluate
    from segpipe.options import EvaluateOptions

    info = tiny_info(21).replace(class_names=VOC_CLASSES, colors=())
    ckpt, _, _ = make_checkpoint(tmp_path / "m.pth", info, seed=3)
    got = evaluate(EvaluateOptions(data_root=voc_root, model=ckpt, device="cpu"))
    val = [s for s in open_dataset(voc_root).samples() if s.split == "val"]
    assert got.images == len(val) == 4 and not got.warnings
    assert got.miou == pytest.approx(_miou_by_hand(ckpt, val, 21), abs=1e-9)
    seed = tmp_path / "seed"
    (seed / "images").mkdir(parents=True)
    (seed / "indexes").mkdir()
    for s in val:
        shutil.copy(s.image, seed / "images" / s.image.name)
        shutil.copy(s.label, seed / "indexes" / f"{s.name}_color_mask.png")
    for mask_type in ("index", "auto"):
        again = evaluate(EvaluateOptions(data_root=seed, model=ckpt, device="cpu", mask_type=mask_type))
        assert again.miou == pytest.approx(got.miou, abs=1e-12)
        np.testing.assert_array_equal(again.confusion.matrix, got.confusion.matrix)


def test_cityscapes_trains_with_its_names(cityscapes_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    flags = [f if f != "64" else "32" for f in TRAIN_FLAGS]
    flags[flags.index("--size") + 1] = "64"
    r = cli("train", "--data-root", cityscapes_root, "--epochs", "1", "--output-dir", run, *flags)
    assert r.exit_code == 0, r.output
    assert load_checkpoint(run / "best.pth").info.class_names[6] == "traffic light"
    assert "cityscapes format" in r.output and "6 training and 2 validation images" in r.output
    model = run / "best.pth"
    r = cli("evaluate", "--data-root", cityscapes_root, "--model", model, "--device", "cpu")
    assert r.exit_code == 0 and "2 images" in r.output, r.output  # the val split by default
    r = cli(
        "evaluate", "--data-root", cityscapes_root, "--model", model, "--device", "cpu", "--split", "train"
    )
    assert r.exit_code == 0 and "6 images" in r.output, r.output
    r = cli(
        "evaluate", "--data-root", cityscapes_root, "--model", model, "--device", "cpu", "--split", "test"
    )
    assert r.exit_code == 1 and "--split test:" in r.output and "has no test split" in r.output
    out = tmp_path / "vis"
    r = cli("visualize", "--data-root", cityscapes_root, "--model", model, "-o", out, "--side-by-side",
            "--device", "cpu")  # fmt: skip
    assert r.exit_code == 0, r.output
    sides = sorted(out.rglob("*_side.png"))
    assert len(sides) == 2 and sides[0].parent.name == "frankfurt"
    side = np.asarray(Image.open(sides[0]).convert("RGB"))
    # three panels: image, ground truth (road in its Cityscapes colour), prediction
    from segpipe.pictures import SIDE_GAP, SIDE_TITLE

    # small panels are scaled up by a whole factor k (nearest): the image panel ends where the first
    # all-white gap of SIDE_GAP columns begins
    body = side[SIDE_TITLE:]
    white = (body == 255).all(axis=(0, 2))
    k = next(k for k in range(1, 40) if white[64 * k : 64 * k + SIDE_GAP].all() and not white[64 * k - 1])
    assert k > 1 and side.shape[1] >= 900
    truth = side[SIDE_TITLE : SIDE_TITLE + 32 * k, 64 * k + SIDE_GAP : 2 * 64 * k + SIDE_GAP]
    assert (truth[-5 * k] == (128, 64, 128)).all(axis=-1).any()  # a row of road above the ego vehicle
    assert (truth[-1] == (224, 224, 192)).all()  # ego vehicle: ignored, in VOC's void colour (not black)
    r = cli("visualize", "--model", model, "-o", out, "--device", "cpu")
    assert r.exit_code == 1 and "give --images" in r.output


def test_index_masks_without_names_are_class_n_with_one_line(index_dataset: Path, tmp_path: Path) -> None:
    """No colors.csv, no --class-names: class_0.. and one line saying how to name them (never the
    shipped VOC palette's names)."""
    from segpipe.data.build import build_data
    from segpipe.options import TrainOptions
    from segpipe.progress import Reporter

    class Rec(Reporter):
        def __init__(self) -> None:
            self.lines: list[str] = []

        def warn(self, message: str) -> None:
            self.lines.append(message)

        def info(self, message: str) -> None:
            self.lines.append(message)

    data = tmp_path / "d"
    shutil.copytree(index_dataset, data)
    (data / "colors.csv").unlink(missing_ok=True)
    opts = TrainOptions(data_root=data, num_classes=3)
    rec = Rec()
    data = build_data(opts, rec, scan=False)
    assert data.names == ("class_0", "class_1", "class_2") and "background" not in data.palette.names
    assert sum("--class-names" in ln for ln in rec.lines) == 1


def test_train_reads_the_colours_and_names_of_data_root_colors_csv(tmp_path: Path) -> None:
    """One rule for every command: train decodes colour masks with DATA_ROOT/colors.csv (colours
    the shipped palette does not have) and names the classes after it; --images-dir/--masks-dir."""
    from segpipe.data.synthetic import make_dataset
    from segpipe.palette import Palette

    pal = Palette(("sea", "reef", "kelp"), ((1, 2, 3), (200, 10, 90), (20, 220, 120)))
    root = make_dataset(tmp_path / "d", count=4, size=(64, 64), num_classes=3, color_masks=True, palette=pal)
    (root / "images").rename(root / "pics")
    (root / "indexes").rename(root / "labels")
    run = tmp_path / "run"
    r = cli("train", "--data-root", root, "--images-dir", "pics", "--masks-dir", "labels", "--epochs", "1",
            "--output-dir", run, *TRAIN_FLAGS)  # fmt: skip
    assert r.exit_code == 0, r.output
    info = load_checkpoint(run / "best.pth").info
    assert info.class_names == ("sea", "reef", "kelp") and info.num_classes == 3
    assert tuple(map(tuple, info.colors)) == pal.colors
