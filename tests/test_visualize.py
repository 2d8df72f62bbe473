"""``segpipe visualize``: outputs, sizes, colours, the seed's flags and every bad input."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
from inference_helpers import CLASS_NAMES, COLORS, ENCODER, export_onnx, make_checkpoint, save_bare
from typer.testing import CliRunner

from segpipe.cli.visualize import visualize_command
from segpipe.data.synthetic import make_sample
from segpipe.options import VisualizeOptions
from segpipe.palette import Palette, load_palette, overlay
from segpipe.pictures import SIDE_GAP, SIDE_TITLE, draw_legend, overlay_scale, side_scale
from segpipe.progress import RecordingReporter
from segpipe.visualize import visualize


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("vis_models")
    pth, model, info = make_checkpoint(d / "m.pth", seed=1)
    const, _, _ = make_checkpoint(d / "const2.pth", constant_class=2)
    return {
        "pth": pth,
        "onnx": export_onnx(model, info, d / "m.onnx"),
        "bare": save_bare(d / "bare.pth", model),
        "const2": const,
    }


def write_image(path: Path, width: int, height: int, seed: int = 0) -> np.ndarray:
    """A synthetic RGB image written at ``path`` (any format cv2 writes); returns it as read back."""
    image, _ = make_sample(np.random.default_rng(seed), width, height, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, f"{path} was not written"
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def cli(*args: str):
    app = typer.Typer()
    app.command("visualize")(visualize_command)
    app.command("noop")(lambda: None)  # two commands: the app takes the command name as typed
    return CliRunner().invoke(app, ["visualize", *map(str, args)])


def test_one_image_every_output(models, tmp_path):
    image = write_image(tmp_path / "street.png", 90, 50)
    out = tmp_path / "out"
    result = visualize(
        VisualizeOptions(
            images=tmp_path / "street.png",
            model=models["pth"],
            output_dir=out,
            overlay=0.4,
            side_by_side=True,
            save_labels=True,
        )
    )
    assert result.images == 1 and not result.failed and result.files == 5 and result.size == (64, 64)
    mask = read_rgb(out / "street_mask.png")
    labels = cv2.imread(str(out / "street_labels.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (50, 90, 3) and labels.shape == (50, 90) and labels.dtype == np.uint8
    assert labels.max() < 3 and len(np.unique(labels)) > 1
    # colours are the model's palette, pixel for pixel
    np.testing.assert_array_equal(mask, np.array(COLORS, dtype=np.uint8)[labels])
    # the overlay: the photo blended with the mask at [0:H, 0:W], background (class 0) left as the
    # photo, and the run's legend beside it
    over = read_rgb(out / "street_overlay.png")
    legend = read_rgb(out / "legend.png")
    palette = Palette(CLASS_NAMES, COLORS)
    counts = np.bincount(labels.ravel(), minlength=3)
    np.testing.assert_array_equal(legend, draw_legend(palette, counts))
    # the overlay's legend says the background is not drawn (its swatch struck through, "(not drawn)")
    clear = draw_legend(palette, counts, clear=0)
    # a small image's overlay is scaled up by a whole factor like the side-by-side picture (the
    # photo smoothly, the mask by nearest neighbour): never narrower than its legend
    ko = overlay_scale(90, clear.shape[1])
    assert ko > 1 and 90 * ko >= clear.shape[1] and over.shape[1] >= 900
    assert over.shape == (max(50 * ko, clear.shape[0]), 90 * ko + SIDE_GAP + clear.shape[1], 3)
    big = cv2.resize(image, (90 * ko, 50 * ko), interpolation=cv2.INTER_LINEAR)
    big_labels = cv2.resize(labels, (90 * ko, 50 * ko), interpolation=cv2.INTER_NEAREST)
    expected = overlay(big, np.array(COLORS, dtype=np.uint8)[big_labels], 0.4, big_labels, background=0)
    np.testing.assert_array_equal(over[: 50 * ko, : 90 * ko], expected)
    np.testing.assert_array_equal(over[: clear.shape[0], 90 * ko + SIDE_GAP :], clear)
    side = read_rgb(out / "street_side.png")
    # small images are scaled up by a whole factor so that the picture is worth opening
    k = side_scale(90, legend.shape[1])
    assert k > 1 and side.shape[1] >= 900
    assert side.shape == (
        SIDE_TITLE + max(50 * k, legend.shape[0]),
        180 * k + 2 * SIDE_GAP + legend.shape[1],
        3,
    )
    big_mask = cv2.resize(mask, (90 * k, 50 * k), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(
        side[SIDE_TITLE : SIDE_TITLE + 50 * k, 90 * k + SIDE_GAP : 180 * k + SIDE_GAP], big_mask
    )
    assert (side[SIDE_TITLE:, 90 * k : 90 * k + SIDE_GAP] == 255).all()  # the gap is white
    assert (side[:SIDE_TITLE] < 128).any()  # titles are drawn
    np.testing.assert_array_equal(
        side[SIDE_TITLE : SIDE_TITLE + legend.shape[0], 180 * k + 2 * SIDE_GAP :], legend
    )
    # one legend per run, not one per image (unless legend_per_image)
    assert not (out / "street_legend.png").exists() and result.legend == out / "legend.png"
    present = {COLORS[i] for i in np.unique(labels)}
    assert set(result.class_pixels) == {("ground", "thing", "sky")[i] for i in np.unique(labels)}
    assert len(present) == len(result.class_pixels)


def test_folder_with_nested_subfolders(models, tmp_path):
    root = tmp_path / "imgs"
    sizes = {"a.png": (64, 48), "sub/b.jpg": (100, 70), "sub/deeper/c.bmp": (33, 21)}
    for i, (name, (w, h)) in enumerate(sizes.items()):
        write_image(root / name, w, h, seed=i)
    res = cli(
        "--images",
        root,
        "--model",
        models["onnx"],
        "--output-dir",
        tmp_path / "rec",
        "--recursive",
        "--batch-size",
        "2",
    )
    assert res.exit_code == 0, res.output
    for name, (w, h) in sizes.items():
        stem = Path(name).with_suffix("")
        mask = read_rgb(tmp_path / "rec" / f"{stem}_mask.png")
        assert mask.shape == (h, w, 3), name
    assert "visualized 3 of 3" in res.output
    # without --recursive only the top folder is read, and nothing lands in sub-folders
    res = cli("--images", root, "--model", models["pth"], "--output-dir", tmp_path / "flat")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "flat").iterdir()) == [
        "a_mask.png",
        "legend.png",
    ]
    # the PyTorch and ONNX versions of the model paint the same picture
    same = read_rgb(tmp_path / "flat" / "a_mask.png") == read_rgb(tmp_path / "rec" / "a_mask.png")
    assert same.all(axis=2).mean() > 0.999


def test_seed_flag_spellings_with_a_bare_state_dict(models, tmp_path):
    write_image(tmp_path / "in" / "frame.jpg", 80, 60)
    res = cli(
        "--images_path",
        tmp_path / "in",
        "--model_name",
        models["bare"],
        "--output_dir",
        tmp_path / "o",
        "--num_classes",
        "3",
        "--size",
        "96",
        "64",
        "--arch",
        "FPN",
        "--backend",
        ENCODER,
    )
    assert res.exit_code == 0, res.output
    assert "at 96x64" in res.output
    mask = read_rgb(tmp_path / "o" / "frame_mask.png")
    assert mask.shape == (60, 80, 3)
    # no colours in a bare state_dict: the shipped colors.csv paints it
    default = {tuple(c) for c in load_palette(None).colors[:3]}
    assert {tuple(int(v) for v in c) for c in np.unique(mask.reshape(-1, 3), axis=0)} <= default
    res = cli(
        "--images_path",
        tmp_path / "in",
        "--model_name",
        models["bare"],
        "--output_dir",
        tmp_path / "o",
        "--num_classes",
        "4",
        "--arch",
        "FPN",
        "--backend",
        ENCODER,
    )
    assert res.exit_code == 1 and "--num-classes 4 contradicts" in res.output and "bare.pth" in res.output


def test_short_palette_warns_once_and_extends(models, tmp_path):
    for i in range(3):
        write_image(tmp_path / "in" / f"x{i}.png", 40, 30, seed=i)
    csv = tmp_path / "two.csv"
    csv.write_text("id,name,r,g,b\n0,bg,1,2,3\n1,fg,250,250,0\n")
    rec = RecordingReporter()
    visualize(
        VisualizeOptions(
            images=tmp_path / "in", model=models["const2"], output_dir=tmp_path / "o", colors=csv
        ),
        rec,
    )
    assert len(rec.warnings) == 1 and "two.csv has 2 colours for 3 classes" in rec.warnings[0]
    generated = Palette(("bg", "fg"), ((1, 2, 3), (250, 250, 0))).extended(3).colors[2]
    assert generated not in ((1, 2, 3), (250, 250, 0))
    for i in range(3):
        mask = read_rgb(tmp_path / "o" / f"x{i}_mask.png")
        assert (mask == np.array(generated, dtype=np.uint8)).all()


def test_given_palette_colours_are_used(models, tmp_path):
    write_image(tmp_path / "p.png", 64, 64)
    csv = tmp_path / "mine.csv"
    csv.write_text("id,name,r,g,b\n0,a,0,0,255\n1,b,0,255,0\n2,c,255,0,0\n3,d,9,9,9\n")
    visualize(
        VisualizeOptions(
            images=tmp_path / "p.png",
            model=models["pth"],
            output_dir=tmp_path / "o",
            colors=csv,
            save_labels=True,
        )
    )
    labels = cv2.imread(str(tmp_path / "o" / "p_labels.png"), cv2.IMREAD_UNCHANGED)
    mine = np.array([(0, 0, 255), (0, 255, 0), (255, 0, 0)], dtype=np.uint8)
    np.testing.assert_array_equal(read_rgb(tmp_path / "o" / "p_mask.png"), mine[labels])


def test_malformed_palette_names_file_and_line(models, tmp_path):
    write_image(tmp_path / "p.png", 32, 32)
    csv = tmp_path / "bad.csv"
    csv.write_text("id,name,r,g,b\n0,a,0,0,0\n1,b,red,0,0\n")
    res = cli(
        "--images",
        tmp_path / "p.png",
        "--model",
        models["pth"],
        "--output-dir",
        tmp_path / "o",
        "--colors",
        csv,
    )
    assert res.exit_code == 1
    assert "bad.csv line 3" in res.output and "Traceback" not in res.output


def test_folder_without_images(models, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no pictures here")
    res = cli("--images", tmp_path / "empty", "--model", models["pth"], "--output-dir", tmp_path / "o")
    assert res.exit_code == 1
    assert "empty holds no images (read: .png, .jpg, .jpeg, .bmp, .tif, .tiff)" in res.output
    assert not (tmp_path / "o").exists()


def test_unreadable_image_is_named_and_the_rest_written(models, tmp_path):
    write_image(tmp_path / "in" / "good.png", 40, 40)
    write_image(tmp_path / "in" / "also_good.png", 50, 40)
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    res = cli("--images", tmp_path / "in", "--model", models["pth"], "--output-dir", tmp_path / "o")
    assert res.exit_code == 1
    assert "cannot read image" in res.output and "broken.jpg" in res.output
    assert "1 of 3 image(s) could not be read" in res.output
    assert (tmp_path / "o" / "good_mask.png").is_file() and (tmp_path / "o" / "also_good_mask.png").is_file()
    assert not (tmp_path / "o" / "broken_mask.png").exists()


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("weights.h5", "unknown model file type '.h5'"),
        ("missing.onnx", "missing.onnx does not exist"),
        ("missing.pth", "missing.pth does not exist"),
    ],
)
def test_bad_model_files(tmp_path, model, message):
    write_image(tmp_path / "p.png", 32, 32)
    if model.endswith(".h5"):
        (tmp_path / model).write_bytes(b"keras")
    res = cli("--images", tmp_path / "p.png", "--model", tmp_path / model, "--output-dir", tmp_path / "o")
    assert res.exit_code == 1 and message in res.output and "Traceback" not in res.output


def test_size_not_divisible_by_the_stride(models, tmp_path):
    write_image(tmp_path / "p.png", 32, 32)
    res = cli(
        "--images",
        tmp_path / "p.png",
        "--model",
        models["onnx"],
        "--output-dir",
        tmp_path / "o",
        "--size",
        "100",
        "64",
    )
    assert res.exit_code == 1
    assert "--size 100 64" in res.output and "output stride 32" in res.output and "try 96" in res.output


def test_bad_overlay_alpha(models, tmp_path):
    res = cli("--images", tmp_path, "--model", models["pth"], "--overlay", "1.5")
    assert res.exit_code == 1 and "--overlay 1.5: alpha must be between 0 and 1" in res.output


def test_registered_in_the_segpipe_app():
    from segpipe.cli.app import COMMANDS

    names = dict(COMMANDS)
    assert names["visualize"] == "segpipe.cli.visualize:visualize_command"
    assert names["evaluate"] == "segpipe.cli.evaluate:evaluate_command"


def test_colorize_lut_path_equals_indexing_path():
    from segpipe.palette import colorize

    palette = load_palette(None).truncated(5)
    labels = np.random.default_rng(0).integers(0, 256, size=(30, 40)).astype(np.uint8)
    labels[0, :4] = 255  # ignore index: VOC's void colour; ids beyond the palette: black; in both
    labels[1, :4] = 7
    fast = colorize(labels, palette)  # uint8: cv2.LUT
    np.testing.assert_array_equal(fast, colorize(labels.astype(np.int64), palette))  # numpy indexing
    assert tuple(fast[0, 0]) == (224, 224, 192) and tuple(fast[1, 0]) == (0, 0, 0)
    wide = labels.astype(np.uint16) + 200
    np.testing.assert_array_equal(colorize(wide, palette), colorize(wide.astype(np.int64), palette))


def test_the_last_line_names_every_folder_written(models, cityscapes_root, tmp_path):
    """Pictures of a data set go into its sub-folders (Cityscapes' cities, COCO's and YOLO's
    val/), the run's legend into the output folder: the closing line names each, with counts."""
    out = tmp_path / "vis"
    result = visualize(
        VisualizeOptions(
            images=cityscapes_root, data_root=cityscapes_root, model=models["pth"], output_dir=out
        )
    )
    masks = sorted(out.rglob("*_mask.png"))
    assert masks and {p.parent for p in masks} == {out / "val" / "frankfurt"}
    assert result.folders == {out / "val" / "frankfurt": len(masks), out: 1}  # the masks, legend.png
    assert (
        result.where() == f"{len(masks) + 1} file(s): {len(masks)} to {out / 'val' / 'frankfurt'}, 1 to {out}"
    )
    res = cli("--data-root", cityscapes_root, "-m", models["pth"], "-o", tmp_path / "v2", "--device", "cpu")
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert f"{len(masks)} to {tmp_path / 'v2' / 'val' / 'frankfurt'}, 1 to {tmp_path / 'v2'}" in text, text
    # hundreds of folders (--recursive): the first few named, the rest counted
    from segpipe.visualize import FOLDERS_NAMED, VisualizeResult

    many = VisualizeResult(out, "pytorch", (64, 64))
    for i in range(FOLDERS_NAMED + 3):
        many.wrote(out / f"d{i:02d}", 2)
    many.wrote(out)
    text = many.where()
    assert text.startswith(f"{2 * FOLDERS_NAMED + 7} file(s): 2 to {out / 'd00'}, ")
    assert (
        text.endswith(f" and 7 to 4 more folder(s) under {out}") and text.count(" to ") == FOLDERS_NAMED + 1
    )
    # one folder: said as before
    one = visualize(VisualizeOptions(images=masks[0], model=models["pth"], output_dir=tmp_path / "flat"))
    assert one.where() == f"2 file(s) to {tmp_path / 'flat'}"
