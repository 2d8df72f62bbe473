"""What every options class shares: the schema checks, plain dicts, YAML config files.

Each options class (one module per stage beside this one) is a frozen dataclass whose type hints
are its schema: ``__post_init__`` first calls :func:`check_fields` (pydantic, through
:mod:`segpipe.schema.options`: types strict, declared :class:`~segpipe.schema.Range` bounds, paths
and tuples normalised), then checks what ties fields together. Every failure is a
:class:`~segpipe.errors.ConfigError` of one line naming the option and the value. pydantic is
imported on first use (``segpipe --help`` starts without it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

from segpipe.errors import ConfigError, close_matches
from segpipe.schema import Range

#: Most classes a model may have: class maps are 16-bit and one value (65535) stays free to mark
#: ignored pixels.
MAX_CLASSES = 65535
#: Largest width or height of an image or network input, in pixels.
MAX_SIDE = 65536

#: Declared field types shared by the options classes (see :class:`~segpipe.schema.Range`).
Seed = Annotated[int, Range(0, 2**32 - 1)]
Size = Annotated[tuple[int, int], Range(1, MAX_SIDE, why=f"give WIDTH HEIGHT, both from 1 to {MAX_SIDE}")]
#: A share of pixels whose argmax agrees (the verification thresholds), above 0 and at most 1.
Agreement = Annotated[float, Range(0, 1, above=True, why="must be in (0, 1]")]
#: A count of at least one (images, calls, rounds); ``Count0``: zero allowed.
Count = Annotated[int, Range(1)]
Count0 = Annotated[int, Range(0)]
#: A mask value marking ignored pixels (16-bit masks).
IgnoreIndex = Annotated[int, Range(0, 65535)]
ClassCount = Annotated[
    int,
    Range(
        None,
        MAX_CLASSES,
        why=f"at most {MAX_CLASSES} classes (class maps are 16-bit, 65535 marks ignored pixels)",
    ),
]


def check_ignore_index(ignore_index: int, num_classes: int, where: str = "") -> None:
    """The ignored mask value must not be a class id (one line naming both)."""
    if num_classes > MAX_CLASSES:
        raise ConfigError(
            f"--num-classes {num_classes}{where}: at most {MAX_CLASSES} classes (class maps are 16-bit "
            f"and one value, 65535, marks ignored pixels)"
        )
    if ignore_index < num_classes:
        hint = 65535 if num_classes > 255 else 255
        values = f"any value from {num_classes} to 65535" if num_classes < 65535 else "the only value left"
        raise ConfigError(
            f"--ignore-index {ignore_index} is a class id with {num_classes} classes{where}; "
            f"pass --ignore-index {max(hint, num_classes)} ({values})"
        )


def flag_error(flag: str, value: Any, why: str) -> ConfigError:
    """The one line of a bad option value: ``--opset 9: use an opset from 11 to 25``."""
    return ConfigError(f"{flag} {value}: {why}")


def check_choice(flag: str, value: Any, choices: Iterable[str]) -> None:
    """``value`` is one of ``choices``, else one line naming them and the close ones:
    ``--exporter tourch: use one of auto, torchscript, dynamo; close matches: torchscript``."""
    choices = tuple(choices)
    if value not in choices:
        raise flag_error(flag, value, f"use one of {', '.join(choices)}{close_matches(str(value), choices)}")


#: Options that make segpipe run code or trust a file: taken from the command line only.
COMMAND_LINE_ONLY = {
    "trust_checkpoint": "--trust-checkpoint (unpickling a checkpoint can run code)",
    "dataset": "--dataset (it imports and runs Python code)",
}


def check_fields(opts: Any) -> None:
    """Every field holds its declared type and range (see :func:`segpipe.schema.options.check_fields`)."""
    from segpipe.schema.options import check_fields as _check

    _check(opts)


def to_plain(opts: Any) -> dict[str, Any]:
    """A dataclass as a dict of plain YAML/torch-safe values (Paths -> str, tuples -> lists)."""

    def conv(v: Any) -> Any:
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, (tuple, list)):
            return [conv(x) for x in v]
        return v

    return {f.name: conv(getattr(opts, f.name)) for f in dataclasses.fields(opts)}


def load_config(path: str | Path, cls: type) -> dict[str, Any]:
    """Read a YAML options file into keyword arguments for ``cls``, every key checked by the schema
    (see :func:`segpipe.schema.options.load_config`): errors name the file, the line, the key and
    the value; aliases that expand too far and oversized files are refused."""
    from segpipe.schema.options import load_config as _load

    return _load(path, cls)
