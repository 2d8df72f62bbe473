"""Input shapes as trtexec writes them, parsed and checked: the shape flags of ``segpipe build-trt``.

``input_1:1x640x1280x3[,name:dims...]``, N×H×W×C for segpipe models; names may be wrapped in single
quotes (``'Input:0':1x3``). Plain Python, no TensorRT: :class:`~segpipe.options.engine.EngineOptions`
checks its shape flags with :func:`normalize_shapes`, and :mod:`segpipe.tensorrt.shapes` builds the
optimisation profile on top of it (options sit below tensorrt/ in the layers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from segpipe.errors import ConfigError

#: Input name -> dims, e.g. ``{"input_1": (1, 640, 1280, 3)}``.
Shapes = dict[str, tuple[int, ...]]
#: What an options field accepts: a trtexec string, a mapping, or nothing.
ShapesArg = str | Mapping[str, Sequence[int]] | None

EXAMPLE = "input_1:1x640x1280x3"


def format_dims(dims: Sequence[int]) -> str:
    """``(1, 640, 1280, 3)`` -> ``1x640x1280x3``."""
    return "x".join(str(int(d)) for d in dims)


def format_shapes(shapes: Mapping[str, Sequence[int]]) -> str:
    """``{"input_1": (1, 640, 1280, 3)}`` -> ``input_1:1x640x1280x3`` (trtexec syntax)."""
    return ",".join(f"{quote_name(name)}:{format_dims(dims)}" for name, dims in shapes.items())


def quote_name(name: str) -> str:
    # trtexec splits on ':' and ','; names containing them are wrapped in single quotes.
    return f"'{name}'" if (":" in name or "," in name) else name


def parse_shapes(spec: str, flag: str = "--shapes") -> Shapes:
    """Parse a trtexec-style shape string into ``{name: dims}``.

    ``input_1:1x640x1280x3,other:1x3`` -> ``{"input_1": (1, 640, 1280, 3), "other": (1, 3)}``.
    Names may be wrapped in single quotes (``'Input:0':1x3``). Every dimension must be a positive
    integer. Errors are one line naming the flag and the bad value.
    """
    text = (spec or "").strip()
    if not text:
        raise ConfigError(f"{flag} is empty: expected NAME:NxHxWxC, e.g. {EXAMPLE}")
    shapes: Shapes = {}
    for item in _split_items(text, flag):
        name, sep, dims_text = item.rpartition(":")
        name = name.strip()
        if name.startswith("'") and name.endswith("'") and len(name) >= 2:
            name = name[1:-1]
        if not sep or not name:
            raise ConfigError(f"{flag} {item!r}: expected NAME:NxHxWxC, e.g. {EXAMPLE}")
        if not dims_text.strip():
            raise ConfigError(f"{flag} {item!r}: no dimensions after ':' (scalar inputs are not supported)")
        dims = []
        for part in dims_text.strip().lower().split("x"):
            part = part.strip()
            if not part.isdigit() or int(part) <= 0:
                raise ConfigError(
                    f"{flag} {item!r}: dimension {part!r} is not a positive integer "
                    f"(expected NAME:NxHxWxC, e.g. {EXAMPLE})"
                )
            dims.append(int(part))
        if name in shapes:
            raise ConfigError(f"{flag} {spec!r}: input {name!r} is given twice")
        shapes[name] = tuple(dims)
    return shapes


def _split_items(text: str, flag: str) -> list[str]:
    """Split on commas that are not inside single quotes."""
    items, current, quoted = [], [], False
    for ch in text:
        if ch == "'":
            quoted = not quoted
        if ch == "," and not quoted:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    if quoted:
        raise ConfigError(f"{flag} {text!r}: unbalanced single quote")
    items.append("".join(current).strip())
    if any(not item for item in items):
        raise ConfigError(f"{flag} {text!r}: empty entry between commas")
    return items


def normalize_shapes(value: ShapesArg, flag: str) -> Shapes:
    """Accept a trtexec string, a mapping or ``None``; return ``{name: dims}`` (validated)."""
    if value is None:
        return {}
    if isinstance(value, str):
        return parse_shapes(value, flag)
    out: Shapes = {}
    for name, dims in value.items():
        try:
            tup = tuple(int(d) for d in dims)
        except (TypeError, ValueError):
            raise ConfigError(f"{flag} {name}: {dims!r} is not a sequence of integers") from None
        if not tup or any(d <= 0 for d in tup):
            raise ConfigError(f"{flag} {name}:{dims!r}: every dimension must be a positive integer")
        out[str(name)] = tup
    return out
