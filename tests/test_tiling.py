"""Sliding-window inference and test-time augmentation (segpipe.runtime.tiling), with runners whose
output is a known function of the input, a real checkpoint and ONNX models end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import typer
from inference_helpers import export_onnx, make_checkpoint
from typer.testing import CliRunner

from segpipe.errors import ConfigError
from segpipe.modelinfo import ModelInfo
from segpipe.options import EvaluateOptions, InferenceSpec, VisualizeOptions, parse_tta
from segpipe.runtime.base import Runner, load_runner
from segpipe.runtime.pipeline import predict_arrays, tiled_labels
from segpipe.runtime.tiling import check_spec, run_views, tiled_scores, window_starts, windows


class FnRunner(Runner):
    """A "model" computing a known function of its input, pixel by pixel plus the window position.

    Output channels: 0: ones; 1: the red value; 2: the column inside the window (0..w-1).
    ``labels``: the class map ``red > 127`` (a pointwise function every window agrees on).
    """

    backend = "fn"

    def __init__(self, kind: str = "logits", fixed: tuple[int, int] | None = None, stride: int = 8) -> None:
        self.path = Path("fn.model")
        self.device = "cpu"
        self.fixed_size = fixed
        self.calls: list[tuple[int, ...]] = []
        self.info = ModelInfo(
            arch="fn",
            encoder="fn",
            num_classes=3,
            input_size=(32, 32),
            output_stride=stride,
            output_kind=kind,
        )

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.calls.append(images.shape)
        x = images.astype(np.float32)
        n, h, w, _ = x.shape
        if self.info.output_kind == "labels":
            return (x[..., 0] > 127).astype(np.int64)
        col = np.broadcast_to(np.arange(w, dtype=np.float32), (n, h, w))
        return np.stack([np.ones((n, h, w), np.float32), x[..., 0], col], axis=1)


def rand_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def reference_average(image: np.ndarray, tile: tuple[int, int], starts_y, starts_x) -> np.ndarray:
    """Brute force: every window's output summed into full-size arrays, divided by the count."""
    h, w = image.shape[:2]
    tw, th = tile
    total = np.zeros((3, h, w))
    count = np.zeros((h, w))
    for y in starts_y:
        for x in starts_x:
            total[0, y : y + th, x : x + tw] += 1
            total[1, y : y + th, x : x + tw] += image[y : y + th, x : x + tw, 0]
            total[2, y : y + th, x : x + tw] += np.arange(tw)[None, :]
            count[y : y + th, x : x + tw] += 1
    assert count.min() >= 1
    return total / count


def test_window_starts_cover_and_end_at_the_edge():
    assert window_starts(96, 32, 16) == [0, 16, 32, 48, 64]
    assert window_starts(100, 32, 24) == [0, 24, 48, 68]  # the last moved back to end at 100
    assert window_starts(20, 32, 24) == [0]
    assert windows((64, 96), (32, 32), 0.0) == [(y, x) for y in (0, 32) for x in (0, 32, 64)]


@pytest.mark.parametrize(
    ("hw", "overlap", "starts"),
    [
        ((96, 96), 0.5, ([0, 16, 32, 48, 64], [0, 16, 32, 48, 64])),
        ((90, 100), 0.25, ([0, 24, 48, 58], [0, 24, 48, 68])),
    ],
)
def test_tiled_scores_cover_every_pixel_once_averaged(hw, overlap, starts):
    """A 3x-size image: the bands partition the rows, and each pixel's scores are the exact average
    of the windows covering it (checked against a brute-force sum over hand-listed windows)."""
    image = rand_image(*hw)
    runner = FnRunner()
    spec = InferenceSpec(tile=(32, 32), overlap=overlap)
    bands = [(y0, y1, s.copy()) for y0, y1, s in tiled_scores(runner, image, (32, 32), spec, batch_size=3)]
    rows = [(y0, y1) for y0, y1, _ in bands]
    assert rows[0][0] == 0 and rows[-1][1] == hw[0]
    assert all(a[1] == b[0] for a, b in zip(rows, rows[1:], strict=False))  # contiguous, no row twice
    assert len(bands) > 1  # finished rows are handed over early (memory stays bounded)
    scores = np.concatenate([s for _, _, s in bands], axis=1)
    assert scores.shape == (3, *hw)
    np.testing.assert_array_equal(scores[0], 1.0)
    np.testing.assert_array_equal(scores[1], image[..., 0].astype(np.float32))
    np.testing.assert_allclose(scores, reference_average(image, (32, 32), *starts), rtol=0, atol=1e-5)
    # the windows went in batches of at most 3, all at the network size
    assert all(c[0] <= 3 and c[1:3] == (32, 32) for c in runner.calls)


