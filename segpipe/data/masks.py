"""Mask decoding: single-channel class indices or RGB colours through a palette; class remapping."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from segpipe.errors import ConfigError, DataError
from segpipe.palette import Palette

MASK_TYPES = ("auto", "index", "color")
_UNKNOWN = np.uint16(65535)


def load_class_map(path: str | Path, ignore_index: int = 255) -> dict[int, int]:
    """Read a class-map file: one ``raw -> new`` rule per line.

    Accepted forms per line: ``raw,new``, ``raw new`` or ``raw: new``; ``new`` may be ``ignore``.
    ``#`` starts a comment. Raw values not listed keep their value. Errors name the file and line.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"class map {p} does not exist")
    rules: dict[int, int] = {}
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"--class-map {p}: not a text (UTF-8) file (byte {e.start})") from None
    for lineno, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [t for t in line.replace(",", " ").replace(":", " ").replace("->", " ").split() if t]
        if len(parts) != 2:
            raise ConfigError(
                f"{p} line {lineno}: expected 'raw,new' (or 'raw,ignore'), got {raw_line.strip()!r}"
            )
        try:
            src = int(parts[0])
            dst = ignore_index if parts[1].lower() == "ignore" else int(parts[1])
        except ValueError:
            raise ConfigError(
                f"{p} line {lineno}: values must be integers or 'ignore', got {raw_line.strip()!r}"
            ) from None
        if not 0 <= src <= 65535 or not 0 <= dst <= 65535:
            raise ConfigError(f"{p} line {lineno}: values must be within 0..65535, got {raw_line.strip()!r}")
        if src in rules:
            raise ConfigError(f"{p} line {lineno}: raw value {src} is mapped twice")
        rules[src] = dst
    if not rules:
        raise ConfigError(f"class map {p} holds no rules")
    return rules


