"""``segpipe info``: checkpoints, bare state_dicts, ONNX models (with and without metadata), engines."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from segpipe.cli.app import app
from segpipe.errors import CheckpointError
from segpipe.export.onnx import export_onnx
from segpipe.info import describe_model
from segpipe.modelinfo import ModelInfo
from segpipe.models import create_model, save_checkpoint
from segpipe.options import OnnxExportOptions

NAMES = ("background", "road", "car")
COLORS = ((0, 0, 0), (128, 64, 128), (0, 0, 142))


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A trained-looking checkpoint, a bare state_dict, an FP16 dynamic ONNX export and a plain ONNX."""
    root = tmp_path_factory.mktemp("info")
    torch.manual_seed(0)
    info = ModelInfo(
        arch="FPN", encoder="resnet18", num_classes=3, input_size=(96, 64), class_names=NAMES, colors=COLORS
    )
    model = create_model(info, None)
    ckpt = save_checkpoint(
        root / "best.pth", model, info, train_state={"epoch": 7, "best_metric": 0.625, "best_epoch": 5}
    )
    bare = root / "bare.pth"
    torch.save(model.state_dict(), bare)
    onnx_path = root / "best.onnx"
    export_onnx(OnnxExportOptions(model=ckpt, output=onnx_path, half=True, dynamic_batch=True, verify=False))
    plain = root / "plain.onnx"  # a foreign model: one Conv, no segpipe metadata
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.zeros((5, 3, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
        "plain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, 32, 32])],
        [weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(plain))
    return {"ckpt": ckpt, "bare": bare, "onnx": onnx_path, "plain": plain}


def test_checkpoint(files: dict[str, Path]) -> None:
    desc = describe_model(files["ckpt"])
    assert desc.kind == "segpipe checkpoint"
    assert (desc.info.arch, desc.info.encoder, desc.info.num_classes) == ("FPN", "resnet18", 3)
    assert desc.info.class_names == NAMES and desc.info.colors == COLORS
    assert desc.details["epoch"] == 7 and desc.details["best mIoU"] == pytest.approx(0.625)
    n_params = sum(
        p.numel() for p in create_model(desc.info, None).state_dict().values() if p.is_floating_point()
    )
    assert desc.details["parameters"] == f"{n_params / 1e6:.2f} M"


def test_bare_state_dict(files: dict[str, Path]) -> None:
    desc = describe_model(files["bare"])
    assert desc.kind == "bare state_dict" and desc.info is None
    assert desc.details["head outputs"] == 3
    assert any("--arch" in n for n in desc.notes)


def test_onnx_export(files: dict[str, Path]) -> None:
    desc = describe_model(files["onnx"])
    assert desc.kind == "onnx" and desc.opset == 17
    assert desc.info.precision == "fp16" and desc.info.layout == "NHWC" and desc.info.input_size == (96, 64)
    assert [(t.name, t.shape, t.dtype) for t in desc.inputs] == [("input_1", ("batch", 64, 96, 3), "float32")]
    assert [(t.name, t.shape, t.dtype) for t in desc.outputs] == [("output", ("batch", 3, 64, 96), "float32")]
    assert "float16" in desc.details["weights"] and "float32" not in desc.details["weights"]
    assert desc.details["producer"].startswith("segpipe")


def test_onnx_without_metadata(files: dict[str, Path]) -> None:
    desc = describe_model(files["plain"])
    assert desc.info is None and desc.inputs[0].name == "x" and desc.outputs[0].shape == (1, 5, 32, 32)
    assert any("--num-classes" in n for n in desc.notes)


def _engine_with_sidecar(folder: Path, onnx_path: Path) -> Path:
    """An engine file (opaque bytes: info never opens it) and the sidecar build-trt writes for it."""
    import onnx

    from segpipe.tensorrt.shapes import ProfileShape
    from segpipe.tensorrt.sidecar import engine_sidecar, write_sidecar

    engine = folder / "best.engine"
    engine.write_bytes(b"\x00" * 1000)
    metadata = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    sidecar = engine_sidecar(
        engine_path=engine,
        onnx_path=onnx_path,
        metadata=metadata,
        tensorrt_version="10.13.0",
        gpu_name="NVIDIA H100",
        compute_capability="9.0",
        precision="fp16",
        onnx_precision="fp16",
        fp16_method="as-is",
        strongly_typed=True,
        profile={"input_1": ProfileShape((1, 64, 96, 3), (2, 64, 96, 3), (4, 64, 96, 3))},
    )
    write_sidecar(engine, sidecar)
    return engine


def test_engine_reads_sidecar_without_tensorrt(files: dict[str, Path], tmp_path: Path) -> None:
    engine = _engine_with_sidecar(tmp_path, files["onnx"])
    had_trt = "tensorrt" in sys.modules
    desc = describe_model(engine)
    assert ("tensorrt" in sys.modules) == had_trt  # describing an engine never imports tensorrt
    assert desc.kind == "tensorrt engine"
    assert desc.info.num_classes == 3 and desc.info.class_names == NAMES and desc.info.precision == "fp16"
    assert desc.details["tensorrt version"] == "10.13.0" and desc.details["gpu name"] == "NVIDIA H100"
    assert desc.details["profile input_1"] == "min 1x64x96x3 NHWC / opt 2x64x96x3 NHWC / max 4x64x96x3 NHWC"


def test_engine_without_sidecar(tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"plan")
    desc = describe_model(engine)
    assert desc.info is None and any("m.engine.json" in n for n in desc.notes)


def test_cli_tables_and_json(files: dict[str, Path], tmp_path: Path) -> None:
    engine = _engine_with_sidecar(tmp_path, files["onnx"])
    res = CliRunner().invoke(app, ["info", str(files["ckpt"]), str(files["onnx"]), str(engine)])
    assert res.exit_code == 0, res.output
    for text in (
        "segpipe checkpoint",
        "FPN",
        "resnet18",
        "road",
        "128,64,128",
        "96x64 (W x H)",
        "fp16",
        "input_1 batchx64x96x3 NHWC float32",
        "opset",
        "10.13.0",
        "tensorrt engine",
    ):
        assert text in res.output, text
    res = CliRunner().invoke(app, ["info", "--json", str(files["onnx"])])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["model_info"]["class_names"] == list(NAMES) and data["opset"] == 17
    assert data["inputs"][0]["shape"] == ["batch", 64, 96, 3]


def test_bad_files_are_one_line(tmp_path: Path) -> None:
    corrupt_onnx = tmp_path / "bad.onnx"
    corrupt_onnx.write_bytes(os.urandom(300))
    corrupt_pth = tmp_path / "bad.pth"
    corrupt_pth.write_bytes(b"not a checkpoint")
    bad_sidecar = tmp_path / "x.engine"
    bad_sidecar.write_bytes(b"plan")
    (tmp_path / "x.engine.json").write_text("{not json")
    for path, needle in (
        (tmp_path / "missing.onnx", "does not exist"),
        (tmp_path / "model.h5", "unknown model file"),
        (corrupt_onnx, "bad.onnx"),
        (corrupt_pth, "bad.pth"),
        (bad_sidecar, "x.engine.json"),
    ):
        if path.suffix == ".h5":
            path.write_bytes(b"x")
        with pytest.raises(CheckpointError, match=needle):
            describe_model(path)
        res = CliRunner().invoke(app, ["info", str(path)])
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert res.exit_code == 1 and len(lines) == 1 and str(path.name) in lines[0], res.output


def test_a_folder_lists_its_model_files(files: dict[str, Path], tmp_path: Path) -> None:
    """``segpipe info runs/demo/train``: the folder and the model files in it (kind, size), not an
    'unknown model file type' error; a folder without models is one line naming it."""
    run = tmp_path / "run"
    (run / "export").mkdir(parents=True)
    for name in ("best.pth", "last.pth"):
        (run / name).write_bytes(files["ckpt"].read_bytes())
    (run / "export" / "model.onnx").write_bytes(files["onnx"].read_bytes())
    (run / "metrics.csv").write_text("epoch\n1\n")
    (run / "notes.bin").write_bytes(b"not a model")  # .bin goes by content: left out
    desc = describe_model(run)
    assert desc.kind == "folder" and desc.details["model files"] == 3
    size = files["ckpt"].stat().st_size
    assert desc.details["best.pth"].startswith("PyTorch checkpoint") and "notes.bin" not in desc.details
    assert desc.details["export/model.onnx"].startswith("ONNX model")
    assert desc.size_mb == pytest.approx((2 * size + files["onnx"].stat().st_size) / 1e6)
    res = CliRunner().invoke(app, ["info", str(run)])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    for text in ("folder", "best.pth", "last.pth", "export/model.onnx", f"segpipe info {run / 'best.pth'}"):
        assert text in out, text
    assert "unknown model file type" not in out
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    res = CliRunner().invoke(app, ["info", str(empty)])
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 1 and len(lines) == 1 and "empty is a folder" in lines[0], res.output


def test_normalisation_in_the_flags_pixel_units(files: dict[str, Path]) -> None:
    """info shows mean/std in the units --mean/--std take (0-255), so they can be copied over."""
    info = describe_model(files["ckpt"]).info
    assert info is not None and max(info.std) < 1  # the file keeps 0-1 values (the contract)
    expected = [round(v * 255, 3) for v in info.mean]
    for path in (files["ckpt"], files["onnx"]):
        res = CliRunner().invoke(app, ["info", str(path)])
        assert res.exit_code == 0, res.output
        out = " ".join(res.output.split())
        assert "mean (" + ", ".join(f"{v:g}" for v in expected) in out, out
        assert "pixel units (0-255)" in out
        assert f"{info.mean[0]:.4g}" not in out  # no 0-1 values left
        data = json.loads(CliRunner().invoke(app, ["info", "--json", str(path)]).output)
        assert data["normalisation"]["mean"] == pytest.approx(expected)
        assert data["normalisation"]["std"] == pytest.approx([v * 255 for v in info.std])


def test_model_flag_and_files_together_describe_all(files: dict[str, Path]) -> None:
    """``info --model a.onnx b.pth``: the flag's file and the positional one are both described
    (it was "--model [PosixPath(...)]: the models is given twice"); one file given both ways once."""
    res = CliRunner().invoke(app, ["info", "--json", "--model", str(files["onnx"]), str(files["ckpt"])])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    described = [Path(d["path"]).name for d in (data if isinstance(data, list) else [data])]
    assert sorted(described) == ["best.onnx", "best.pth"], described
    res = CliRunner().invoke(app, ["info", "--json", "--model", str(files["onnx"]), str(files["onnx"])])
    assert res.exit_code == 0 and "PosixPath" not in res.output, res.output
