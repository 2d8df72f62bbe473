"""How a model file is opened and fed: the keywords every runner takes, declared once, and the
normalisation of a model that does not carry its own.

``load_runner(path, **kw)`` hands the same :class:`RunnerOptions` to whichever backend opens the
file; each reads the fields that apply to it, and a file's own description wins where it has one.
The flags that describe a model without one (``--mean``/``--std``/``--input-layout``, the
``FOREIGN`` fields) are refused by a model that describes itself, or, given for several models at
once (``lenient``: ``benchmark``), ignored for it with one warning (:meth:`RunnerOptions.drop`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segpipe.errors import CheckpointError
from segpipe.modelinfo import ModelInfo

#: Runner fields that describe how to feed a model that does not say it itself (an ONNX model
#: without segpipe metadata; mean/std also a bare state_dict) -> their flag.
FOREIGN = {"mean": "--mean", "std": "--std", "input_layout": "--input-layout"}


@dataclass(frozen=True)
class RunnerOptions:
    """The keywords of every runner (``Runner(path, device, **kw)``, ``load_runner``)."""

    #: Checked against a model's description; needed where a file does not show the class count.
    num_classes: int | None = None
    #: ``seg``, ``binary`` or ``multilabel``, for a bare state_dict / an ONNX model without metadata.
    mode: str = "seg"
    #: A bare state_dict's architecture and encoder (default Unet / efficientnet-b0).
    arch: str | None = None
    encoder: str | None = None
    #: Allow full unpickling of checkpoints that hold Python objects (``--trust-checkpoint``).
    trust: bool = False
    #: What a checkpoint's runner returns: ``logits``, ``probs`` or ``labels``.
    output: str = "logits"
    #: A model without its own normalisation: its input is ``(pixel - mean) / std`` per RGB
    #: channel, in pixel units (0-255; ImageNet: 123.675 116.28 103.53 / 58.395 57.12 57.375;
    #: pixels as they are: 0 0 0 / 1 1 1).
    mean: Any = None
    std: Any = None
    #: ``nchw`` or ``nhwc``, for an ONNX model without metadata whose input shape does not show it.
    input_layout: str | None = None
    #: Intra-op CPU threads of ONNX Runtime / OpenVINO (0: one per core).
    threads: int = 0
    #: The description of a model file without one (an engine verified before its sidecar exists).
    info: ModelInfo | None = None
    #: ONNX Runtime: a serialized graph to run instead of the file's (a rewritten copy, e.g. the
    #: INT8 gate's integer-sum form; the file still names it), and its graph optimizations
    #: (``all``, ``extended`` or ``none``: the graph run as written).
    graph: bytes | None = None
    optimize: str = "all"
    #: Receives the warnings: what is assumed about a model, which flags are ignored for it.
    reporter: Any = None
    #: Flags given for several models at once (``benchmark``): where they do not apply they are
    #: ignored with a warning instead of refused.
    lenient: bool = False

    def drop(self, fields: tuple[str, ...], path: str | Path, why: str) -> RunnerOptions:
        """With ``lenient``: these fields cleared where set, said in one warning
        (``{path} {why}: --mean/--std ignored for it``); otherwise the options as they are (the
        runner refuses what it cannot use in its own words)."""
        given = [f for f in fields if getattr(self, f) is not None]
        if not given or not self.lenient:
            return self
        if self.reporter is not None:
            flags = "/".join(FOREIGN.get(f, f) for f in given)
            self.reporter.warn(f"{path} {why}: {flags} ignored for it")
        return dataclasses.replace(self, **dict.fromkeys(given))

    def checkpoint(self) -> dict[str, Any]:
        """The keywords :func:`segpipe.models.load_model` takes from these options (a bare
        state_dict's description, ``trust``)."""
        return {k: getattr(self, k) for k in ("arch", "encoder", "num_classes", "mode", "trust")}

    def foreign(self) -> list[str]:
        """The flags of :data:`FOREIGN` that are set."""
        return [flag for field, flag in FOREIGN.items() if getattr(self, field) is not None]


def check_normalization(mean: Any, std: Any, path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``--mean``/``--std`` (pixel units, 0-255) as float32 arrays of 3, checked; both or neither."""
    if (mean is None) != (std is None):
        given, missing = ("--mean", "--std") if std is None else ("--std", "--mean")
        raise CheckpointError(f"{given} for {path} needs {missing} too")
    m = np.asarray(mean, dtype=np.float32).reshape(-1)
    s = np.asarray(std, dtype=np.float32).reshape(-1)
    if m.size not in (1, 3) or s.size not in (1, 3):
        raise CheckpointError(
            f"--mean {tuple(m.tolist())} --std {tuple(s.tolist())}: give 3 values each (R G B)"
        )
    if not np.all(np.isfinite(m)) or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise CheckpointError(f"--std {tuple(s.tolist())}: values must be finite and above 0")
    return np.broadcast_to(m, (3,)).copy(), np.broadcast_to(s, (3,)).copy()


def normalization_note(mean: np.ndarray, std: np.ndarray) -> str:
    """How pixels are fed, in words, with a hint when the values look like the 0-1 scale."""
    fmt = lambda a: "(" + ", ".join(f"{v:g}" for v in a) + ")"  # noqa: E731
    text = f"(pixel - mean) / std with mean {fmt(mean)}, std {fmt(std)} in pixel units (0-255)"
    raw = np.all(mean == 0) and np.all(std == 1)
    if not raw and np.all(np.abs(mean) <= 1) and np.all(std <= 1):
        text += (
            "; these look like values for 0-1 pixels: --mean/--std are in pixel units, e.g. ImageNet "
            "is --mean 123.675 116.28 103.53 --std 58.395 57.12 57.375"
        )
    return text
