"""SIGTERM / SIGHUP in the middle of quantize, video visualize and export-onnx leave nothing behind
(issue 18): the real command in a subprocess of its own process group, signalled (the whole group,
as a terminal or a job scheduler does) while its temporary file or folder exists."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _env(tmp: Path) -> dict[str, str]:
    # TMPDIR: where ONNX Runtime's quantizer would put its ort.quant.* folders if not told otherwise
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp)}


def _signal_when(proc: subprocess.Popen, ready, sig: int, timeout: float = 60.0) -> None:
    """Send ``sig`` to the process group as soon as ``ready()`` is true (fail if it never is)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ready():
            os.killpg(proc.pid, sig)
            return
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"finished (exit {proc.returncode}) before the temporary appeared: {out[-2000:]}")
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("the temporary never appeared")


def _start(args: list[str], tmp: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "segpipe", *args],
        env=_env(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@pytest.fixture(scope="module")
def fp32_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_quantize import tiny_onnx

    return tiny_onnx(tmp_path_factory.mktemp("sig") / "tiny.onnx")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_quantize_signalled_leaves_no_scratch_folder(fp32_onnx: Path, tmp_path: Path, sig: int) -> None:
    out_dir, tmp = tmp_path / "out", tmp_path / "tmp"
    out_dir.mkdir()
    tmp.mkdir()
    calib = tmp_path / "calib"
    calib.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        cv2.imwrite(str(calib / f"{i}.png"), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    proc = _start(
        ["quantize", str(fp32_onnx), "--calib-images", str(calib), "--output", str(out_dir / "q.onnx")], tmp
    )

    def scratch_has_work() -> bool:  # the FP32 copy is written: the quantizer runs next
        return any(p.is_dir() and (p / "fp32.onnx").exists() for p in out_dir.glob(".q.onnx.*"))

    _signal_when(proc, scratch_has_work, sig)
    assert proc.wait(timeout=60) == -sig
    assert list(out_dir.iterdir()) == []
    # no ort.quant.* left in the temporary folder either (.ses: a session-id file a dependency
    # keeps in $TMPDIR, which an uninterrupted run writes too)
    assert [p.name for p in tmp.iterdir() if p.name != ".ses"] == []


def test_video_visualize_signalled_leaves_no_partial_video(tmp_path: Path, tiny_checkpoint: Path) -> None:
    from test_video import write_video

    src = write_video(tmp_path / "clip.avi", frames=400, size=(64, 48))
    out = tmp_path / "out"
    proc = _start(
        ["visualize", "-i", str(src), "-m", str(tiny_checkpoint), "-o", str(out), "--device", "cpu"], tmp_path
    )
    _signal_when(proc, lambda: out.is_dir() and any(out.glob(".clip_overlay.avi.*")), signal.SIGTERM)
    assert proc.wait(timeout=60) == -signal.SIGTERM
    assert list(out.iterdir()) == []


def test_export_signalled_leaves_no_export_log(tmp_path: Path, tiny_checkpoint: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    proc = _start(["export-onnx", "--model", str(tiny_checkpoint), "--output", str(out / "m.onnx")], tmp_path)
    _signal_when(proc, lambda: (out / "m.export.log").exists(), signal.SIGTERM)
    assert proc.wait(timeout=60) == -signal.SIGTERM
    assert list(out.iterdir()) == []
