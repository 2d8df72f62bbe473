"""The ``segpipe`` console entry point: one typer app, one module per command, imported lazily.

``segpipe --help`` and ``--version`` import no command module: the listing is drawn from
:data:`COMMANDS` (name, ``"module:function"``) and :data:`SUMMARIES` (one line each). Only the
command that runs (or whose ``--help`` is asked for) is imported, through :class:`LazyGroup` -- the
"lazily loading subcommands" recipe of the click documentation, on typer's group class. So
``segpipe --help`` never imports torch, and the commands that run ONNX / TensorRT models never
import it either (tests/test_startup.py checks both).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from segpipe import __version__
from segpipe.cli import started
from segpipe.cli.binder import Flags, command
from segpipe.cli.common import set_debug
from segpipe.cli.helpfmt import TidyHelpMixin
from segpipe.cli.sizes import SizeCommand
from segpipe.options.declare import flag

#: (command name, "module:function"), in listing order -- only commands that really work are registered here.
COMMANDS: list[tuple[str, str]] = [
    ("demo", "segpipe.cli.demo:demo_command"),
    ("train", "segpipe.cli.train:train_command"),
    ("export-onnx", "segpipe.cli.export_onnx:export_onnx_command"),
    ("quantize", "segpipe.cli.quantize:quantize_command"),
    ("info", "segpipe.cli.info:info_command"),
    ("benchmark", "segpipe.cli.benchmark:benchmark_command"),
    ("visualize", "segpipe.cli.visualize:visualize_command"),
    ("evaluate", "segpipe.cli.evaluate:evaluate_command"),
    ("data", "segpipe.cli.data:data_command"),
    ("build-trt", "segpipe.cli.build_trt:build_trt_command"),
    ("triton", "segpipe.cli.deploy:triton_command"),
    ("deepstream", "segpipe.cli.deploy:deepstream_command"),
    ("serve", "segpipe.cli.deploy:serve_command"),
]

#: The line ``segpipe --help`` shows for each command without importing it: the first paragraph of
#: the command function's docstring (tests/test_startup.py keeps the two equal).
SUMMARIES: dict[str, str] = {
    "demo": "Run the pipeline end to end on the bundled sample data.",
    "train": "Train a segmentation model on DATA_ROOT, any label format (see --format).",
    "export-onnx": "Export a checkpoint to a deployable, verified ONNX model "
    "(NHWC RGB 0-255 in, normalisation inside).",
    "info": "Show a model file's architecture, encoder, classes (names, colours), input, precision, I/O.",
    "benchmark": "Median latency with its spread, throughput and agreement with FP32 of models x backends, side by side.",
    "visualize": "Run a model over images and write colour masks at each image's own size, plus a legend.",
    "evaluate": "Score a model (.pth, .onnx or .engine) on a labelled data set: "
    "mIoU, per-class IoU, accuracy.",
    "data": "Show a data set's format, splits, classes (names, colours, pixel shares) and problems.",
    "build-trt": "Build a TensorRT engine from an ONNX model, verify it and write NAME.engine.json beside it.",
    "triton": "Write a Triton model repository (config.pbtxt checked with Triton's ModelConfig, labels, model).",
    "deepstream": "Write a DeepStream nvinfer config (segmentation), labels file and gst-launch pipeline for a model.",
    "serve": "Serve a model over HTTP and gRPC with the Triton (KServe v2) protocol, batching requests.",
    "quantize": "Quantize an FP32 ONNX model to INT8 (Q/DQ, for TensorRT 10/11) and check it against FP32.",
}


class _Summary(TyperCommand):
    """What ``segpipe --help`` lists for a command not imported yet: its name and summary."""


class LazyGroup(TidyHelpMixin, TyperGroup):
    """A typer group whose commands are imported only when resolved (run, or ``COMMAND --help``).

    The help listing and shell completion of command names see light :class:`_Summary` stand-ins;
    :meth:`resolve_command` swaps in the real typer command, built from the imported function.
    """

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._targets: dict[str, str] = {}
        for name, target in COMMANDS:
            self._targets[name] = target
            self.commands.setdefault(name, _Summary(name=name, help=SUMMARIES.get(name, "")))

    def load(self, name: str) -> TyperCommand:
        """Import command ``name`` and replace its stand-in with the real typer command."""
        cmd = self.commands[name]
        if isinstance(cmd, _Summary):
            module, func = self._targets[name].split(":")
            callback = getattr(importlib.import_module(module), func)
            sub = typer.Typer(rich_markup_mode="rich", pretty_exceptions_enable=False, add_completion=False)
            settings = {"help_option_names": ["-h", "--help"]}
            sub.command(name, cls=SizeCommand, context_settings=settings)(callback)
            cmd = typer.main.get_command(sub)
            self.commands[name] = cmd
        return cmd

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, cmd, rest = super().resolve_command(ctx, args)
        if name is not None and isinstance(cmd, _Summary):
            cmd = self.load(name)
        return name, cmd, rest

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Usage errors (a wrong flag, value or command, a missing option) as one line for every
        caller -- the console script and typer's CliRunner alike -- instead of click's box."""
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.TyperException as e:  # click's ClickException family (public since typer 0.28)
            code = _usage_error(e)
        except typer.Abort:
            code = 1
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="segpipe",
    cls=LazyGroup,
    help="Semantic segmentation from labelled images to a TensorRT engine.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version() -> None:
    typer.echo(f"segpipe {__version__}")
    raise typer.Exit()


