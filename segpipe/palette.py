"""Class palettes: ``colors.csv`` (``id,name,r,g,b``) read/write, colourising and overlays."""

from __future__ import annotations

import colorsys
import csv
import io
import itertools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from segpipe.errors import ConfigError
from segpipe.schema import has_controls, shown
from segpipe.utils import atomic_write_text

HEADER = ["id", "name", "r", "g", "b"]
#: Largest class id and name length a palette row may hold (class maps are 16-bit).
MAX_CLASS_ID = 65535
MAX_NAME = 200


#: Most colours a palette can be grown to (class maps are 16-bit).
MAX_COLORS = 65536
#: Steps of the golden-ratio hue walk before colours come from the whole RGB cube.
_HUE_WALK = 8192


def default_palette_path() -> Path:
    """The ``colors.csv`` shipped inside the package (a copy of the repo's top-level one)."""
    return Path(str(resources.files("segpipe") / "colors.csv"))


@dataclass(frozen=True)
class Palette:
    """Class names and RGB colours, indexed by class id (0..K-1)."""

    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    source: str = ""
    #: (name, colour) of the entries :meth:`truncated` cut off, with their ids following on:
    #: mask decoding still knows them, so a colour beyond ``--num-classes`` is named as such.
    dropped: tuple[tuple[str, tuple[int, int, int]], ...] = field(default=(), compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.colors)

    def array(self) -> np.ndarray:
        """K×3 uint8 array of colours."""
        return np.asarray(self.colors, dtype=np.uint8).reshape(-1, 3)

    def extended(self, n: int) -> Palette:
        """This palette grown to ``n`` entries with distinct generated colours (names ``class_i``)."""
        if n <= len(self):
            return self
        if n > MAX_COLORS:
            raise ConfigError(f"{n} classes: at most {MAX_COLORS} can be coloured (class maps are 16-bit)")
        colors = list(self.colors)
        names = list(self.names)
        used = set(colors) | {rgb for _, rgb in self.dropped}
        i = 0
        while len(colors) < n:
            if i < _HUE_WALK:
                # golden-ratio hue walk with varying saturation/value: far apart, deterministic
                h = (i * 0.618033988749895) % 1.0
                s = 0.55 + 0.45 * ((i // 7) % 2)
                v = 0.95 - 0.3 * ((i // 3) % 2)
                rgb = tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h, s, v))
            else:
                # the walk repeats itself after a few thousand colours: then visit the RGB cube in a
                # scrambled order (an odd multiplier permutes 0..2**24-1, so every colour comes once)
                k = ((i - _HUE_WALK + 1) * 2654435761) & 0xFFFFFF
                rgb = (k >> 16, (k >> 8) & 255, k & 255)
            i += 1
            if rgb in used:
                continue
            used.add(rgb)
            colors.append(rgb)  # type: ignore[arg-type]
            names.append(f"class_{len(colors) - 1}")
        return Palette(tuple(names), tuple(colors), self.source, self.dropped)  # type: ignore[arg-type]

    def truncated(self, n: int) -> Palette:
        """The first ``n`` entries (the others are kept in :attr:`dropped` for mask decoding)."""
        cut = tuple(zip(self.names[n:], self.colors[n:], strict=True))
        return Palette(self.names[:n], self.colors[:n], self.source, cut + self.dropped)

    def all_entries(self) -> list[tuple[str, tuple[int, int, int]]]:
        """(name, colour) of every class id, the :attr:`dropped` ones included."""
        return list(zip(self.names, self.colors, strict=True)) + list(self.dropped)

    def duplicate(self) -> tuple[int, int, tuple[int, int, int]] | None:
        """The first colour given to two class ids, as (first id, second id, colour), else ``None``."""
        seen: dict[tuple[int, int, int], int] = {}
        for i, (_, rgb) in enumerate(self.all_entries()):
            if rgb in seen:
                return seen[rgb], i, rgb
            seen[rgb] = i
        return None

    def check_unique_colors(self) -> None:
        """Refuse a palette that gives one colour to two classes: colour masks cannot tell them apart."""
        dup = self.duplicate()
        if dup is None:
            return
        i, j, rgb = dup
        entries = self.all_entries()
        where = f"palette {self.source}" if self.source else "palette"
        raise ConfigError(
            f"{where}: colour {rgb} is given to both class {i} {entries[i][0]!r} and class {j} "
            f"{entries[j][0]!r}; colour masks cannot tell them apart: give every class its own colour"
        )


def load_palette(path: str | Path | None = None) -> Palette:
    """Read a palette CSV (header ``id,name,r,g,b``); ``None`` reads the default one.

    Rows may come in any order; ids must be 0..K-1 without gaps. Errors name the file and line.
    """
    p = Path(path) if path is not None else default_palette_path()
    if not p.is_file():
        raise ConfigError(f"palette file {p} does not exist")
    try:
        if p.stat().st_size > 64 << 20:
            raise ConfigError(f"palette file {p}: larger than 64 MiB; refused")
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"palette file {p}: cannot read it ({e})") from e
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise ConfigError(f"palette file {p} is empty; expected a header {','.join(HEADER)}")
    header = [h.strip().lower() for h in rows[0]]
    if header[:5] != HEADER:
        raise ConfigError(
            f"{p} line 1: header is {shown(','.join(rows[0]), 60)}, expected {','.join(HEADER)!r}"
        )
    entries: dict[int, tuple[str, tuple[int, int, int]]] = {}
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row) or row[0].strip().startswith("#"):
            continue
        if len(row) < 5:
            raise ConfigError(
                f"{p} line {lineno}: expected 5 fields id,name,r,g,b, got {shown(','.join(row), 60)}"
            )
        try:
            cid = int(row[0])
            rgb = tuple(int(v) for v in row[2:5])
        except ValueError:
            raise ConfigError(
                f"{p} line {lineno}: id and r,g,b must be integers, got {shown(','.join(row), 60)}"
            ) from None
        if any(not 0 <= v <= 255 for v in rgb):
            raise ConfigError(f"{p} line {lineno}: colour {shown(rgb)} is outside 0-255")
        if not 0 <= cid <= MAX_CLASS_ID:
            raise ConfigError(f"{p} line {lineno}: class id {shown(row[0])} must be within 0..{MAX_CLASS_ID}")
        name = row[1].strip()
        if len(name) > MAX_NAME or has_controls(name):
            why = f"longer than {MAX_NAME} characters" if len(name) > MAX_NAME else "holds control characters"
            raise ConfigError(f"{p} line {lineno}: class name {shown(name)} {why}")
        if cid in entries:
            raise ConfigError(f"{p} line {lineno}: class id {cid} appears twice")
        entries[cid] = (name, rgb)  # type: ignore[assignment]
    if not entries:
        raise ConfigError(f"palette file {p} has a header but no colours")
    ids = sorted(entries)
    if ids != list(range(len(ids))):
        have = set(ids)
        missing = list(itertools.islice((i for i in range(ids[-1] + 1) if i not in have), 5))  # bounded
        raise ConfigError(
            f"palette file {p}: class ids must be 0..{len(ids) - 1} without gaps; missing {missing}"
        )
    return Palette(
        names=tuple(entries[i][0] or f"class_{i}" for i in ids),
        colors=tuple(entries[i][1] for i in ids),
        source=str(p),
    )


