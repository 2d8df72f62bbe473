"""Everything ``train`` resolves before the first step: classes, palette, data splits, run folder.

All checks happen here, before anything is written, so bad input never leaves half a run behind.
"""

from __future__ import annotations

import importlib
import inspect
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from segpipe.data.augment import build_eval_transform, build_transform
from segpipe.data.classes import data_classes_count
from segpipe.data.classes import resolve_classes as resolve_data_classes
from segpipe.data.dataset import DatasetStats, scan_samples
from segpipe.data.formats import ClassInfo, FormatReader, open_for_options
from segpipe.data.heldout import split_by_fraction, split_record
from segpipe.data.masks import load_class_map
from segpipe.data.torchdata import SegDataset
from segpipe.errors import ConfigError, DataError
from segpipe.models import Checkpoint
from segpipe.options import TrainOptions, check_ignore_index
from segpipe.palette import Palette
from segpipe.progress import Reporter
from segpipe.training.distributed import restart_count
from segpipe.training.runlock import RunLock, in_use, lock_run_dir


def open_train_data(opts: TrainOptions, reporter: Reporter, root: Path | None = None) -> FormatReader | None:
    """The reader of ``opts.data_root`` (or ``root``) in ``opts.format`` (None with ``--dataset``);
    says which format it read and why when it detected it."""
    if opts.dataset:
        return None
    class_map = load_class_map(opts.class_map, opts.ignore_index) if opts.class_map else None
    return open_for_options(opts, root, class_map=class_map, reporter=reporter)


def resolve_classes(
    opts: TrainOptions, ckpt: Checkpoint | None, reporter: Reporter, reader: FormatReader | None = None
) -> tuple[int, tuple[str, ...], Palette]:
    """Number of classes, their names and colours: from the flags, the checkpoint and the data.

    Names: ``--class-names``, else the data's (format names, ``colors.csv`` in DATA_ROOT), else the
    checkpoint's, else ``class_0...`` with one line saying how to name them. Colours: ``--colors``,
    the data's, else the shipped palette (colours only).
    """
    info = reader.classes() if reader is not None else ClassInfo()
    num = opts.num_classes
    if ckpt is not None and ckpt.info is not None:
        if num is not None and num != ckpt.info.num_classes:
            raise ConfigError(
                f"--num-classes {num} contradicts {ckpt.path}, which was trained for {ckpt.info.num_classes} classes"
            )
        num = ckpt.info.num_classes
    if num is None and opts.class_names:
        num = len(opts.class_names)
    if num is None and opts.mode == "binary":
        num = 2
    if num is None and reader is not None:
        num = data_classes_count(info, opts.data_root)
        if num is not None:
            reporter.info(f"{num} classes, names from {info.source or Path(opts.data_root) / 'colors.csv'}")
    if num is None:
        raise ConfigError(
            "--num-classes is required: the data names no classes (or give --class-names, or a "
            "colors.csv in DATA_ROOT, or a checkpoint to resume from)"
        )
    if opts.mode != "binary":
        from_ckpt = f" (from {ckpt.path})" if ckpt is not None and opts.num_classes is None else ""
        check_ignore_index(opts.ignore_index, num, from_ckpt)  # type: ignore[arg-type]
    if opts.class_names and len(opts.class_names) != num:
        raise ConfigError(f"--class-names gives {len(opts.class_names)} names for {num} classes")
    found = resolve_data_classes(num, info, opts.data_root, opts.class_names, opts.colors)
    names, hint = found.names, found.hint
    if hint is not None and ckpt is not None and ckpt.info is not None and len(ckpt.info.class_names) == num:
        names, hint = tuple(ckpt.info.class_names), None
    if found.palette_warning:
        reporter.warn(found.palette_warning)
    if hint:
        reporter.warn(hint)
    return num, names, Palette(names, found.palette.colors, found.palette.source)


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


