"""What every command shares: the rich consoles, the reporter, the error handler and option aliases.

Each command module's body (made a typer command by :mod:`segpipe.cli.binder`) builds the stage's
options object, calls the core and renders the result; :func:`reported_errors`, the one error
handler, turns a :class:`SegpipeError` into one red line and its exit code; ``--debug`` (or
``SEGPIPE_DEBUG=1``) shows the full traceback instead.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console, ConsoleDimensions
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
from rich.text import Text

from segpipe.errors import SegpipeError, one_line
from segpipe.progress import Reporter, Task
from segpipe.schema import has_controls, printable
from segpipe.utils import process_rank

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


#: The width a console writes at to a pipe, a file or a CI log (rich would take 80 columns there and
#: cut table cells and progress lines, a model's file name with them): tables and bars take their
#: natural width up to this, plain lines are never wrapped (``soft_wrap``).
LOG_WIDTH = 1000
#: A heading rule's width there (it fills the line: 1000 characters of it in a log would not help).
LOG_RULE_WIDTH = 100


class SafeConsole(Console):
    """A rich Console that never writes a control character coming from text it was given: ESC
    sequences (window titles, screen clears), CR overwrites and bidi overrides are shown escaped.
    Strings are escaped before they are measured (tables stay aligned); every rendered segment is
    checked again (rich's own styling is added later, as control codes of its own).

    Not writing to a terminal (its stream is resolved at write time), it is :data:`LOG_WIDTH` wide,
    unless a width was given or ``COLUMNS`` is set."""

    @property
    def size(self) -> ConsoleDimensions:
        size = Console.size.fget(self)  # type: ignore[attr-defined]
        if self._width is None and "COLUMNS" not in self._environ and not self.is_terminal:
            return ConsoleDimensions(LOG_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]

    def rule(self, title: Any = "", **kwargs: Any) -> None:
        """A heading rule, as wide as a terminal's line; in a log :data:`LOG_RULE_WIDTH` (a rule
        fills the console's width)."""
        if self.width < LOG_WIDTH:
            return super().rule(title, **kwargs)
        from rich.rule import Rule

        self.print(Rule(title, **kwargs), width=LOG_RULE_WIDTH)

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


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one red error line and return the Exit to raise."""
    # escape: "segpipe[trt]"; printable: a name from a data folder holding a newline or ESC cannot
    # forge an output line or a terminal sequence
    err_console.print(f"[bold red]error:[/] {escape(printable(message))}", markup=True)
    return typer.Exit(code)


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(printable(message))}", markup=True)


@contextlib.contextmanager
def reported_errors(interrupted: str = "interrupted") -> Iterator[None]:
    """The one error handler of every command (the binder runs each command body inside it).

    A :class:`SegpipeError` becomes one line, ``error: message`` (its :attr:`~SegpipeError.heading`),
    and its :attr:`~SegpipeError.exit_code`; nothing is printed when it was
    :attr:`~SegpipeError.reported` already, or on ranks other than 0 for a
    :attr:`~SegpipeError.collective` one (other ranks prefix theirs with ``[rank N]``). Ctrl-C is
    ``interrupted`` and exit code 130. ``--debug``: the traceback instead.
    """
    try:
        yield
    except SegpipeError as e:
        if is_debug():
            raise
        rank = process_rank()
        if e.reported or (rank and e.collective):
            raise typer.Exit(e.exit_code) from None
        text = f"[rank {rank}] {one_line(e)}" if rank else one_line(e)
        if e.heading == "error":
            raise fail(text, e.exit_code) from None
        err_console.print(f"[bold yellow]{e.heading}:[/] {escape(text)}", markup=True)
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        if is_debug():
            raise
        raise (fail(interrupted, code=130) if not process_rank() else typer.Exit(130)) from None


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
        if not self.quiet:
            console.print(
                make_table(
                    title, [[_fmt(v) for v in row] for row in rows], columns, ("class", "name", "file")
                )
            )


def make_table(
    title: str,
    rows: Iterable[Sequence[Any]],
    columns: Sequence[str] | None = None,
    left: Collection[str] = (),
) -> Table:
    """A table titled on the left: with ``columns``, a header row (the ``left`` columns aligned left,
    the others right); without, two columns, the names in bold and their values. Cells that are not
    text are written with ``str``."""
    if columns is None:
        table = Table(show_header=False, title=title, title_justify="left")
        table.add_column(style="bold")
        table.add_column()
    else:
        table = Table(title=title, title_justify="left")
        for col in columns:
            table.add_column(col, justify="left" if col in left else "right")
    for row in rows:
        table.add_row(*(v if isinstance(v, (str, Text)) else str(v) for v in row))
    return table


def say(lead: str, style: str, text: str = "", out: Console | None = None) -> None:
    """One line that starts with a coloured word: ``wrote PATH (size)``, ``note: ...`` (``text`` is
    plain, its control characters shown escaped)."""
    (out or console).print(Text.assemble((lead, style), _unsurrogate(printable(text))))


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
    say("wrote", "green", f" {label}{path} ({amount})")
