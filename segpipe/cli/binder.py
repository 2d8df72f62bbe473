"""The binder: typer commands generated from the options' declarations (one place for every flag).

Each field of an options dataclass declared with :func:`segpipe.options.declare.flag` becomes a
typer option (or argument) of every command bound to that class::

    @command(EvaluateOptions, EvalCli)
    def evaluate_command(flags: Flags) -> None:
        opts = flags.build(EvaluateOptions)
        ...

typer reads a function's ``__signature__`` and the ``Annotated`` metadata of its parameters, so
:func:`command` writes that signature from the declarations (spellings, help, panel, metavar,
default, required); the body receives one :class:`Flags` object instead of dozens of parameters
and builds its options from it. The body runs inside :func:`~segpipe.cli.common.reported_errors`,
the one error handler: a :class:`~segpipe.errors.SegpipeError` is one red line and its exit code.

This is the only module that may call ``typer.Option`` / ``typer.Argument`` for a command
(tests/test_declare.py checks it); flags that no options class holds (``--quiet``, ``--json``)
are declared the same way in a small dataclass beside the command.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer.models import ArgumentInfo

from segpipe.cli.common import reported_errors
from segpipe.cli.helpfmt import HIDDEN_ATTR
from segpipe.errors import ConfigError
from segpipe.options.declare import Flag, declared, type_metavar

#: The order of the ``--help`` panels (a panel not listed comes after these, in declared order):
#: what is read, what is trained or run, how; train's reads as a table of contents.
PANELS = (
    None,
    "Data",
    "Model",
    "Augmentation",
    "Optimisation",
    "Recipe (class weights, EMA, warm-up)",
    "Run",
    "Logging",
    "Several GPUs / processes",
    "Speed (CUDA)",
)


def _bare(hint: Any) -> Any:
    """The type a command line reads for a field hint: ``Annotated`` bounds stripped (the options
    class checks them), ``X | None`` kept."""
    origin = typing.get_origin(hint)
    if origin is Annotated:
        return _bare(typing.get_args(hint)[0])
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and args:
        parts = tuple(_bare(a) for a in args)
        out = parts[0]
        for p in parts[1:]:
            out = out | p
        return out
    return hint


def _optional(tp: Any) -> Any:
    return tp if type(None) in typing.get_args(tp) else tp | None


class Flags:
    """The values of one command line, by field name, and which of them were typed."""

    def __init__(self, values: dict[str, Any], given: set[str], specs: dict[str, Flag]) -> None:
        self.values = values
        self.given = given
        self.specs = specs

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def fields_of(self, cls: type, only_given: bool = False) -> dict[str, Any]:
        """Keyword arguments for ``cls``: each of its fields the command line holds (parsed)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in self.values or (only_given and f.name not in self.given):
                continue
            value = self.values[f.name]
            spec = self.specs.get(f.name)
            if value is None and f.default_factory is not dataclasses.MISSING:
                continue  # e.g. --workers not given: the field's factory decides
            if spec is not None and spec.parse is not None and value is not None:
                value = spec.parse(value)
            out[f.name] = value
        return out

    def build(self, cls: type, **changes: Any) -> Any:
        """``cls(**fields_of(cls), **changes)``; its checks raise ConfigError (one line)."""
        return cls(**{**self.fields_of(cls), **changes})


def _param(name: str, hint: Any, spec: Flag) -> list[inspect.Parameter]:
    """The typer parameter(s) of one declared field."""
    tp = spec.cli_type if spec.cli_type is not None else _bare(hint)
    required = spec.is_required
    kinds = inspect.Parameter.KEYWORD_ONLY
    common: dict[str, Any] = {"help": spec.help, "hidden": spec.hide}
    metavar = spec.metavar or type_metavar(tp)  # N, NUM, FILE, NAME unless declared
    if metavar is not None and tp is not bool and tp != (bool | None):
        common["metavar"] = metavar
    if spec.show_default is not None:
        common["show_default"] = spec.show_default
    elif spec.shown_default is None:
        common["show_default"] = False
    names = (*spec.names, *spec.hidden)
    if spec.action is not None:
        act = spec.action
        opt = typer.Option(
            *names,
            help=spec.help,
            rich_help_panel=spec.panel,
            is_eager=True,
            expose_value=False,
            callback=lambda value: act() if value else None,
        )
        return [inspect.Parameter(name, kinds, annotation=Annotated[bool, opt], default=False)]
    if spec.argument:  # positional, and the same value as an option (--model FILE)
        arg = typer.Argument(
            help=f"{spec.help} (or {spec.names[0]})",
            metavar=spec.argument_name or name.upper(),
            show_default=False,
            hidden=spec.hide,
        )
        opt = typer.Option(*names, **{**common, "rich_help_panel": spec.panel})
        return [
            inspect.Parameter(name, kinds, annotation=Annotated[_optional(tp), arg], default=None),
            inspect.Parameter(f"{name}__opt", kinds, annotation=Annotated[_optional(tp), opt], default=None),
        ]
    opt = typer.Option(*names, **common, rich_help_panel=spec.panel)
    if required:
        return [inspect.Parameter(name, kinds, annotation=Annotated[tp, opt])]
    default = spec.shown_default
    if default is None:
        tp = _optional(tp)
    return [inspect.Parameter(name, kinds, annotation=Annotated[tp, opt], default=default)]


