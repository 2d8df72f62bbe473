"""Which images of a data set trained a model, and which it held out: the split ``train`` makes, the
record of it every model file carries (``ModelInfo.data_split``: checkpoint, ONNX metadata, engine
sidecar), and the choice of images ``evaluate`` / ``visualize --data-root`` make from it.

A data set without a validation split of its own (seed layout, LabelMe, CVAT...) is split by
``--val-fraction`` and ``--seed``: a seeded permutation of its samples in the reader's order. The
model records the kind of split, seed, fraction, counts and a digest of the sample names; the same
data set (same digest) gives back the same validation images, so evaluation runs on the images the
training held out by default, and says so in one line. No PyTorch here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from segpipe.data.formats import LabelledSample, select_split

#: ``kind`` of a split record: ``fraction`` (--val-fraction of the data root), ``own`` (the data
#: set's own train/val split), ``val_root`` (validation images from another folder).
SPLIT_KINDS = ("fraction", "own", "val_root")


def split_by_fraction(
    samples: list[LabelledSample], seed: int, val_fraction: float
) -> tuple[list[LabelledSample], list[LabelledSample]]:
    """(training, validation) samples: ``round(len * val_fraction)`` of them (at least one, at most
    all but one, when the fraction is above 0) drawn by a permutation seeded with ``seed``."""
    order = np.random.default_rng(seed).permutation(len(samples))
    n_val = int(round(len(samples) * val_fraction))
    if val_fraction > 0 and len(samples) >= 2:
        n_val = min(max(1, n_val), len(samples) - 1)
    val = [samples[i] for i in sorted(order[:n_val])]
    train = [samples[i] for i in sorted(order[n_val:])]
    return train, val


def digest(samples: list[LabelledSample]) -> str:
    """A short fingerprint of the sample names, in the reader's order (the split depends on both)."""
    h = hashlib.sha256()
    for s in samples:
        h.update(s.name.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()[:16]


def split_record(
    kind: str, root: Path, samples: list[LabelledSample], val: int, seed: int, val_fraction: float
) -> dict[str, Any]:
    """What a model file records of its training split (``samples``: the data root's samples the
    training chose from, test split excluded)."""
    return {
        "kind": kind,
        "source": Path(root).resolve().name[:200],
        "seed": int(seed),
        "val_fraction": float(val_fraction),
        "images": len(samples),
        "val": int(val),
        "digest": digest(samples),
    }


def _trainable(samples: list[LabelledSample]) -> list[LabelledSample]:
    return [s for s in samples if s.split != "test"]


def select_for_model(
    samples: list[LabelledSample], split: str | None, root: Path, record: dict[str, Any] | None, model: Any
) -> tuple[list[LabelledSample], bool, str | None]:
    """The samples ``evaluate`` / ``visualize --data-root`` read, whether the line that follows is a
    caution (images the model trained on, or no record of them) rather than a plain note, and that
    one line saying what the images are to the model (``None``: nothing to say).

    ``split``: ``None`` (default: the data set's ``val``, else the images the training held out,
    else all), ``all``, ``train``, ``val`` or ``test``. ``record``: the model's ``data_split``.
    """
    has_val = any(s.split == "val" for s in samples)
    pool = _trainable(samples)
    same = record is not None and record.get("digest") == digest(pool)
    kind = record.get("kind") if record else None
    if split is None and not has_val:
        if record is None:
            return (
                samples,
                True,
                (
                    f"{model} does not record which images trained it: reading all {len(samples)} images "
                    f"of {root} (some may be training images; a model segpipe train writes records its split)"
                ),
            )
        if not same:
            return (
                samples,
                False,
                (
                    f"{root} is not the data set {model} trained on ({record.get('images')} images in "
                    f"{record.get('source')}/), so it has no held-out split here: reading all "
                    f"{len(samples)} images"
                ),
            )
        if kind == "fraction" and record.get("val"):
            _, val = split_by_fraction(pool, int(record["seed"]), float(record["val_fraction"]))
            return (
                val,
                False,
                (
                    f"held out: the {len(val)} of {len(pool)} images of {root} that training set aside "
                    f"for validation (--seed {record['seed']}, --val-fraction {record['val_fraction']:g}); "
                    "--split all reads them all"
                ),
            )
        return (
            samples,
            True,
            (f"all {len(samples)} images of {root} trained {model}: these figures are on training images"),
        )
    chosen = select_split(samples, split, root)
    if not same:
        return chosen, False, None
    if kind == "fraction":
        train, _ = split_by_fraction(pool, int(record["seed"]), float(record["val_fraction"]))  # type: ignore[index]
        trained = {s.name for s in train}
    elif kind == "own":
        trained = {s.name for s in pool if s.split == "train"}
    else:
        trained = {s.name for s in pool}
    n = sum(s.name in trained for s in chosen)
    if not n:
        return chosen, False, None
    return chosen, True, f"{n} of these {len(chosen)} images trained {model}: figures on them flatter it"
