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
        "    r = CliRunner().invoke(app, ([name] if name else []) + ['--help'], terminal_width=WIDTH)\n"
        "    sys.stdout.write('@@@ ' + name + '\\n' + r.output)\n".replace("WIDTH", str(columns))
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
    assert usage.rstrip().endswith(("FILE...", "[FILE]..."))  # or --model FILE
    usage = next(ln for ln in texts["quantize"].splitlines() if "Usage:" in ln)
    assert usage.rstrip().endswith(("MODEL", "[MODEL]"))  # the positional model (or --model FILE)


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


def test_sizes_shapes_and_bytes_read_one_way() -> None:
    from segpipe.units import human_bytes, shape_text, size_text, speed_text

    assert size_text((512, 384)) == "512x384 (W x H)"
    assert shape_text((1, 384, 512, 3), "NHWC") == "1x384x512x3 NHWC"
    assert shape_text((1, 384, 512), "NCHW") == "1x384x512"  # a layout that does not fit is left out
    assert [human_bytes(n) for n in (0, 999, 1234, 8_310_000, 52e6)] == [
        "0 B",
        "999 B",
        "1.23 kB",
        "8.31 MB",
        "52 MB",
    ]
    assert speed_text(38.9, 45.6) == "1.17x slower" and speed_text(45.6, 38.9) == "1.17x faster"


def test_benchmark_row_says_width_then_height() -> None:
    from segpipe.benchmark import COLUMNS, ModelBenchmark

    times = dict.fromkeys(("mean_ms", "std_ms", "p50_ms", "p90_ms", "p99_ms", "min_ms", "throughput"), 1.0)
    row = ModelBenchmark(
        model="m.onnx",
        backend="onnxruntime",
        precision="fp32",
        output_kind="logits",
        size=(512, 384),
        batch=1,
        runs=2,
        peak_memory_mb=None,
        load_seconds=0.1,
        **times,
    ).row()
    assert "1 x 512x384 fp32" in row and "W x H" in COLUMNS[2]


def test_no_blank_line_before_an_error_after_a_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    from segpipe.cli.common import RichReporter, fail

    with pytest.raises(ValueError), RichReporter().task("Checking dataset", total=2) as task:
        task.advance()
        raise ValueError("bad mask")
    fail("cannot read mask m.png")
    err = capsys.readouterr().err
    assert "error: cannot read mask m.png" in err
    assert "\n\n" not in err and not err.startswith("\n"), repr(err)


def test_info_on_a_video_says_it_is_a_video(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from segpipe.cli.app import app

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    r = CliRunner().invoke(app, ["info", str(clip)])
    assert r.exit_code == 1
    assert "is a video, not a model file" in r.output and "close matches" not in r.output


def test_train_help_reads_as_a_table_of_contents() -> None:
    text = _all_help(100)["train"]
    panels = re.findall(r"╭─ (.+?) ─", text)
    assert panels == [
        "Options",
        "Data",
        "Model",
        "Augmentation",
        "Optimisation",
        "Recipe (class weights, EMA, warm-up)",
        "Run",
        "Logging",
        "Several GPUs / processes",
        "Speed (CUDA)",
    ]


def test_per_class_table_counts_the_validation_pixels_its_iou_was_measured_on() -> None:
    from types import SimpleNamespace

    from segpipe.progress import RecordingReporter
    from segpipe.training.outputs import table_per_class

    rep = RecordingReporter()
    trainer = SimpleNamespace(
        history=[{"epoch": 1, "iou": [0.5, 0.7]}, {"epoch": 2, "iou": [0.6, 0.8]}],
        best_epoch=2,
        reporter=rep,
        info=SimpleNamespace(class_names=("road", "car")),
        stats=SimpleNamespace(class_pixels=[9_000_000, 1_000_000]),  # the whole data set: not shown
    )
    table_per_class(trainer, SimpleNamespace(class_pixels=[1200, 340]))
    (title, columns, rows) = rep.tables[0]
    assert "best epoch (2)" in title and columns == ["class", "IoU", "validation pixels"]
    assert rows == [["road", 0.6, 1200], ["car", 0.8, 340]]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["train", "--epochs", "x"], "Invalid value for '--epochs'"),
        (["visualize"], "Missing option '--model'"),
        (["trian"], "Did you mean 'train'"),
    ],
)
def test_usage_errors_are_one_line_on_stderr(args: list[str], expected: str) -> None:
    """Wrong flags, values and commands: one ``error:`` line naming the way to help, exit 2 (click
    draws a box and a usage block instead)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "80"}
    r = subprocess.run(
        [sys.executable, "-c", "from segpipe.cli.app import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and r.stdout == "", (r.stdout, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert "-h for help" in lines[0] and "╭" not in r.stderr


def test_no_timing_in_help(helps: tuple[int, dict[str, str]]) -> None:
    """A duration measured on one machine is not a promise ('the demo takes 81 s' took 374 s on a
    loaded one): help texts carry none; the README gives figures with their machine and load."""
    _, texts = helps
    timing = re.compile(r"\b\d+(\.\d+)?\s?(s|ms|sec|seconds?|min|minutes?|hours?)\b")
    for name, text in texts.items():
        found = timing.search(_flat(text))
        assert found is None, f"segpipe {name} --help: {found.group(0) if found else ''}"
