"""How the core reports progress without printing.

The core never prints: it calls a :class:`Reporter`. The default one is silent; the CLI passes one
that draws rich progress bars and tables (``segpipe.cli.common.RichReporter``). Tests can pass a
recording reporter.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


class Task:
    """A handle on one progress bar."""

    def advance(self, n: int = 1, **fields: Any) -> None:
        """Advance by ``n`` steps; ``fields`` (e.g. ``loss=0.3``) are shown beside the bar."""


class Reporter:
    """Silent reporter; subclass and override what you want to see."""

    @contextlib.contextmanager
    def task(self, description: str, total: int | None = None, transient: bool = False) -> Iterator[Task]:
        """A progress bar for ``total`` steps (``None``: unknown). ``transient``: the bar disappears
        when the task ends (a summary line printed after it takes its place)."""
        yield Task()

    def info(self, message: str) -> None:
        """A plain informational line."""

    def warn(self, message: str) -> None:
        """A one-line warning."""

    def table(self, title: str, columns: list[str], rows: list[list[Any]]) -> None:
        """A small table (e.g. the per-class IoU at the end of training)."""


class RecordingReporter(Reporter):
    """Keeps every message, warning and table; handy in tests."""

    def __init__(self) -> None:
        self.infos: list[str] = []
        self.warnings: list[str] = []
        self.tables: list[tuple[str, list[str], list[list[Any]]]] = []

    def info(self, message: str) -> None:
        self.infos.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def table(self, title: str, columns: list[str], rows: list[list[Any]]) -> None:
        self.tables.append((title, columns, rows))


class SaysOnce(Reporter):
    """Passes everything to ``reporter``, but an info line starting with ``prefix`` only the first
    time (a note that would repeat for every model of one run)."""

    def __init__(self, reporter: Reporter, prefix: str) -> None:
        self._reporter, self._prefix, self._said = reporter, prefix, False

    def info(self, message: str) -> None:
        if message.startswith(self._prefix):
            if self._said:
                return
            self._said = True
        self._reporter.info(message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reporter, name)

    def task(self, *args: Any, **kwargs: Any) -> Any:
        return self._reporter.task(*args, **kwargs)

    def warn(self, message: str) -> None:
        self._reporter.warn(message)
