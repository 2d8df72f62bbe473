"""Small files that declare huge sizes, and other odd input files (issue 18): refused in one line
before anything is decoded or allocated, the limit and how to raise it said."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from segpipe.cli.app import app
from segpipe.errors import ConfigError, DataError
from segpipe.imagesize import ENV as LIMIT_ENV
from segpipe.imagesize import check_image_file, check_pixels, max_pixels

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    from segpipe.cli import common

    monkeypatch.setitem(common._state, "debug", False)
    monkeypatch.delenv(LIMIT_ENV, raising=False)


def huge_png(path: Path, width: int = 40000, height: int = 40000) -> Path:
    """A few-KB PNG whose header declares ``width`` x ``height`` grey pixels (data truncated)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp = zlib.compressobj(9)
    rows = b"".join(comp.compress(b"\x00" * (width + 1)) for _ in range(50)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


def huge_input_onnx(path: Path, side: int = 60000) -> Path:
    """A tiny graph (transpose + 1x1 conv) whose fixed input is 1 x side x side x 3, with metadata."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from segpipe.export.graph import set_metadata
    from segpipe.modelinfo import ModelInfo

    w = numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("Transpose", ["input_1"], ["t"], perm=[0, 3, 1, 2]),
            helper.make_node("Conv", ["t", "w"], ["output"]),
        ],
        "g",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, [1, side, side, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 2, side, side])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    info = ModelInfo(arch="Unet", encoder="x", num_classes=2, input_size=(side, side), output_stride=1)
    set_metadata(model, info)
    onnx.save(model, str(path))
    return path


def one_error(r) -> str:
    lines = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert r.exit_code == 1 and len(lines) == 1 and "Traceback" not in r.output, r.output
    return lines[0]


# ---- images --------------------------------------------------------------------------------------
def test_a_small_png_declaring_40000x40000_is_refused_before_decoding(tmp_path: Path) -> None:
    png = huge_png(tmp_path / "big.png")
    assert png.stat().st_size < 200_000
    with pytest.raises(DataError) as e:
        check_image_file(png)
    msg = str(e.value)
    assert f"image {png} declares 40000x40000 pixels" in msg and "268435456" in msg and LIMIT_ENV in msg


def test_visualize_and_quantize_name_the_huge_image(tmp_path: Path, tiny_checkpoint: Path) -> None:
    pics = tmp_path / "pics"
    pics.mkdir()
    cv2.imwrite(str(pics / "ok.png"), np.zeros((64, 64, 3), np.uint8))
    huge_png(pics / "big.png")
    r = runner.invoke(
        app, ["visualize", "-i", str(pics), "-m", str(tiny_checkpoint), "-o", str(tmp_path / "o")]
    )
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert "big.png declares 40000x40000 pixels" in r.output  # the warning that names it
    assert (tmp_path / "o" / "ok_mask.png").is_file()  # the readable image was still done

    from test_quantize import tiny_onnx

    model = tiny_onnx(tmp_path / "m.onnx")
    r = runner.invoke(app, ["quantize", str(model), "--calib-images", str(pics), "-q"])
    assert "big.png declares 40000x40000 pixels" in one_error(r)


def test_a_huge_mask_in_a_dataset_is_one_line(tmp_path: Path, tiny_checkpoint: Path) -> None:
    from segpipe.data.synthetic import make_dataset

    ds = make_dataset(tmp_path / "ds", count=2, size=(64, 64), num_classes=3, seed=3)
    mask = sorted((ds / "indexes").iterdir())[0]
    huge_png(mask, 30000, 30000)
    r = runner.invoke(app, ["evaluate", "--data-root", str(ds), "-m", str(tiny_checkpoint)])
    line = one_error(r)
    assert f"mask {mask} declares 30000x30000 pixels" in line, line


def test_the_limit_is_raised_and_lowered_by_the_environment(tmp_path: Path, monkeypatch) -> None:
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.zeros((64, 64, 3), np.uint8))
    check_image_file(img)  # 4096 pixels: fine by default
    monkeypatch.setenv(LIMIT_ENV, "1000")
    assert max_pixels() == 1000
    with pytest.raises(DataError, match=f"64x64 pixels .* limit of 1000 .*{LIMIT_ENV}=4096"):
        check_image_file(img)
    monkeypatch.setenv(LIMIT_ENV, "lots")
    with pytest.raises(ConfigError, match=f"{LIMIT_ENV}='lots': expected a whole number"):
        check_pixels(1, 1, "x")


def test_over_opencvs_own_limit_says_both_variables(tmp_path: Path, monkeypatch) -> None:
    png = huge_png(tmp_path / "big.png")
    monkeypatch.setenv(LIMIT_ENV, str(2 * 40000**2))
    with pytest.raises(DataError, match="more than OpenCV decodes .*CV_IO_MAX_IMAGE_PIXELS=1600000000"):
        check_image_file(png)


# ---- network inputs ------------------------------------------------------------------------------
#: ``python -m segpipe ARGS`` under a 6 GB address-space limit it sets itself.
_UNDER_6GB = (
    "import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30)); "
    "sys.argv = ['segpipe', *sys.argv[1:]]; runpy.run_module('segpipe', run_name='__main__', alter_sys=True)"
)


@pytest.mark.parametrize("command", ["visualize", "benchmark", "quantize"])
def test_an_onnx_declaring_a_60000x60000_input_is_refused_before_allocating(
    tmp_path: Path, command: str
) -> None:
    """Under a 6 GB address-space limit: allocating the input (43 GB) would fail with MemoryError."""
    model = huge_input_onnx(tmp_path / "huge.onnx")
    pics = tmp_path / "pics"
    pics.mkdir()
    cv2.imwrite(str(pics / "a.png"), np.zeros((64, 64, 3), np.uint8))
    args = {
        "visualize": ["visualize", "-i", str(pics), "-m", str(model), "-o", str(tmp_path / "o")],
        "benchmark": ["benchmark", "-m", str(model), "--runs", "1", "--warmup", "0"],
        "quantize": ["quantize", str(model), "--calib-images", str(pics)],
    }[command]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(  # the child sets its own limit: no preexec_fn, so no Python runs between fork and exec
        [sys.executable, "-c", _UNDER_6GB, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[-1].startswith("error: ") and "60000x60000 pixels" in lines[-1], r.stderr
    assert LIMIT_ENV in lines[-1]


# ---- other odd input files -----------------------------------------------------------------------
@pytest.mark.parametrize("command", ["info", "visualize", "benchmark", "quantize", "build-trt"])
def test_an_empty_model_file_is_called_empty(tmp_path: Path, command: str) -> None:
    empty = tmp_path / "m.onnx"
    empty.write_bytes(b"")
    pics = tmp_path / "pics"
    pics.mkdir()
    cv2.imwrite(str(pics / "a.png"), np.zeros((64, 64, 3), np.uint8))
    args = {
        "info": ["info", str(empty)],
        "visualize": ["visualize", "-i", str(pics), "-m", str(empty), "-o", str(tmp_path / "o")],
        "benchmark": ["benchmark", "-m", str(empty), "--runs", "1"],
        "quantize": ["quantize", str(empty), "--calib-images", str(pics)],
        "build-trt": ["build-trt", "--onnx", str(empty)],
    }[command]
    line = one_error(runner.invoke(app, args))
    assert f"{empty} is an empty file (0 bytes)" in line, line


def test_a_binary_class_map_is_one_line_in_evaluate(tmp_path: Path, tiny_checkpoint: Path, index_dataset):
    cmap = tmp_path / "map.txt"
    cmap.write_bytes(b"\x00\xff\xfe binary \x80\x81")
    r = runner.invoke(
        app,
        ["evaluate", "--data-root", str(index_dataset), "-m", str(tiny_checkpoint), "--class-map", str(cmap)],
    )
    assert f"--class-map {cmap}: not a text (UTF-8) file" in one_error(r)
