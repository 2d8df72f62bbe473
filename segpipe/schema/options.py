"""Options through the declared schema: field checks of the frozen options dataclasses and YAML
option files (``--config``, ``options.yaml``).

Each options class stays a plain frozen dataclass (``dataclasses.replace``, ``fields`` and
frozen-ness unchanged); its type hints are the schema. :func:`check_fields` (called first in every
``__post_init__``) validates each field with a pydantic ``TypeAdapter`` built from the hint, made
strict where YAML and Python are loose (``"3"`` is not a whole number, ``true`` not a number,
``nan`` not a finite number) and lax where a file cannot say better (a list for a tuple, a string
for a path); :class:`~segpipe.schema.Range` on a hint (``Annotated[int, Range(0, 2**32 - 1)]``) is
its declared range. The class's ``__post_init__`` then checks what ties fields together.

:func:`load_config` reads a YAML file through a loader that refuses aliases expanding beyond
:data:`MAX_YAML_NODES` nodes (billion laughs) and files over :data:`MAX_CONFIG_BYTES`, and checks
every key with the same adapters, so a config error names the file, the line, the key and the value.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

import yaml
from pydantic import AfterValidator, Field, StrictBool, StrictInt, StrictStr, TypeAdapter, ValidationError

from segpipe.errors import ConfigError, close_matches, first_line
from segpipe.schema import Range, printable, shown
from segpipe.schema.files import problem_text

#: Largest option file read, and the most YAML nodes its aliases may expand to.
MAX_CONFIG_BYTES = 1 << 20
MAX_YAML_NODES = 100_000

_FINITE = Annotated[float, Field(strict=True, allow_inf_nan=False)]


def _range_validator(rng: Range) -> AfterValidator:
    def check(v: Any) -> Any:
        problem = rng.problem(v)
        if problem is not None:
            raise ValueError(problem)
        return v

    return AfterValidator(check)


def strict_hint(hint: Any) -> Any:
    """The pydantic type checking a field declared as ``hint``: scalars strict, containers lax."""
    origin = get_origin(hint)
    if origin is Annotated:
        base, *meta = get_args(hint)
        extra = [_range_validator(m) if isinstance(m, Range) else m for m in meta]
        return Annotated[(strict_hint(base), *extra)]  # type: ignore[return-value]
    if origin in (Union, types.UnionType):
        return Union[tuple(strict_hint(a) for a in get_args(hint))]  # noqa: UP007
    if origin is tuple:
        args = get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple[strict_hint(args[0]), ...]  # type: ignore[misc]
        return tuple[tuple(strict_hint(a) for a in args)]  # type: ignore[misc]
    return {bool: StrictBool, int: StrictInt, float: _FINITE, str: StrictStr}.get(hint, hint)


@functools.cache
def _adapters(cls: type) -> dict[str, TypeAdapter[Any]]:
    hints = get_type_hints(cls, include_extras=True)
    return {f.name: TypeAdapter(strict_hint(hints[f.name])) for f in dataclasses.fields(cls)}


def field_problem(cls: type, name: str, value: Any) -> tuple[Any, str | None]:
    """(validated value, None) or (value, why it does not fit field ``name`` of ``cls``)."""
    try:
        return _adapters(cls)[name].validate_python(value), None
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        loc = err.get("loc", ())
        in_list = any(isinstance(p, int) for p in loc)
        problem = problem_text(err)
        if err.get("type") == "missing" and in_list:
            problem = "expected more values"
        return value, problem + (" in the list" if in_list else "")


def flag(name: str) -> str:
    """``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def _declared_name(f: dataclasses.Field[Any]) -> str:
    """The flag a field is declared with (``batch_size`` -> ``--batch``), else :func:`flag`."""
    spec = f.metadata.get("flag")
    names = getattr(spec, "names", None)
    return names[0].split("/")[0] if names else flag(f.name)


def check_fields(opts: Any) -> None:
    """Validate every field of a frozen options dataclass against its declared type and range,
    storing the validated value (a str path becomes a ``Path``, a list a tuple, an int for a float
    field a float). One line naming the option and the value: ``--epochs 2.5: expected a whole
    number``."""
    cls = type(opts)
    for f in dataclasses.fields(opts):
        value = getattr(opts, f.name)
        checked, problem = field_problem(cls, f.name, value)
        if problem is not None:
            flat = isinstance(value, (tuple, list)) and 0 < len(value) <= 8
            flat = flat and all(isinstance(v, (int, float, str, Path)) for v in value)
            text = printable(" ".join(map(str, value)))[:60] if flat else shown(value)
            raise ConfigError(f"{_declared_name(f)} {text}: {problem}")
        if checked is not value:
            object.__setattr__(opts, f.name, checked)


# ---- YAML option files ---------------------------------------------------------------------------


