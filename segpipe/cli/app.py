"""The ``segpipe`` console entry point: one typer app, one module per command."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from segpipe import __version__
from segpipe.cli.common import set_debug

app = typer.Typer(
    name="segpipe",
    help="Semantic segmentation from labelled images to a TensorRT engine.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: (command name, "module:function") -- only commands that really work are registered here.
COMMANDS: list[tuple[str, str]] = [
    ("demo", "segpipe.cli.demo:demo_command"),
    ("train", "segpipe.cli.train:train_command"),
    ("export-onnx", "segpipe.cli.export_onnx:export_onnx_command"),
    ("info", "segpipe.cli.info:info_command"),
    ("benchmark", "segpipe.cli.benchmark:benchmark_command"),
    ("visualize", "segpipe.cli.visualize:visualize_command"),
    ("evaluate", "segpipe.cli.evaluate:evaluate_command"),
    ("build-trt", "segpipe.cli.build_trt:build_trt_command"),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"segpipe {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    """segpipe: train, visualize, export-onnx, build-trt."""
    set_debug(debug)


for _name, _target in COMMANDS:
    _module, _func = _target.split(":")
    app.command(_name)(getattr(importlib.import_module(_module), _func))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
