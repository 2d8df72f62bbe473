"""What every command shares: the rich consoles, the reporter, the error handler and option aliases.

Each command module parses its flags, builds the stage's options object, calls the core inside
:func:`run_guarded` and renders the result. Errors of type :class:`SegpipeError` become one red
line and exit code 1; ``--debug`` (or ``SEGPIPE_DEBUG=1``) shows the full traceback instead.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.segment import Segment
from rich.table import Table

from segpipe.errors import SegpipeError
from segpipe.progress import Reporter, Task
from segpipe.schema import has_controls, printable

T = TypeVar("T")

# Consoles resolve sys.stdout / sys.stderr at write time, so typer's CliRunner captures them.
# Paths, class names and error texts come from users and files: nothing printed is read as rich
# markup (``[red]``) or emoji codes (``:fire:``) unless a call asks for markup with ``markup=True``,
# and then every value in it goes through ``escape`` (see :func:`fail`, :func:`print_written`).
# Tables, table titles and rules are plain text too; style them with ``rich.text.Text``.
# What files say (class names, file names, sidecar and metadata strings) reaches the terminal only
# with its control characters escaped (``\x1b``, ``\r``, ``\u202e``): SafeConsole does it once,
# for everything printed, tables and the error line included.


def _unsurrogate(text: str) -> str:
    """Bytes of a file name that are not UTF-8 (Python's surrogate escapes) written as ``\udcff``:
    printing them as they are would fail on a UTF-8 terminal."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if _SURROGATE.search(text) else text


_SURROGATE = re.compile("[\ud800-\udfff]")


class SafeConsole(Console):
    """A rich Console that never writes a control character coming from text it was given: ESC
    sequences (window titles, screen clears), CR overwrites and bidi overrides are shown escaped.
    Strings are escaped before they are measured (tables stay aligned); every rendered segment is
    checked again (rich's own styling is added later, as control codes of its own)."""

    def render_str(self, text: str, **kwargs: Any) -> Any:
        return super().render_str(_unsurrogate(printable(text, keep_newlines=True)), **kwargs)

    def render(self, renderable: Any, options: Any = None) -> Iterator[Segment]:
        for seg in super().render(renderable, options):
            if seg.control is None and seg.text and has_controls(seg.text.replace("\n", "")):
                yield Segment(_unsurrogate(printable(seg.text, keep_newlines=True)), seg.style)
            else:
                yield seg


console = SafeConsole(highlight=False, soft_wrap=True, markup=False, emoji=False)
err_console = SafeConsole(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)

_state = {"debug": bool(os.environ.get("SEGPIPE_DEBUG"))}


def set_debug(value: bool) -> None:
    """Called by the app callback for ``segpipe --debug ...``."""
    _state["debug"] = _state["debug"] or value


def is_debug() -> bool:
    return bool(_state["debug"])


def one_line(exc: BaseException) -> str:
    """The user-facing line of an error (errors re-raised by DataLoader workers carry a traceback)."""
    text = str(exc).strip()
    if "Original Traceback" in text:  # torch.utils.data re-raise: keep the original message
        lines = [ln for ln in text.splitlines() if ln.strip()]
        last = lines[-1] if lines else text
        text = last.split(": ", 1)[1] if ": " in last and last.split(": ", 1)[0].endswith("Error") else last
    return " ".join(text.split("\n")) or exc.__class__.__name__


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one red error line and return the Exit to raise."""
    # escape: "segpipe[trt]"; printable: a name from a data folder holding a newline or ESC cannot
    # forge an output line or a terminal sequence
    err_console.print(f"[bold red]error:[/] {escape(printable(message))}", markup=True)
    return typer.Exit(code)


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(printable(message))}", markup=True)


def run_guarded(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call the core; SegpipeError -> one red line and exit 1 (traceback with --debug)."""
    try:
        return fn(*args, **kwargs)
    except SegpipeError as e:
        if is_debug():
            raise
        raise fail(one_line(e)) from None
    except KeyboardInterrupt:
        raise fail("interrupted", code=130) from None


class _RichTask(Task):
    def __init__(self, progress: Progress, task_id: Any) -> None:
        self._progress = progress
        self._id = task_id

    def advance(self, n: int = 1, **fields: Any) -> None:
        text = "  ".join(f"{k} {_fmt(v)}" for k, v in fields.items())
        self._progress.update(self._id, advance=n, fields=text)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


class RichReporter(Reporter):
    """Draws the core's progress as rich progress bars, tables and coloured lines."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    @contextlib.contextmanager
    def task(self, description: str, total: int | None = None, transient: bool = False) -> Iterator[Task]:
        progress = Progress(
            SpinnerColumn(),
            # markup=False: descriptions and fields may hold paths and names (no markup, no emoji)
            TextColumn("{task.description}", style="progress.description", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[fields]}", markup=False),
            console=err_console,
            transient=transient,
            # a bar that vanishes anyway draws nothing in a log (rich prints a blank line per bar there)
            disable=self.quiet or (transient and not err_console.is_interactive),
        )
        with progress:
            task_id = progress.add_task(description, total=total, fields="")
            try:
                yield _RichTask(progress, task_id)
            except BaseException:
                # an error ends the task: erase its bar so the one-line error is not printed under a
                # half-finished spinner ("Checking dataset 0/40")
                progress.live.transient = True
                if not progress.disable and not err_console.is_interactive:
                    # in a log, rich's Progress.stop prints an empty line after an erased bar: a
                    # blank line before the error. Stop the display here and let stop skip it.
                    progress.live.stop()
                    progress.disable = True
                raise

    def info(self, message: str) -> None:
        if not self.quiet:
            console.print(printable(message))

    def warn(self, message: str) -> None:
        warn(message)

    def table(self, title: str, columns: list[str], rows: list[list[Any]]) -> None:
        if self.quiet:
            return
        table = Table(title=title, title_justify="left")
        for col in columns:
            table.add_column(col, justify="right" if col not in ("class", "name", "file") else "left")
        for row in rows:
            table.add_row(*(_fmt(v) for v in row))
        console.print(table)


def print_written(path: Path, what: str = "") -> None:
    """The one line every step prints for a file it wrote: what, where, how big."""
    from segpipe.units import human_bytes

    label = f"{what} " if what else ""
    if path.is_dir():  # a folder: its files and their total size, not the directory entry's 0 B
        files = [p for p in path.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        amount = f"{len(files)} file{'s' if len(files) != 1 else ''}, {human_bytes(size)}"
    else:
        amount = human_bytes(path.stat().st_size if path.is_file() else 0)
    console.print(f"[green]wrote[/] {escape(printable(f'{label}{path}'))} ({amount})", markup=True)


# ---- shared option aliases (one place, grouped in --help with rich_help_panel) -------------------
# Each alias carries the flag spellings, type and help; the default stays at the use site
# (``size: SizeOpt = None``). Help texts are written to be true for every command that uses them:
# where one command means something narrower, it keeps its own declaration.
MODEL_PANEL = "Model"
HARDWARE_PANEL = "Hardware"

ModelFileOpt = Annotated[
    Path,
    typer.Option(
        "--model",
        "--model_name",
        "-m",
        metavar="FILE",
        help="Model file: .pth, .onnx or .engine (the original --model_name means this file here; "
        "in train it names the run).",
        show_default=False,
        rich_help_panel=MODEL_PANEL,
    ),
]
SizeOpt = Annotated[
    tuple[int, int] | None,
    typer.Option(
        "--size",
        metavar="W H",
        help='Network input size as WIDTH HEIGHT (width first; 1280,640 1280x640 "(1280, 640)" work '
        "too), multiples of the output stride; default: the model's own.",
        show_default=False,
    ),
]
ReportOpt = Annotated[
    Path | None,
    typer.Option("--report", metavar="FILE", help="Write the figures as JSON here.", show_default=False),
]
BatchSizeOpt = Annotated[
    int, typer.Option("--batch-size", "--batch_size", metavar="N", help="Images per model call.")
]

# describe a bare state_dict (or an ONNX model without segpipe metadata); segpipe files describe themselves
NumClassesOpt = Annotated[
    int | None,
    typer.Option(
        "--num-classes",
        "--num_classes",
        metavar="N",
        help="Bare state_dict / ONNX without metadata: number of classes "
        "(otherwise checked against the model's own).",
        rich_help_panel=MODEL_PANEL,
        show_default=False,
    ),
]
ArchOpt = Annotated[
    str | None,
    typer.Option(
        "--arch",
        metavar="NAME",
        help="Bare state_dict: smp architecture (default Unet).",
        rich_help_panel=MODEL_PANEL,
        show_default=False,
    ),
]
EncoderOpt = Annotated[
    str | None,
    typer.Option(
        "--encoder",
        "--backend",
        metavar="NAME",
        help="Bare state_dict: smp encoder (default efficientnet-b0).",
        rich_help_panel=MODEL_PANEL,
        show_default=False,
    ),
]
ModeOpt = Annotated[
    str,
    typer.Option(
        "--mode",
        metavar="MODE",
        help="Bare state_dict / ONNX without metadata: seg, binary or multilabel.",
        rich_help_panel=MODEL_PANEL,
    ),
]
TrustCheckpointOpt = Annotated[
    bool,
    typer.Option(
        "--trust-checkpoint",
        help="Allow .pth files that need full unpickling (it can run code: trusted files only).",
        rich_help_panel=MODEL_PANEL,
    ),
]

# how to feed an ONNX model without segpipe metadata (a plain torch.onnx.export): never guessed
MeanOpt = Annotated[
    tuple[float, float, float] | None,
    typer.Option(
        "--mean",
        metavar="R G B",
        help="ONNX without segpipe metadata (or a bare state_dict): input = (pixel - mean) / std, "
        "in pixel units 0-255; ImageNet (smp, torchvision): --mean 123.675 116.28 103.53 "
        "--std 58.395 57.12 57.375; pixels as they are: --mean 0 0 0 --std 1 1 1.",
        rich_help_panel=MODEL_PANEL,
        show_default=False,
    ),
]
StdOpt = Annotated[
    tuple[float, float, float] | None,
    typer.Option(
        "--std",
        metavar="R G B",
        help="With --mean: the divisor, in pixel units 0-255.",
        rich_help_panel=MODEL_PANEL,
        show_default=False,
    ),
]
InputLayoutOpt = Annotated[
    str | None,
    typer.Option(
        "--input-layout",
        metavar="LAYOUT",
        help="ONNX without segpipe metadata whose input shape does not show it: nchw or nhwc.",
        rich_help_panel=MODEL_PANEL,
        show_default=False,
    ),
]

DeviceOpt = Annotated[
    str,
    typer.Option(
        "--device", metavar="DEVICE", help="auto, cpu, cuda or cuda:N.", rich_help_panel=HARDWARE_PANEL
    ),
]
RuntimeOpt = Annotated[
    str,
    typer.Option(
        "--runtime",
        metavar="NAME",
        help="Backend that runs the model: auto (the fastest available for the file on this device, "
        "said in one line), pytorch, onnxruntime, openvino or tensorrt.",
        rich_help_panel=HARDWARE_PANEL,
    ),
]
WorkersOpt = Annotated[
    int,
    typer.Option(
        "--workers",
        metavar="N",
        help="Image decoding threads (and writing, for commands that write pictures).",
        rich_help_panel=HARDWARE_PANEL,
    ),
]

# sliding window and test-time augmentation (visualize, evaluate, benchmark)
INFERENCE_PANEL = "Sliding window and TTA"
TileOpt = Annotated[
    tuple[int, int] | None,
    typer.Option(
        "--tile",
        metavar="W H",
        help="Sliding-window inference: cover each image with overlapping W x H windows (image "
        "pixels), each run at the network size, outputs averaged where they overlap; 0 0: windows "
        "of the network size.",
        show_default=False,
        rich_help_panel=INFERENCE_PANEL,
    ),
]
OverlapOpt = Annotated[
    float,
    typer.Option(
        "--overlap",
        metavar="NUM",
        help="Fraction of a window shared with its neighbour (with --tile).",
        rich_help_panel=INFERENCE_PANEL,
    ),
]
TtaOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--tta",
        metavar="SPEC",
        help="Test-time augmentation, averaged: flip (horizontal), scales=0.75,1,1.25 (models that "
        "take other sizes); repeat or join with + to combine.",
        show_default=False,
        rich_help_panel=INFERENCE_PANEL,
    ),
]


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()
