"""How sizes, tensor shapes and byte counts read wherever a person sees them.

One order for image sizes, width first as on the command line (``--size 512 384`` prints
``512x384 (W x H)``); tensor shapes in their own order with the layout named (``1x384x512x3
NHWC``), so the two are never confused; file sizes in decimal units (``1.2 kB``, ``8.31 MB``). Sizes are read in any spelling the original
tool documented (:func:`parse_size`: ``W H``, ``W,H``, ``WxH``, ``"(W, H)"``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from segpipe.errors import ConfigError


def size_text(size: Sequence[int], label: bool = True) -> str:
    """``(W, H)`` as ``"512x384 (W x H)"`` (``label=False``: ``"512x384"``, where the context
    already says it is a width and a height)."""
    w, h = (int(v) for v in size[:2])
    return f"{w}x{h} (W x H)" if label else f"{w}x{h}"


def shape_text(shape: Sequence[int | str], layout: str | None = None) -> str:
    """A tensor shape in its own order, its layout named: ``"1x384x512x3 NHWC"``.

    ``layout`` may be longer than the shape (``NCHW`` for a 3-D ``NHW`` label map is not
    guessed: pass what the tensor holds); a layout of another length is left out.
    """
    dims = "x".join(str(d) for d in shape)
    return f"{dims} {layout}" if layout and len(layout) == len(shape) else dims


def human_bytes(n: int | float) -> str:
    """``1234`` -> ``"1.2 kB"``, ``8_310_000`` -> ``"8.31 MB"`` (decimal units, 3 significant digits)."""
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            if unit == "B":
                return f"{int(n)} B"
            return f"{n:.3g} {unit}" if abs(n) < 100 else f"{n:.0f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def tensor_text(name: str, shape: Sequence[int | str], dtype: str, layout: str | None = None) -> str:
    """A graph input or output: ``"input_1 1x384x512x3 NHWC float32"``."""
    return f"{name} {shape_text(shape, layout)} {dtype}"


def output_layout(output_kind: str) -> str:
    """The layout of a segpipe model's output: ``NHW`` for the class map, else ``NCHW``."""
    return "NHW" if output_kind == "labels" else "NCHW"


def speed_text(reference_ms: float, ms: float) -> str:
    """How ``ms`` compares with ``reference_ms``: ``"2.10x faster"`` or ``"1.19x slower"``, never
    ``"0.84x faster"``."""
    if ms <= 0 or reference_ms <= 0:
        return "-"
    ratio = reference_ms / ms
    return f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"


#: One size: two non-negative integers, width first, separated by blanks, ``,`` or ``x``; optionally
#: in parentheses or brackets (``(1280, 1344)``, ``[1280, 1344]``).
_SIZE = re.compile(r"\s*[(\[]?\s*(\d+)\s*(?:[,xX×]\s*|\s+)(\d+)\s*[)\]]?\s*")
SPELLINGS = 'W H, W,H, WxH or "(W, H)"'


def parse_size(text: str) -> tuple[int, int] | None:
    """``(W, H)`` from any accepted spelling, or None when ``text`` is not one."""
    m = _SIZE.fullmatch(text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def normalize_size_args(args: list[str], flags: Iterable[str]) -> list[str]:
    """``args`` with each size option's value, in any accepted spelling, as the two tokens ``W H``.

    ``--size 1280 640``, ``--size 1280,640``, ``--size=1280x640``, ``--size "(1280, 640)"`` and
    ``--size 1280, 640`` all become ``--size 1280 640``. A value that is none of these raises a
    ConfigError naming the option and the value (the command line: a usage error, exit 2). Tokens
    after ``--`` are left alone.
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
            raise ConfigError(f"{what}: expected a size as {SPELLINGS} (width first), e.g. {flag} 1280 640")
        out.extend([flag, str(size[0]), str(size[1])])
        i += 1 + used - (1 if eq else 0)
    return out