def signature_of(*groups: type) -> tuple[list[inspect.Parameter], dict[str, Flag]]:
    """The typer parameters of every declared field of ``groups`` (first declaration of a name wins)."""
    params: list[inspect.Parameter] = []
    specs: dict[str, Flag] = {}
    for cls in groups:
        hints = typing.get_type_hints(cls, include_extras=True)
        for name, spec in declared(cls).items():
            if name in specs:
                continue
            specs[name] = spec
            params.extend(_param(name, hints[name], spec))
    # arguments first; options by panel (PANELS, then as declared), required ones first in each
    panels = list(PANELS)
    for p in params:
        panel = getattr(typing.get_args(p.annotation)[-1], "rich_help_panel", None)
        if panel not in panels:
            panels.append(panel)

    def key(p: inspect.Parameter) -> tuple[bool, int, bool]:
        info = typing.get_args(p.annotation)[-1]
        return (
            not isinstance(info, ArgumentInfo),
            panels.index(getattr(info, "rich_help_panel", None)),
            p.default is not inspect.Parameter.empty,
        )

    params.sort(key=key)
    return params, specs


class MissingFlag(typer.TyperException):
    """A required value given neither as the positional argument nor as its option: a usage error
    (one line, exit 2, like click's "Missing option")."""

    exit_code = 2

    def __init__(self, message: str, ctx: Any) -> None:
        super().__init__(message)
        self.ctx = ctx


def _merge_arguments(values: dict[str, Any], specs: dict[str, Flag], ctx: Any) -> None:
    """A field given as a positional argument or as its option: one value (or one line saying both)."""
    for name, spec in specs.items():
        if not spec.argument:
            continue
        positional, option = values.get(name), values.pop(f"{name}__opt", None)
        if isinstance(positional, list) and not positional:
            positional = None
        if isinstance(option, list) and not option:
            option = None
        if isinstance(positional, list) and isinstance(option, list):  # several: all of them
            positional, option = [*option, *(p for p in positional if p not in option)], None
        if positional is not None and option is not None and positional != option:
            raise ConfigError(
                f"{spec.names[0]} {option}: the {name.replace('_', ' ')} is given twice "
                f"(also as the argument {positional})"
            )
        values[name] = positional if positional is not None else option
        if values[name] is None and spec.is_required:
            shown = spec.argument_name or name.upper()
            raise MissingFlag(
                f"Missing argument '{shown}' (or {spec.names[0]} {spec.metavar or shown}).", ctx
            )


def command(
    *groups: type, interrupted: str = "interrupted"
) -> Callable[[Callable[[Flags], Any]], Callable[..., Any]]:
    """Make a typer command function from the declared fields of ``groups`` around ``body``."""
    params, specs = signature_of(*groups)
    hidden = {n: set(s.hidden) for n, s in specs.items() if s.hidden}
    hidden.update({f"{n}__opt": set(s.hidden) for n, s in specs.items() if s.hidden and s.argument})
    ctx_param = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)

    def bind(body: Callable[[Flags], Any]) -> Callable[..., Any]:
        def run(ctx: typer.Context, **values: Any) -> Any:
            with reported_errors(interrupted):
                given = {
                    name.removesuffix("__opt")
                    for name in values
                    if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
                }
                values = {k: tuple(v) if isinstance(v, tuple) else v for k, v in values.items()}
                _merge_arguments(values, specs, ctx)
                return body(Flags(values, given, specs))

        run.__signature__ = inspect.Signature([ctx_param, *params])  # type: ignore[attr-defined]
        run.__annotations__ = {}
        run.__name__ = body.__name__
        run.__qualname__ = body.__qualname__
        run.__doc__ = body.__doc__
        run.__module__ = body.__module__
        setattr(run, HIDDEN_ATTR, hidden)
        run.body = body  # type: ignore[attr-defined]
        return run

    return bind
