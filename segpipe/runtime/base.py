"""The runner interface shared by every backend, the backend map and ``compare``.

Contract (DESIGN.md, convention 4):

* A runner is built from a model file: ``Runner(path, device=..., **kw)``; it is a context manager
  and :meth:`Runner.close` frees its memory (GPU buffers, sessions).
* :meth:`Runner.__call__` takes a batch of RGB images **already at the network size**, as a numpy
  array N×H×W×3, ``uint8`` (or ``float32`` holding 0-255 values), and returns a numpy array: class
  logits N×C×H×W (``output_kind == "logits"`` or ``"probs"``), or the class map N×H×W
  (``output_kind == "labels"``). Resizing to the network size and back happens once, outside the
  runners (``segpipe.runtime.pipeline`` / the callers).
* :attr:`Runner.info` is the model's :class:`~segpipe.modelinfo.ModelInfo` (classes, colours, size).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from segpipe.errors import CheckpointError, close_matches
from segpipe.modelinfo import ModelInfo

#: File suffix -> "module:Class" of the runner that reads it. The TensorRT runner is imported only
#: when an engine is opened, so segpipe works without tensorrt installed.
RUNNERS: dict[str, str] = {
    ".pth": "segpipe.runtime.torch:TorchRunner",
    ".pt": "segpipe.runtime.torch:TorchRunner",
    ".onnx": "segpipe.runtime.onnxruntime:OnnxRunner",
    ".engine": "segpipe.tensorrt.runner:TensorRTRunner",
    ".plan": "segpipe.tensorrt.runner:TensorRTRunner",
    ".trt": "segpipe.tensorrt.runner:TensorRTRunner",
    ".bin": "segpipe.tensorrt.runner:TensorRTRunner",
}


class Runner(ABC):
    """Base class of every backend."""

    #: Human-readable backend name (``pytorch``, ``onnxruntime``, ``tensorrt``).
    backend: ClassVar[str] = "?"
    #: (W, H) when the model only accepts that input size (a fixed ONNX graph, an engine without a
    #: dynamic profile), else ``None``: the pipeline then refuses any other ``--size``.
    fixed_size: tuple[int, int] | None = None

    def __init__(self, path: str | Path, device: str = "auto", **kwargs: Any) -> None:
        self.path = Path(path)
        self.device = device
        self.info: ModelInfo  # set by subclasses

    @property
    def output_kind(self) -> str:
        """``logits``, ``probs`` or ``labels`` (what :meth:`__call__` returns)."""
        return self.info.output_kind

    @property
    def input_size(self) -> tuple[int, int]:
        """The network's (width, height) by default."""
        return self.info.input_size

    @abstractmethod
    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Run a batch N×H×W×3 RGB (uint8 or float32 0-255) and return logits or a class map."""

    def predict_labels(self, images: np.ndarray) -> np.ndarray:
        """Class map N×H×W (``int64``) for a batch, whatever the model outputs."""
        return to_labels(self(images), self.info.mode, self.output_kind)

    def peak_memory_bytes(self) -> int | None:
        """Peak device memory used, where the backend can tell (else ``None``)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Free the runner's memory; safe to call twice."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def to_labels(output: np.ndarray, mode: str = "seg", output_kind: str = "logits") -> np.ndarray:
    """Turn a runner's output into a class map N×H×W (int64).

    ``labels`` are returned as they are; in ``binary`` mode the single channel is thresholded
    (logit > 0, or probability > 0.5); otherwise the argmax over the class axis is taken.
    """
    if output_kind == "labels" or output.ndim == 3:
        return output.astype(np.int64, copy=False)
    if mode == "binary" and output.shape[1] == 1:
        threshold = 0.5 if output_kind == "probs" else 0.0
        return (output[:, 0] > threshold).astype(np.int64)
    return output.argmax(axis=1).astype(np.int64)


@dataclass(frozen=True)
class CompareResult:
    """How close two backends' outputs are."""

    max_abs_diff: float
    mean_abs_diff: float
    argmax_agreement: float  # fraction of pixels with the same class, 0..1
    pixels: int

    def ok(self, min_agreement: float) -> bool:
        """True when the class maps agree on at least ``min_agreement`` of the pixels."""
        return self.argmax_agreement >= min_agreement

    def __str__(self) -> str:
        return (
            f"max |diff| {self.max_abs_diff:.3g}, mean |diff| {self.mean_abs_diff:.3g}, "
            f"argmax agreement {100 * self.argmax_agreement:.3f}% of {self.pixels} pixels"
        )


def compare(
    reference: np.ndarray, candidate: np.ndarray, mode: str = "seg", output_kind: str = "logits"
) -> CompareResult:
    """Compare two outputs of the same kind: max/mean absolute difference and argmax agreement.

    Used by the tests and by ``export-onnx --verify`` / ``build-trt`` verification. For class maps
    (``labels``) the differences are 0 or the label gap and the agreement is exact equality.
    """
    ref = np.asarray(reference)
    cand = np.asarray(candidate)
    if ref.shape != cand.shape:
        raise ValueError(f"cannot compare outputs of shapes {ref.shape} and {cand.shape}")
    diff = np.abs(ref.astype(np.float64) - cand.astype(np.float64))
    agree = to_labels(ref, mode, output_kind) == to_labels(cand, mode, output_kind)
    return CompareResult(
        max_abs_diff=float(diff.max()) if diff.size else 0.0,
        mean_abs_diff=float(diff.mean()) if diff.size else 0.0,
        argmax_agreement=float(agree.mean()) if agree.size else 1.0,
        pixels=int(agree.size),
    )


def runner_class(path: str | Path) -> type[Runner]:
    """The runner class for a model file, from its suffix; one-line error for an unknown type."""
    suffix = Path(path).suffix.lower()
    target = RUNNERS.get(suffix)
    if target is None:
        raise CheckpointError(
            f"{path}: unknown model file type {suffix or '(no suffix)'!r}; "
            f"expected one of {', '.join(sorted(RUNNERS))}{close_matches(suffix, RUNNERS)}"
        )
    module_name, cls_name = target.split(":")
    return getattr(importlib.import_module(module_name), cls_name)


def load_runner(path: str | Path, device: str = "auto", **kwargs: Any) -> Runner:
    """Open a model file with the backend its suffix names."""
    p = Path(path)
    cls = runner_class(p)
    if not p.is_file():
        raise CheckpointError(f"model file {p} does not exist")
    return cls(p, device=device, **kwargs)
