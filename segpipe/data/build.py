"""The one place a command turns a data root and its flags into what it reads.

* :func:`open_reader`: the reader of a data root with the data flags every command shares
  (``evaluate``, ``visualize --data-root``, ``segpipe data`` and ``train`` all open readers here);
  the format is named or detected, and checked, by the registry (:mod:`segpipe.data.formats`).
* :func:`build_data`: everything ``train`` reads, in one call: the class count (flags, the
  checkpoint it starts from, else the data's own, read by the reader it is built into), names and
  palette, the readers built with that count, the train / validation datasets (the data set's own
  split, ``--val-root`` or ``--val-fraction``), checked up front, and the record of the split the
  model files carry. ``--dataset module:Class`` builds the datasets from the user's class instead.

No torch at import (``evaluate`` of an ONNX model opens its reader here); :func:`build_data`
imports the torch dataset when it runs.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from segpipe.data.classes import resolve_classes
from segpipe.data.dataset import DatasetStats, scan_samples
from segpipe.data.formats import DATA_CLASSES, ClassInfo, FormatReader, open_dataset
from segpipe.data.heldout import split_by_fraction, split_record
from segpipe.data.masks import load_class_map
from segpipe.errors import ConfigError, DataError
from segpipe.options import TrainOptions, check_ignore_index
from segpipe.palette import Palette, load_palette
from segpipe.progress import Reporter

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from segpipe.models import Checkpoint


def open_reader(opts: Any, root: str | Path | None = None, **overrides: Any) -> FormatReader:
    """:func:`~segpipe.data.formats.open_dataset` of ``root`` (default ``opts.data_root``) with the
    data flags read off a command's options (``format``, ``ignore_index``, ``reduce_zero_label``,
    ``crowds``, the seed layout's ``images_dir``, ``masks_dir``, ``mask_suffix``, ``mask_type`` and
    ``colors``, each when the options have it); ``overrides`` win (``num_classes``, ``class_map``,
    ``reporter``...). With ``--format auto`` and no ``root`` it says which format it found and why,
    through ``overrides["reporter"]``."""
    colors = getattr(opts, "colors", None)
    options: dict[str, Any] = {
        key: getattr(opts, key, None)
        for key in (
            "ignore_index",
            "reduce_zero_label",
            "crowds",
            "images_dir",
            "masks_dir",
            "mask_suffix",
            "mask_type",
        )
    }
    options["palette"] = load_palette(colors) if colors is not None else None
    options.update(overrides)
    reader = open_dataset(root or opts.data_root, opts.format, **options)
    reporter = options.get("reporter")
    if opts.format == "auto" and reporter is not None and root is None:
        reporter.info(format_line(opts.data_root, reader))
    return reader


def format_line(root: str | Path, reader: FormatReader) -> str:
    """The one line saying what ``root`` is read as and why: ``DIR: seed format, found images/ and
    indexes/ (segpipe's layout)``, ``DIR: voc format, given by --format`` (a reason holds its own
    brackets: never wrapped in more)."""
    why = reader.detected
    return f"{root}: {reader.name} format, " + (f"given by {why}" if why.startswith("--") else f"found {why}")


@dataclass
class DataBuild:
    """What ``train`` reads (:func:`build_data`)."""

    num_classes: int
    names: tuple[str, ...]
    palette: Palette
    train: Dataset
    val: Dataset | None
    #: The readers of the data root and of ``--val-root`` (the same one without it); None with
    #: ``--dataset``.
    reader: FormatReader | None = None
    val_reader: FormatReader | None = None
    #: The scan's pixel counts (all images) and those of the training images alone (for
    #: ``--class-weights inverse``); None without a scan and with ``--dataset``.
    stats: DatasetStats | None = None
    train_pixels: np.ndarray | None = None
    #: The record of the split (:func:`segpipe.data.heldout.split_record`); None with ``--dataset``.
    split: dict[str, Any] | None = None


def given_class_count(opts: TrainOptions, start: Checkpoint | None = None) -> int | None:
    """The class count the flags or the checkpoint training starts from give (None: the data's)."""
    num = opts.num_classes
    if start is not None and start.info is not None:
        if num is not None and num != start.info.num_classes:
            raise ConfigError(
                f"--num-classes {num} contradicts {start.path}, which was trained for "
                f"{start.info.num_classes} classes"
            )
        num = start.info.num_classes
    if num is None and opts.class_names:
        num = len(opts.class_names)
    if num is None and opts.mode == "binary":
        num = 2
    return num


def build_data(
    opts: TrainOptions, reporter: Reporter | None = None, start: Checkpoint | None = None, scan: bool = True
) -> DataBuild:
    """Everything ``train`` reads, checked before anything is written (module docstring).

    ``start``: the checkpoint training starts from (its class count and names). ``scan``: decode
    every pair once (in a distributed run only rank 0 does, unless the class weights need the
    counts). With ``--dataset module:Class`` the class is built as ``Class(root=, split="train" |
    "val", transform=)`` and must return (image H×W×3 uint8 RGB tensor, mask H×W int tensor) pairs.
    """
    from segpipe.data.augment import build_eval_transform, build_transform
    from segpipe.data.torchdata import SegDataset

    reporter = reporter or Reporter()
    num = given_class_count(opts, start)
    reader = class_map = None
    if not opts.dataset:
        class_map = load_class_map(opts.class_map, opts.ignore_index) if opts.class_map else None
        count = DATA_CLASSES if num is None else num
        reader = open_reader(opts, class_map=class_map, reporter=reporter, num_classes=count)
        if num is None and reader.num_classes is not None:
            num = reader.num_classes
            reporter.info(
                f"{num} classes, names from {reader.classes().source or Path(opts.data_root) / 'colors.csv'}"
            )
    if num is None:
        raise ConfigError(
            "--num-classes is required: the data names no classes (or give --class-names, or a "
            "colors.csv in DATA_ROOT, or a checkpoint to resume from)"
        )
    names, palette = _classes(opts, start, num, reporter, reader)
    width, height = opts.size
    train_tf = build_transform(opts.augment, width, height, opts.ignore_index, seed=opts.seed)
    eval_tf = build_eval_transform(width, height)
    if opts.dataset:
        train = _custom_dataset(opts.dataset, opts.data_root, "train", train_tf)
        val = _custom_dataset(opts.dataset, opts.val_root or opts.data_root, "val", eval_tf)
        return DataBuild(num, names, palette, train, val if len(val) else None)
    assert reader is not None
    val_reader = reader
    if opts.val_root is not None:
        val_reader = open_reader(opts, opts.val_root, class_map=class_map, reporter=reporter, num_classes=num)
    kind, pool, train_samples, val_samples = _split(opts, reader, val_reader, reporter)
    stats = train_pixels = None
    if scan:
        stats = scan_samples(train_samples, reader, reporter)
        train_pixels = stats.class_pixels.copy()
        if val_samples:
            more = scan_samples(val_samples, val_reader, reporter)
            stats = DatasetStats(
                stats.count + more.count,
                stats.class_pixels + more.class_pixels,
                stats.ignored_pixels + more.ignored_pixels,
            )
    return DataBuild(
        num,
        names,
        palette,
        SegDataset(train_samples, reader, train_tf),
        SegDataset(val_samples, val_reader, eval_tf) if val_samples else None,
        reader,
        val_reader,
        stats,
        train_pixels,
        split_record(kind, opts.data_root, pool, len(val_samples), opts.seed, opts.val_fraction),
    )


def _classes(
    opts: TrainOptions, start: Checkpoint | None, num: int, reporter: Reporter, reader: FormatReader | None
) -> tuple[tuple[str, ...], Palette]:
    """Names and colours of ``num`` classes. Names: ``--class-names``, else the data's (format
    names, ``colors.csv`` in DATA_ROOT), else the checkpoint's, else ``class_0...`` with one line
    saying how to name them. Colours: ``--colors``, the data's, else the shipped palette."""
    if opts.mode != "binary":
        from_ckpt = f" (from {start.path})" if start is not None and opts.num_classes is None else ""
        check_ignore_index(opts.ignore_index, num, from_ckpt)  # type: ignore[arg-type]
    if opts.class_names and len(opts.class_names) != num:
        raise ConfigError(f"--class-names gives {len(opts.class_names)} names for {num} classes")
    info = reader.classes() if reader is not None else ClassInfo()
    found = resolve_classes(num, info, opts.data_root, opts.class_names, opts.colors)
    names, hint = found.names, found.hint
    if (
        hint is not None
        and start is not None
        and start.info is not None
        and len(start.info.class_names) == num
    ):
        names, hint = tuple(start.info.class_names), None
    if found.palette_warning:
        reporter.warn(found.palette_warning)
    if hint:
        reporter.warn(hint)
    return names, Palette(names, found.palette.colors, found.palette.source)


def _split(
    opts: TrainOptions, reader: FormatReader, val_reader: FormatReader, reporter: Reporter
) -> tuple[str, list[Any], list[Any], list[Any]]:
    """(kind of split, the samples it chose from, training samples, validation samples): the
    images of ``--val-root``, else the data set's own validation split, else ``--val-fraction`` of
    the data (a test split never trains nor validates)."""
    samples = reader.samples()
    if opts.val_root is not None:
        pool = [s for s in samples if s.split != "test"]
        val = [s for s in val_reader.samples() if s.split != "test"]
        kind, train = "val_root", pool
    elif any(s.split == "val" for s in samples):
        train = [s for s in samples if s.split == "train"]
        val = [s for s in samples if s.split == "val"]
        kind, pool = "own", [s for s in samples if s.split != "test"]
        reporter.info(
            f"{opts.data_root}: the data set's own split, {len(train)} training and "
            f"{len(val)} validation images (--val-fraction applies without one)"
        )
    else:
        pool = [s for s in samples if s.split != "test"]
        train, val = split_by_fraction(pool, opts.seed, opts.val_fraction)
        kind = "fraction"
    if not train:
        raise DataError(f"no training images left in {opts.data_root} after the validation split")
    return kind, pool, train, val


def _custom_dataset(spec: str, root: Path, split: str, transform: Any) -> Dataset:
    """``Class(root=, split=, transform=)`` of ``--dataset module:Class`` (imports and runs that code)."""
    module_name, _, cls_name = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"--dataset {spec}: cannot import it ({e})") from e
    expected = "a dataset class taking root=, split= and transform= (see --help)"
    if not inspect.isclass(cls):
        raise ConfigError(
            f"--dataset {spec}: {type(cls).__name__} {cls_name!r} is not a class; give {expected}"
        )
    try:
        inspect.signature(cls).bind(root=root, split=split, transform=transform)
    except TypeError as e:
        raise ConfigError(
            f"--dataset {spec}: {cls_name} does not take root=, split=, transform= ({e})"
        ) from None
    except ValueError:
        pass  # no signature to read (a builtin): the call below decides
    try:
        dataset = cls(root=root, split=split, transform=transform)
    except Exception as e:
        raise ConfigError(
            f"--dataset {spec}: {cls_name}(root={str(root)!r}, split={split!r}) failed: "
            f"{type(e).__name__}: {e}"
        ) from e
    if isinstance(dataset, Mapping) or not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
        raise ConfigError(
            f"--dataset {spec}: {cls_name} objects are not a sequence of (image, mask) pairs "
            f"(no integer __getitem__/__len__); give {expected}"
        )
    try:  # one pair read up front: what the loader would read first, as one line if it fails
        first = dataset[0] if len(dataset) else None
    except Exception as e:
        raise ConfigError(f"--dataset {spec}: {cls_name}[0] failed: {type(e).__name__}: {e}") from e
    if first is not None and not (isinstance(first, (tuple, list)) and len(first) == 2):
        raise ConfigError(
            f"--dataset {spec}: {cls_name}[0] is a {type(first).__name__}, not an (image, mask) pair"
        )
    return dataset
