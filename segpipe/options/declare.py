"""One declaration per option: how a field of an options class appears on the command line.

A field of an options dataclass carries its command-line form in its metadata, declared in one
short line: the spellings, the default, the help, then what is not the usual (``metavar``,
``hidden`` spellings, ``parse``...)::

    OPTIM = Panel("Optimisation")

    @dataclass(frozen=True)
    class TrainOptions:
        epochs: int = OPTIM.flag("--epochs", 50, "Training epochs.")
        loss: str = OPTIM.flag("--loss", "ce", "ce, dice, focal, lovasz (bce) or a sum like ce+dice.",
                               metavar="LOSS")

:func:`flag` returns a ``dataclasses.field`` (the default lives there, nowhere else) whose
``metadata["flag"]`` is a :class:`Flag`. Its positional arguments are the spellings (every
leading string that starts with ``-`` and a letter; the first is the one ``--help`` shows), then
the default (none: the flag is required), then the help; keywords give the rest (:class:`Flag`). A
:class:`Panel` is the ``--help`` panel its flags are declared through (``OPTIM.flag(...)``), so a
declaration never repeats ``panel=``. The metavar is written only where it says something: the
binder derives the usual one from the field's type (:func:`type_metavar`: ``N``, ``NUM``,
``FILE``, ``NAME``); ``DIR``, ``W H`` or ``LOSS`` are declared.

A flag several options classes share (the data flags, how a model is fed) is one :class:`Flag`
object declared once with :func:`shared` (:mod:`segpipe.options.flags`) and placed in each class
with ``field: T = SHARED()`` (overrides allowed, e.g. a command's own help).

The command line is generated from these declarations by :mod:`segpipe.cli.binder` (typer); this
module imports neither typer nor torch, so options stay a plain library and ``--help`` stays fast.
The options class's own checks (``__post_init__``) validate the values, one line naming the flag.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class _Unset:
    """No value declared (``dataclasses.MISSING`` cannot be a dataclass field's default)."""

    def __repr__(self) -> str:
        return "UNSET"


#: "No value": pass it to :meth:`Flag.__call__` to drop a shared flag's default (``default=UNSET,
#: default_factory=...``).
UNSET: Any = _Unset()
_MISSING: Any = UNSET


@dataclass(frozen=True)
class Flag:
    """The command-line form of one option (see the module docstring)."""

    #: Spellings; ``names[0]`` is shown in ``--help``, the other long ones are listed as "also".
    names: tuple[str, ...]
    help: str = ""
    panel: str | None = None
    metavar: str | None = None
    #: Spellings accepted for old command lines but never shown (``--model_in``, ``--onnx``).
    hidden: tuple[str, ...] = ()
    #: The field's default (``MISSING``: the option is required unless ``required=False``).
    default: Any = _MISSING
    default_factory: Any = _MISSING
    #: Command-line value -> field value (``"a,b"`` -> ``("a", "b")``); None: as typed.
    parse: Callable[[Any], Any] | None = None
    #: The type the command line reads, when it differs from the field's (e.g. ``str`` for a list).
    cli_type: Any = None
    #: The default the command line shows and passes, when it differs from the field's (a tuple
    #: field read as ``"input,head"``); None with a ``default_factory`` field: the factory's.
    cli_default: Any = _MISSING
    required: bool | None = None
    show_default: bool | None = None
    #: Also a positional argument (``segpipe quantize MODEL``); ``names`` still work as the option.
    argument: bool = False
    #: The positional argument's name in the usage line (default: the field's name, upper case).
    argument_name: str | None = None
    #: Hidden from ``--help`` altogether (still parsed).
    hide: bool = False
    #: A flag that acts and exits before anything else is parsed (``--formats``, ``--version``):
    #: called when the flag is given; it holds no value.
    action: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.hidden, str):  # one hidden spelling may be given as a string
            object.__setattr__(self, "hidden", (self.hidden,))
        if self.panel is not None:  # a Panel is a str: --help and reprs see the plain title
            object.__setattr__(self, "panel", str(self.panel))

    def __call__(self, **changes: Any) -> Any:
        """A dataclass field for this flag, with ``changes`` (help, default, ...) applied."""
        spec = dataclasses.replace(self, **changes) if changes else self
        kwargs: dict[str, Any] = {"metadata": {"flag": spec}}
        if spec.default is not _MISSING:
            kwargs["default"] = spec.default
        elif spec.default_factory is not _MISSING:
            kwargs["default_factory"] = spec.default_factory
        return dataclasses.field(**kwargs)

    def but(self, **changes: Any) -> Flag:
        """This flag with ``changes`` (a shared flag narrowed for a group of commands)."""
        return dataclasses.replace(self, **changes)

    @property
    def is_required(self) -> bool:
        if self.required is not None:
            return self.required
        return self.default is _MISSING and self.default_factory is _MISSING and self.cli_default is _MISSING

    @property
    def shown_default(self) -> Any:
        """What the command line passes when the flag is not given."""
        if self.cli_default is not _MISSING:
            return self.cli_default
        if self.default is not _MISSING:
            return self.default
        return None


