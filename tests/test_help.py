"""``--help`` as a person reads it: every command, at 80 and 100 columns (issue 19).

No value shown for a flag (``<bool>``), no Python type (``list[``), no ``{model}`` in a usage
line, no option name cut (``--opt-level,--builderOptimizati…``), no line wider than the terminal;
metavars as users write them; old spellings still parse though the name column shows one name.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from segpipe.cli.app import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
NAMES = [name for name, _ in COMMANDS]


def _flat(text: str) -> str:
    """Help text without the table borders, wrapped lines joined (help cells read on)."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def _help(args: list[str], columns: int) -> str:
    env = {**os.environ, "COLUMNS": str(columns), "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("FORCE_COLOR", None)
    r = subprocess.run(
        [sys.executable, "-m", "segpipe", *args, "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def _all_help(columns: int) -> dict[str, str]:
    """Every command's help in one process (a subprocess per command would cost seconds each)."""
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from segpipe.cli.app import app, COMMANDS\n"
        "for name, _ in [('', '')] + COMMANDS:\n"
        "    r = CliRunner().invoke(app, ([name] if name else []) + ['--help'], terminal_width=%d)\n"
        "    sys.stdout.write('@@@ ' + name + '\\n' + r.output)\n" % columns
    )
    env = {**os.environ, "COLUMNS": str(columns), "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("FORCE_COLOR", None)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    parts = r.stdout.split("@@@ ")[1:]
    return {p.split("\n", 1)[0]: p.split("\n", 1)[1] for p in parts}


@pytest.fixture(scope="module", params=[80, 100])
def helps(request: pytest.FixtureRequest) -> tuple[int, dict[str, str]]:
    return request.param, _all_help(request.param)


def test_every_command_help_fits_and_reads_plainly(helps: tuple[int, dict[str, str]]) -> None:
    columns, texts = helps
    assert set(texts) == {"", *NAMES}
    for name, text in texts.items():
        where = f"segpipe {name} --help at {columns} columns"
        assert "Usage:" in text, where
        assert "<bool>" not in text, where
        assert "list[" not in text and "<str>" not in text and "<path>" not in text, where
        assert "{" not in text, where  # usage: {model}, {paths}...
        for line in text.splitlines():
            assert len(line) <= columns, f"{where}: {line!r}"
            # an option name cut short: "--opt-level,--builderOptimizati…"
            assert not re.search(r"--[\w-]*…", line), f"{where}: {line!r}"
            assert not re.search(r"--[\w-]+,--", line), f"{where}: one name per option: {line!r}"


def test_root_help_flags_show_no_value() -> None:
    text = _help([], 80)
    line = next(ln for ln in text.splitlines() if "--version" in ln)
    assert "-V" in line and "<" not in line and "Print the version" in line


def test_metavars_as_users_write_them() -> None:
    texts = _all_help(100)

    def row(cmd: str, flag: str) -> str:
        return next(ln for ln in texts[cmd].splitlines() if re.match(rf"^│\s*\*?\s*{flag}\b(?![-_])", ln))

    assert "FILE" in row("evaluate", "--model")
    assert "DIR" in row("evaluate", "--data-root")
    assert "W H" in row("evaluate", "--size")
    assert "N" in row("train", "--epochs").split()
    assert "NAME" in row("train", "--model-name")
    assert "LIST" in row("train", "--class-names")
    assert "FILE" in row("export-onnx", "--output")
    assert "KIND" in row("export-onnx", "--output-kind")
    usage = next(ln for ln in texts["info"].splitlines() if "Usage:" in ln)
    assert usage.rstrip().endswith("FILE...")
    usage = next(ln for ln in texts["quantize"].splitlines() if "Usage:" in ln)
    assert usage.rstrip().endswith("MODEL")


def test_old_spellings_are_named_once_and_still_parse() -> None:
    texts = _all_help(100)
    # the name column shows one name; the other spelling is named in the help text
    assert "(also --data_root)" in _flat(texts["evaluate"])
    assert "--model_in" not in texts["export-onnx"]  # hidden alias
    assert "--model-out" not in texts["export-onnx"] and "--model_out" not in texts["export-onnx"]
    # --model_name: a file in visualize/evaluate, the run's name in train: each help says so
    assert "--model_name" in texts["visualize"] and "names the run" in _flat(texts["visualize"])
    assert "--model_name" in texts["train"] and "model file" in _flat(texts["train"])


def test_hidden_and_old_spellings_parse() -> None:
    """Old spellings reach the same parameter (parsed, not run: a missing file fails after parsing)."""
    from typer.testing import CliRunner

    from segpipe.cli.app import app

    r = CliRunner().invoke(app, ["export-onnx", "--model_in", "nope.pth", "--model_out", "x.onnx"])
    assert "No such option" not in r.output and r.exit_code == 1, r.output
    assert "nope.pth" in r.output
    r = CliRunner().invoke(app, ["build-trt", "--onnx", "nope.onnx", "--builderOptimizationLevel", "2"])
    assert "No such option" not in r.output and "nope.onnx" in r.output, r.output
