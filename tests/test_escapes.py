"""Control characters from files (class names, file names, metadata and sidecar strings) never reach
the terminal raw: the schema refuses them in model descriptions and sidecars, and every console
(``segpipe.cli.common.SafeConsole``) escapes whatever else it prints. Checked on the real stdout and
stderr of a ``segpipe`` child process."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from file_fixtures import GOOD, good_sidecar, write_engine, write_onnx
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ("\x1b]0;pwned\x07", "\x1b[2J", "\r", "\x9b31m", "\u202e")
#: Raw bytes a terminal acts on: C0 controls but newline, DEL and the C1 controls.
RAW_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def segpipe(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "dumb", "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "segpipe", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        errors="surrogateescape",
    )


def assert_clean(res: subprocess.CompletedProcess[str]) -> str:
    out = res.stdout + res.stderr
    found = RAW_CONTROL.findall(out)
    assert not found, f"raw control characters {found!r} in output:\n{out!r}"
    return out


@pytest.mark.parametrize("bad", HOSTILE)
def test_class_names_with_controls_are_refused_and_the_error_is_escaped(tmp_path: Path, bad: str) -> None:
    names = ("bg", f"a{bad}", "b")
    model = write_onnx(tmp_path / "m.onnx", {**GOOD.to_metadata(), "segpipe.class_names": _json(names)})
    res = segpipe("info", model)
    out = assert_clean(res)
    assert res.returncode == 1 and "class_names[1]" in out and "control characters" in out
    assert len([ln for ln in out.splitlines() if ln.strip()]) == 1


def test_foreign_metadata_and_a_file_name_with_esc_print_escaped(tmp_path: Path) -> None:
    name = "m\x1b]0;pwned\x07\r.onnx"
    props = {**GOOD.to_metadata(), "author\x1b[2J": "me\x1b]0;pwned\x07", "note": "a\rb\u202ec"}
    model = write_onnx(tmp_path / name, props)
    res = segpipe("info", model)
    out = assert_clean(res)
    assert res.returncode == 0, out
    assert "\\x1b]0;pwned\\x07" in out and "\\x1b[2J" in out and "\\u202e" in out


def test_a_sidecar_with_esc_strings_is_refused_escaped(tmp_path: Path) -> None:
    engine = write_engine(tmp_path, {**good_sidecar(), "gpu_name": "H200\x1b]0;pwned\x07"})
    res = segpipe("info", engine)
    out = assert_clean(res)
    assert res.returncode == 1 and "gpu_name 'H200\\x1b]0;pwned\\x07': control characters" in out


def test_visualize_with_esc_in_image_names_prints_them_escaped(tmp_path: Path) -> None:
    model = write_onnx(tmp_path / "m.onnx", GOOD.to_metadata())
    images = tmp_path / "pics"
    images.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(images / "cat\x1b[2J\r.png")
    res = segpipe(
        "visualize", "-i", images, "-m", model, "-o", tmp_path / "out\x1b]0;pwned\x07", "--device", "cpu"
    )
    out = assert_clean(res)
    assert res.returncode == 0, out
    assert "out\\x1b]0;pwned\\x07" in out  # the folder it wrote to, named escaped


def test_palette_names_with_controls_are_refused(tmp_path: Path) -> None:
    from segpipe.errors import ConfigError
    from segpipe.palette import load_palette

    csv = tmp_path / "colors.csv"
    csv.write_text("id,name,r,g,b\n0,bg,0,0,0\n1,car\x1b]0;pwned\x07,1,2,3\n")
    with pytest.raises(ConfigError, match=r"line 3: class name 'car\\x1b\]0;pwned\\x07' holds control"):
        load_palette(csv)


def test_safe_console_escapes_strings_tables_and_text() -> None:
    from rich.table import Table
    from rich.text import Text

    from segpipe.cli.common import SafeConsole

    buf = io.StringIO()
    con = SafeConsole(file=buf, width=120, highlight=False, markup=False, emoji=False)
    con.print("title \x1b]0;pwned\x07 \r done")
    table = Table("name\x1b[2J", "value")
    table.add_row("a\x1b[31mred", Text("b\x1b]0;x\x07", style="bold"))
    con.print(table)
    out = buf.getvalue()
    assert not RAW_CONTROL.findall(out), repr(out)
    assert "\\x1b]0;pwned\\x07" in out and "\\x1b[2J" in out and "\\x1b[31mred" in out


def _json(value: object) -> str:
    import json

    return json.dumps(value)
