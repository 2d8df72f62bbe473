"""The thin typer command line over the segpipe library (one module per command)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType


def _interrupted_while_starting(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C while the command line is still importing: one line, exit 130, no traceback."""
    try:
        os.write(2, b"segpipe: interrupted while starting; nothing was done\n")
    except OSError:
        pass
    raise SystemExit(130)


def started() -> None:
    """The command is about to run: Ctrl-C raises KeyboardInterrupt again (each command says what
    an interruption left behind)."""
    if signal.getsignal(signal.SIGINT) is _interrupted_while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _as_program() -> bool:
    """Imported by the ``segpipe`` console script or ``python -m segpipe`` (not as a library)."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    return argv0.name == "segpipe" or (argv0.name == "__main__.py" and argv0.parent.name == "segpipe")


if (
    _as_program()
    and threading.current_thread() is threading.main_thread()
    and signal.getsignal(signal.SIGINT) is signal.default_int_handler
):
    signal.signal(signal.SIGINT, _interrupted_while_starting)
