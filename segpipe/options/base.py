"""The checks every options class shares: field types, path coercion, plain dicts, YAML config files.

Each options class (one module per stage beside this one) is a frozen dataclass whose
``__post_init__`` calls :func:`coerce_paths` and :func:`check_types`, then checks its own ranges;
every failure is a :class:`~segpipe.errors.ConfigError` of one line naming the option and the value.
"""

from __future__ import annotations

import dataclasses
import math
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from segpipe.errors import ConfigError, close_matches


def check_ignore_index(ignore_index: int, num_classes: int, where: str = "") -> None:
    """The ignored mask value must not be a class id (one line naming both)."""
    if ignore_index < num_classes:
        hint = 65535 if num_classes > 255 else 255
        raise ConfigError(
            f"--ignore-index {ignore_index} is a class id with {num_classes} classes{where}; "
            f"pass --ignore-index {max(hint, num_classes)} (any value from {num_classes} to 65535)"
        )


#: Options that make segpipe run code or trust a file: taken from the command line only.
COMMAND_LINE_ONLY = {
    "trust_checkpoint": "--trust-checkpoint (unpickling a checkpoint can run code)",
    "dataset": "--dataset (it imports and runs Python code)",
}


def _type_problem(value: Any, hint: Any) -> str | None:
    """Why ``value`` does not fit the type ``hint`` (None: it fits)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        args = get_args(hint)
        if value is None and type(None) in args:
            return None
        problems = [_type_problem(value, a) for a in args if a is not type(None)]
        return None if any(p is None for p in problems) else problems[0]
    if hint is bool:
        return None if isinstance(value, bool) else "expected true or false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "expected a whole number"
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "expected a number"
        return None if math.isfinite(value) else "expected a finite number"
    if hint is str:
        return None if isinstance(value, str) else "expected a text value"
    if hint is Path:
        return None if isinstance(value, (str, Path)) else "expected a path"
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            return "expected a list"
        args = get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        if len(args) != len(value):
            return f"expected {len(args)} values"
        problems = [_type_problem(v, a) for v, a in zip(value, args, strict=True)]
        return next((f"{p} in the list" for p in problems if p is not None), None)
    return None


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_types(opts: Any) -> None:
    """Every field of a frozen options dataclass holds its declared type (ints are whole numbers,
    floats finite numbers, ...): a config file's ``epochs: abc`` stops here with one line, before
    anything is written."""
    hints = get_type_hints(type(opts))
    for f in dataclasses.fields(opts):
        value = getattr(opts, f.name)
        problem = _type_problem(value, hints[f.name])
        if problem is not None:
            raise ConfigError(f"--{f.name.replace('_', '-')} {_shown(value)}: {problem}")


def coerce_paths(opts: Any) -> None:
    """Turn str values of Path-typed fields of a frozen dataclass into Paths, and lists into tuples."""
    hints = get_type_hints(type(opts))
    for f in dataclasses.fields(opts):
        value = getattr(opts, f.name)
        hint = str(hints[f.name])
        if isinstance(value, str) and "Path" in hint:
            object.__setattr__(opts, f.name, Path(value))
        elif isinstance(value, list) and "tuple" in hint:
            object.__setattr__(opts, f.name, tuple(value))


def to_plain(opts: Any) -> dict[str, Any]:
    """A dataclass as a dict of plain YAML/torch-safe values (Paths -> str, tuples -> lists)."""

    def conv(v: Any) -> Any:
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, (tuple, list)):
            return [conv(x) for x in v]
        return v

    return {f.name: conv(getattr(opts, f.name)) for f in dataclasses.fields(opts)}


def _coerce(cls: type, name: str, value: Any) -> Any:
    hint = str(get_type_hints(cls)[name])
    if value is None:
        return None
    if "Path" in hint:
        return Path(str(value))
    if "tuple[int, int]" in hint:
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ConfigError(f"{name}: expected [WIDTH, HEIGHT], got {value!r}")
        return tuple(value)
    if "tuple[str" in hint:
        return tuple(str(v) for v in (value.split(",") if isinstance(value, str) else value))
    return value


def load_config(path: str | Path, cls: type) -> dict[str, Any]:
    """Read a YAML options file into keyword arguments for ``cls``.

    Keys are option names (``batch_size`` or ``batch-size``). Errors name the file and line for
    malformed YAML, and the key (with close matches) for unknown options.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not a text (UTF-8) YAML file (byte {e.start} is not UTF-8)") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {p}: {e.strerror or e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{p}{where}: malformed YAML ({problem})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of option: value, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    lines = {}
    for i, line in enumerate(text.splitlines(), start=1):
        key = line.split(":", 1)[0].strip()
        lines.setdefault(key, i)
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in names:
            raise ConfigError(
                f"{p} line {lines.get(str(key), '?')}: unknown option {key!r}{close_matches(name, names)}"
            )
        try:
            out[name] = _coerce(cls, name, value)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{p} line {lines.get(str(key), '?')}: bad value for {key}: {e}") from None
        problem = _type_problem(out[name], get_type_hints(cls)[name])
        if problem is not None:
            raise ConfigError(f"{p} line {lines.get(str(key), '?')}: {key}: {_shown(value)}: {problem}")
    return out