@dataclass(frozen=True)
class RootFlags:
    """The flags before the command: ``segpipe --debug train ...``."""

    version: bool = flag("--version", "-V", False, "Print the version and exit.", action=_version)
    debug: bool = flag("--debug", False, "Show full tracebacks on errors.")


@app.callback()
@command(RootFlags)
def _root(flags: Flags) -> None:
    """segpipe: train, visualize, export-onnx, build-trt."""
    set_debug(flags.debug)
    started()  # the command is imported: Ctrl-C is the command's to handle from here


class StdoutFailed(BaseException):
    """Writing to standard output failed (a closed pipe, a full disk): raised past every
    ``except Exception`` of the commands, so that no command mistakes it for its own failure."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error)
        self.error = error


class _GuardedStdout:
    """``sys.stdout`` whose write errors raise :class:`StdoutFailed` (everything else delegated)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as e:
            raise StdoutFailed(e) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as e:
            raise StdoutFailed(e) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _stdout_failed(error: OSError) -> int:
    """Stop writing to the broken stdout; one line on stderr unless the reader just closed the pipe
    (``segpipe info m.onnx | head -1``: quiet). Returns the exit code, 1."""
    import errno
    import os

    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno())  # the interpreter's last flush goes nowhere
    sys.stdout = sys.__stdout__
    if error.errno != errno.EPIPE:
        with contextlib.suppress(OSError):
            sys.stderr.write(f"error: cannot write to standard output: {error.strerror or error}\n")
            sys.stderr.flush()
    return 1


def main() -> None:
    """Console-script entry point."""
    if sys.stdout is not None and not isinstance(sys.stdout, _GuardedStdout):
        sys.stdout = _GuardedStdout(sys.stdout)
    try:
        try:
            code = app(standalone_mode=False)  # usage errors: one line (LazyGroup.main)
        finally:
            if sys.stdout is not None:
                sys.stdout.flush()  # buffered output to a full disk fails here
    except StdoutFailed as e:
        raise SystemExit(_stdout_failed(e.error)) from None
    raise SystemExit(code if isinstance(code, int) else 0)


def _usage_error(e: Any) -> int:
    """A wrong flag, value or command as one line on stderr (click draws a box and a usage block):
    ``error: Invalid value for '--epochs': 'x' is not a valid integer (segpipe train -h for help)``."""
    from segpipe.cli.common import fail

    ctx = getattr(e, "ctx", None)
    where = ctx.command_path if ctx is not None else "segpipe"
    code = int(getattr(e, "exit_code", 2))
    message = " ".join(e.format_message().split())
    if message:  # empty: no arguments at all, and click has printed the help already
        fail(f"{message} ({where} -h for help)", code)
    return code


if __name__ == "__main__":
    main()