def save_palette(palette: Palette, path: str | Path) -> Path:
    """Write a palette CSV atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER)
    for i, (name, rgb) in enumerate(zip(palette.names, palette.colors, strict=True)):
        writer.writerow([i, name, *rgb])
    return atomic_write_text(path, buf.getvalue())


def fit_palette(palette: Palette, num_classes: int) -> tuple[Palette, str | None]:
    """Palette with exactly ``num_classes`` entries, plus a warning when it had to be extended."""
    if len(palette) >= num_classes:
        return palette.truncated(num_classes), None
    where = f" {palette.source}" if palette.source else ""
    msg = (
        f"palette{where} has {len(palette)} colours for {num_classes} classes; "
        f"using generated colours for classes {len(palette)}..{num_classes - 1}"
    )
    return palette.extended(num_classes), msg


#: Colour of ignored pixels (``ignore_index`` beyond the classes) in ground-truth pictures: VOC's
#: own "void" colour, so a border of 255s is not drawn black like the background class.
IGNORE_COLOR = (224, 224, 192)


def colorize(labels: np.ndarray, colors: np.ndarray | Palette, ignore_index: int = 255) -> np.ndarray:
    """Class map H×W (any int dtype) -> RGB image H×W×3 uint8; unknown ids are black, ignored pixels
    (``ignore_index`` when it is not a class) :data:`IGNORE_COLOR`.

    uint8 class maps go through ``cv2.LUT`` (several times faster than numpy indexing).
    """
    lut_src = colors.array() if isinstance(colors, Palette) else np.asarray(colors, dtype=np.uint8)
    lut = np.zeros((max(256, len(lut_src)), 3), dtype=np.uint8)
    lut[: len(lut_src)] = lut_src
    if len(lut_src) <= ignore_index < 256:
        lut[ignore_index] = IGNORE_COLOR
    if labels.dtype == np.uint8 and labels.ndim == 2:
        return cv2.LUT(cv2.merge([labels, labels, labels]), lut[:256].reshape(256, 1, 3))
    idx = labels.astype(np.int64, copy=False)
    out = lut[np.clip(idx, 0, len(lut) - 1)]
    out[(idx < 0) | (idx >= len(lut))] = 0  # ids beyond the palette: black, as on the LUT path
    if ignore_index >= len(lut_src):
        out[idx == ignore_index] = IGNORE_COLOR
    return out


def overlay(
    image: np.ndarray,
    color_mask: np.ndarray,
    alpha: float = 0.5,
    labels: np.ndarray | None = None,
    background: int | None = None,
    outline: bool = False,
) -> np.ndarray:
    """Blend a colour mask over an RGB image: ``(1 - alpha) * image + alpha * mask``.

    With ``labels`` (the class map the mask was coloured from): pixels of class ``background``
    keep the photo's own pixels (blending a black background class at 0.5 darkens the whole photo),
    and ``outline`` draws each region's boundary in its class colour at full opacity.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"--overlay {alpha}: alpha must be between 0 and 1")
    out = image.astype(np.float32) * (1.0 - alpha) + color_mask.astype(np.float32) * alpha
    out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    if labels is None:
        return out
    if outline:
        edge = boundaries(labels)
        if background is not None:
            edge &= labels != background
        out[edge] = color_mask[edge]
    if background is not None:
        keep = labels == background
        out[keep] = image[keep]
    return out


def boundaries(labels: np.ndarray) -> np.ndarray:
    """H x W bool: pixels whose right, left, lower or upper neighbour has another class."""
    edge = np.zeros(labels.shape, dtype=bool)
    vertical = labels[1:] != labels[:-1]
    horizontal = labels[:, 1:] != labels[:, :-1]
    edge[1:] |= vertical
    edge[:-1] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    return edge