class MaskDecoder:
    """Turns a mask as read from disk into a validated class-index map (uint8 or uint16).

    Args:
        num_classes: valid classes are 0..num_classes-1; ``ignore_index`` is also allowed.
        palette: needed for RGB colour masks.
        class_map: optional raw -> new remapping (applied after palette decoding).
        mask_type: ``auto`` (single channel or equal channels with valid values = indices,
            otherwise colours), ``index`` or ``color``.
        limit: how messages name the class count, default ``--num-classes N`` (``evaluate`` names
            the model instead).
        value_lut: a 65536-entry uint16 lookup table used instead of ``class_map`` (reduce-zero-label
            and the class map in one, see :func:`segpipe.data.formats.base.value_lut`).

    A palette that gives one colour to two classes is refused when colour masks are decoded (at
    once with ``mask_type="color"``). Colours of a palette cut to ``num_classes``
    (:meth:`Palette.truncated`) still decode, to their own ids, so a mask using one is reported as
    a class id beyond the class count, not as an unknown colour.
    """

    def __init__(
        self,
        num_classes: int,
        palette: Palette | None = None,
        class_map: dict[int, int] | None = None,
        ignore_index: int = 255,
        mask_type: str = "auto",
        limit: str | None = None,
        value_lut: np.ndarray | None = None,
    ) -> None:
        if mask_type not in MASK_TYPES:
            raise ConfigError(f"--mask-type {mask_type!r} is not one of {', '.join(MASK_TYPES)}")
        if mask_type == "color" and palette is not None:
            palette.check_unique_colors()
        self.num_classes = num_classes
        self.limit = limit or f"--num-classes {num_classes}"
        self.palette = palette
        self.ignore_index = ignore_index
        self.mask_type = mask_type
        self._map_lut: np.ndarray | None = value_lut
        if class_map and value_lut is None:
            lut = np.arange(65536, dtype=np.uint16)
            for src, dst in class_map.items():
                lut[src] = dst
            self._map_lut = lut
        self._color_lut: np.ndarray | None = None

    def _palette_lut(self) -> np.ndarray:
        # 2**24 entries (32 MB, built once): colour key -> class id, 65535 for unknown colours.
        if self._color_lut is None:
            self.palette.check_unique_colors()  # type: ignore[union-attr]
            lut = np.full(1 << 24, _UNKNOWN, dtype=np.uint16)
            entries = self.palette.all_entries()  # type: ignore[union-attr]
            pal = np.asarray([rgb for _, rgb in entries], dtype=np.uint32).reshape(-1, 3)
            keys = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
            lut[keys] = np.arange(len(pal), dtype=np.uint16)
            self._color_lut = lut
        return self._color_lut

    def decode(self, raw: np.ndarray, path: str | Path = "") -> np.ndarray:
        """``raw``: as returned by ``cv2.imread(path, IMREAD_UNCHANGED)`` (BGR order for colour)."""
        if raw.ndim == 3 and raw.shape[2] == 1:
            raw = raw[:, :, 0]
        if raw.ndim == 3:
            bgr = raw[:, :, :3]
            if raw.dtype != np.uint8:
                raise DataError(f"{path}: colour masks must be 8-bit, got {raw.dtype}")
            as_index = self.mask_type == "index" or (
                self.mask_type == "auto"
                and np.array_equal(bgr[:, :, 0], bgr[:, :, 1])
                and np.array_equal(bgr[:, :, 1], bgr[:, :, 2])
                and self._valid_values(bgr[:, :, 0])
            )
            if not as_index:
                labels = self._decode_colors(bgr, path)
                if self._map_lut is None:
                    self._check_palette_ids(labels, bgr, path)
            else:
                labels = bgr[:, :, 0]
        else:
            if self.mask_type == "color":
                raise DataError(f"{path}: --mask-type color but the mask has a single channel")
            labels = raw
        if self._map_lut is not None:
            labels = self._map_lut[labels]
        self._validate(labels, path)
        if labels.dtype != np.uint8 and self.num_classes <= 255 and self.ignore_index <= 255:
            labels = labels.astype(np.uint8)
        return labels

    def _valid_values(self, labels: np.ndarray) -> bool:
        values = np.unique(labels) if self._map_lut is None else np.unique(self._map_lut[labels])
        return bool(np.all((values < self.num_classes) | (values == self.ignore_index)))

    def _decode_colors(self, bgr: np.ndarray, path: str | Path) -> np.ndarray:
        if self.palette is None:
            raise DataError(f"{path}: RGB colour mask but no palette; pass --colors")
        # BGRA bytes read as one little-endian uint32 = R<<16 | G<<8 | B (+ alpha, masked off):
        # two vectorised passes instead of three casts and shifts.
        keys = cv2.cvtColor(np.ascontiguousarray(bgr), cv2.COLOR_BGR2BGRA).view(np.uint32)[:, :, 0]
        np.bitwise_and(keys, 0xFFFFFF, out=keys)
        labels = self._palette_lut()[keys]
        if (labels == _UNKNOWN).any():
            ys, xs = np.nonzero(labels == _UNKNOWN)
            y, x = int(ys[0]), int(xs[0])
            rgb = tuple(int(c) for c in bgr[y, x][::-1])
            src = f" {self.palette.source}" if self.palette.source else ""
            raise DataError(
                f"{path}: colour {rgb} at pixel (x={x}, y={y}) is not in the palette{src} "
                f"({len(ys)} pixels); fix the mask or pass --colors with a palette that has it"
            )
        return labels

    def _check_palette_ids(self, labels: np.ndarray, bgr: np.ndarray, path: str | Path) -> None:
        """A palette colour whose id is >= the class count: name the colour, its class and the limit."""
        top = int(labels.max()) if labels.size else 0
        if top < self.num_classes:
            return
        bad = (labels >= self.num_classes) & (labels != self.ignore_index)
        if not bad.any():
            return
        ys, xs = np.nonzero(bad)
        y, x = int(ys[0]), int(xs[0])
        cid = int(labels[y, x])
        rgb = tuple(int(c) for c in bgr[y, x][::-1])
        name = self.palette.all_entries()[cid][0]  # type: ignore[union-attr]
        src = f" {self.palette.source}" if self.palette.source else ""  # type: ignore[union-attr]
        raise DataError(
            f"{path}: colour {rgb} at pixel (x={x}, y={y}) is class {cid} {name!r} in the palette{src}, "
            f"but class ids must be below {self.limit} ({len(ys)} pixels); raise the class count or "
            "map the class with --class-map"
        )

    def _validate(self, labels: np.ndarray, path: str | Path) -> None:
        # bincount-free check: the max of values that are not the ignore index
        top = int(labels.max()) if labels.size else 0
        if top < self.num_classes:
            return
        bad = labels[(labels >= self.num_classes) & (labels != self.ignore_index)]
        if bad.size:
            raise DataError(
                f"{path}: mask value {int(bad.max())} is >= {self.limit} and is not "
                f"the ignore index {self.ignore_index} ({bad.size} pixels); fix the class count or use --class-map"
            )
