"""The console entry point: help, version, python -m, the demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from segpipe import __version__
from segpipe.cli.app import COMMANDS, app

runner = CliRunner()


def test_help_lists_every_registered_command() -> None:
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    for name, _ in COMMANDS:
        assert name in r.output
    assert {n for n, _ in COMMANDS} >= {
        "demo",
        "train",
        "visualize",
        "evaluate",
        "export-onnx",
        "info",
        "build-trt",
        "benchmark",
    }


def test_version_and_python_m() -> None:
    assert runner.invoke(app, ["--version"]).output.strip() == f"segpipe {__version__}"
    out = subprocess.run(
        [sys.executable, "-m", "segpipe", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"segpipe {__version__}"


@pytest.mark.slow
def test_demo_runs_the_pipeline_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    r = runner.invoke(app, ["demo", "--output-dir", str(out), "--epochs", "1", "--quiet", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "validation mIoU" in r.output and "held-out mIoU" in r.output
    for f in (
        "train/best.pth",
        "train/metrics.csv",
        "demo.onnx",
        "evaluate_pth.json",
        "confusion_matrix.png",
        "benchmark.json",
    ):
        assert (out / f).is_file(), f
    assert len(list((out / "visualize").glob("*.png"))) >= 4
    assert len(list((out / "visualize_onnx").glob("*.png"))) >= 4
    report = json.loads((out / "evaluate_pth.json").read_text())
    assert 0.0 <= report["miou"] <= 1.0
    # --quiet: the closing summary only, no tables, no per-epoch lines (issue 19)
    assert "┏" not in r.output and "epoch 1/1" not in r.output and "precision ladder" not in r.output
    assert (out / "demo.fp16.onnx").is_file()
    precisions = {m["precision"] for m in json.loads((out / "benchmark.json").read_text())["models"]}
    assert {"fp32", "fp16"} <= precisions


def test_long_file_names_whole_in_a_log(tiny_checkpoint: Path, tmp_path: Path, monkeypatch) -> None:
    """Output to a pipe or a CI log, not a terminal: rich laid it out at 80 columns and cut the
    progress heading and the table cell that hold a file name with '…'; both appear whole."""
    import shutil

    monkeypatch.delenv("COLUMNS", raising=False)
    model = tmp_path / ("camera_front_left_" + "v" * 80 + ".pth")
    shutil.copyfile(tiny_checkpoint, model)
    out = tmp_path / ("segmentation_" + "w" * 80 + ".onnx")
    r = runner.invoke(app, ["export-onnx", "--model", str(model), "-o", str(out), "--no-verify"])
    assert r.exit_code == 0, r.output
    assert f"export-onnx {model.name} " in r.output, r.output  # the progress heading, in the log
    assert any(line.startswith("│ file") and f" {out} │" in line for line in r.output.splitlines()), r.output
    assert "…" not in r.output


def test_a_heading_rule_in_a_log_is_a_line_not_a_page(monkeypatch, capsys) -> None:
    """A log is LOG_WIDTH wide so names stay whole, but a rule fills the width: the demo's step
    headings were 1,000 characters of '─' each in a CI log; at a terminal's width they still fill it."""
    from segpipe.cli.common import LOG_RULE_WIDTH, LOG_WIDTH, SafeConsole

    monkeypatch.delenv("COLUMNS", raising=False)
    log = SafeConsole(file=sys.stdout, force_terminal=False)
    assert log.width == LOG_WIDTH
    log.rule("1. train")
    assert [len(line) for line in capsys.readouterr().out.splitlines()] == [LOG_RULE_WIDTH]
    SafeConsole(file=sys.stdout, force_terminal=False, width=60).rule("1. train")
    line = capsys.readouterr().out.rstrip("\n")
    assert len(line) == 60 and " 1. train " in line


@pytest.mark.parametrize(
    ("env", "rank"),
    [
        ({}, 0),
        ({"RANK": "3"}, 0),  # RANK alone is not torch elastic
        ({"WORLD_SIZE": "4", "LOCAL_RANK": "1", "RANK": "3"}, 3),
        ({"TORCHELASTIC_RUN_ID": "x", "RANK": "2"}, 2),
        ({"TORCHELASTIC_RUN_ID": "x", "RANK": "two"}, 0),  # the error line still gets printed
    ],
)
def test_the_error_handler_and_training_read_one_elastic_rule(monkeypatch, env, rank) -> None:
    from segpipe.cli import common
    from segpipe.utils import under_elastic

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert common.process_rank() == rank
    assert under_elastic() == ("TORCHELASTIC_RUN_ID" in env or "LOCAL_RANK" in env)
