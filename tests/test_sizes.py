"""Sizes on the command line: ``W H``, ``W,H``, ``WxH``, ``"(W, H)"`` and ``--size=W,H``, for every
option that takes a size, in every command; ``W H`` in ``--help``; one-line errors naming the value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from segpipe.cli.app import app
from segpipe.units import normalize_size_args, parse_size

runner = CliRunner()

#: How users write 1280 x 640 (the tokens after the flag, as a shell passes them).
SPELLINGS = [
    ["1280", "640"],
    ["1280,640"],
    ["1280x640"],
    ["1280X640"],
    ["(1280, 640)"],  # the original tool's documented form, quoted
    ["(1280,640)"],
    ["1280,", "640"],  # "--size 1280, 640"
    ["(1280,", "640)"],
    ["[1280, 640]"],
]


@pytest.mark.parametrize("tokens", SPELLINGS, ids=" ".join)
def test_every_spelling_becomes_w_h(tokens: list[str]) -> None:
    args = ["-i", "x", "--size", *tokens, "--batch-size", "2"]
    assert normalize_size_args(args, ["--size"]) == ["-i", "x", "--size", "1280", "640", "--batch-size", "2"]


@pytest.mark.parametrize("joined", ["--size=1280,640", "--size=1280x640", "--size=(1280, 640)"])
def test_equals_form(joined: str) -> None:
    assert normalize_size_args([joined, "-q"], ["--size"]) == ["--size", "1280", "640", "-q"]
    assert normalize_size_args(["--size=1280", "640"], ["--size"]) == ["--size", "1280", "640"]


def test_only_size_flags_and_nothing_after_double_dash() -> None:
    args = ["--batch", "1,2", "--size", "64x32", "--", "--size", "1,2"]
    assert normalize_size_args(args, ["--size"]) == [
        "--batch",
        "1,2",
        "--size",
        "64",
        "32",
        "--",
        "--size",
        "1,2",
    ]


@pytest.mark.parametrize("text", ["1280", "1280,", "1280x", "a,b", "1280 640 3", "1280.5,640", "-1,640", ""])
def test_not_a_size(text: str) -> None:
    assert parse_size(text) is None


@pytest.mark.parametrize(
    ("tokens", "shown"),
    [
        (["12x"], "'12x'"),
        (["(1280; 640)"], "'(1280; 640)'"),
        (["1280", "--workers"], "'1280 --workers'"),
        ([], "needs a value"),
    ],
)
def test_bad_size_is_one_line_naming_the_value(tokens: list[str], shown: str, tmp_path: Path) -> None:
    r = runner.invoke(
        app, ["visualize", "-i", str(tmp_path), "-m", str(tmp_path / "m.onnx"), "--size", *tokens]
    )
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1, r.output
    assert lines[0].startswith("error: --size") and shown in lines[0], lines[0]
    assert "W,H" in lines[0] and "Traceback" not in r.output


class _Stop(Exception):
    """Raised by the stand-in core function: the command line parsed into these options."""

    def __init__(self, opts: Any) -> None:
        super().__init__("stopped")
        self.opts = opts


def _stop(opts: Any, *args: Any, **kwargs: Any) -> None:
    raise _Stop(opts)


def _parsed(args: list[str], monkeypatch: pytest.MonkeyPatch, core: tuple[str, str]) -> Any:
    """The options object a command built from ``args`` (its core function replaced)."""
    import importlib

    monkeypatch.setattr(importlib.import_module(core[0]), core[1], _stop)
    r = runner.invoke(app, args)
    assert isinstance(r.exception, _Stop), r.output
    return r.exception.opts


@pytest.fixture()
def files(tmp_path: Path, index_dataset: Path) -> dict[str, str]:
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"not read: the core is replaced")
    pth = tmp_path / "m.pth"
    pth.write_bytes(b"not read")
    return {
        "data": str(index_dataset),
        "images": str(index_dataset / "images"),
        "onnx": str(onnx),
        "pth": str(pth),
    }


@pytest.mark.parametrize(
    "tokens", [["96", "64"], ["96,64"], ["96x64"], ["(96, 64)"], ["--size=96,64"]], ids=" ".join
)
def test_each_command_takes_each_spelling(
    tokens: list[str], files: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = tokens if tokens[0].startswith("--") else ["--size", *tokens]
    tile = [t.replace("--size", "--tile") for t in size]
    image_size = [t.replace("--size", "--image-size") for t in size]
    out = str(tmp_path / "out")
    cases = [
        (["train", "--data-root", files["data"], "--num-classes", "3", "--output-dir", out, *size],
         ("segpipe.training", "train"), {"size": (96, 64)}),
        (["visualize", "-i", files["images"], "-m", files["onnx"], "-o", out, *size, *tile],
         ("segpipe.visualize", "visualize"), {"size": (96, 64), "tile": (96, 64)}),
        (["evaluate", "--data-root", files["data"], "-m", files["onnx"], *size, *tile],
         ("segpipe.evaluate", "evaluate"), {"size": (96, 64), "tile": (96, 64)}),
        (["benchmark", "-m", files["onnx"], *size, *tile, *image_size],
         ("segpipe.benchmark", "benchmark"), {"size": (96, 64), "tile": (96, 64), "image_size": (96, 64)}),
        (["export-onnx", "--model", files["pth"], "--model-out", str(tmp_path / "x.onnx"), *size],
         ("segpipe.export.onnx", "export_onnx"), {"size": (96, 64)}),
    ]  # fmt: skip
    for args, core, expected in cases:
        opts = _parsed(args, monkeypatch, core)
        for field, value in expected.items():
            got = getattr(opts, field, None)
            if got is None and hasattr(opts, "inference"):  # tile may live in a nested options object
                got = getattr(opts.inference, field, None)
            assert tuple(got) == value, f"{args[0]} {' '.join(tokens)}: {field} = {got}"


def test_help_shows_w_h_for_every_size_option() -> None:
    for command, flags in [
        ("train", ["--size"]),
        ("visualize", ["--size", "--tile"]),
        ("evaluate", ["--size", "--tile"]),
        ("benchmark", ["--size", "--tile", "--image-size"]),
        ("export-onnx", ["--size"]),
    ]:
        out = runner.invoke(app, [command, "--help"], terminal_width=200).output
        for flag in flags:
            line = next((ln for ln in out.splitlines() if f" {flag} " in ln), "")
            assert " W H " in line, f"segpipe {command} --help: {flag} line is {line!r}"
            assert "int,int" not in line


def test_every_two_integer_option_of_every_command_is_a_size() -> None:
    """A size option added later (any ``tuple[int, int]``) is covered without registering it."""
    import typer.main

    from segpipe.cli.app import COMMANDS
    from segpipe.cli.sizes import SizeCommand, is_size_option

    group = typer.main.get_command(app)
    found = []
    for name, _ in COMMANDS:
        command = group.load(name)
        assert isinstance(command, SizeCommand), name
        for param in command.params:
            if getattr(param, "nargs", 1) == 2:
                assert is_size_option(param) and param.metavar == "W H", f"{name} {param.opts}"
                found.append(f"{name} {param.opts[0]}")
    assert {"train --size", "visualize --tile", "benchmark --image-size", "export-onnx --size"} <= set(found)
