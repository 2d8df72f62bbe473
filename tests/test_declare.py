"""One declaration per option (issue 26): every flag comes from a ``flag()`` declaration beside the
options field it fills, the typer commands are generated from them by ``segpipe.cli.binder``, and a
flag means the same thing (same value kind) in every command that takes it."""

from __future__ import annotations

import dataclasses
import importlib
import re
import typing
from pathlib import Path

import pytest
from typer.testing import CliRunner

import segpipe
from segpipe.cli.app import COMMANDS, app
from segpipe.options.declare import Flag, declared, flag

CLI = Path(segpipe.__file__).parent / "cli"


def test_no_flag_is_declared_outside_the_binder() -> None:
    """``typer.Option(`` / ``typer.Argument(`` appear in segpipe/cli/binder.py only: a new flag is a
    ``flag()`` declaration on an options field, never a typer parameter written by hand."""
    offenders = []
    for path in sorted(CLI.glob("*.py")):
        if path.name == "binder.py":
            continue
        text = path.read_text(encoding="utf-8")
        for n, line in enumerate(text.splitlines(), 1):
            if re.search(r"\btyper\.(Option|Argument)\(|\b(Option|Argument)\(", line):
                offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert not offenders, "declare these with segpipe.options.declare.flag():\n" + "\n".join(offenders)


@pytest.mark.parametrize("name,target", COMMANDS)
def test_every_command_is_generated_from_declarations(name: str, target: str) -> None:
    module, func = target.split(":")
    cmd = getattr(importlib.import_module(module), func)
    assert callable(getattr(cmd, "body", None)), f"{name}: not made by segpipe.cli.binder.command"
    params = [p for p in cmd.__signature__.parameters if p != "ctx"]
    assert params, name


def test_declaration_is_a_dataclass_field_with_its_default() -> None:
    @dataclasses.dataclass(frozen=True)
    class Opts:
        epochs: int = flag("--epochs", default=30, help="Epochs.", metavar="N")
        names: tuple[str, ...] | None = flag(
            "--names", default=None, parse=lambda v: tuple(v.split(",")), cli_type=str
        )

    assert Opts().epochs == 30
    spec = declared(Opts)["epochs"]
    assert isinstance(spec, Flag) and spec.names == ("--epochs",) and not spec.is_required
    from segpipe.cli.binder import Flags, command

    seen = {}

    @command(Opts)
    def demo(flags: Flags) -> None:
        seen["opts"] = flags.build(Opts)
        seen["given"] = set(flags.given)

    import typer

    sub = typer.Typer()
    sub.command()(demo)
    sub.command("other")(lambda: None)  # two commands: typer keeps the name
    r = CliRunner().invoke(sub, ["demo", "--names", "a,b"])
    assert r.exit_code == 0, r.output
    assert seen["opts"] == Opts(epochs=30, names=("a", "b")) and seen["given"] == {"names"}


def test_compact_declaration_is_the_keyword_one_and_metavars_come_from_types() -> None:
    """``OPTIM.flag("--lr", 1e-3, "Learning rate.")`` declares what the keyword form does; the usual
    metavar comes from the field's type (N, NUM, FILE, NAME), a declared one wins."""
    from segpipe.cli.binder import signature_of
    from segpipe.options.declare import Panel

    optim = Panel("Optimisation")

    @dataclasses.dataclass(frozen=True)
    class Opts:
        out: Path = flag("--out", "-o", help="Where.", hidden="--output")  # no default: required
        lr: float = optim.flag("--lr", 1e-3, "Learning rate.")
        epochs: int = optim.flag("--epochs", 30, "Epochs.")
        arch: str = flag("--arch", "Unet", "Architecture.")
        loss: str = optim.flag("--loss", "ce", "Loss.", metavar="LOSS")
        amp: bool = flag("--amp", False, "Mixed precision.")

    specs = declared(Opts)
    assert specs["lr"] == Flag(("--lr",), "Learning rate.", "Optimisation", default=1e-3)
    assert specs["epochs"] == Flag(("--epochs",), default=30, help="Epochs.", panel="Optimisation")
    assert specs["out"].is_required and specs["out"].names == ("--out", "-o")
    assert specs["out"].hidden == ("--output",) and type(specs["lr"].panel) is str
    assert Opts(out=Path("x")).lr == 1e-3
    params, _ = signature_of(Opts)
    shown = {p.name: typing.get_args(p.annotation)[-1].metavar for p in params}
    assert shown == {"out": "FILE", "lr": "NUM", "epochs": "N", "arch": "NAME", "loss": "LOSS", "amp": None}
    assert declared(dataclasses.make_dataclass("O", [("v", str, flag("--v", "-1", "Offset."))]))["v"].default == "-1"
    with pytest.raises(TypeError, match="default given twice"):
        flag("--x", 1, default=2)
    with pytest.raises(TypeError, match="give the spellings"):
        flag("--x", 1, "help", "more")