class _TooBig(Exception):
    pass


def _expanded_size(root: yaml.Node) -> int:
    """Nodes the document has once every alias is expanded (capped just above the limit)."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in on_path:
            raise _TooBig("an alias refers to a node that contains it")
        on_path.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                total += size(child)
                if total > MAX_YAML_NODES:
                    break
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
                if total > MAX_YAML_NODES:
                    break
        on_path.discard(key)
        sizes[key] = total
        return total

    return size(root)


class BoundedSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a document whose aliases expand beyond
    :data:`MAX_YAML_NODES` nodes (or refer to themselves) before any object is built."""

    def compose_document(self) -> yaml.Node:  # type: ignore[override]
        node = super().compose_document()
        if node is not None:
            total = _expanded_size(node)
            if total > MAX_YAML_NODES:
                raise _TooBig(f"its anchors and aliases expand to more than {MAX_YAML_NODES} values")
        return node


def safe_load_bounded(text: str) -> Any:
    """``yaml.safe_load`` through :class:`BoundedSafeLoader` (raises ``yaml.YAMLError``,
    ``RecursionError`` or the internal refusal; :func:`parse_yaml` turns each into one line)."""
    loader = BoundedSafeLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def parse_yaml(text: str, path: str | Path, error: type[Exception] = ConfigError) -> Any:
    """:func:`safe_load_bounded` of the text of ``path``, its refusals one ``error`` line naming the
    file (and the line): aliases expanding too far, nesting too deep, malformed YAML."""
    try:
        return safe_load_bounded(text)
    except _TooBig as e:
        raise error(f"{path}: refused, {e}") from None
    except RecursionError:
        raise error(f"{path}: YAML nested too deeply") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or first_line(e, typed=False)
        raise error(f"{path}{where}: malformed YAML ({printable(problem)[:120]})") from None


def check_yaml_file(path: str | Path, what: str = "YAML file") -> Any:
    """Parse a YAML file other readers will load (an albumentations pipeline) through the bounded
    loader first: oversized files, aliases expanding too far, malformed YAML are one line."""
    p = Path(path)
    return parse_yaml(_read_text(p, what), p)


def _read_text(p: Path, what: str = "config file") -> str:
    if not p.is_file():
        if p.is_dir():
            raise ConfigError(f"{what} {p} is a folder; give the YAML file")
        if os.path.exists(p):  # a FIFO, a device: reading it would block or never end
            raise ConfigError(f"{what} {p} is not a regular file")
        raise ConfigError(f"{what} {p} does not exist")
    try:
        size = p.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{p}: {size} bytes, more than the {MAX_CONFIG_BYTES} bytes a {what} may hold")
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not a text (UTF-8) YAML file (byte {e.start} is not UTF-8)") from None
    except OSError as e:
        raise ConfigError(f"cannot read {what} {p}: {e.strerror or e}") from None


def _pre_coerce(hint: Any, value: Any) -> Any:
    """What a YAML file may write loosely: ``class_names: a,b`` for a list of names."""
    text = str(hint)
    if isinstance(value, str) and "tuple[str" in text:
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return value


def key_lines(text: str) -> dict[str, int]:
    """The line (1-based) of each top-level key of a YAML options file, for error messages."""
    lines: dict[str, int] = {}
    for i, line in enumerate(text.splitlines(), start=1):
        lines.setdefault(line.split(":", 1)[0].strip().strip("'\""), i)
    return lines


def config_where(path: str | Path, name: str) -> str:
    """``c.yaml line 3: optimizer`` for option ``name`` (either spelling) of the options file."""
    try:
        lines = key_lines(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        lines = {}
    line = lines.get(name) or lines.get(name.replace("_", "-"))
    return f"{path} line {line if line else '?'}: {name}"


def load_config(path: str | Path, cls: type) -> dict[str, Any]:
    """Read a YAML options file into keyword arguments for ``cls``, each checked by the schema.

    Keys are option names (``batch_size`` or ``batch-size``). Every error is one line naming the
    file and line: malformed YAML, aliases that expand too far, an unknown key (with close matches),
    a wrong type or an out-of-range value (``c.yaml line 2: epochs: 'abc': expected a whole number``).
    """
    p = Path(path)
    data = check_yaml_file(p, "config file")
    text = p.read_text(encoding="utf-8")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of option: value, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    hints = get_type_hints(cls, include_extras=True)
    lines = key_lines(text)
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        where = f"{p} line {lines.get(str(key), '?')}"
        if name not in names:
            raise ConfigError(f"{where}: unknown option {shown(key)}{close_matches(name, names)}")
        checked, problem = field_problem(cls, name, _pre_coerce(hints[name], value))
        if problem is not None:
            raise ConfigError(f"{where}: {printable(key)}: {shown(value)}: {problem}")
        out[name] = checked
    return out
