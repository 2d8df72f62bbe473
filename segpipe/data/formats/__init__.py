"""Label formats: one reader per format behind one interface (ARCHITECTURE.md convention 13).

Contract (what every reader in ``segpipe/data/formats/<name>.py`` gives; see :mod:`.base`):

* :class:`~segpipe.data.formats.base.FormatReader` subclass, registered in :data:`FORMATS`
  (declared in :mod:`segpipe.options.formats`, which ``--format``'s help and check read) as
  ``name -> "module:Class"`` (imported lazily: a registered module that is not installed is
  simply not offered);
* ``detect(root) -> str | None``: a short reason when the folder looks like the format;
* ``__init__(root, *, ignore_index=255, reduce_zero_label=None, class_map=None, num_classes=None,
  reporter=None, **format_options)``: format options are declared in ``Reader.options``;
* ``samples() -> list[LabelledSample(name, image, label, split, key)]``, ``split`` set
  (``train``/``val``/``test``) when the format ships splits;
* ``classes() -> ClassInfo(names, colors, source)``;
* ``read_mask(sample) -> np.ndarray``: H×W uint8/uint16 class indices, ``ignore_index`` for ignored
  pixels, the format's conventions applied; any problem is one :class:`DataError` line naming the
  file. ``load(sample)`` (shared) adds the image, reduce-zero-label, the class map and the class-id
  check.

Callers use :func:`open_dataset` (``format="auto"`` detects) and :func:`detect_format`; commands
open readers with their options through :func:`segpipe.data.build.open_reader`. Palette-mode
PNG masks are read as their indices everywhere (:func:`segpipe.data.maskio.read_mask_file`).
No torch here.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from segpipe.data.formats.base import DATA_CLASSES, ClassInfo, FormatReader, LabelledSample, check_root
from segpipe.errors import ConfigError, DataError
from segpipe.options.flags import IMAGES_DIR, MASK_SUFFIX, MASK_TYPE, MASKS_DIR
from segpipe.options.formats import FORMATS, check_format

__all__ = [
    "DATA_CLASSES",
    "FORMATS",
    "SEED_LAYOUT",
    "ClassInfo",
    "FormatReader",
    "LabelledSample",
    "available_formats",
    "detect_format",
    "formats_listing",
    "refused_layouts",
    "open_dataset",
    "reader_class",
    "resolve_format",
    "select_split",
]


#: The seed layout's options and their defaults (``--images-dir``, ``--masks-dir``, ``--mask-suffix``).
SEED_LAYOUT: dict[str, str] = {
    "images_dir": IMAGES_DIR.default,
    "masks_dir": MASKS_DIR.default,
    "mask_suffix": MASK_SUFFIX.default,
    "mask_type": MASK_TYPE.default,
}
#: Flags every command that reads labels passes (name -> (default, the formats it applies to)):
#: dropped at their default for a format without them, refused (one line) when set.
FORMAT_FLAGS: dict[str, tuple[str, str]] = {"crowds": ("ignore", "COCO crowds (coco, coco_panoptic)")}
#: Options a reader may use when it can and that are dropped for the others (``palette``: the
#: ``--colors`` palette, which decodes colour masks of the seed layout and colours pictures).
HINTS = ("palette", "default_palette")

_cache: dict[str, type[FormatReader] | None] = {}


def reader_class(name: str) -> type[FormatReader] | None:
    """The reader class of format ``name`` (None when its module is not part of this install)."""
    if name not in _cache:
        module, _, cls = FORMATS[name].partition(":")
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            _cache[name] = None
        else:
            _cache[name] = getattr(mod, cls)
    return _cache[name]


def available_formats() -> list[str]:
    """Format names that can be read, in :data:`FORMATS` order."""
    return [n for n in FORMATS if reader_class(n) is not None]


def formats_listing() -> list[tuple[str, str, str]]:
    """(name, what it is, the files that identify it) of every format this install reads, in
    :data:`FORMATS` order: what ``segpipe data --formats`` prints."""
    out = []
    for n in available_formats():
        cls = reader_class(n)
        assert cls is not None
        out.append((n, cls.description, cls.layout))
    return out


def refused_layouts() -> tuple[tuple[str, str, str], ...]:
    """(what, the files, what to do instead) of the layouts segpipe recognises that hold no masks
    (each refused in one line when met): the end of ``segpipe data --formats``."""
    from segpipe.data.formats._hints import REFUSED

    return REFUSED


def _matches(root: Path) -> list[tuple[str, str, bool]]:
    """(name, reason, generic) of the formats that detect ``root``, refined ones dropped, the
    specific ones when there are any."""
    found: list[tuple[str, str, bool]] = []
    for name in available_formats():
        cls = reader_class(name)
        reason = cls.detect(root)  # type: ignore[union-attr]
        if reason:
            found.append((name, reason, cls.generic))  # type: ignore[union-attr]
    refined = {r for n, _, _ in found for r in reader_class(n).refines}  # type: ignore[union-attr]
    found = [f for f in found if f[0] not in refined]
    return [f for f in found if not f[2]] or found


def _one_format(root: Path) -> tuple[str, str] | None:
    try:
        pick = _matches(root) if root.is_dir() else []
    except (OSError, DataError):
        return None
    return (pick[0][0], pick[0][1]) if len(pick) == 1 else None


def _check_root(root: Path) -> None:
    """:func:`check_root`; a file inside a data set (``annotations.xml``, ``data.yaml``) also names
    the folder that is the data set."""
    try:
        check_root(root)
    except DataError as e:
        if root.is_file():
            from segpipe.data.formats._hints import nearby

            hint = nearby(root, _one_format)
            if hint:
                raise DataError(f"{e}; {hint}") from None
        raise


def detect_format(root: str | Path) -> tuple[str, str]:
    """(format name, reason) of the data root. A specific format wins over a generic one (the
    seed layout, YOLO labels...); two specific (or, with none, two generic) matches are one line
    naming them and asking for ``--format``. None is one short line: a layout that holds no masks
    says why, a data set one folder up (or down) is named, else it points at ``segpipe data
    --formats``."""
    from segpipe.data.formats._hints import FORMATS_HINT, nearby, not_segmentation

    root = Path(root)
    _check_root(root)  # missing, a file, a FIFO or a device: one line
    if next(root.iterdir(), None) is None:
        raise DataError(f"data root {root} is an empty folder")
    pick = _matches(root)
    if len(pick) == 1:
        return pick[0][0], pick[0][1]
    if not pick:
        refused = not_segmentation(root)
        if refused:
            raise DataError(refused)
        hint = nearby(root, _one_format)
        raise DataError(f"{root}: no label format found; " + (hint or f"pass --format ({FORMATS_HINT})"))
    listed = "; ".join(f"{n} with {r}" for n, r, _ in sorted(pick))  # a reason holds its own brackets
    raise DataError(f"{root}: it could be read as several formats: {listed}; pick one with --format")


def resolve_format(root: str | Path, format: str = "auto", **options: Any) -> tuple[str, str]:
    """(format name, why) that :func:`open_dataset` reads ``root`` as: ``format`` when given, else
    the seed layout when ``options`` set its folders (``images_dir``...), else :func:`detect_format`
    (a half seed layout, ``images/`` or ``indexes/`` alone, is read as seed for its precise error).
    Cheap: commands call it before loading a model so a wrong folder fails first."""
    fmt = check_format(format)
    root_p = Path(root)
    if os.path.exists(root_p) and not root_p.is_dir():
        _check_root(root_p)  # a file, a FIFO, a device: one line saying which
    custom_layout = any(options.get(k) not in (None, v) for k, v in SEED_LAYOUT.items() if k != "mask_type")
    if fmt == "auto" and custom_layout:  # --images-dir/--masks-dir/--mask-suffix describe the seed layout
        return "seed", "--images-dir/--masks-dir/--mask-suffix"
    if fmt == "auto":
        try:
            return detect_format(root)
        except DataError:
            if not any((root_p / d).is_dir() for d in ("images", "indexes")):
                raise
            return "seed", "images/ or indexes/"  # half a seed layout: its own precise error
    if reader_class(fmt) is None:
        raise ConfigError(
            f"--format {fmt}: this install cannot read it (use {', '.join(available_formats())})"
        )
    _check_root(root_p)
    return fmt, "--format"


def open_dataset(
    root: str | Path,
    format: str = "auto",
    **options: Any,
) -> FormatReader:
    """The reader of ``root`` in ``format`` (``auto``: :func:`detect_format`).

    ``options``: the common reader options (``ignore_index``, ``reduce_zero_label``, ``class_map``,
    ``num_classes``, ``reporter``) and format options. Options left at None are dropped; the seed
    layout's options (:data:`SEED_LAYOUT`) at their defaults are dropped for other formats, and refused
    (one line) when set to something else. The chosen format and why: ``reader.detected``.
    """
    fmt, reason = resolve_format(root, format, **options)
    cls = reader_class(fmt)
    assert cls is not None
    opts = {k: v for k, v in options.items() if v is not None}
    for key, default in SEED_LAYOUT.items():
        if key in opts and key not in cls.options:
            if opts[key] != default:
                raise ConfigError(
                    f"--{key.replace('_', '-')} {opts[key]}: applies to the seed layout, not to {root} "
                    f"read as {fmt}"
                )
            del opts[key]
    for key, (default, where) in FORMAT_FLAGS.items():
        if key in opts and key not in cls.options:
            if opts[key] != default:
                raise ConfigError(f"--{key} {opts[key]}: applies to {where}, not to {root} read as {fmt}")
            del opts[key]
    for key in HINTS:
        if key not in cls.options:
            opts.pop(key, None)
    reader = cls(root, **opts)
    reader.detected = reason
    return reader


def select_split(samples: list[LabelledSample], split: str | None, root: Path) -> list[LabelledSample]:
    """The samples of ``split`` (None: ``val`` when the data ships one, else all; ``all``: all)."""
    splits = sorted({s.split for s in samples if s.split is not None})
    if split == "all" or (split is None and "val" not in splits):
        return samples
    want = split or "val"
    chosen = [s for s in samples if s.split == want]
    if not chosen:
        have = ", ".join(splits) if splits else "no splits"
        raise DataError(f"--split {want}: {root} has no {want} split ({have}); use --split all")
    return chosen
