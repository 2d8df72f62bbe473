"""Label maps other tools write beside colour masks, and reading such a mask (camvid,
common_semantic_segmentation, mapillary_vistas).

* ``label_colors.txt`` (CamVid; datumaro's CamVid and Cityscapes exports): ``R G B Name`` a line;
* ``class_dict.csv`` (the Kaggle CamVid): header ``name,r,g,b``;
* ``dataset_meta.json`` (datumaro): ``labels`` (names in order) and/or ``label_map``
  (``{"0": "Void", ...}``) with ``segmentation_colors`` (``[[r, g, b], ...]`` by ``label_map`` key),
  read as datumaro's ``parse_meta_file`` reads it.

:class:`LabelMapReader` is what the readers of such data share. A mask is read with :func:`read_label`: a palette or greyscale PNG as its indices (how segpipe
reads palette PNGs everywhere), a colour PNG as RGB to decode through the label map
(:func:`segpipe.data.formats.cvat.decode_colors`). No torch here.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path
from typing import Any

import numpy as np

from segpipe.data.formats._annotations import read_json, read_text
from segpipe.data.formats.base import ClassInfo, FormatReader, LabelledSample, as_index_array
from segpipe.errors import DataError, shorten

#: (name, colour) pairs; the colour is None where the file gives none.
LabelMap = list[tuple[str, "tuple[int, int, int] | None"]]
MAX_LABELS = 65535


def _rgb(values: Any, where: str) -> tuple[int, int, int]:
    try:
        rgb = tuple(int(v) for v in values)
    except (TypeError, ValueError, OverflowError):  # OverflowError: JSON's Infinity
        rgb = ()
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise DataError(f"{where}: colour {shorten(repr(values), 80)} is not r, g, b with values 0..255")
    return rgb  # type: ignore[return-value]


def _checked(pairs: LabelMap, path: Path) -> LabelMap:
    names = [n for n, _ in pairs]
    if not names:
        raise DataError(f"{path}: lists no labels")
    if len(names) > MAX_LABELS:
        raise DataError(f"{path}: more than {MAX_LABELS} labels")
    seen: set[str] = set()
    for name in names:  # a set: a file of MAX_LABELS names is checked at once (a list took minutes)
        if name in seen:
            raise DataError(f"{path}: label {shorten(repr(name), 80)} is listed twice")
        seen.add(name)
    return pairs


def read_label_colors(path: Path) -> LabelMap:
    """``label_colors.txt``: ``R G B Name`` (or a bare ``Name``) a line, ``#`` comments."""
    pairs: LabelMap = []
    for lineno, raw in enumerate(read_text(path).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) >= 4:
            pairs.append((" ".join(parts[3:]), _rgb(parts[:3], f"{path} line {lineno}")))
        elif len(parts) == 1:
            pairs.append((parts[0], None))
        else:
            raise DataError(f"{path} line {lineno}: expected 'R G B Name', got {shorten(repr(line), 80)}")
    return _checked(pairs, path)


def read_class_dict(path: Path) -> LabelMap:
    """``class_dict.csv``: a ``name,r,g,b`` header, then one class a row."""
    try:
        rows = [r for r in csv.reader(read_text(path).splitlines()) if r and any(c.strip() for c in r)]
    except csv.Error as e:  # a field over csv's limit (128 KiB), a NUL byte
        raise DataError(f"{path}: not a CSV label file ({e})") from None
    if not rows:
        raise DataError(f"{path}: empty")
    header = [h.strip().lower() for h in rows[0]]
    if not {"name", "r", "g", "b"} <= set(header):
        raise DataError(f"{path}: header {shorten(repr(','.join(rows[0])), 80)} is not name,r,g,b")
    col = {k: header.index(k) for k in ("name", "r", "g", "b")}
    pairs: LabelMap = []
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) < len(header):
            raise DataError(f"{path} line {lineno}: {len(row)} fields, the header has {len(header)}")
        where = f"{path} line {lineno}"
        pairs.append((row[col["name"]].strip(), _rgb([row[col[c]].strip() for c in "rgb"], where)))
    return _checked(pairs, path)


