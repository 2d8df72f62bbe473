"""Output paths (issue 18): a folder where a file is expected, a file where a folder is expected, a
folder that cannot be written: one line naming the flag and the path, before any work starts."""

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
runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    from segpipe.cli import common

    monkeypatch.setitem(common._state, "debug", False)


def one_error(*args: object) -> str:
    r = runner.invoke(app, [str(a) for a in args])
    lines = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert r.exit_code == 1 and len(lines) == 1 and "Traceback" not in r.output, r.output
    return lines[0]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("imgs") / "pics"
    d.mkdir()
    cv2.imwrite(str(d / "a.png"), np.full((64, 64, 3), 90, np.uint8))
    return d


def test_a_folder_given_as_report_or_confusion_matrix(
    tiny_checkpoint: Path, index_dataset: Path, tmp_path: Path
):
    line = one_error("evaluate", "--data-root", index_dataset, "-m", tiny_checkpoint, "--report", tmp_path)
    assert f"--report {tmp_path} is a folder; give the file to write" in line
    line = one_error(
        "evaluate", "--data-root", index_dataset, "-m", tiny_checkpoint, "--confusion-matrix", tmp_path
    )
    assert f"--confusion-matrix {tmp_path} is a folder" in line


def test_a_file_where_the_reports_folder_should_be(
    tiny_checkpoint: Path, index_dataset: Path, tmp_path: Path
):
    blocker = tmp_path / "reports"
    blocker.write_text("not a folder")
    line = one_error(
        "evaluate", "--data-root", index_dataset, "-m", tiny_checkpoint, "--report", blocker / "r.json"
    )
    assert f"{blocker} is a file, not a folder" in line and "--report" in line


def test_benchmark_report_folder(tiny_checkpoint: Path, tmp_path: Path):
    line = one_error("benchmark", "-m", tiny_checkpoint, "--report", tmp_path, "--runs", 1)
    assert f"--report {tmp_path} is a folder" in line


def test_export_and_quantize_outputs_that_are_folders(tiny_checkpoint: Path, images: Path, tmp_path: Path):
    folder = tmp_path / "x.onnx"
    folder.mkdir()
    assert f"--output {folder} is a folder" in one_error(
        "export-onnx", "--model", tiny_checkpoint, "--output", folder
    )
    model = tmp_path / "m.onnx"
    model.write_bytes(b"whatever: the output is checked first")
    assert f"--output {folder} is a folder" in one_error(
        "quantize", model, "--calib-images", images, "--output", folder
    )


def test_build_trt_engine_that_is_a_folder(tmp_path: Path):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    folder = tmp_path / "m.engine"
    folder.mkdir()
    assert f"--engine {folder} is a folder" in one_error("build-trt", "--onnx", onnx, "--saveEngine", folder)


def test_a_file_given_as_output_dir(tiny_checkpoint: Path, images: Path, index_dataset: Path, tmp_path: Path):
    f = tmp_path / "out"
    f.write_text("a file")
    line = one_error("visualize", "-i", images, "-m", tiny_checkpoint, "--output-dir", f)
    assert f"--output-dir {f} is a file, not a folder" in line
    line = one_error(
        "train",
        "--data-root",
        index_dataset,
        "--num-classes",
        "3",
        "--encoder-weights",
        "none",
        "--output-dir",
        f,
    )
    assert f"--output-dir {f} is a file, not a folder" in line


def test_an_unwritable_parent_folder_seen_through_os_access(
    tiny_checkpoint: Path, index_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Root writes anywhere, so the folder is made unwritable in the eyes of os.access only."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p) != locked and real(p, mode, **kw))
    line = one_error(
        "evaluate", "--data-root", index_dataset, "-m", tiny_checkpoint, "--report", locked / "sub" / "r.json"
    )
    assert f"folder {locked} is not writable" in line


@pytest.fixture()
def readonly_dir(tmp_path: Path):
    """A read-only tmpfs: unwritable even for root (skipped where mounting is refused)."""
    with tmpfs(tmp_path / "ro", "size=1m,ro") as mnt:
        yield mnt


def test_no_writable_current_folder_and_no_output_dir(
    readonly_dir: Path, tiny_checkpoint: Path, images: Path, index_dataset: Path
):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    base = [sys.executable, "-m", "segpipe"]
    commands = [
        ["visualize", "-i", str(images), "-m", str(tiny_checkpoint)],
        ["train", "--data-root", str(index_dataset), "--num-classes", "3", "--encoder-weights", "none"],
    ]
    for args in commands:
        r = subprocess.run(
            base + args, cwd=readonly_dir, env=env, capture_output=True, text=True, timeout=120
        )
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1, r.stderr
        assert f"folder {readonly_dir} is not writable; pass --output-dir" in lines[0], lines[0]
        assert "Traceback" not in r.stderr
