"""Bad inputs on the data, inference and message side (issue 9): grouped by promise.

* silent results: what used to give a wrong figure with exit 0 is now an error or a loud warning;
* messages: what used to mislead (wrong cause, emoji and markup out of paths, words cut in half,
  a checkpoint called an engine) now says what is true.

Tiny data (32-64 px), one FPN/resnet18 model exported once per module.
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from inference_helpers import make_checkpoint, tiny_info
from typer.testing import CliRunner

from segpipe.cli.app import app
from segpipe.data.dataset import find_samples, scan_samples
from segpipe.data.formats import open_dataset
from segpipe.data.masks import MaskDecoder
from segpipe.data.synthetic import make_dataset
from segpipe.errors import CheckpointError, ConfigError, DataError, first_line, shorten, some
from segpipe.evaluate import evaluate
from segpipe.info import describe_model
from segpipe.options import EvaluateOptions, VisualizeOptions
from segpipe.palette import fit_palette, load_palette, save_palette
from segpipe.progress import RecordingReporter
from segpipe.runtime.base import load_runner, runner_class, sniff_model_kind
from segpipe.runtime.onnxruntime import OnnxRunner
from segpipe.runtime.torch import TorchRunner

IMAGENET_PX = {"mean": (123.675, 116.28, 103.53), "std": (58.395, 57.12, 57.375)}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


def plain_export(
    model: torch.nn.Module, path: Path, channel_axis_dynamic: bool = False, fixed_size: bool = False
) -> Path:
    """What a user without segpipe does: ``torch.onnx.export`` of the smp model itself (NCHW input,
    ImageNet-normalised floats expected, no metadata)."""
    axes = {0: "n"} if fixed_size else {0: "n", 2: "h", 3: "w"}
    if channel_axis_dynamic:
        axes[1] = "c"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            torch.zeros(1, 3, 64, 64),
            str(path),
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": axes, "y": {0: "n"} if fixed_size else {0: "n", 2: "h", 3: "w"}},
            dynamo=False,
            opset_version=17,
        )
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("robio")
    pth, model, info = make_checkpoint(d / "m.pth", seed=3)
    return {
        "dir": d,
        "pth": pth,
        "info": info,
        "plain": plain_export(model, d / "plain.onnx"),
        "plain_c": plain_export(model, d / "plain_c.onnx", channel_axis_dynamic=True),
        "plain_fixed": plain_export(model, d / "plain_fixed.onnx", fixed_size=True),
        "data": make_dataset(d / "data", count=3, size=(64, 64), num_classes=3, seed=4),
    }


def cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


# ---- silent results ------------------------------------------------------------------------------
def test_palette_giving_one_colour_to_two_classes_is_refused_for_colour_masks(tmp_path):
    root = make_dataset(tmp_path / "d", count=2, size=(32, 32), num_classes=4, color_masks=True, seed=1)
    pal = load_palette(root / "colors.csv")
    colors = list(pal.colors)
    colors[3] = colors[1]
    save_palette(type(pal)(pal.names, tuple(colors)), root / "colors.csv")
    dup = load_palette(root / "colors.csv")  # reading it is fine: visualize only draws with it
    with pytest.raises(ConfigError) as e:
        scan_samples(find_samples(root), open_dataset(root, "seed", num_classes=4, palette=dup))
    msg = str(e.value)
    assert str(root / "colors.csv") in msg and str(colors[1]) in msg and "\n" not in msg
    assert f"class 1 {pal.names[1]!r}" in msg and f"class 3 {pal.names[3]!r}" in msg
    with pytest.raises(ConfigError, match="is given to both class 1"):  # at once when masks are colours
        MaskDecoder(4, dup, mask_type="color")
    index_root = make_dataset(tmp_path / "i", count=2, size=(32, 32), num_classes=4, seed=1)
    reader = open_dataset(index_root, "seed", num_classes=4, palette=dup)
    assert scan_samples(reader.samples(), reader).count == 2  # index masks: no colours


def test_plain_onnx_export_is_refused_without_normalisation_and_right_with_it(models):
    with pytest.raises(CheckpointError) as e:
        OnnxRunner(models["plain"], "cpu")
    msg = str(e.value)
    assert "plain.onnx has no segpipe metadata" in msg and "--mean 123.675 116.28 103.53" in msg
    rec = RecordingReporter()
    batch = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    with (
        OnnxRunner(models["plain"], "cpu", reporter=rec, **IMAGENET_PX) as r,
        TorchRunner(models["pth"], "cpu") as ref,
    ):
        assert r.info.layout == "NCHW" and r.info.num_classes == 3
        np.testing.assert_allclose(r(batch), ref(batch), atol=1e-3)
    (warning,) = rec.warnings
    assert "no segpipe metadata" in warning and "NCHW" in warning and "123.675" in warning
    assert "3 classes" in warning and "look like values for 0-1 pixels" not in warning
    assert "input size 512x512 (segpipe's default unless --size" in warning
    rec = RecordingReporter()  # 0-1 scale values by mistake: said in the warning
    with OnnxRunner(
        models["plain"], "cpu", reporter=rec, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
    ):
        assert "look like values for 0-1 pixels" in rec.warnings[0]


def test_plain_onnx_gives_the_checkpoint_miou_through_the_cli(models, tmp_path):
    data = models["data"]
    res = cli("evaluate", "--data-root", data, "--model", models["plain"])
    assert res.exit_code == 1 and "no segpipe metadata" in res.output and "Traceback" not in res.output
    reports = {}
    for name, extra in (
        ("pth", []),
        ("plain", ["--mean", *IMAGENET_PX["mean"], "--std", *IMAGENET_PX["std"]]),
    ):
        reports[name] = tmp_path / f"{name}.json"
        res = cli(
            "evaluate",
            "--data-root",
            data,
            "--model",
            models[name],
            "--size",
            64,
            64,
            "--report",
            reports[name],
            *extra,
        )
        assert res.exit_code == 0, res.output
    miou = {k: json.loads(p.read_text())["miou"] for k, p in reports.items()}
    assert miou["plain"] == pytest.approx(miou["pth"], abs=1e-4)
    res = cli("evaluate", "--data-root", data, "--model", models["pth"], "--mean", 0, 0, 0, "--std", 1, 1, 1)
    assert res.exit_code == 1 and "carries its own normalisation" in res.output
    # said in the flags' units, not the 0-1 values the checkpoint stores
    assert "in pixel units (0-255)" in " ".join(res.output.split()), res.output


def test_input_layout_is_asked_for_when_the_shape_does_not_show_it(models):
    with pytest.raises(CheckpointError, match="does not show the layout; pass --input-layout"):
        OnnxRunner(models["plain_c"], "cpu", **IMAGENET_PX)
    with OnnxRunner(models["plain_c"], "cpu", input_layout="nchw", **IMAGENET_PX) as r:
        assert r.info.layout == "NCHW"
        assert r(np.zeros((1, 64, 64, 3), np.uint8)).shape == (1, 3, 64, 64)
    with pytest.raises(CheckpointError, match="no 3-channel axis where NHWC puts it"):
        OnnxRunner(models["plain_fixed"], "cpu", input_layout="nhwc", **IMAGENET_PX)
    with pytest.raises(ConfigError, match="--input-layout chw: use nchw or nhwc"):
        VisualizeOptions(images=Path("x"), model=Path("m.onnx"), input_layout="chw")
    with pytest.raises(ConfigError, match="give --std too"):
        VisualizeOptions(images=Path("x"), model=Path("m.onnx"), mean=(0, 0, 0))


def test_evaluate_warns_when_the_model_has_other_classes_than_the_data_set(models, tmp_path):
    data = make_dataset(tmp_path / "c", count=2, size=(64, 64), num_classes=4, color_masks=True, seed=5)
    five, _, _ = make_checkpoint(tmp_path / "five.pth", tiny_info(5))
    rec = RecordingReporter()
    result = evaluate(EvaluateOptions(data_root=data, model=five, device="cpu"), rec)
    # the other warning: the test model records no training split, so all images are read
    (warning,) = [w for w in result.warnings if "classes are not the data set's" in w]
    assert warning in rec.warnings and "4 classes in the data set, 5 in the model" in warning
    assert str(data / "colors.csv") in warning and warning in result.to_dict()["warnings"]
    res = cli("evaluate", "--data-root", data, "--model", five)
    assert res.exit_code == 0 and res.output.count("the model's classes are not the data set's") == 2
    # same count, other names and colours (the model's are inference_helpers.COLORS)
    data3 = make_dataset(tmp_path / "c3", count=2, size=(64, 64), num_classes=3, color_masks=True, seed=5)
    warnings = evaluate(EvaluateOptions(data_root=data3, model=models["pth"], device="cpu")).warnings
    (warning,) = [w for w in warnings if "classes are not the data set's" in w]
    pal = load_palette(data3 / "colors.csv")
    assert f"class 0 is {pal.names[0]!r} {pal.colors[0]} in the data set but 'ground' (10, 20, 30)" in warning
    # the same classes, names and colours: no warning
    info = tiny_info().replace(class_names=pal.names, colors=pal.colors)
    same, _, _ = make_checkpoint(tmp_path / "same.pth", info)
    warnings = evaluate(EvaluateOptions(data_root=data3, model=same, device="cpu")).warnings
    assert [w for w in warnings if "classes" in w] == [] and len(warnings) == 1  # only: no split record


def test_masks_without_an_image_are_counted_and_named(tmp_path):
    root = make_dataset(tmp_path / "d", count=2, size=(32, 32), num_classes=3, seed=1)
    for i in range(4):
        shutil.copy(
            root / "indexes" / "sample_000_color_mask.png", root / "indexes" / f"lost_{i}_color_mask.png"
        )
    rec = RecordingReporter()
    assert len(find_samples(root, reporter=rec)) == 2
    (warning,) = rec.warnings
    assert warning.startswith("4 mask(s) in") and "have no image" in warning
    assert "indexes/lost_0_color_mask.png" in warning and "and 1 more" in warning


# ---- messages ------------------------------------------------------------------------------------
def test_colour_beyond_num_classes_names_the_class_id_not_a_missing_colour(tmp_path):
    root = make_dataset(tmp_path / "d", count=1, size=(32, 32), num_classes=5, color_masks=True, seed=3)
    palette, _ = fit_palette(load_palette(root / "colors.csv"), 3)  # what train does with --num-classes 3
    raw = cv2.imread(str(root / "indexes" / "sample_000_color_mask.png"), cv2.IMREAD_UNCHANGED)
    rgb = palette.dropped[0][1]
    raw[0, 0] = rgb[::-1]  # BGR on disk
    with pytest.raises(DataError) as e:
        MaskDecoder(3, palette).decode(raw, "m.png")
    msg = str(e.value)
    assert f"colour {rgb}" in msg and f"is class 3 {palette.dropped[0][0]!r}" in msg
    assert "below --num-classes 3" in msg and "not in the palette" not in msg
    # the class can now be mapped away, as the message says
    labels = MaskDecoder(3, palette, {3: 255, 4: 255}).decode(raw, "m.png")
    assert labels[0, 0] == 255 and labels.max() == 255


def test_markup_and_emoji_in_paths_are_printed_as_they_are(models, tmp_path):
    weird = tmp_path / "x:fire:y [red]z[/red]"
    res = cli("evaluate", "--data-root", weird / "none", "--model", models["pth"])
    assert res.exit_code == 1 and "x:fire:y [red]z[/red]" in res.output and "🔥" not in res.output
    images = weird / "imgs"
    images.mkdir(parents=True)
    shutil.copy(models["data"] / "images" / "sample_000.png", images / "a:fire:.png")
    res = cli(
        "visualize",
        "--images",
        images,
        "--model",
        models["pth"],
        "--output-dir",
        weird / "out",
        "--save-labels",
    )
    assert res.exit_code == 0, res.output
    assert str(weird / "out") in " ".join(res.output.split()) and "🔥" not in res.output
    assert (weird / "out" / "a:fire:_mask.png").is_file()


def test_rich_output_of_the_reporter_is_literal(capsys, tmp_path):
    from segpipe.cli.common import RichReporter, print_written, warn

    f = tmp_path / "a:fire:[red]b.png"
    f.write_bytes(b"x")
    print_written(f, "[bold]mask")
    warn("bad :fire: [red]value")
    rep = RichReporter()
    rep.info("info :fire: [red]x")
    rep.table("title :fire: [red]", ["name"], [["[red]class:fire:"]])
    with rep.task("read [red]:fire:", total=1) as task:
        task.advance(name="[b]:fire:")
    out = capsys.readouterr()
    text = out.out + out.err
    assert "🔥" not in text
    for literal in (
        "a:fire:[red]b.png",
        "[bold]mask",
        "bad :fire: [red]value",
        "info :fire: [red]x",
        "title :fire: [red]",
        "[red]class:fire:",
        "read [red]:fire:",
        "[b]:fire:",
    ):
        assert literal in text, literal


def test_messages_are_shortened_at_word_boundaries_with_a_count():
    text = " ".join(f"word{i}" for i in range(100))
    short = shorten(text, 60)
    head, _, tail = short.partition(" ... (+")
    assert len(head) <= 60 and text.startswith(head) and text[len(head)] == " "  # whole words only
    assert tail == f"{len(text) - len(head)} characters)"
    assert shorten("short", 60) == "short"
    assert shorten("x" * 300, 100).startswith("x" * 100 + " ... (+200")  # one long token: cut inside
    assert first_line(RuntimeError("first\nsecond")) == "RuntimeError: first"
    assert some(["a", "b", "c", "d", "e"]) == "a, b, c and 2 more" and some(["a"]) == "a"


def test_weights_that_do_not_fit_are_cut_at_a_word_with_a_count(models, tmp_path):
    from segpipe.models import load_model

    bare = tmp_path / "bare.pth"
    torch.save(torch.load(models["pth"], weights_only=True)["state_dict"], bare)
    with pytest.raises(CheckpointError) as e:
        load_model(bare, arch="Unet", encoder="resnet18", num_classes=3)
    msg = str(e.value)
    assert re.search(r"[\w\"'] \.\.\. \(\+\d+ characters\)", msg) and "\n" not in msg
    # the cut falls between two keys of torch's list, never inside one
    keys = re.findall(r'"([^"]*)"', msg.split(" ... (+")[0])
    ends = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
    assert keys and all(k.rsplit(".", 1)[-1] in ends for k in keys), keys


def test_model_files_are_recognised_by_content_not_suffix(models, tmp_path):
    as_bin = shutil.copy(models["pth"], tmp_path / "pytorch_model.bin")
    onnx_bin = shutil.copy(models["plain"], tmp_path / "model.bin")
    plan = tmp_path / "model.pth"
    plan.write_bytes(b"ftrt" + bytes(60))
    ultra = tmp_path / "yolo.bin"  # Ultralytics: length-prefixed JSON, then the plan
    header = b'{"imgsz": [64, 64]}'
    ultra.write_bytes(len(header).to_bytes(4, "little") + header + b"ftrt" + bytes(16))
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 32)
    kinds = {p.name: sniff_model_kind(p) for p in (as_bin, onnx_bin, plan, ultra, junk)}
    assert kinds == {
        "pytorch_model.bin": "torch",
        "model.bin": "onnx",
        "model.pth": "tensorrt",
        "yolo.bin": "tensorrt",
        "junk.bin": None,
    }
    assert runner_class(as_bin) is TorchRunner and runner_class(onnx_bin) is OnnxRunner
    assert runner_class(junk).backend == "tensorrt"  # unknown content: the suffix decides
    desc = describe_model(as_bin)
    assert desc.kind == "segpipe checkpoint" and "from its content" in desc.notes[-1]
    with load_runner(as_bin, "cpu") as r:
        assert r.backend == "pytorch" and r.info.num_classes == 3
    res = cli("info", as_bin)
    assert res.exit_code == 0 and "segpipe checkpoint" in res.output and "tensorrt engine" not in res.output
    assert describe_model(plan).kind == "tensorrt engine"


def test_class_mismatch_from_names_only_data_says_no_colour_of_the_data_set() -> None:
    """A data set that names its classes without colours (a YAML, COCO categories) borrows the
    model's colours for pictures: the warning must not present them as the data set's."""
    from segpipe.evaluate import class_mismatch
    from segpipe.palette import Palette

    info = tiny_info().replace(
        class_names=("ground", "car", "sky"), colors=((10, 20, 30), (1, 2, 3), (4, 5, 6))
    )
    names_only = Palette(("road", "car", "sky"), info.colors, "data.yaml names")
    warning = class_mismatch(info, names_only, "m.pth", colours=False)
    assert warning is not None and "class 0 is 'road' in the data set but 'ground' (10, 20, 30)" in warning
    other_colour = Palette(("ground", "car", "sky"), ((9, 9, 9), (1, 2, 3), (4, 5, 6)), "data.yaml names")
    assert class_mismatch(info, other_colour, "m.pth", colours=False) is None  # colours not compared
    assert "(9, 9, 9) in the data set" in class_mismatch(info, other_colour, "m.pth")
