"""How sizes, tensor shapes and byte counts read wherever a person sees them.

One order for image sizes, width first as on the command line (``--size 512 384`` prints
``512x384 (W x H)``); tensor shapes in their own order with the layout named (``1x384x512x3
NHWC``), so the two are never confused; file sizes in decimal units (``1.2 kB``, ``8.31 MB``).
"""

from __future__ import annotations

from collections.abc import Sequence


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
