"""The errors segpipe raises for bad input.

Every :class:`SegpipeError` is meant to be shown to a user as one line that names the file and the
value at fault; the CLI prints it in red and exits with code 1 (``--debug`` shows the traceback).
Anything that is not a ``SegpipeError`` is a bug and is shown with its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SegpipeError(Exception):
    """Base class: a user-facing error whose message is one line.

    The command line's one error handler (:func:`segpipe.cli.common.reported_errors`) prints it as
    ``HEADING: message`` and exits with :attr:`exit_code`; it prints nothing when :attr:`reported`
    (the line was printed already, e.g. by a launched process), nor on the ranks other than 0 of a
    distributed run when :attr:`collective` (rank 0 reports it for all).
    """

    #: The process exit code the command line ends with.
    exit_code: int = 1
    #: The one line was printed already: exit quietly.
    reported: bool = False
    #: Every rank of a distributed run raises it: only rank 0 prints it.
    collective: bool = False
    #: The word before the message (``error``; a stopped run says ``stopped``).
    heading: str = "error"


class DataError(SegpipeError):
    """The dataset on disk is missing, malformed or inconsistent."""


class ConfigError(SegpipeError):
    """An option, a config file or a class-map file is invalid."""


class CheckpointError(SegpipeError):
    """A checkpoint or model file is missing, corrupt or does not fit the options."""


class DependencyError(SegpipeError):
    """An optional dependency (tensorrt, cuda-python, modelopt...) is not installed."""


class ExportError(SegpipeError):
    """Exporting or verifying a model failed."""


def close_matches(value: str, choices: Iterable[str], n: int = 5) -> str:
    """A short ``did you mean`` suffix listing the choices closest to ``value`` (may be empty)."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    matches = difflib.get_close_matches(value.lower(), list(lowered), n=n, cutoff=0.5)
    if not matches and value.strip():  # an empty value is in every name: no match at all
        matches = [c for c in lowered if value.lower() in c][:n]
    if not matches:
        return ""
    return "; close matches: " + ", ".join(lowered[m] for m in matches)


def shorten(text: object, limit: int = 200) -> str:
    """``text`` on one line, cut at a word boundary to about ``limit`` characters.

    What was cut is counted, so a shortened message never looks whole: ``"... (+42 characters)"``.
    Every message segpipe shortens (third-party error texts, metadata values) goes through here.
    """
    flat = " ".join(str(text).split())
    if len(flat) <= limit:
        return flat
    cut = flat.rfind(" ", 0, limit + 1)
    if cut < limit // 2:  # one long token (a path, a tensor name): cut inside it rather than lose it all
        cut = limit
    head = flat[:cut].rstrip(" ,;:([{")
    return f"{head} ... (+{len(flat) - len(head)} characters)"


def first_line(exc: BaseException, limit: int = 200, typed: bool = True) -> str:
    """The first line of a (third-party) exception's message, shortened with :func:`shorten`:
    ``Type: message`` (``typed=False``: the message only; an empty one is the type's name)."""
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    if not typed:
        return shorten(lines[0].strip() if lines else type(exc).__name__, limit)
    return shorten(f"{type(exc).__name__}: {lines[0] if lines else 'no message'}", limit)


def one_line(exc: BaseException) -> str:
    """The line a user sees for a :class:`SegpipeError`: its whole message on one line, a raw line
    break in it shown escaped (``\\n``: a file name holding one is shown as it is, never as two lines
    or a space); errors re-raised by DataLoader workers carry a traceback: their original error's line."""
    text = str(exc).strip()
    if "Original Traceback" in text:  # torch.utils.data re-raise: keep the original message
        lines = [ln for ln in text.splitlines() if ln.strip()]
        last = lines[-1] if lines else text
        text = last.split(": ", 1)[1] if ": " in last and last.split(": ", 1)[0].endswith("Error") else last
    return text.replace("\n", "\\n") or exc.__class__.__name__


def some(items: Iterable[object], n: int = 3) -> str:
    """The first ``n`` items, comma-separated, and how many more there are: ``a, b, c and 7 more``."""
    items = [str(i) for i in items]
    head = ", ".join(items[:n])
    return f"{head} and {len(items) - n} more" if len(items) > n else head