def build_datasets(
    opts: TrainOptions,
    num_classes: int,
    palette: Palette,
    reporter: Reporter,
    scan: bool = True,
    reader: FormatReader | None = None,
) -> tuple[Dataset, Dataset | None, DatasetStats | None, np.ndarray | None, dict[str, Any] | None]:
    """Train and validation datasets, checked up front (``scan``: decode every pair once; in a
    distributed run only rank 0 does, and reports what it finds to the others), the scan's
    pixel counts per class (all images) and those of the training images alone (for
    ``--class-weights inverse``; None without a scan), and the record of the split the model
    files carry (:func:`segpipe.data.heldout.split_record`; None for ``--dataset``).

    With ``--dataset module:Class`` the class is built as ``Class(root=, split="train"|"val",
    transform=)`` and must return (image H×W×3 uint8 RGB tensor, mask H×W int tensor) pairs.
    """
    width, height = opts.size
    train_tf = build_transform(opts.augment, width, height, opts.ignore_index, seed=opts.seed)
    eval_tf = build_eval_transform(width, height)
    if opts.dataset:
        train = _custom_dataset(opts.dataset, opts.data_root, "train", train_tf)
        val = _custom_dataset(opts.dataset, opts.val_root or opts.data_root, "val", eval_tf)
        return train, (val if len(val) else None), None, None, None
    reader = reader or open_train_data(opts, reporter)
    assert reader is not None
    reader.num_classes = num_classes
    samples = reader.samples()
    val_reader = reader
    if opts.val_root is not None:
        val_reader = open_train_data(opts, reporter, opts.val_root)  # type: ignore[assignment]
        val_reader.num_classes = num_classes
        train_samples = [s for s in samples if s.split != "test"]
        val_samples = [s for s in val_reader.samples() if s.split != "test"]
        kind, pool = "val_root", train_samples
    elif any(s.split == "val" for s in samples):
        train_samples = [s for s in samples if s.split == "train"]
        val_samples = [s for s in samples if s.split == "val"]
        kind, pool = "own", [s for s in samples if s.split != "test"]
        reporter.info(
            f"{opts.data_root}: the data set's own split, {len(train_samples)} training and "
            f"{len(val_samples)} validation images (--val-fraction applies without one)"
        )
    else:
        samples = [s for s in samples if s.split != "test"]
        train_samples, val_samples = split_by_fraction(samples, opts.seed, opts.val_fraction)
        kind, pool = "fraction", samples
    if not train_samples:
        raise DataError(f"no training images left in {opts.data_root} after the validation split")
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
    train = SegDataset(train_samples, reader, train_tf)
    val = SegDataset(val_samples, val_reader, eval_tf) if val_samples else None
    record = split_record(kind, opts.data_root, pool, len(val_samples), opts.seed, opts.val_fraction)
    return train, val, stats, train_pixels, record


def resumable(ckpt: Checkpoint | None) -> bool:
    """``ckpt`` can be resumed: it holds a run's optimizer state (``last.pth``; ``best.pth`` is for
    deployment and holds the weights and their description only)."""
    return bool(ckpt is not None and ckpt.train_state and "optimizer" in ckpt.train_state)


def holds_run(folder: Path) -> bool:
    """``folder`` holds the checkpoints of an earlier run."""
    return (folder / "last.pth").exists() or (folder / "best.pth").exists()


def resolve_run_dir(opts: TrainOptions, resume_from: Path | None) -> Path:
    """``--output-dir`` as given; else the folder of the checkpoint being resumed; else
    ``runs/<model_name>``, or ``runs/<model_name>-2``, ``-3``... when that already holds a run or
    another run is using it."""
    if opts.output_dir is not None:
        return Path(opts.output_dir)
    if resume_from is not None:
        return resume_from.parent
    base = Path("runs") / opts.model_name
    candidate, i = base, 2
    while holds_run(candidate) or in_use(candidate):
        candidate = base.with_name(f"{opts.model_name}-{i}")
        i += 1
    return candidate


def resume_flags(opts: TrainOptions, run: Path) -> str:
    """What to add to the command that trained into ``run`` to go on from its ``last.pth``:
    ``--resume``, with ``--output-dir RUN`` when the command did not name that folder and
    ``--resume`` alone would look in ``runs/<model_name>``."""
    default = Path("runs") / opts.model_name
    if opts.output_dir is not None or Path(run).resolve() == default.resolve():
        return "--resume"
    return f"--resume --output-dir {run}"


