"""``segpipe export-onnx``: round trips, FP16, dynamic axes, class maps, verification, bad input.

Every model is random-initialised (``encoder_weights=None``) at 64x64, so the suite runs offline on
CPU. Each exported graph is checked independently of the exporter's own verification: ONNX Runtime
and the PyTorch DeployModel are run here on the same images and compared.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

from segpipe.cli.app import app
from segpipe.data.dataset import read_image, sample_data_root
from segpipe.errors import ConfigError, ExportError, SegpipeError
from segpipe.export import onnx as onnx_export
from segpipe.export.onnx import export_onnx
from segpipe.export.onnx_verify import verification_inputs, verify_onnx
from segpipe.modelinfo import ModelInfo
from segpipe.models import DeployModel, create_model, load_model, save_checkpoint
from segpipe.options import OnnxExportOptions
from segpipe.progress import RecordingReporter
from segpipe.runtime.base import compare

SIZE = (64, 64)
CLASSES = ("background", "road", "car")
COLORS = ((0, 0, 0), (128, 64, 128), (0, 0, 142))


def make_checkpoint(
    path: Path,
    arch: str = "Unet",
    encoder: str = "resnet18",
    mode: str = "seg",
    num_classes: int = 3,
    size: tuple[int, int] = SIZE,
    seed: int = 0,
) -> Path:
    """A segpipe checkpoint of a random-initialised model, with class names and colours."""
    torch.manual_seed(seed)
    names = (
        CLASSES[:num_classes] if num_classes <= len(CLASSES) else tuple(f"c{i}" for i in range(num_classes))
    )
    colors = (
        COLORS[:num_classes] if num_classes <= len(COLORS) else tuple((i, i, i) for i in range(num_classes))
    )
    info = ModelInfo(
        arch=arch,
        encoder=encoder,
        num_classes=num_classes,
        mode=mode,
        input_size=size,
        class_names=names,
        colors=colors,
    )
    return save_checkpoint(path, create_model(info, None), info)


def real_images(size: tuple[int, int] = SIZE, n: int = 3) -> np.ndarray:
    """A few of the bundled sample photographs, resized to (W, H), uint8 N×H×W×3."""
    import cv2

    files = sorted((sample_data_root() / "images").iterdir())[:n]
    return np.stack([cv2.resize(read_image(f), size, interpolation=cv2.INTER_LINEAR) for f in files])


def run_onnx(path: Path, images: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    dtype = np.uint8 if inp.type == "tensor(uint8)" else np.float32
    return sess.run(None, {inp.name: images.astype(dtype)})[0]


def run_torch(ckpt: Path, images: np.ndarray, output: str = "logits") -> np.ndarray:
    model, info, _ = load_model(ckpt)
    with torch.no_grad():
        return DeployModel(model, info, output).eval()(torch.from_numpy(images.astype(np.float32))).numpy()


def metadata(path: Path) -> ModelInfo:
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    info = ModelInfo.from_metadata(props)
    assert info is not None
    return info


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


@pytest.fixture(scope="module")
def unet_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "unet.pth")


# ---- round trips ---------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["Unet", "FPN", "DeepLabV3Plus"])
@pytest.mark.parametrize("encoder", ["resnet18", "efficientnet-b0"])
def test_round_trip(tmp_path: Path, arch: str, encoder: str) -> None:
    ckpt = make_checkpoint(tmp_path / "m.pth", arch, encoder)
    result = export_onnx(OnnxExportOptions(model=ckpt))
    out = tmp_path / "m.onnx"  # default: beside the checkpoint
    assert result.path == out and out.is_file()

    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    (inp,) = onnx_export.graph_inputs(proto)
    assert inp.name == "input_1"
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == [1, 64, 64, 3]  # NHWC
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [o.name for o in proto.graph.output] == ["output"]

    info = metadata(out)
    assert all(p.key.startswith("segpipe.") for p in proto.metadata_props)  # no onnxsim bookkeeping
    assert json.loads({p.key: p.value for p in proto.metadata_props}["segpipe.class_names"]) == list(CLASSES)
    assert (info.arch, info.encoder, info.num_classes) == (arch, encoder, 3)
    assert info.class_names == CLASSES and info.colors == COLORS
    assert (info.layout, info.input_dtype, info.precision, info.output_kind) == (
        "NHWC",
        "float32",
        "fp32",
        "logits",
    )
    assert info.input_size == SIZE and info.output_stride == (16 if arch == "DeepLabV3Plus" else 32)
    assert info.mean == pytest.approx((0.485, 0.456, 0.406))

    images = real_images()
    onnx_out = np.concatenate([run_onnx(out, images[i : i + 1]) for i in range(len(images))])
    torch_out = run_torch(ckpt, images)
    assert onnx_out.shape == torch_out.shape == (3, 3, 64, 64)
    cmp = compare(torch_out, onnx_out)
    assert cmp.argmax_agreement >= 0.999 and cmp.max_abs_diff < 1e-2
    assert result.verification.passed and result.verification.results["random"].argmax_agreement >= 0.999
    if result.nodes_simplified is not None:
        assert result.nodes_simplified <= result.nodes_exported


def test_half_graph_is_fp16_with_fp32_io(tmp_path: Path, unet_ckpt: Path) -> None:
    out = tmp_path / "half.onnx"
    result = export_onnx(OnnxExportOptions(model=unet_ckpt, output=out, half=True))
    proto = onnx.load(str(out))
    io = [*onnx_export.graph_inputs(proto), *proto.graph.output]
    assert all(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for v in io)
    float_inits = [
        i
        for i in proto.graph.initializer
        if i.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    ]
    assert float_inits and all(i.data_type == onnx.TensorProto.FLOAT16 for i in float_inits)
    inferred = onnx.shape_inference.infer_shapes(proto)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    conv_outs = [n.output[0] for n in inferred.graph.node if n.op_type == "Conv"]
    assert conv_outs and all(types[name] == onnx.TensorProto.FLOAT16 for name in conv_outs)
    assert metadata(out).precision == "fp16"
    assert result.verification.min_agreement == pytest.approx(0.99)

    images = real_images()
    cmp = compare(
        run_torch(unet_ckpt, images), np.concatenate([run_onnx(out, images[i : i + 1]) for i in range(3)])
    )
    assert cmp.argmax_agreement >= 0.99
    assert cmp.max_abs_diff > 0  # really computed in half precision


def test_dynamic_batch_and_size(tmp_path: Path) -> None:
    ckpt = make_checkpoint(tmp_path / "fpn.pth", "FPN", "resnet18")
    out = tmp_path / "dyn.onnx"
    export_onnx(OnnxExportOptions(model=ckpt, output=out, dynamic_batch=True, dynamic_size=True, batch=2))
    sess_in = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).get_inputs()[0]
    assert sess_in.shape == ["batch", "height", "width", 3]
    for n, (w, h) in ((1, (64, 64)), (3, (128, 96))):
        images = real_images((w, h), n)
        got = run_onnx(out, images)
        assert got.shape == (n, 3, h, w)
        assert compare(run_torch(ckpt, images), got).argmax_agreement >= 0.999


def test_fixed_batch_graph_has_that_batch(tmp_path: Path, unet_ckpt: Path) -> None:
    out = tmp_path / "b2.onnx"
    result = export_onnx(OnnxExportOptions(model=unet_ckpt, output=out, batch=2, verify_random=3))
    assert result.inputs[0].shape == (2, 64, 64, 3) and result.outputs[0].shape == (2, 3, 64, 64)
    assert result.verification.images["random"] == 3  # padded to two batches of 2, compared on 3
    with pytest.raises(Exception):  # noqa: B017 - onnxruntime raises its own error types
        run_onnx(out, real_images(n=3))


@pytest.mark.parametrize("mode", ["seg", "binary"])
def test_labels_output_is_argmax_of_logits(tmp_path: Path, mode: str) -> None:
    ckpt = make_checkpoint(tmp_path / "m.pth", mode=mode, num_classes=2 if mode == "binary" else 3)
    logits_path, labels_path = tmp_path / "logits.onnx", tmp_path / "labels.onnx"
    export_onnx(OnnxExportOptions(model=ckpt, output=logits_path, verify=False))
    result = export_onnx(
        OnnxExportOptions(model=ckpt, output=labels_path, output_kind="labels", dynamic_batch=True)
    )
    assert result.outputs[0].shape == ("batch", 64, 64) and result.outputs[0].dtype == "int64"
    assert metadata(labels_path).output_kind == "labels"
    images = real_images()
    labels = run_onnx(labels_path, images)
    logits = np.concatenate([run_onnx(logits_path, images[i : i + 1]) for i in range(3)])
    assert labels.shape == (3, 64, 64) and labels.dtype == np.int64
    expected = (logits[:, 0] > 0).astype(np.int64) if mode == "binary" else logits.argmax(axis=1)
    assert np.array_equal(labels, expected)


def test_labels_with_half_and_uint8_input(tmp_path: Path, unet_ckpt: Path) -> None:
    out = tmp_path / "l16.onnx"
    result = export_onnx(
        OnnxExportOptions(model=unet_ckpt, output=out, output_kind="labels", half=True, input_dtype="uint8")
    )
    assert result.inputs[0].dtype == "uint8" and result.outputs[0].dtype == "int64"
    info = metadata(out)
    assert (info.precision, info.input_dtype, info.output_kind) == ("fp16", "uint8", "labels")
    images = real_images()
    labels = np.concatenate([run_onnx(out, images[i : i + 1]) for i in range(3)])
    assert (labels == run_torch(unet_ckpt, images).argmax(axis=1)).mean() >= 0.99


def test_probs_output_sums_to_one(tmp_path: Path, unet_ckpt: Path) -> None:
    out = tmp_path / "p.onnx"
    export_onnx(OnnxExportOptions(model=unet_ckpt, output=out, output_kind="probs"))
    probs = run_onnx(out, real_images(n=1))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)


def test_verify_images_and_onnx_runner_reads_metadata(tmp_path: Path, unet_ckpt: Path) -> None:
    from segpipe.runtime import load_runner

    out = tmp_path / "v.onnx"
    folder = sample_data_root() / "images"
    result = export_onnx(
        OnnxExportOptions(model=unet_ckpt, output=out, verify_images=folder, verify_max_images=3)
    )
    assert result.verification.images == {"random": 2, "images": 3}
    with load_runner(out, device="cpu") as runner:
        assert runner.info.num_classes == 3 and runner.info.class_names == CLASSES
        assert runner.info.layout == "NHWC" and runner.output_kind == "logits"


@pytest.mark.slow  # 16 s: torch.export tracing
def test_dynamo_exporter(tmp_path: Path) -> None:
    """The torch.export-based exporter (opset 18): the way on once TorchScript export is removed."""
    ckpt = make_checkpoint(tmp_path / "m.pth", "FPN", "resnet18")
    out = tmp_path / "d.onnx"
    result = export_onnx(OnnxExportOptions(model=ckpt, output=out, exporter="dynamo", dynamic_size=True))
    assert result.opset == 18 and result.verification.passed
    assert result.outputs[0].shape == (1, 3, "height", "width")
    images = real_images((96, 64), 1)
    assert compare(run_torch(ckpt, images), run_onnx(out, images)).argmax_agreement >= 0.999


# ---- verification really fails -------------------------------------------------------------------
def _negate_last_conv(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Flip the sign of the last convolution's weights and bias: logits negated, argmax becomes argmin."""
    from onnx import numpy_helper

    conv = [n for n in proto.graph.node if n.op_type == "Conv"][-1]
    inits = {i.name: i for i in proto.graph.initializer}
    for name in conv.input[1:]:
        init = inits[name]
        init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init), name))
    return proto


