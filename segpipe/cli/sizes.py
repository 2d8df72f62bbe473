"""Sizes on the command line: ``W H`` (as ``--help`` shows it), ``W,H``, ``WxH`` and ``"(W, H)"``.

The original tool documented ``--size (1280, 1344)`` (quoted in a shell: ``--size "(1280, 1344)"``);
click options take a fixed number of tokens, so every command's arguments pass through
:func:`normalize_size_args` first (:class:`SizeCommand`, the class :mod:`segpipe.cli.app` builds
each command with), which rewrites any spelling of a size option into the two tokens ``W H``.
A size option is any option declared ``tuple[int, int]`` (two integers): ``--size``, ``--tile``,
``--image-size``, ... -- so a new one is covered without registering it here.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable
from typing import Any

import typer
from typer.core import TyperCommand, TyperOption

from segpipe.cli.common import fail
from segpipe.cli.helpfmt import TidyHelpMixin

#: One size: two non-negative integers, width first, separated by blanks, ``,`` or ``x``; optionally
#: in parentheses or brackets (``(1280, 1344)``, ``[1280, 1344]``).
_SIZE = re.compile(r"\s*[(\[]?\s*(\d+)\s*(?:[,xX×]\s*|\s+)(\d+)\s*[)\]]?\s*")
SPELLINGS = 'W H, W,H, WxH or "(W, H)"'


def parse_size(text: str) -> tuple[int, int] | None:
    """``(W, H)`` from any accepted spelling, or None when ``text`` is not one."""
    m = _SIZE.fullmatch(text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def is_size_option(param: Any) -> bool:
    """True for an option declared ``tuple[int, int]`` (two integers)."""
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    return (
        isinstance(param, TyperOption)
        and param.nargs == 2
        and typing.get_origin(annotation) is tuple
        and typing.get_args(annotation) == (int, int)
    )


def normalize_size_args(args: list[str], flags: Iterable[str]) -> list[str]:
    """``args`` with each size option's value, in any accepted spelling, as the two tokens ``W H``.

    ``--size 1280 640``, ``--size 1280,640``, ``--size=1280x640``, ``--size "(1280, 640)"`` and
    ``--size 1280, 640`` all become ``--size 1280 640``. A value that is none of these raises a
    one-line error naming the option and the value. Tokens after ``--`` are left alone.
    """
    flags = set(flags)
    out: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            out.extend(args[i:])
            break
        if not isinstance(token, str):  # CliRunner callers may pass numbers: click takes them as they are
            out.append(token)
            i += 1
            continue
        flag, eq, inline = token.partition("=") if token.startswith("--") else (token, "", "")
        if flag not in flags:
            out.append(token)
            i += 1
            continue
        values = ([inline] if eq else []) + [str(v) for v in args[i + 1 :]]
        size, used = None, 0
        for n in (1, 2):  # "1280,640" in one token, or "1280" "640" / "1280," "640" / "(1280," "640)"
            if len(values) >= n and not any(v.startswith("-") and v != "-" for v in values[:n]):
                size = parse_size(" ".join(values[:n]))
                if size is not None:
                    used = n
                    break
        if size is None:
            shown = " ".join(values[:2]) if values else ""
            what = f"{flag} {shown!r}" if shown else f"{flag} needs a value"
            raise fail(f"{what}: expected a size as {SPELLINGS} (width first), e.g. {flag} 1280 640", code=2)
        out.extend([flag, str(size[0]), str(size[1])])
        i += 1 + used - (1 if eq else 0)
    return out


class SizeCommand(TidyHelpMixin, TyperCommand):
    """A typer command whose size options accept every spelling and show ``W H`` in ``--help``
    (and whose help is tidied by :class:`~segpipe.cli.helpfmt.TidyHelpMixin`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._size_flags: list[str] = []
        for param in self.params:
            if is_size_option(param):
                self._size_flags.extend(f for f in param.opts + param.secondary_opts if f.startswith("-"))
                if param.metavar is None:
                    param.metavar = "W H"

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        if self._size_flags and not ctx.resilient_parsing:
            args = normalize_size_args(args, self._size_flags)
        try:
            return super().parse_args(ctx, args)
        except typer.TyperException as e:  # "--overlay requires an argument": this command's help
            if getattr(e, "ctx", None) is not ctx:
                e.ctx = ctx
            raise