def test_tiling_equals_plain_at_the_network_size(tiny_checkpoint):
    with load_runner(tiny_checkpoint, device="cpu") as runner:
        info = runner.info
        image = rand_image(*info.input_size[::-1], seed=1)
        plain = predict_arrays(runner, [image])[0]
        tiled = predict_arrays(runner, [image], spec=InferenceSpec(tile=(0, 0)))[0]
        big = predict_arrays(runner, [rand_image(150, 130)], spec=InferenceSpec(tile=(64, 64), overlap=0.3))[
            0
        ]
    np.testing.assert_array_equal(plain, tiled)
    assert big.shape == (150, 130) and big.max() < info.num_classes


def test_small_image_is_padded_and_window_resized():
    runner = FnRunner()
    image = rand_image(20, 50)  # smaller than the window in height
    labels = tiled_labels(runner, image, InferenceSpec(tile=(32, 32)), (32, 32))
    assert labels.shape == (20, 50)
    # a window of 64 image pixels fed at the 32x32 network size: resized there and back
    flat = np.full((128, 128, 3), 200, np.uint8)
    scores = np.concatenate(
        [s.copy() for *_, s in tiled_scores(runner, flat, (32, 32), InferenceSpec(tile=(64, 64)))], 1
    )
    assert runner.calls[-1][1:3] == (32, 32)
    np.testing.assert_allclose(scores[1], 200.0, atol=1e-3)


def test_labels_model_windows_vote():
    """A class-map model cannot be averaged: its windows vote; a pointwise rule survives exactly."""
    image = rand_image(100, 90, seed=2)
    labels = tiled_labels(FnRunner("labels"), image, InferenceSpec(tile=(32, 32), overlap=0.4), (32, 32))
    np.testing.assert_array_equal(labels, (image[..., 0] > 127).astype(labels.dtype))


def test_flip_tta():
    image = rand_image(32, 32)[None]
    runner = FnRunner()
    plain = run_views(runner, image, InferenceSpec())
    flipped = run_views(runner, image, InferenceSpec(flip=True))
    assert runner.calls[-1][0] == 2  # both views in one call
    # pointwise (flip-symmetric) outputs are unchanged; the column averages to the centre
    np.testing.assert_array_equal(flipped[:, :2], plain[:, :2])
    np.testing.assert_allclose(flipped[:, 2], 15.5)


def test_scales_tta():
    runner = FnRunner()
    image = np.full((1, 32, 32, 3), 90, np.uint8)
    out = run_views(runner, image, InferenceSpec(scales=(0.5, 1.0, 1.5)))
    assert [c[1:3] for c in runner.calls] == [(16, 16), (32, 32), (48, 48)]  # snapped to the stride
    assert out.shape == (1, 3, 32, 32)
    np.testing.assert_allclose(out[0, 1], 90.0, atol=1e-4)


def test_what_a_runner_cannot_do_is_one_line():
    spec = InferenceSpec(scales=(0.75, 1.0))
    with pytest.raises(ConfigError, match=r"only takes 32x32 inputs.*--tta flip works") as e:
        check_spec(FnRunner(fixed=(32, 32)), spec, (32, 32))
    assert "\n" not in str(e.value)
    check_spec(FnRunner(fixed=(32, 32)), InferenceSpec(flip=True, tile=(64, 64)), (32, 32))  # fine
    with pytest.raises(ConfigError, match=r"same input size twice \(0.75 -> 32x32, 1 -> 32x32\)"):
        check_spec(FnRunner(stride=32), spec, (32, 32))  # 24 snaps to 32 with stride 32
    profiled = FnRunner()  # a TensorRT engine's optimisation profile (N, H, W, C), 32..48 pixels
    profiled.input_range = lambda: ((1, 32, 32, 3), (8, 48, 48, 3))  # type: ignore[attr-defined]
    check_spec(profiled, InferenceSpec(scales=(1.0, 1.5)), (32, 32))  # 48x48: inside
    with pytest.raises(ConfigError, match="takes 32x32 to 48x48 inputs, not 64x64"):
        check_spec(profiled, InferenceSpec(scales=(1.0, 2.0)), (32, 32))
    with pytest.raises(ConfigError, match="class map .*cannot be averaged"):
        check_spec(FnRunner("labels"), InferenceSpec(flip=True), (32, 32))


