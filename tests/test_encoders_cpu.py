"""Encoders that kill the process on the CPU (issue 18): the memory layout of weights and batches.

``tu-mobileone_s0`` dies in oneDNN (SIGSEGV / SIGABRT) when trained channels-last on an AVX-512
CPU at 96x96 and above; segpipe trains contiguous on the CPU by default, and ``--no-channels-last``
really gives contiguous weights and batches (the Normalize permute alone leaves batches
channels-last)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from segpipe.data.synthetic import make_dataset
from segpipe.errors import ConfigError
from segpipe.models import Normalize
from segpipe.training.accel import LaidOutNormalize, _avx512, memory_format, prepare_model
from segpipe.training.distributed import DistEnv

ROOT = Path(__file__).resolve().parents[1]


def _opts(tmp_path: Path, **kw):
    from conftest import tiny_train_options

    return tiny_train_options(tmp_path, None, **kw)


def _is_channels_last(t: torch.Tensor) -> bool:
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


@pytest.mark.parametrize(
    ("flag", "device", "expected"),
    [
        (None, "cpu", torch.contiguous_format),
        (None, "cuda", torch.channels_last),  # the CUDA default: decided from the device type alone
        (False, "cuda", torch.contiguous_format),
        (True, "cpu", torch.channels_last),
    ],
)
def test_memory_format_choice(tmp_path: Path, flag, device: str, expected) -> None:
    assert memory_format(_opts(tmp_path, channels_last=flag), torch.device(device)) == expected


@pytest.mark.parametrize("channels_last", [False, True])
def test_batches_and_weights_follow_the_layout(tmp_path: Path, channels_last: bool) -> None:
    from segpipe.modelinfo import ModelInfo
    from segpipe.models import create_model

    opts = _opts(tmp_path, channels_last=channels_last)
    fmt = memory_format(opts, torch.device("cpu"))
    pixels = torch.randint(0, 255, (2, 64, 64, 3), dtype=torch.uint8)
    x = LaidOutNormalize(Normalize((0.5,) * 3, (0.25,) * 3), fmt)(pixels)
    info = ModelInfo(arch="Unet", encoder=opts.encoder, num_classes=3, input_size=(64, 64))
    env = DistEnv(device=torch.device("cpu"))
    net = prepare_model(create_model(info, None), opts, env, reporter=None)  # type: ignore[arg-type]
    convs = [m.weight for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)]
    assert x.shape == (2, 3, 64, 64) and convs
    if channels_last:
        assert _is_channels_last(x) and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    else:
        assert x.is_contiguous() and all(w.is_contiguous() for w in convs)


@pytest.mark.skipif(not _avx512(), reason="the oneDNN crash needs an AVX-512 CPU")
def test_channels_last_with_mobileone_on_avx512_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="--channels-last with --encoder tu-mobileone_s0 on this AVX-512 CPU"
    ):
        memory_format(_opts(tmp_path, encoder="tu-mobileone_s0", channels_last=True), torch.device("cpu"))


@pytest.mark.slow  # 18 s: a real training run in a subprocess
def test_mobileone_trains_on_the_cpu(tmp_path: Path) -> None:
    """One step at 96x96 (the crash needs 96 and above), batch 2, in a real subprocess: a crash in
    oneDNN would end it with SIGSEGV / SIGABRT instead of exit 0."""
    data = make_dataset(tmp_path / "d", count=3, size=(96, 96), num_classes=2, seed=1)
    args = [
        "train", "--data-root", str(data), "--num-classes", "2", "--encoder", "tu-mobileone_s0",
        "--encoder-weights", "none", "--size", "96", "96", "--batch-size", "2", "--workers", "0",
        "--device", "cpu", "--epochs", "1", "--val-fraction", "0.34", "--output-dir", str(tmp_path / "run"),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2", "HF_HUB_OFFLINE": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "segpipe", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert (tmp_path / "run" / "last.pth").is_file()
