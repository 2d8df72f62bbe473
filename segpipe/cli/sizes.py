"""Sizes on the command line: ``W H`` (as ``--help`` shows it), ``W,H``, ``WxH`` and ``"(W, H)"``.

The original tool documented ``--size (1280, 1344)`` (quoted in a shell: ``--size "(1280, 1344)"``);
click options take a fixed number of tokens, so every command's arguments pass through
:func:`segpipe.units.normalize_size_args` first (:class:`SizeCommand`, the class :mod:`segpipe.cli.app` builds
each command with), which rewrites any spelling of a size option into the two tokens ``W H``.
A size option is any option declared ``tuple[int, int]`` (two integers): ``--size``, ``--tile``,
``--image-size``, ... -- so a new one is covered without registering it here.
"""

from __future__ import annotations

import typing
from typing import Any

import typer
from typer.core import TyperCommand, TyperOption

from segpipe.cli.common import fail
from segpipe.cli.helpfmt import TidyHelpMixin
from segpipe.errors import ConfigError
from segpipe.units import normalize_size_args


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
            try:
                args = normalize_size_args(args, self._size_flags)
            except ConfigError as e:  # a usage error: one line, exit 2
                raise fail(str(e), code=2) from None
        try:
            return super().parse_args(ctx, args)
        except typer.TyperException as e:  # "--overlay requires an argument": this command's help
            if getattr(e, "ctx", None) is not ctx:
                e.ctx = ctx
            raise