def earlier_run_note(opts: TrainOptions, run: Path) -> tuple[bool, str] | None:
    """(interrupted, one line) when a new run goes to ``runs/<model_name>-N`` because the folder
    before it holds an earlier run: which, whether it was interrupted, and how to go on from it."""
    import torch

    default = Path("runs") / opts.model_name
    suffix = Path(run).name.removeprefix(f"{opts.model_name}-")
    if Path(run).parent != default.parent or not suffix.isdigit():
        return None
    chain = [default] + [default.with_name(f"{opts.model_name}-{i}") for i in range(2, int(suffix))]
    earlier = next((p for p in reversed(chain) if holds_run(p)), None)
    if earlier is None:
        return None
    state = ""
    try:
        ckpt = torch.load(earlier / "last.pth", map_location="cpu", weights_only=True, mmap=True)
        ts, saved = ckpt["train_state"], ckpt["options"]
        done, total, patience = int(ts["epoch"]), int(saved["epochs"]), int(saved.get("patience") or 0)
        early = patience and done - int(ts.get("best_epoch") or 0) >= patience  # early stopping
        if int(ts.get("step") or 0) or (done < total and not early):
            state = f"stopped after epoch {done} of {total}"
    except Exception:  # no or unreadable last.pth: an earlier run, state unknown
        pass
    if not state:
        return False, f"{earlier} holds an earlier run; this one goes to {run} (nothing is written over)"
    return True, (
        f"{earlier} holds an interrupted run ({state}); this one starts over in {run}. To go on from "
        f"that one instead, stop this and run the same command with {resume_flags(opts, earlier)}"
    )


def claim_run_dir(opts: TrainOptions, resume_from: Path | None) -> tuple[Path, RunLock]:
    """The run folder (as :func:`resolve_run_dir` picks it), locked for this run.

    A folder another run is using: the default ``runs/<model_name>`` moves on to ``-2``, ``-3``...;
    a folder named by ``--output-dir`` or a resumed checkpoint is an error (one line). A folder
    holding a finished run is written into only when resuming from it (``--resume``, ``--model``
    of a checkpoint in it) or with ``--exist-ok``.
    """
    explicit = opts.output_dir is not None or resume_from is not None
    while True:
        run = resolve_run_dir(opts, resume_from)
        if explicit:
            _check_overwrite(run, opts)
            return run, lock_run_dir(run)
        lock = RunLock(run)
        if lock.acquire():  # else another run took it just now: the next name
            if not holds_run(run):
                return run, lock
            lock.release()


def _check_overwrite(run: Path, opts: TrainOptions) -> None:
    if opts.exist_ok or not holds_run(run):
        return
    if opts.model is not None and Path(opts.model).resolve().parent == run.resolve():
        return  # going on from (or fine-tuning) a checkpoint of this very run
    if opts.model is not None and not opts.finetune:
        return  # resuming a run elsewhere into this folder: said in the opening lines
    raise ConfigError(
        f"run folder {run} already holds a run ({', '.join(n for n in ('best.pth', 'last.pth') if (run / n).exists())}); "
        "pass --resume to go on from its last.pth, --exist-ok to write over it, or another --output-dir"
    )


# ---- automatic resume (torch elastic restarts, --resume) -----------------------------------------
ELASTIC_MARKER = ".elastic-run"


def elastic_key() -> str | None:
    """Names one torchrun / ``--devices`` job across its restarts (run id, host, launcher pid)."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    if run_id is None:
        return None
    return f"{run_id}@{socket.gethostname()}:{os.getppid()}"


def _marked_run_dir(opts: TrainOptions) -> Path | None:
    """The run folder an earlier attempt of this elastic job marked as its own."""
    key = elastic_key()
    if key is None:
        return None
    base = Path("runs") / opts.model_name
    candidates = [Path(opts.model).parent] if opts.model is not None else []
    candidates += [base] + sorted(base.parent.glob(f"{opts.model_name}-*")) if base.parent.is_dir() else []
    for folder in candidates:
        marker = folder / ELASTIC_MARKER
        if marker.is_file() and marker.read_text(encoding="utf-8").strip() == key:
            return folder
    return None


def auto_resume_path(opts: TrainOptions) -> tuple[Path | None, str]:
    """``(last.pth, why)`` when the run must go on from its own last checkpoint: after a torch
    elastic restart (``TORCHELASTIC_RESTART_COUNT`` > 0), or with ``--resume``; else ``(None, "")``."""
    restarts = restart_count()
    if not (opts.resume or restarts > 0):
        return None, ""
    folder: Path | None = Path(opts.output_dir) if opts.output_dir is not None else None
    if folder is None and restarts > 0:
        folder = _marked_run_dir(opts)
    if folder is None and opts.resume:
        folder = Path("runs") / opts.model_name
    if folder is not None and (folder / "last.pth").is_file():
        return folder / "last.pth", (f"elastic restart {restarts}" if restarts else "--resume")
    return None, ""