def shared(*args: Any, **spec: Any) -> Flag:
    """A :class:`Flag` declared once and placed in several options classes (``FORMAT()``):
    ``shared("--format", "auto", "Label format...", metavar="FORMAT")``, positional arguments as
    :func:`flag`'s."""
    names: list[str] = []
    for arg in args:  # the spellings: "--name", "--on/--off", "-n" (a default "-1" is a value)
        if not (isinstance(arg, str) and re.match(r"--?[A-Za-z]", arg)):
            break
        names.append(arg)
    values = args[len(names) :]
    if not names or len(values) > 2:
        raise TypeError(f"flag({', '.join(map(repr, args))}): give the spellings, then the default and the help")
    for key, value in zip(("default", "help"), values, strict=False):
        if key in spec:
            raise TypeError(f"flag {names[0]}: {key} given twice")
        spec[key] = value
    return Flag(names=tuple(names), **spec)


def flag(*args: Any, **spec: Any) -> Any:
    """A dataclass field declared with its command-line form: the spellings, the default and the
    help, positional (``flag("--epochs", 30, "Training epochs.")``; ``default=`` and ``help=``
    read the same), then keywords of :class:`Flag` (``metavar``, ``hidden``, ``panel``...). No
    default: the flag is required."""
    return shared(*args, **spec)()


class Panel(str):
    """A ``--help`` panel (its title) through which its flags are declared, so a declaration names
    its panel once, as the caller: ``OPTIM.flag("--lr", 1e-3, "Learning rate.")``."""

    __slots__ = ()

    def flag(self, *args: Any, **spec: Any) -> Any:
        """:func:`flag` in this panel."""
        return flag(*args, panel=self, **spec)

    def shared(self, *args: Any, **spec: Any) -> Flag:
        """:func:`shared` in this panel."""
        return shared(*args, panel=self, **spec)


def type_metavar(tp: Any) -> str | None:
    """The metavar a flag reading ``tp`` shows unless it declares one: ``N`` (whole numbers),
    ``NUM`` (decimals), ``FILE`` (paths; a folder declares ``DIR``), ``NAME`` (text), the same for
    ``X | None`` and lists of X; None for flags (``bool``) and other types."""
    import pathlib
    import typing

    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) is list or (args and typing.get_origin(tp) is not tuple):
        return type_metavar(args[0]) if len(args) == 1 else None
    if tp is bool:
        return None
    if isinstance(tp, type) and issubclass(tp, pathlib.PurePath):
        return "FILE"
    return {int: "N", float: "NUM", str: "NAME"}.get(tp)


def declared(cls: type) -> dict[str, Flag]:
    """The flags of an options class (or of any dataclass), by field name, in field order."""
    return {
        f.name: f.metadata["flag"]
        for f in dataclasses.fields(cls)
        if isinstance(f.metadata.get("flag"), Flag)
    }


def comma_list(value: str | None) -> tuple[str, ...] | None:
    """``"a, b,c"`` -> ``("a", "b", "c")`` (``parse`` of the comma-separated flags)."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return tuple(value)
    return tuple(n.strip() for n in str(value).split(",") if n.strip())