def test_a_shared_flag_reads_the_same_value_kind_everywhere() -> None:
    """``--model`` is a FILE, ``--data-root`` a DIR, ``-o`` the file written, in every command."""
    kinds: dict[str, set[str]] = {}
    for _, target in COMMANDS:
        module, func = target.split(":")
        cmd = getattr(importlib.import_module(module), func)
        for p in cmd.__signature__.parameters.values():
            info = getattr(p.annotation, "__metadata__", [None])[-1]
            decls = getattr(info, "param_decls", None) or ()
            if not decls or type(info).__name__ != "OptionInfo":
                continue
            kinds.setdefault(decls[0], set()).add(str(info.metavar))
    for flag_name in ("--model", "--data-root", "--output", "--batch", "--colors", "--num-classes"):
        assert len(kinds.get(flag_name, set())) <= 1, (flag_name, kinds.get(flag_name))


@pytest.mark.parametrize(
    "args",
    [
        ["evaluate", "--batch-size", "2"],  # the one batch flag is --batch; the others are hidden
        ["evaluate", "--batch_size", "2"],
        ["quantize", "--model", "nope.onnx", "--min-agreement", "0.9"],  # INT8 threshold: hidden old name
        ["quantize", "nope.onnx", "--calib-method", "minmax"],  # the positional model still works
        ["export-onnx", "--model_in", "nope.pth", "--model_out", "x.onnx", "--batch-size", "1"],
        ["visualize", "-o", "out", "--batch-size", "2"],
    ],
)
def test_old_spellings_still_parse(args: list[str]) -> None:
    r = CliRunner().invoke(app, [*args, "--help"])
    assert r.exit_code == 0 and "No such option" not in r.output, r.output


def test_hidden_spellings_are_not_shown() -> None:
    evaluate = CliRunner().invoke(app, ["evaluate", "--help"], terminal_width=100).output
    assert "--batch " in evaluate and "--batch-size" not in evaluate and "--batch_size" not in evaluate
    quantize = CliRunner().invoke(app, ["quantize", "--help"], terminal_width=100).output
    assert "--int8-min-agreement" in quantize and "--min-agreement " not in quantize.replace("int8-min", "")
    assert "[required]" in quantize  # --calib-images


def test_adding_an_option_is_one_declaration(monkeypatch: pytest.MonkeyPatch) -> None:
    """ARCHITECTURE.md's example: quantize --seed is the one flag() on QuantizeOptions.seed."""
    import segpipe.export.quantize as q

    seen = {}

    def fake_quantize(opts, reporter):  # the stage itself is tested in test_quantize
        seen["seed"] = opts.seed
        raise q.ExportError("stop here")

    monkeypatch.setattr(q, "quantize", fake_quantize)
    help_text = CliRunner().invoke(app, ["quantize", "--help"], terminal_width=100).output
    assert "--seed" in help_text and "Seed of the held-out images" in help_text
    r = CliRunner().invoke(app, ["quantize", "m.onnx", "--calib-images", ".", "--seed", "3"])
    assert seen == {"seed": 3} and r.exit_code == 1 and "stop here" in r.output, r.output
    r = CliRunner().invoke(app, ["quantize", "m.onnx", "--calib-images", ".", "--seed", "-1"])
    assert r.exit_code == 1 and r.output.strip() == "error: --seed -1: must be within 0..4294967295"


def test_format_names_are_the_readers() -> None:
    """--format's names (options, help, the one check) are exactly the readers segpipe has."""
    from segpipe.data.formats import FORMATS
    from segpipe.errors import ConfigError
    from segpipe.options.flags import FORMAT, FORMAT_NAMES, check_format

    assert set(FORMAT_NAMES) == set(FORMATS)
    assert all(name in FORMAT.help for name in FORMATS)
    assert check_format("VOC") == "voc" and check_format("auto") == "auto"
    with pytest.raises(ConfigError, match="--format vocc: use auto or one of seed, voc"):
        check_format("vocc")


def test_an_empty_choice_lists_the_choices_once() -> None:
    """``--runtime ''`` is in every choice's name: the choices, without all of them again as "close"."""
    r = CliRunner().invoke(app, ["evaluate", "--model", "m.onnx", "--data-root", ".", "--runtime", ""])
    assert r.exit_code == 1, r.output
    assert r.output.strip() == "error: --runtime : use one of auto, pytorch, onnxruntime, openvino, tensorrt"
    r = CliRunner().invoke(app, ["evaluate", "--model", "m.onnx", "--data-root", ".", "--runtime", "onnx"])
    assert "close matches: onnxruntime" in r.output  # a part of a name still finds it
