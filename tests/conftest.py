"""Shared fixtures: tiny generated datasets and checkpoints (64x64, a few images, no downloads)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No test may reach the network for weights: the hub fails at once instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

TINY = (64, 64)
ENCODER = "resnet18"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """GPU tests skip cleanly where there is no CUDA device."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def index_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 pairs, 64x64 PNG images, single-channel index masks, 3 classes."""
    from segpipe.data.synthetic import make_dataset

    return make_dataset(tmp_path_factory.mktemp("index_ds"), count=12, size=TINY, num_classes=3, seed=1)


@pytest.fixture(scope="session")
def color_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 pairs, JPEG images, RGB colour masks through ``colors.csv`` in the data root, 4 classes."""
    from segpipe.data.synthetic import make_dataset

    return make_dataset(
        tmp_path_factory.mktemp("color_ds"),
        count=12,
        size=TINY,
        num_classes=4,
        color_masks=True,
        image_ext=".jpg",
        seed=2,
    )


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained segpipe checkpoint (Unet/resnet18, 3 classes, 64x64)."""
    from segpipe.modelinfo import ModelInfo
    from segpipe.models import create_model, save_checkpoint

    info = ModelInfo(
        arch="Unet",
        encoder=ENCODER,
        num_classes=3,
        input_size=TINY,
        class_names=("bg", "a", "b"),
        colors=((0, 0, 0), (255, 0, 0), (0, 255, 0)),
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    return save_checkpoint(path, create_model(info, None), info)
