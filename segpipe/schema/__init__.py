"""One declared schema for everything segpipe reads from a file, and writes back.

ARCHITECTURE.md convention 14: a model's description (checkpoint ``model_info``, ONNX ``metadata_props``,
the engine sidecar's ``metadata``), the engine sidecar ``NAME.engine.json`` and option files
(``--config``, ``options.yaml``) pass one mechanism, pydantic v2, on the way in and on the way out.

How it works:

* :mod:`segpipe.schema.files` declares the file formats as pydantic models: every field has a type
  (strict: ``"4"`` is not a whole number, ``true`` is not a number), a range and a size bound
  (string lengths, list lengths; JSON text is refused above a byte limit before it is parsed).
  Readers call :func:`~segpipe.schema.files.read_model_info`,
  :func:`~segpipe.schema.files.read_metadata`, :func:`~segpipe.schema.files.read_sidecar_text`;
  writers call :func:`~segpipe.schema.files.dump_model_info` and
  :func:`~segpipe.schema.files.dump_sidecar`, so nothing is written that could not be read back.
* :mod:`segpipe.schema.options` validates the frozen options dataclasses (``segpipe.options``)
  field by field through a pydantic ``TypeAdapter`` built from each field's type hint (ranges are
  declared on the hint with :class:`Range`), and reads YAML option files with a loader that bounds
  what aliases can expand to (a 700-byte "billion laughs" file is one line, not gigabytes).
* Every failure is ONE :class:`~segpipe.errors.SegpipeError` line naming the file, the field and the
  value (shortened, control characters escaped), e.g.
  ``m.onnx: metadata num_classes 'four': expected a whole number``.

This module itself is light (no pydantic, no yaml): the text helpers here are used by the CLI
consoles, which must start without pydantic. pydantic is imported by the submodules, on first use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: C0 and C1 control characters (ESC, BEL, CR, ...), DEL, and the Unicode controls that reorder or
#: hide text (bidi overrides and isolates, line/paragraph separators, zero-width marks).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_CONTROL_KEEP_NEWLINE = re.compile(
    r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]"
)


def _escape_one(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def has_controls(text: str) -> bool:
    """True when ``text`` holds a control character a terminal could act on."""
    return _CONTROL.search(text) is not None


def printable(text: object, keep_newlines: bool = False) -> str:
    """``text`` with every control character written as an escape (``\\x1b``, ``\\r``, ``\\u202e``):
    what a file says is shown, never acted on by the terminal."""
    pattern = _CONTROL_KEEP_NEWLINE if keep_newlines else _CONTROL
    return pattern.sub(_escape_one, str(text))


def shown(value: Any, limit: int = 40) -> str:
    """A value as a message shows it: ``'four'``, ``[1, 2]``, ``1e+308``; long values cut with
    ``...``, control characters escaped, never more than about ``limit`` characters."""
    if isinstance(value, str):
        text = repr(value[: limit + 1])
    elif isinstance(value, (list, tuple, dict, set)):
        import reprlib

        r = reprlib.Repr()
        r.maxlist = r.maxtuple = r.maxdict = r.maxset = 6
        r.maxstring = r.maxother = limit
        r.maxlevel = 3
        text = r.repr(value)
    else:
        text = str(value)
    text = printable(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Range:
    """A declared bound on a number option or field: ``Annotated[int, Range(0, 2**32 - 1)]``.

    ``low``/``high`` are inclusive (``None``: unbounded); ``above``: strictly greater than ``low``,
    ``below``: strictly less than ``high`` (give ``why``: ``must be in [0, 1)``).
    The options checks (:mod:`segpipe.schema.options`) and the config reader enforce it with one
    line, ``must be within 0..4294967295`` / ``must be at least 1`` / ``must be above 0``.
    """

    low: float | None = None
    high: float | None = None
    above: bool = False
    below: bool = False
    #: The message when out of range, instead of ``must be within LOW..HIGH``.
    why: str | None = None

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is out of range (None: it is within)."""
        values = value if isinstance(value, (tuple, list)) else (value,)
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            if self.low is not None and (v <= self.low if self.above else v < self.low):
                return self.describe()
            if self.high is not None and (v >= self.high if self.below else v > self.high):
                return self.describe()
        return None

    def describe(self) -> str:
        if self.why:
            return self.why

        def num(x: float) -> str:
            return f"{x:g}" if isinstance(x, float) else str(x)

        if self.above and self.low is not None:
            text = f"must be above {num(self.low)}"
            return text + (f" and at most {num(self.high)}" if self.high is not None else "")
        if self.low is not None and self.high is not None:
            return f"must be within {num(self.low)}..{num(self.high)}"
        if self.low is not None:
            return f"must be at least {num(self.low)}"
        return f"must be at most {num(self.high)}"  # type: ignore[arg-type]


__all__ = ["Range", "has_controls", "printable", "shown"]
