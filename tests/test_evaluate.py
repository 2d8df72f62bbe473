"""``segpipe evaluate`` and the confusion-matrix metrics: known figures, every backend, bad input."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
import typer
from inference_helpers import export_onnx, make_checkpoint
from typer.testing import CliRunner

from segpipe.cli.evaluate import evaluate_command
from segpipe.data.dataset import find_samples, load_pair
from segpipe.data.masks import MaskDecoder
from segpipe.data.synthetic import make_dataset
from segpipe.errors import ConfigError, DataError
from segpipe.evaluate import evaluate
from segpipe.metrics import ConfusionMatrix
from segpipe.options import EvaluateOptions
from segpipe.palette import load_palette

#: What the default --runtime auto runs an FP32 ONNX model with on the CPU.
CPU_ONNX = "onnxruntime"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("eval")
    data = make_dataset(d / "data", count=5, size=(80, 48), num_classes=3, seed=4)
    colour = make_dataset(d / "colour", count=4, size=(64, 64), num_classes=3, color_masks=True, seed=5)
    pth, model, info = make_checkpoint(d / "m.pth", seed=2)
    const0, _, _ = make_checkpoint(d / "const0.pth", constant_class=0)
    const1, m1, i1 = make_checkpoint(d / "const1.pth", constant_class=1)
    return {
        "data": data,
        "colour": colour,
        "pth": pth,
        "onnx": export_onnx(model, info, d / "m.onnx"),
        "const0": const0,
        "const1": const1,
        "const1_onnx": export_onnx(m1, i1, d / "const1.onnx"),
        "dir": d,
    }


def gt_masks(root, num_classes=3, **kw):
    decoder = MaskDecoder(num_classes, **kw)
    return [load_pair(s, decoder)[1] for s in find_samples(root)]


def constant_model_iou(masks, cls, num_classes=3, ignore=255):
    """IoU per class when every pixel is predicted ``cls``, straight from the masks."""
    valid = np.concatenate([m.ravel() for m in masks])
    valid = valid[valid != ignore]
    iou = np.full(num_classes, np.nan)
    for c in range(num_classes):
        gt = (valid == c).sum()
        if c == cls:
            iou[c] = gt / valid.size
        elif gt:
            iou[c] = 0.0
    return iou


def cli(*args):
    app = typer.Typer()
    app.command("evaluate")(evaluate_command)
    app.command("noop")(lambda: None)
    return CliRunner().invoke(app, ["evaluate", *map(str, args)])


# ---- metrics -------------------------------------------------------------------------------------
def test_perfect_prediction_and_ignore_index():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 4, size=(2, 30, 40)).astype(np.uint8)
    target[:, :5] = 255
    cm = ConfusionMatrix(5, ignore_index=255)
    for t in target:
        cm.update(t.copy(), t)  # the ignored pixels are "predicted" 255: they must not count
    assert cm.pixels == 2 * 25 * 40
    assert cm.miou() == 1.0 and cm.pixel_accuracy() == 1.0
    iou = cm.iou()
    assert np.isnan(iou[4]) and (iou[:4] == 1.0).all()  # class 4 never occurs: left out of the mean
    np.testing.assert_array_equal(cm.normalized()[:4], np.eye(5)[:4])


def test_matches_smp_metrics_used_in_training():
    import segmentation_models_pytorch as smp

    rng = np.random.default_rng(1)
    target = rng.integers(0, 4, size=(3, 20, 24))
    target[0, :3] = 255
    pred = np.where(rng.random(target.shape) < 0.7, target, rng.integers(0, 4, target.shape))
    pred[pred == 255] = 0
    cm = ConfusionMatrix(4, 255)
    for p, t in zip(pred, target, strict=True):
        cm.update(p, t)
    tp, fp, fn, tn = smp.metrics.get_stats(
        torch.from_numpy(pred), torch.from_numpy(target), mode="multiclass", num_classes=4, ignore_index=255
    )
    ref = smp.metrics.iou_score(tp.sum(0), fp.sum(0), fn.sum(0), tn.sum(0), reduction="none")
    np.testing.assert_allclose(cm.iou(), ref.double().numpy(), rtol=1e-6)
    valid = target != 255
    assert cm.pixel_accuracy() == pytest.approx((pred[valid] == target[valid]).mean())
    assert 0.3 < cm.miou() < 0.9


# ---- evaluate ------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [0, 1])
def test_model_with_known_predictions(setup, cls):
    masks = gt_masks(setup["data"])
    expected = constant_model_iou(masks, cls)
    res = evaluate(EvaluateOptions(data_root=setup["data"], model=setup[f"const{cls}"], batch_size=2))
    assert res.images == 5 and res.size == (64, 64)
    np.testing.assert_allclose(res.iou, expected, equal_nan=True)
    assert res.miou == pytest.approx(np.nanmean(expected))
    n_valid = sum(m.size for m in masks)
    assert res.pixel_accuracy == pytest.approx(sum((m == cls).sum() for m in masks) / n_valid)
    # every prediction is in column ``cls`` of the confusion matrix, at each mask's full size
    assert res.confusion.matrix[:, cls].sum() == n_valid == res.confusion.pixels


def test_colour_masks_and_onnx_backend(setup):
    # colour masks decoded through DATA_ROOT/colors.csv, as in training; an ONNX model needs no flags
    masks = gt_masks(setup["colour"], palette=load_palette(setup["colour"] / "colors.csv"))
    expected = constant_model_iou(masks, 1)
    res = evaluate(EvaluateOptions(data_root=setup["colour"], model=setup["const1_onnx"]))
    assert res.backend == CPU_ONNX
    np.testing.assert_allclose(res.iou, expected, equal_nan=True)


def test_class_map_and_ignore_index_as_in_training(setup, tmp_path):
    cmap = tmp_path / "map.txt"
    cmap.write_text("2,ignore\n")
    masks = gt_masks(setup["data"])
    res = evaluate(EvaluateOptions(data_root=setup["data"], model=setup["const0"], class_map=cmap))
    assert res.confusion.matrix[2].sum() == 0  # class 2 pixels went to the ignore index
    assert res.confusion.pixels == sum((m != 2).sum() for m in masks)
    remapped = [np.where(m == 2, 255, m) for m in masks]
    np.testing.assert_allclose(res.iou, constant_model_iou(remapped, 0), equal_nan=True)


def test_pytorch_and_onnx_side_by_side(setup):
    a = evaluate(EvaluateOptions(data_root=setup["data"], model=setup["pth"]))
    b = evaluate(EvaluateOptions(data_root=setup["data"], model=setup["onnx"], batch_size=3))
    assert (a.backend, b.backend) == ("pytorch", CPU_ONNX)
    agree = np.trace(a.confusion.matrix) - np.trace(b.confusion.matrix)
    assert abs(agree) <= 2  # at most a couple of near-tie pixels differ
    assert a.miou == pytest.approx(b.miou, abs=1e-3)
    assert a.confusion.pixels == b.confusion.pixels == 5 * 80 * 48


def test_cli_report_and_confusion_matrix(setup, tmp_path):
    report, png = tmp_path / "r" / "report.json", tmp_path / "cm.png"
    res = cli(
        "--data_root",
        setup["data"],
        "--model_name",
        setup["const1"],
        "--size",
        "96",
        "64",
        "--report",
        report,
        "--confusion-matrix",
        png,
    )
    assert res.exit_code == 0, res.output
    data = json.loads(report.read_text())
    expected = constant_model_iou(gt_masks(setup["data"]), 1)
    assert data["miou"] == pytest.approx(np.nanmean(expected))
    assert [c["name"] for c in data["classes"]] == ["ground", "thing", "sky"]
    assert data["size"] == [96, 64] and data["backend"] == "pytorch"
    assert np.array(data["confusion_matrix"]).shape == (3, 3)
    img = cv2.imread(str(png))
    assert img is not None and img.shape[0] > 200
    assert (
        "mIoU" in res.output and "thing" in res.output and f"{100 * np.nanmean(expected):.2f}" in res.output
    )


def test_bad_inputs(setup, tmp_path):
    res = cli("--data-root", tmp_path / "nowhere", "--model", setup["pth"])
    assert res.exit_code == 1 and "data root" in res.output and "nowhere does not exist" in res.output
    res = cli("--data-root", setup["data"], "--model", tmp_path / "m.tflite")
    assert res.exit_code == 1 and "unknown model file type '.tflite'" in res.output
    res = cli("--data-root", setup["data"], "--model", tmp_path / "gone.pth")
    assert res.exit_code == 1 and "gone.pth does not exist" in res.output
    res = cli("--data-root", setup["data"], "--model", setup["onnx"], "--size", "64", "50")
    assert res.exit_code == 1 and "--size 64 50" in res.output and "output stride 32" in res.output


def test_mask_value_beyond_the_classes_names_the_file(setup, tmp_path):
    data = make_dataset(tmp_path / "d", count=2, size=(32, 32), num_classes=3, seed=1)
    bad = data / "indexes" / "sample_001_color_mask.png"
    mask = cv2.imread(str(bad), cv2.IMREAD_UNCHANGED)
    mask[0, 0] = 7
    cv2.imwrite(str(bad), mask)
    report = tmp_path / "report.json"
    with pytest.raises(
        DataError, match="sample_001_color_mask.png: mask value 7 is >= 3, the class count of "
    ):
        evaluate(EvaluateOptions(data_root=data, model=setup["pth"], report=report))
    res = cli("--data-root", data, "--model", setup["pth"], "--report", report)
    assert res.exit_code == 1 and "mask value 7" in res.output and not report.exists()


def test_options_validate():
    with pytest.raises(ConfigError, match="--mask-type rgb"):
        EvaluateOptions(data_root="d", model="m.pth", mask_type="rgb")
    with pytest.raises(ConfigError, match="--batch 0"):
        EvaluateOptions(data_root="d", model="m.pth", batch_size=0)