def read_dataset_meta(path: Path) -> LabelMap:
    """``dataset_meta.json`` as datumaro's ``parse_meta_file`` reads it: the ``labels`` names in
    order, then the ``label_map`` names not yet listed, each coloured by
    ``segmentation_colors[key]`` when given."""
    meta = read_json(path)
    if not isinstance(meta, dict):
        raise DataError(f"{path}: expected a JSON object with 'labels' or 'label_map'")
    labels = meta.get("labels", [])
    label_map = meta.get("label_map", {})
    colors = meta.get("segmentation_colors", [])
    if not isinstance(labels, list) or not all(isinstance(n, str) for n in labels):
        raise DataError(f"{path}: 'labels' must be a list of names")
    if not isinstance(label_map, dict) or not isinstance(colors, list):
        raise DataError(f"{path}: 'label_map' must be an object and 'segmentation_colors' a list")
    out: dict[str, tuple[int, int, int] | None] = dict.fromkeys(labels)
    for key, name in label_map.items():
        where = f"{path} label_map[{shorten(repr(key), 80)}]"
        if not isinstance(name, str):
            raise DataError(f"{where}: {shorten(repr(name), 80)} is not a name")
        out.setdefault(name, None)
        if colors and any(c is not None for c in colors):
            try:
                index = int(key)
                if index < 0:
                    raise IndexError(index)
                color = colors[index]
            except (ValueError, IndexError):
                raise DataError(f"{where}: no segmentation_colors entry for it") from None
            if color is not None:
                out[name] = _rgb(color, f"{path} segmentation_colors[{index}]")
    return _checked(list(out.items()), path)


def read_label(path: Path) -> tuple[np.ndarray, bool]:
    """(array, is_rgb): a palette or greyscale mask as H×W indices, a colour mask as H×W×3 RGB."""
    from segpipe.data.maskio import read_mask_file

    raw = read_mask_file(path)
    if raw.ndim == 3 and raw.dtype != np.uint8:
        raise DataError(f"{path}: a {raw.dtype} colour mask; colour masks are 8 bits a channel")
    if raw.ndim == 3:
        if raw.shape[2] < 3:
            return as_index_array(np.ascontiguousarray(raw[:, :, 0]), path), False
        return np.ascontiguousarray(raw[:, :, 2::-1]), True
    return as_index_array(raw, path), False


def filled_colors(pairs: LabelMap) -> tuple[tuple[int, int, int], ...]:
    """The colours of ``pairs``, the VOC colour map's where a label has none (as datumaro's
    ``generate_colormap``)."""
    from segpipe.data.formats.voc import voc_colormap

    cmap = voc_colormap(max(len(pairs), 1))
    return tuple(c if c is not None else tuple(int(v) for v in cmap[i]) for i, (_, c) in enumerate(pairs))  # type: ignore[misc]


def decode(arr: np.ndarray, is_rgb: bool, pairs: LabelMap, path: Path, source: str) -> np.ndarray:
    """Class ids of a mask read by :func:`read_label`: indices as they are (checked below the class
    count by the caller), colours through the label map."""
    if not is_rgb:
        return arr
    from segpipe.data.formats.cvat import decode_colors

    names = [n for n, _ in pairs]
    return decode_colors(arr, list(filled_colors(pairs)), names, path, source)


def check_below(ids: np.ndarray, n: int, ignore: int, path: Path, source: str) -> np.ndarray:
    """Refuse an index beyond the ``n`` classes of ``source`` (the ignore value passes)."""
    bad = (ids >= n) & (ids != ignore)
    if bad.any():
        y, x = (int(v[0]) for v in np.nonzero(bad))
        raise DataError(
            f"{path}: value {int(ids[y, x])} at pixel (x={x}, y={y}) is beyond the {n} classes of {source}"
        )
    return ids


class LabelMapReader(FormatReader):
    """A format whose classes are one label map the data ships (names and colours in class order:
    CamVid, datumaro's common semantic segmentation, Mapillary Vistas) and whose masks are PNGs of
    class indices or of those colours. The label map is read once (:meth:`read_labels`), the
    classes are its names and colours (the VOC colour map's where it gives none), and a mask is
    decoded through it and checked below its class count."""

    index_masks = True

    def read_labels(self) -> tuple[LabelMap, str]:
        """(the label map, where it came from in words); :meth:`labels` calls it once."""
        raise NotImplementedError

    @functools.cached_property
    def _label_map(self) -> tuple[LabelMap, str]:
        return self.read_labels()

    def labels(self) -> LabelMap:
        """The label map (read on first use; one line naming the file on a problem)."""
        return self._label_map[0]

    def classes(self) -> ClassInfo:
        pairs, source = self._label_map
        return ClassInfo(tuple(n for n, _ in pairs), filled_colors(pairs), source)

    def read_mask(self, sample: LabelledSample) -> np.ndarray:
        assert sample.label is not None
        pairs, source = self._label_map
        arr, is_rgb = read_label(sample.label)
        ids = self.convention(decode(arr, is_rgb, pairs, sample.label, source), is_rgb)
        return check_below(ids, len(pairs), self.ignore_index, sample.label, source)

    def convention(self, ids: np.ndarray, is_rgb: bool) -> np.ndarray:
        """The format's own rule on decoded class ids (``is_rgb``: decoded from colours) before
        they are checked, e.g. an index it ignores; as they are by default."""
        return ids
