"""Model factory and the checkpoint contract."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from segpipe.errors import CheckpointError, ConfigError
from segpipe.modelinfo import ModelInfo
from segpipe.models import (
    DeployModel,
    create_model,
    load_checkpoint,
    load_model,
    output_stride,
    resolve_arch,
    save_checkpoint,
)
from segpipe.utils import check_divisible

INFO = ModelInfo(
    arch="Unet", encoder="resnet18", num_classes=3, input_size=(64, 64), class_names=("a", "b", "c")
)


def test_unknown_names_list_close_matches() -> None:
    with pytest.raises(ConfigError, match=r"unknown architecture 'Unett'; close matches: Unet"):
        resolve_arch("Unett")
    with pytest.raises(ConfigError, match=r"unknown encoder 'resnet181'; close matches: resnet18"):
        create_model(INFO.replace(encoder="resnet181"))
    assert resolve_arch("deeplabv3plus") == "DeepLabV3Plus"


def test_offline_weight_download_says_how_to_proceed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="pass --encoder-weights none .* or --encoder-weights PATH"):
        create_model(INFO, encoder_weights="imagenet")


def test_encoder_weights_from_file(tmp_path: Path) -> None:
    torch.manual_seed(1)
    donor = create_model(INFO)
    torch.save(donor.encoder.state_dict(), tmp_path / "enc.pth")
    model = create_model(INFO, encoder_weights=str(tmp_path / "enc.pth"))
    k = next(iter(donor.encoder.state_dict()))
    assert torch.equal(model.encoder.state_dict()[k], donor.encoder.state_dict()[k])
    with pytest.raises(ConfigError, match="does not exist"):
        create_model(INFO, encoder_weights=str(tmp_path / "missing.pth"))


def test_checkpoint_round_trip_with_weights_only(tmp_path: Path) -> None:
    model = create_model(INFO)
    path = save_checkpoint(
        tmp_path / "m.pth", model, INFO, {"epoch": 2, "history": [{"miou": 0.5}]}, {"lr": 0.1}
    )
    raw = torch.load(path, weights_only=True)  # the contract: no pickled objects
    assert raw["format"] == "segpipe" and raw["model_info"]["encoder"] == "resnet18"
    ckpt = load_checkpoint(path)
    assert ckpt.info == INFO and ckpt.train_state["epoch"] == 2 and ckpt.options == {"lr": 0.1}
    loaded, info, _ = load_model(path)
    x = torch.rand(1, 3, 64, 64)
    model.eval()
    assert torch.allclose(loaded(x), model(x))
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temporary behind


def test_bare_state_dict_needs_matching_flags(tmp_path: Path) -> None:
    model = create_model(INFO)
    torch.save(model.state_dict(), tmp_path / "bare.pth")
    _, info, ckpt = load_model(tmp_path / "bare.pth", encoder="resnet18")
    assert ckpt.is_bare and info.num_classes == 3  # read from the segmentation head
    with pytest.raises(CheckpointError, match="--num-classes 5 contradicts"):
        load_model(tmp_path / "bare.pth", encoder="resnet18", num_classes=5)
    with pytest.raises(CheckpointError, match="pass --arch and --encoder"):
        load_model(tmp_path / "bare.pth")  # default efficientnet-b0 does not fit


def test_checkpoint_errors(tmp_path: Path, tiny_checkpoint: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pth")
    (tmp_path / "bad.pth").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="bad.pth is not a readable PyTorch checkpoint"):
        load_checkpoint(tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="--num-classes 4 contradicts .* 3 classes"):
        load_model(tiny_checkpoint, num_classes=4)


def test_size_check_names_valid_sizes() -> None:
    assert output_stride(create_model(INFO)) == 32
    with pytest.raises(ConfigError, match=r"--size 100 64: .* stride 32: width 100 \(try 96 or 128\)"):
        check_divisible(100, 64, 32)
    check_divisible(96, 64, 32)


def test_deploy_model_takes_nhwc_pixels() -> None:
    model = create_model(INFO).eval()
    pixels = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)
    logits = DeployModel(model, INFO, "logits")(pixels)
    labels = DeployModel(model, INFO, "labels")(pixels)
    assert logits.shape == (2, 3, 64, 64) and labels.shape == (2, 64, 64)
    assert torch.equal(labels, logits.argmax(1))
    mean, std = torch.tensor(INFO.mean), torch.tensor(INFO.std)
    manual = model(((pixels.float() / 255 - mean) / std).permute(0, 3, 1, 2))
    assert torch.allclose(manual, logits, atol=1e-4)
