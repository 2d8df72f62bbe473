"""How ``--help`` shows options: values as users write them, one name per option, 80 columns.

typer prints a value type for every option, flags included (``--version -V <bool>``), and Python
types for the rest (``<list[Path]>``, ``<str>``); its usage line reads ``{model}`` and ``{paths}...``;
and it joins every spelling of an option in the name column (``--opt-level,--builderOptimizati…``),
which at 80 columns cuts them. :func:`tidy_help` fixes all of that in one place for every command
(and the root group), once, when the command is built:

- flags show no value; other options show their ``metavar``: declared with the flag (``DIR``,
  ``W H``), else derived from its type by the binder, :func:`segpipe.options.declare.type_metavar`
  (``N``, ``NUM``, ``FILE``, ``NAME``), which also serves an option typer adds itself;
- arguments read ``MODEL`` / ``FILE...`` in the usage line and the panel;
- the name column shows the option's first long name and its short flag only; the other spellings
  (the original tool's ``--data_root``, trtexec's ``--saveEngine``) still parse and are named once
  at the end of the help text, ``(also --data_root)``; spellings in :data:`HIDDEN_SPELLINGS` are
  accepted but never shown.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from typer.core import TyperArgument, TyperOption

from segpipe.options.declare import type_metavar

#: Spellings accepted for old command lines but not advertised (each has a clearer one in --help);
#: a declared flag names its own (``Flag.hidden``), which the binder hands over as ``HIDDEN_ATTR``.
HIDDEN_SPELLINGS = frozenset({"--model_in", "--model-in"})
HIDDEN_ATTR = "segpipe_hidden"


class _Option(TyperOption):
    """A typer option whose help column shows its metavar, and nothing for a flag."""

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag:
            return None
        return self.metavar

    def get_error_hint(self, ctx: Any = None) -> str:
        """Errors name the spellings --help shows (``'--batch'``), not the hidden ones."""
        return " / ".join(f"'{o}'" for o in shown_opts(self) or self.opts)


class _Argument(TyperArgument):
    """A typer argument shown as ``FILE...`` (usage line and panel), never as ``{paths}...``."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    def _rich_display_name(self) -> str:
        return self.display_name_raw + ("..." if self.nargs != 1 else "")


def _hidden(param: Any) -> frozenset[str]:
    """Spellings of ``param`` never shown: :data:`HIDDEN_SPELLINGS` and its declared hidden ones."""
    return HIDDEN_SPELLINGS | frozenset(getattr(param, HIDDEN_ATTR, ()))


def shown_opts(param: Any) -> list[str]:
    """The spellings ``--help`` shows: the first long name and the short flags."""
    hidden = _hidden(param)
    longs = [o for o in param.opts if o.startswith("--") and o not in hidden]
    shorts = [o for o in param.opts if not o.startswith("--") and o not in hidden]
    return longs[:1] + shorts


def other_spellings(param: Any) -> list[str]:
    """The long spellings accepted but not in the name column (and not hidden)."""
    shown, hidden = set(shown_opts(param)), _hidden(param)
    return [o for o in param.opts if o.startswith("--") and o not in shown and o not in hidden]


def tidy_help(params: Iterable[Any]) -> None:
    """Give each parameter the help display described in the module docstring (once, in place)."""
    for param in params:
        if isinstance(param, TyperOption) and type(param) is TyperOption:
            param.__class__ = _Option  # same object and state; only how help draws it changes
            if param.metavar is None and not param.is_flag:
                param.metavar = type_metavar(param.type_descriptor.annotation) or "VALUE"
            if param.is_flag and param.secondary_opts:
                # "--channels-last/--no-channels-last": the negative spelling in the text, not in a
                # column of its own that 80 columns cut ("--no-persistent-wor…")
                state = "" if param.default is None else f"default: {'on' if param.default else 'off'}; "
                param.help = f"{param.help or ''} ({state}off: {param.secondary_opts[0]})".strip()
                param.show_default = False
            others = [o for o in other_spellings(param) if o not in (param.help or "")]
            if others and param.help and "(also --" not in param.help:
                param.help = f"{param.help} (also {', '.join(others)})"
        elif isinstance(param, TyperArgument) and type(param) is TyperArgument:
            param.__class__ = _Argument
            if param.metavar is None:  # the binder names its arguments (MODEL); others: their name
                param.metavar = param.name.upper()


@contextlib.contextmanager
def help_names(params: Iterable[Any]) -> Iterator[None]:
    """While help is drawn, each option lists only :func:`shown_opts` (parsing keeps them all)."""
    saved = []
    for param in params:
        if isinstance(param, TyperOption):
            saved.append((param, param.opts, param.secondary_opts))
            param.opts = shown_opts(param) or param.opts
            param.secondary_opts = []
    try:
        yield
    finally:
        for param, opts, secondary in saved:
            param.opts, param.secondary_opts = opts, secondary


class TidyHelpMixin:
    """Mixed into segpipe's command and group classes: :func:`tidy_help` and :func:`help_names`."""

    params: list[Any]

    def get_params(self, ctx: Any) -> list[Any]:  # pragma: no cover - typing
        return super().get_params(ctx)  # type: ignore[misc]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        declared = getattr(getattr(self, "callback", None), HIDDEN_ATTR, {})  # set by the binder
        for param in self.params:
            if param.name in declared:
                setattr(param, HIDDEN_ATTR, frozenset(declared[param.name]))
        tidy_help(self.params)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        params = self.get_params(ctx)  # with --help, which click adds here
        tidy_help(params)
        with help_names(params):
            super().format_help(ctx, formatter)  # type: ignore[misc]