def test_verification_fails_on_model_broken_after_export(
    tmp_path: Path, unet_ckpt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    good = out_dir / "m.onnx"
    good.write_bytes(b"previous good model")
    real_simplify = onnx_export.simplify
    monkeypatch.setattr(
        onnx_export, "simplify", lambda proto: (_negate_last_conv(real_simplify(proto)[0]), None)
    )
    with pytest.raises(ExportError, match="verification of .*m.onnx failed.*the file was not written"):
        export_onnx(OnnxExportOptions(model=unet_ckpt, output=good))
    assert good.read_bytes() == b"previous good model"  # the bad graph never replaced it
    assert sorted(p.name for p in out_dir.iterdir()) == ["m.onnx"]  # no temporary left behind

    fresh = out_dir / "fresh.onnx"
    res = CliRunner().invoke(app, ["export-onnx", "--model", str(unet_ckpt), "--output", str(fresh)])
    assert res.exit_code == 1 and not fresh.exists()
    assert "verification" in res.output and "agree" in res.output


def test_verify_onnx_catches_altered_weights(tmp_path: Path, unet_ckpt: Path) -> None:
    out = tmp_path / "m.onnx"
    result = export_onnx(OnnxExportOptions(model=unet_ckpt, output=out, verify=False))
    assert result.verification is None
    model, info, _ = load_model(unet_ckpt)
    reference = DeployModel(model, info).eval()
    batches = verification_inputs(SIZE, 1, 2, None, 8)
    assert verify_onnx(out, reference, batches, metadata(out), 0.999).passed  # intact: passes
    onnx.save(_negate_last_conv(onnx.load(str(out))), str(out))
    with pytest.raises(ExportError, match="agree below"):
        verify_onnx(out, reference, batches, metadata(out), 0.999)


def test_simplifier_failure_keeps_graph_with_one_warning(
    tmp_path: Path, unet_ckpt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxsim

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simplifier exploded\nsecond line")

    monkeypatch.setattr(onnxsim, "simplify", broken)
    reporter = RecordingReporter()
    result = export_onnx(OnnxExportOptions(model=unet_ckpt, output=tmp_path / "m.onnx"), reporter)
    assert len(reporter.warnings) == 1 and "simplifier exploded" in reporter.warnings[0]
    assert "\n" not in reporter.warnings[0]
    assert result.nodes_simplified is None and result.verification.passed


# ---- the command line ----------------------------------------------------------------------------
def test_cli_seed_style_bare_state_dict_with_original_flags(tmp_path: Path) -> None:
    torch.manual_seed(0)
    info = ModelInfo(arch="Unet", encoder="efficientnet-b0", num_classes=4)
    bare = tmp_path / "seed.pth"
    torch.save(create_model(info, None).state_dict(), bare)
    out = tmp_path / "exported" / "seed.onnx"  # folder does not exist yet: created
    res = CliRunner().invoke(
        app,
        [
            "export-onnx",
            "--model_in",
            str(bare),
            "--model_out",
            str(out),
            "--num_classes",
            "4",
            "--size",
            "64",
            "64",
            "--backend",
            "efficientnet-b0",
        ],
    )
    assert res.exit_code == 0, res.output
    meta = metadata(out)
    assert (meta.arch, meta.encoder, meta.num_classes, meta.input_size) == (
        "Unet",
        "efficientnet-b0",
        4,
        (64, 64),
    )
    assert len(meta.class_names) == 4 and len(meta.colors) == 4
    for text in (
        "input_1 1x64x64x3 NHWC float32",
        "output 1x4x64x64 NCHW",
        "opset",
        "17",
        "->",
        "argmax agreement",
        "wrote ONNX model",
    ):
        assert text in res.output


def test_cli_modern_flags_and_output_kind(tmp_path: Path, unet_ckpt: Path) -> None:
    out = tmp_path / "m.onnx"
    res = CliRunner().invoke(
        app,
        [
            "export-onnx",
            "--model",
            str(unet_ckpt),
            "--output",
            str(out),
            "--output",
            "labels",
            "--no-simplify",
            "--dynamic-batch",
            "--opset",
            "13",
            "--min-agreement",
            "0.9",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    proto = onnx.load(str(out))
    assert proto.opset_import[0].version == 13
    assert metadata(out).output_kind == "labels"
    assert "simplified" not in res.output


def test_cli_one_name_for_the_file_one_for_the_kind(tmp_path: Path, unet_ckpt: Path) -> None:
    """``-o FILE`` names the file and ``--output-kind`` what the graph returns (issue 19); the
    seed's ``--model-out`` still names the file."""
    out = tmp_path / "short.onnx"
    res = CliRunner().invoke(
        app,
        ["export-onnx", "-m", str(unet_ckpt), "-o", str(out), "--output-kind", "probs", "--no-verify", "-q"],
    )
    assert res.exit_code == 0, res.output
    assert metadata(out).output_kind == "probs"
    old = tmp_path / "old.onnx"
    res = CliRunner().invoke(
        app, ["export-onnx", "--model", str(unet_ckpt), "--model-out", str(old), "--no-verify", "-q"]
    )
    assert res.exit_code == 0, res.output
    assert metadata(old).output_kind == "logits"
    line = _one_line_error(["--model", str(unet_ckpt), "-o", str(out), "--model-out", str(old)])
    assert "two output files" in line


def _one_line_error(args: list[str]) -> str:
    res = CliRunner().invoke(app, ["export-onnx", *args])
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    return lines[0]


def test_bad_input_is_one_line(tmp_path: Path, unet_ckpt: Path) -> None:
    missing = tmp_path / "missing.pth"
    assert str(missing) in _one_line_error(["--model", str(missing)])

    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(os.urandom(256))
    assert "corrupt.pth" in _one_line_error(["--model", str(corrupt)])

    line = _one_line_error(["--model", str(unet_ckpt), "--num_classes", "5"])
    assert "--num-classes 5" in line and "3 classes" in line

    line = _one_line_error(["--model", str(unet_ckpt), "--size", "100", "64"])
    assert "100" in line and "32" in line and "96 or 128" in line

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    line = _one_line_error(["--model", str(unet_ckpt), "--model_out", str(blocker / "m.onnx")])
    assert "a_file" in line

    assert "--output scores" in _one_line_error(["--model", str(unet_ckpt), "--output", "scores"])
    assert "must end in .onnx" in _one_line_error(
        ["--model", str(unet_ckpt), "--model_out", str(tmp_path / "m.txt")]
    )
    assert "--input-dtype" in _one_line_error(["--model", str(unet_ckpt), "--input-dtype", "int8"])
    assert "--opset 9" in _one_line_error(["--model", str(unet_ckpt), "--opset", "9"])
    assert "two output kinds" in _one_line_error(
        ["--model", str(unet_ckpt), "--output", "labels", "--output-kind", "probs"]
    )
    line = _one_line_error(["--model", str(unet_ckpt), "--verify-images", str(tmp_path / "nope")])
    assert "--verify-images" in line and "nope" in line
    assert list(tmp_path.glob("*.onnx")) == []


def test_bare_state_dict_of_another_architecture_names_the_flags(tmp_path: Path) -> None:
    info = ModelInfo(arch="FPN", encoder="resnet18", num_classes=3)
    bare = tmp_path / "fpn_bare.pth"
    torch.save(create_model(info, None).state_dict(), bare)
    line = _one_line_error(["--model", str(bare)])
    assert "fpn_bare.pth" in line and "--arch" in line and "--encoder" in line
    res = CliRunner().invoke(
        app,
        [
            "export-onnx",
            "--model",
            str(bare),
            "--arch",
            "FPN",
            "--encoder",
            "resnet18",
            "--size",
            "64",
            "64",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert metadata(bare.with_suffix(".onnx")).arch == "FPN"


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root can write anywhere")
def test_unwritable_output_folder(tmp_path: Path, unet_ckpt: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert "not writable" in _one_line_error(
            ["--model", str(unet_ckpt), "--model_out", str(locked / "m.onnx")]
        )
    finally:
        locked.chmod(0o700)


def test_options_validation() -> None:
    with pytest.raises(ConfigError, match="--opset 17"):
        OnnxExportOptions(model=Path("m.pth"), exporter="dynamo", opset=17)
    with pytest.raises(ConfigError, match="--batch 0"):
        OnnxExportOptions(model=Path("m.pth"), batch=0)
    opts = OnnxExportOptions(model=Path("runs/x/best.pth"), half=True)
    assert opts.resolved_output == Path("runs/x/best.onnx")
    assert opts.resolved_min_agreement == 0.99 and opts.resolved_opset == 17
    assert OnnxExportOptions(model=Path("m.pth")).resolved_min_agreement == 0.999
    assert isinstance(ConfigError("x"), SegpipeError)