def test_parse_tta_and_options():
    assert parse_tta(["flip"]) == (True, (1.0,))
    assert parse_tta(["scales=0.75,1,1.25"]) == (False, (0.75, 1.0, 1.25))
    assert parse_tta(["flip+scales:0.5,1"]) == (True, (0.5, 1.0))
    assert parse_tta(None) == (False, (1.0,))
    for bad, msg in (
        ("mirror", "use flip"),
        ("scales=a,b", "must be numbers"),
        ("scales=", "give the scales"),
    ):
        with pytest.raises(ConfigError, match=msg):
            parse_tta([bad])
    with pytest.raises(ConfigError, match="--overlap 1.0"):
        VisualizeOptions(images=Path("x"), model=Path("m.onnx"), tile=(64, 64), overlap=1.0)
    with pytest.raises(ConfigError, match="--tile 64 0"):
        EvaluateOptions(data_root=Path("x"), model=Path("m.onnx"), tile=(64, 0))
    with pytest.raises(ConfigError, match="scales"):
        EvaluateOptions(data_root=Path("x"), model=Path("m.onnx"), tta_scales=(0.0,))
    assert InferenceSpec(tile=(0, 0), flip=True, scales=(1, 2)).describe() == (
        "tile network size overlap 0.25, flip, scales 1,2"
    )


# ---- end to end: the commands with ONNX models ----------------------------------------------------
@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory):
    from segpipe.data.synthetic import make_dataset

    d = tmp_path_factory.mktemp("tile_models")
    pth, model, info = make_checkpoint(d / "m.pth", seed=1)
    return {
        "fixed": export_onnx(model, info, d / "fixed.onnx", dynamic=False),
        "pth": pth,
        "labels": export_onnx(model, info, d / "labels.onnx", dynamic=False, output="labels"),
        "data": make_dataset(d / "big", count=2, size=(150, 130), num_classes=3, seed=4),
    }


def invoke(command: str, *args: object):
    from segpipe.cli.benchmark import benchmark_command
    from segpipe.cli.evaluate import evaluate_command
    from segpipe.cli.visualize import visualize_command

    app = typer.Typer()
    app.command("visualize")(visualize_command)
    app.command("evaluate")(evaluate_command)
    app.command("benchmark")(benchmark_command)
    return CliRunner().invoke(app, [command, *map(str, args)])


def test_commands_with_tile_and_tta(onnx_models, tmp_path):
    data, out = onnx_models["data"], tmp_path / "vis"
    fixed = onnx_models["fixed"]
    res = invoke(
        "visualize", "-i", data / "images", "-m", fixed, "-o", out, "--tile", 64, 64, "--tta", "flip"
    )
    assert res.exit_code == 0, res.output
    assert "tile 64x64 overlap 0.25, flip" in res.output
    assert len(list(out.glob("*_mask.png"))) == 2
    res = invoke("evaluate", "--data-root", data, "-m", fixed, "--tile", 64, 64, "--overlap", 0.5)
    assert res.exit_code == 0, res.output
    assert "mIoU" in res.output and "tile 64x64 overlap 0.5" in res.output
    res = invoke(
        "benchmark", "-m", onnx_models["pth"], "--tta", "scales=0.5,1", "--tile", 0, 0, "--runs", 2,
        "--warmup", 0, "--image-size", 100, 70, "--batch", 2,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "input (N x W x H)" in res.output and "1 x 100x70" in res.output  # --image-size W H as given
    # a fixed-size model cannot take other scales; a class-map model cannot be averaged: one line each
    res = invoke("evaluate", "--data-root", data, "-m", fixed, "--tta", "scales=0.5,1")
    assert res.exit_code == 1 and "only takes 64x64" in res.output and "Traceback" not in res.output
    res = invoke("evaluate", "--data-root", data, "-m", onnx_models["labels"], "--tta", "flip")
    assert res.exit_code == 1 and "cannot be averaged" in res.output
    # ...but its windows vote
    res = invoke("evaluate", "--data-root", data, "-m", onnx_models["labels"], "--tile", 64, 64)
    assert res.exit_code == 0, res.output
    res = invoke("visualize", "-i", data / "images", "-m", fixed, "--tta", "mirror")
    assert res.exit_code == 1 and "--tta mirror" in res.output
