"""Every smp architecture, with smp's own and timm universal (``tu-``) encoders: built, size-checked,
exported, verified; and the combinations and sizes smp cannot take refused in one line.

The default suite runs each of the 12 architectures once with a tiny timm test encoder
(``tu-test_resnet``, no onnx-simplifier, one verification image); the full matrix (a classic and a
``tu-`` encoder, simplified, verified) is ``slow``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import onnx
import pytest
import torch
from typer.testing import CliRunner

from segpipe.errors import ConfigError, ExportError
from segpipe.modelinfo import ModelInfo
from segpipe.models import check_model_size, create_model, save_checkpoint, size_problem
from segpipe.options import OnnxExportOptions

ARCHS = (
    "Unet",
    "UnetPlusPlus",
    "MAnet",
    "Linknet",
    "FPN",
    "PSPNet",
    "DeepLabV3",
    "DeepLabV3Plus",
    "PAN",
    "UPerNet",
    "Segformer",
    "DPT",
)
TINY_TU = "tu-test_resnet"
#: The smallest square each architecture takes (64 unless the model needs more): PAN's pyramid
#: attention pools the stride-32 features twice more, so it needs 128.
SMALLEST = {"PAN": 128}


def checkpoint(path: Path, arch: str, encoder: str, size: tuple[int, int] | None = None) -> Path:
    side = SMALLEST.get(arch, 64)
    info = ModelInfo(
        arch=arch,
        encoder=encoder,
        num_classes=3,
        input_size=size or (side, side),
        class_names=("bg", "a", "b"),
        colors=((0, 0, 0), (200, 0, 0), (0, 200, 0)),
    )
    torch.manual_seed(0)
    save_checkpoint(path, create_model(info), info)
    return path


def export(ckpt: Path, out: Path, **kw: object):
    from segpipe.export.onnx import export_onnx

    opts = {"simplify": False, "verify_random": 1, **kw}
    return export_onnx(OnnxExportOptions(model=ckpt, output=out, **opts))  # type: ignore[arg-type]


def check_graph_io(path: Path, size: tuple[int, int] | None) -> None:
    """One input ``input_1``, N×H×W×3 (``size`` (W, H); None: dynamic H and W)."""
    proto = onnx.load(str(path))
    init = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in init]
    assert [i.name for i in inputs] == ["input_1"]
    dims = [d.dim_value or d.dim_param for d in inputs[0].type.tensor_type.shape.dim]
    assert dims == ([1, size[1], size[0], 3] if size else [1, "height", "width", 3])  # NHWC
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["segpipe.layout"]) == "NHWC"


@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_exports_and_verifies(arch: str, tmp_path: Path) -> None:
    ckpt = checkpoint(tmp_path / "m.pth", arch, TINY_TU)
    side = SMALLEST.get(arch, 64)
    result = export(ckpt, tmp_path / "m.onnx")
    assert result.verification.passed and result.verification.worst.argmax_agreement >= 0.999
    assert result.exporter == "torchscript"  # PSPNet/UPerNet pooling in fixed-size form, no fallback
    assert result.info.encoder == TINY_TU and result.info.arch == arch
    check_graph_io(result.path, (side, side))


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ["resnet18", "tu-convnext_atto"])
@pytest.mark.parametrize("arch", ARCHS)
def test_zoo_matrix(arch: str, encoder: str, tmp_path: Path) -> None:
    if arch == "DPT" and not encoder.startswith("tu-"):
        with pytest.raises(ConfigError, match="smp builds DPT only on timm encoders"):
            checkpoint(tmp_path / "m.pth", arch, encoder)
        return
    ckpt = checkpoint(tmp_path / "m.pth", arch, encoder)
    side = SMALLEST.get(arch, 64)
    grid = arch in ("PSPNet", "UPerNet")
    result = export(ckpt, tmp_path / "m.onnx", simplify=True, verify_random=2, dynamic_size=not grid)
    assert result.verification.passed
    if not grid:  # verified at the export size and at another one
        assert len(result.verification.results) == 2
    check_graph_io(result.path, (side, side) if grid else None)


# ---- refusals: one line each ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("arch", "encoder", "expected"),
    [
        ("UnetPlusPlus", "mit_b0", r"^UnetPlusPlus/mit_b0: smp does not build .* use mit_b0 with Unet"),
        ("Linknet", "mit_b0", r"^Linknet/mit_b0: smp does not build .* Linknet with another encoder"),
        ("DPT", "resnet18", r"^DPT/resnet18: smp builds DPT only on timm encoders; use a tu- encoder"),
        ("Unet", "tu-test_vit", r"^Unet/tu-test_vit: smp cannot build .* use it with DPT"),
        (
            "Unet",
            "tu-convnext_attto",
            r"unknown timm encoder 'tu-convnext_attto'.*close matches: tu-convnext_atto",
        ),
        ("Unet", "convnext_atto", r"unknown encoder 'convnext_atto'; timm has it: use tu-convnext_atto"),
    ],
)
def test_combinations_smp_refuses_are_one_line(arch: str, encoder: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as err:
        create_model(ModelInfo(arch=arch, encoder=encoder, num_classes=3))
    assert "\n" not in str(err.value)


def test_size_check_gives_the_models_true_rule() -> None:
    pan = ModelInfo(arch="PAN", encoder=TINY_TU, num_classes=3)
    model = create_model(pan)
    assert size_problem(model, 128, 128) is None and size_problem(model, 96, 128) is not None
    with pytest.raises(
        ConfigError,
        match=r"^--size 96 128: PAN/tu-test_resnet cannot take 96x128 .*"
        r"multiples of 16, each at least 128, e.g. --size 128 128$",
    ):
        check_model_size(model, pan, (96, 128))
    with pytest.raises(ConfigError, match=r"^Unet/tu-test_resnet: --size 100 64: .* stride 32"):
        check_model_size(create_model(pan.replace(arch="Unet")), pan.replace(arch="Unet"), (100, 64))
    started = time.perf_counter()
    check_model_size(model, pan, (1024, 512))  # shape-only: no arithmetic at a large size
    assert time.perf_counter() - started < 5


def test_vit_dpt_takes_one_size_only(tmp_path: Path) -> None:
    info = ModelInfo(arch="DPT", encoder="tu-vit_tiny_patch16_224", num_classes=3)
    model = create_model(info)
    size = tuple(model.encoder.model.patch_embed.img_size)
    with pytest.raises(ConfigError, match=rf"cannot take 256x256 .*it takes only {size[1]}x{size[0]}"):
        check_model_size(model, info, (256, 256))
    from segpipe.export.onnx import _check_sizes  # what export-onnx runs before writing anything

    opts = OnnxExportOptions(model=tmp_path / "vit.pth", dynamic_size=True)
    with pytest.raises(
        ConfigError,
        match=r"^--dynamic-size: DPT/tu-vit_tiny_patch16_224 takes only 224x224 .*without --dynamic-size",
    ):
        _check_sizes(model, info.replace(input_size=(224, 224)), opts)
    sizes, _ = _check_sizes(model, info.replace(input_size=(224, 224)), OnnxExportOptions(model=opts.model))
    assert sizes == [(224, 224)]


def test_pyramid_pooling_refuses_dynamic_size_and_exports_any_size(tmp_path: Path) -> None:
    ckpt = checkpoint(tmp_path / "psp.pth", "PSPNet", TINY_TU, size=(64, 64))
    with pytest.raises(ConfigError, match=r"^--dynamic-size: PSPNet/tu-test_resnet pools to fixed grids"):
        export(ckpt, tmp_path / "psp.onnx", dynamic_size=True)
    assert not (tmp_path / "psp.onnx").exists()
    # 136x104: the stride-8 features (17x13) are no multiple of the 2x2/3x3/6x6 grids
    result = export(ckpt, tmp_path / "psp.onnx", size=(136, 104))
    assert result.exporter == "torchscript" and result.verification.passed


def test_dynamic_size_is_verified_at_two_sizes(tmp_path: Path) -> None:
    ckpt = checkpoint(tmp_path / "m.pth", "FPN", TINY_TU)
    result = export(ckpt, tmp_path / "m.onnx", dynamic_size=True)
    assert set(result.verification.results) == {"random", "random 128x96"}
    assert result.verification.passed


# ---- the exporter ----------------------------------------------------------------------------------
def test_exporter_dump_goes_to_a_log_named_in_the_error(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    from segpipe.export.onnx import torch_to_onnx

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.AdaptiveAvgPool2d(3))
    log = tmp_path / "m.export.log"
    with pytest.raises(ExportError, match=rf"adaptive_avg_pool2d.*\(exporter output in {log}\)$"):
        torch_to_onnx(net.eval(), torch.rand(1, 3, 8, 8), tmp_path / "m.onnx", 17, {}, "torchscript", log)
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # the C++ "Torch IR graph at exception" dump went to the log
    assert "Torch IR graph at exception" in log.read_text()


def test_auto_exporter_falls_back_to_dynamo_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import segpipe.export.onnx as mod

    real = mod.torch_to_onnx
    used: list[str] = []

    def torchscript_cannot(module, example, path, opset, axes, exporter="torchscript", *rest):  # noqa: ANN001
        used.append(exporter)
        if exporter == "torchscript":
            raise ExportError(
                "torch.onnx.export (torchscript exporter, opset 17) failed: SymbolicValueError: nope"
            )
        real(module, example, path, opset, axes, exporter, *rest)

    monkeypatch.setattr(mod, "torch_to_onnx", torchscript_cannot)
    ckpt = checkpoint(tmp_path / "m.pth", "Unet", TINY_TU)
    result = export(ckpt, tmp_path / "m.onnx")
    assert used == ["torchscript", "dynamo"] and result.exporter == "dynamo" and result.opset == 18
    assert any("exported with the dynamo exporter" in w for w in result.warnings)
    assert result.verification.passed
    with pytest.raises(ExportError, match="torchscript exporter"):
        export(ckpt, tmp_path / "n.onnx", exporter="torchscript")
    assert not (tmp_path / "n.onnx").exists()


# ---- bare state_dicts: names and colours from flags ---------------------------------------------
def test_bare_state_dict_gets_class_names_and_colors(tmp_path: Path) -> None:
    from segpipe.cli.app import app

    info = ModelInfo(arch="FPN", encoder=TINY_TU, num_classes=3, input_size=(64, 64))
    torch.save(create_model(info).state_dict(), tmp_path / "bare.pth")
    (tmp_path / "colors.csv").write_text("id,name,r,g,b\n0,sky,1,2,3\n1,road,4,5,6\n2,car,7,8,9\n3,x,9,9,9\n")
    args = ["export-onnx", "--model", str(tmp_path / "bare.pth"), "--arch", "FPN", "--encoder", TINY_TU]
    args += ["--size", "64", "64", "--no-simplify", "--no-verify", "--colors", str(tmp_path / "colors.csv")]

    def written(name: str, *more: str) -> ModelInfo:
        res = CliRunner().invoke(app, [*args, *more, "--model-out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        proto = onnx.load(str(tmp_path / name))
        info = ModelInfo.from_metadata({p.key: p.value for p in proto.metadata_props})
        assert info is not None
        return info

    info = written("names.onnx", "--class-names", "s,r,c")
    assert info.class_names == ("s", "r", "c") and info.colors == ((1, 2, 3), (4, 5, 6), (7, 8, 9))
    assert written("palette.onnx").class_names == ("sky", "road", "car")  # names from the palette
    res = CliRunner().invoke(app, [*args, "--class-names", "a,b", "--model-out", str(tmp_path / "x.onnx")])
    assert res.exit_code == 1 and "gives 2 names for the 3 classes" in " ".join(res.output.split())
    assert not (tmp_path / "x.onnx").exists()


# ---- offline ---------------------------------------------------------------------------------------
def test_unreachable_hub_fails_at_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import socket

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)

    def unreachable(*args: object, **kwargs: object) -> socket.socket:
        raise OSError(101, "Network is unreachable")

    from huggingface_hub import constants

    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # nothing cached
    started = time.perf_counter()
    for encoder in ("resnet18", "tu-convnext_atto"):
        with pytest.raises(
            ConfigError,
            match=r"unreachable: Network is unreachable; not in the local cache\); "
            "pass --encoder-weights none .* or --encoder-weights PATH",
        ):
            create_model(ModelInfo(arch="Unet", encoder=encoder, num_classes=3), encoder_weights="imagenet")
    assert time.perf_counter() - started < 15


def test_torch_runner_checks_the_models_own_size_rule(tmp_path: Path) -> None:
    from segpipe.runtime import load_runner
    from segpipe.runtime.pipeline import network_size

    ckpt = checkpoint(tmp_path / "pan.pth", "PAN", TINY_TU)
    with load_runner(ckpt, device="cpu") as runner:
        assert runner.info.encoder == TINY_TU
        assert network_size(runner, (128, 160)) == (128, 160)
        with pytest.raises(
            ConfigError, match=r"^--size 96 96: PAN/tu-test_resnet cannot take 96x96 .*at least 128"
        ):
            network_size(runner, (96, 96))


def test_dynamic_size_graph_carries_the_minimum_side(tmp_path: Path) -> None:
    from segpipe.runtime import load_runner
    from segpipe.runtime.pipeline import network_size

    ckpt = checkpoint(tmp_path / "pan.pth", "PAN", TINY_TU)
    result = export(ckpt, tmp_path / "pan.onnx", dynamic_size=True)
    assert result.info.min_side == 128 and result.verification.passed
    with load_runner(result.path, device="cpu") as runner:
        assert network_size(runner, (160, 128)) == (160, 128)
        with pytest.raises(
            ConfigError,
            match=r"^--size 96 128: .*pan.onnx \(PAN/tu-test_resnet\) takes width and height of at least 128",
        ):
            network_size(runner, (96, 128))
