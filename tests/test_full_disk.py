"""Full disks and broken standard output (issue 18): one line, nothing left behind.

The disks are small tmpfs mounts (root with mount rights; skipped elsewhere), as in
tests/test_dependable.py's full-disk test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from mounts import tmpfs
from typer.testing import CliRunner

from segpipe.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    from segpipe.cli import common

    monkeypatch.setitem(common._state, "debug", False)


@pytest.fixture()
def small_disk(tmp_path: Path):
    """A 2 MiB tmpfs: smaller than the tiny models' files."""
    with tmpfs(tmp_path / "disk", "size=2m") as mnt:
        yield mnt


@pytest.fixture(scope="module")
def fp32_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_quantize import tiny_onnx

    return tiny_onnx(tmp_path_factory.mktemp("fd") / "tiny.onnx")  # 3 MB


@pytest.fixture(scope="module")
def calib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("fd_calib")
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(d / f"{i}.png"), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    return d


def one_error(r) -> str:
    lines = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert r.exit_code == 1 and len(lines) == 1 and "Traceback" not in r.output, r.output
    return lines[0]


def test_quantize_onto_a_full_disk(fp32_onnx: Path, calib: Path, small_disk: Path) -> None:
    out = small_disk / "m.int8.onnx"
    r = runner.invoke(
        app, ["quantize", str(fp32_onnx), "--calib-images", str(calib), "--output", str(out), "-q"]
    )
    line = one_error(r)
    assert f"cannot write {out}: the disk is full" in line, line
    assert list(small_disk.iterdir()) == []  # the scratch folder went with the error


def test_export_onto_a_full_disk_is_said_without_trying_the_other_exporter(
    tiny_checkpoint: Path, small_disk: Path
) -> None:
    out = small_disk / "m.onnx"
    r = runner.invoke(app, ["export-onnx", "--model", str(tiny_checkpoint), "--output", str(out), "-q"])
    line = one_error(r)
    assert f"cannot write {out}: the disk is full" in line, line
    assert "dynamo" not in r.output and "exporter" not in line
    assert list(small_disk.iterdir()) == []  # no partial model, no export log


def test_info_into_dev_full_is_one_line(fp32_onnx: Path) -> None:
    with open("/dev/full", "w") as full:
        r = subprocess.run(
            [sys.executable, "-m", "segpipe", "info", str(fp32_onnx)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
            timeout=120,
        )
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines() == [
        "error: cannot write to standard output: No space left on device"
    ]


@pytest.mark.parametrize("help_text", [False, True], ids=["info", "help"])
def test_a_closed_pipe_exits_quietly(fp32_onnx: Path, help_text: bool) -> None:
    """As ``segpipe info m.onnx | head -1`` once head has gone: no traceback, no message. The help
    (``segpipe export-onnx -h | head``) fails while it is being printed, not at the final flush."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    args = ["export-onnx", "-h"] if help_text else ["info", str(fp32_onnx)]
    try:
        r = subprocess.run(
            [sys.executable, "-m", "segpipe", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert r.returncode == 1 and r.stderr == "", r.stderr
