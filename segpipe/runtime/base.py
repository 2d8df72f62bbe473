"""The runner interface shared by every backend, the backend map and ``compare``.

Contract (ARCHITECTURE.md, convention 4):

* A runner is built from a model file: ``Runner(path, device=..., **kw)``, ``kw`` the fields of
  :class:`~segpipe.runtime.feed.RunnerOptions` (the same set for every backend); it is a context
  manager and :meth:`Runner.close` frees its memory (GPU buffers, sessions).
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

from segpipe.errors import CheckpointError, ConfigError, close_matches
from segpipe.modelinfo import ModelInfo
from segpipe.runtime.feed import RunnerOptions

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
    ".xml": "segpipe.runtime.openvino:OpenVinoRunner",
}

#: ``--runtime`` name -> (runner, the file kinds it reads; see :func:`sniff_model_kind`).
RUNTIMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "pytorch": ("segpipe.runtime.torch:TorchRunner", ("torch",)),
    "onnxruntime": ("segpipe.runtime.onnxruntime:OnnxRunner", ("onnx",)),
    "openvino": ("segpipe.runtime.openvino:OpenVinoRunner", ("onnx", "openvino")),
    "tensorrt": ("segpipe.tensorrt.runner:TensorRTRunner", ("tensorrt",)),
}
#: What ``--runtime`` accepts: ``auto`` (by file and device, see :func:`runner_class`) or a name.
RUNTIME_CHOICES = ("auto", *RUNTIMES)


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
        #: The keywords it was opened with, declared once for every backend (each reads its own).
        self.options = RunnerOptions(**kwargs)
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

    Used by the tests and by :class:`~segpipe.runtime.comparator.Comparator` (export-onnx's check,
    quantize's gate, build-trt's check). For class maps
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


#: Content kind (:func:`sniff_model_kind`) -> the suffix whose runner reads it.
KIND_SUFFIX = {"torch": ".pth", "onnx": ".onnx", "tensorrt": ".engine", "openvino": ".xml"}
#: What each content kind is called in messages.
KIND_NAMES = {
    "torch": "PyTorch checkpoint",
    "onnx": "ONNX model",
    "tensorrt": "TensorRT engine",
    "openvino": "OpenVINO IR model",
}

_TRT_MAGIC = b"ftrt"  # every serialized TensorRT plan starts with it


def _onnx_header(head: bytes) -> bool:
    """An ONNX ``ModelProto``: field 1 ``ir_version`` (varint, 1..30) then another known field."""
    if len(head) < 3 or head[0] != 0x08 or not 1 <= head[1] <= 30:
        return False
    field, wire = head[2] >> 3, head[2] & 7
    return 2 <= field <= 25 and wire in (0, 2)


def sniff_model_kind(path: str | Path) -> str | None:
    """What a model file holds, from its first bytes: ``torch``, ``onnx``, ``tensorrt`` or ``None``.

    * ``torch``: a zip archive (what ``torch.save`` writes since 1.6) or a pickle (older saves);
    * ``onnx``: a protobuf starting with the ``ir_version`` field of an ONNX ``ModelProto``;
    * ``tensorrt``: a serialized plan (magic ``ftrt``), bare or behind a length-prefixed JSON
      header (as Ultralytics writes ``.engine`` files).

    ``None`` when the file cannot be read or matches none of them (the suffix decides then).
    """
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            if len(head) >= 9 and head[4:5] == b"{":  # length-prefixed JSON header before a plan
                length = int.from_bytes(head[:4], "little")
                if 0 < length < (1 << 20):
                    f.seek(4 + length)
                    if f.read(4) == _TRT_MAGIC:
                        return "tensorrt"
    except OSError:
        return None
    if head.startswith(_TRT_MAGIC):
        return "tensorrt"
    if head.startswith(b"PK\x03\x04") or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5):
        return "torch"
    if _onnx_header(head):
        return "onnx"
    return None


#: Files people pass where a model goes: said for what they are (segpipe.video.VIDEO_EXTS and
#: segpipe.data.dataset.IMAGE_EXTS, repeated here: runtime imports neither).
_NOT_MODELS = {
    **dict.fromkeys((".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg"), "a video"),
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"), "an image"),
}


def not_a_model(path: str | Path) -> str | None:
    """The one-line error for an image or a video given where a model file goes (else None)."""
    what = _NOT_MODELS.get(Path(path).suffix.lower())
    if what is None:
        return None
    return (
        f"{path} is {what}, not a model file (.pth, .onnx or .engine); to run a model over it: "
        f"segpipe visualize --images {path} --model MODEL"
    )


def _file_kind(path: Path) -> str | None:
    """``torch``, ``onnx``, ``tensorrt`` or ``openvino``: from the content, else from the suffix."""
    kind = sniff_model_kind(path) if path.is_file() else None
    if kind is None:
        target = RUNNERS.get(path.suffix.lower())
        kind = next((k for k, s in KIND_SUFFIX.items() if target is not None and RUNNERS[s] == target), None)
        if path.suffix.lower() == ".bin" and path.with_suffix(".xml").is_file():
            raise CheckpointError(
                f"{path} holds the weights of an OpenVINO IR model: pass {path.with_suffix('.xml')}"
            )
    return kind


#: The Python package each runtime needs.
_RUNTIME_PACKAGES = {
    "pytorch": "torch",
    "onnxruntime": "onnxruntime",
    "openvino": "openvino",
    "tensorrt": "tensorrt",
}


def runtimes_for(path: str | Path) -> list[str]:
    """The installed runtimes that read ``path`` (``benchmark --runtime all``), in RUNTIMES order."""
    from segpipe._optional import available

    kind = _file_kind(Path(path))
    return [n for n, (_, kinds) in RUNTIMES.items() if kind in kinds and available(_RUNTIME_PACKAGES[n])]


def runner_class(
    path: str | Path, runtime: str | None = None, device: str = "auto", reporter: Any = None
) -> type[Runner]:
    """The runner class for a model file: from its content when it is recognisable (a checkpoint
    named ``.bin`` is a checkpoint), else from its suffix; one-line error for an unknown type.

    ``runtime`` (``--runtime``): ``None``, the file's own backend; a name of :data:`RUNTIMES`,
    checked against the file; or ``auto``: the file's own backend, and for an ONNX model the
    fastest one available for it on ``device`` (:func:`segpipe.runtime.cpu.auto_onnx_runtime`),
    said in one line to ``reporter``.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if runtime is not None and runtime not in RUNTIME_CHOICES:
        raise ConfigError(
            f"--runtime {runtime!r}: use one of {', '.join(RUNTIME_CHOICES)}{close_matches(runtime, RUNTIMES)}"
        )
    kind = _file_kind(p)
    target = RUNNERS.get(KIND_SUFFIX[kind]) if kind is not None else None
    if target is None and not_a_model(path):  # "close matches: .pt, .pth" would mislead
        raise CheckpointError(not_a_model(path))
    if target is None:
        raise CheckpointError(
            f"{path}: unknown model file type {suffix or '(no suffix)'!r}; "
            f"expected one of {', '.join(sorted(RUNNERS))}{close_matches(suffix, RUNNERS)}"
        )
    assert kind is not None
    if runtime not in (None, "auto"):
        target, kinds = RUNTIMES[runtime]
        if kind not in kinds:
            reads = " or ".join(KIND_NAMES[k] + "s" for k in kinds)
            raise ConfigError(
                f"--runtime {runtime}: {path} is {'an' if KIND_NAMES[kind][0] in 'AEIOU' else 'a'} "
                f"{KIND_NAMES[kind]}, and {runtime} runs {reads}"
                + ("; export it first: segpipe export-onnx" if kind == "torch" else "")
            )
    elif runtime == "auto" and kind == "onnx":
        from segpipe.runtime.cpu import auto_onnx_runtime

        name, why = auto_onnx_runtime(p, device)
        target = RUNTIMES[name][0]
        if reporter is not None:
            reporter.info(f"runtime for {p.name}: {name} ({why})")
    module_name, cls_name = target.split(":")
    return getattr(importlib.import_module(module_name), cls_name)


def load_runner(path: str | Path, device: str = "auto", runtime: str | None = None, **kwargs: Any) -> Runner:
    """Open a model file with the backend ``runtime`` names (``None``: the one its content, else
    its suffix, calls for; ``auto``: the fastest for it on ``device``; see :func:`runner_class`)."""
    p = Path(path)
    reporter = kwargs.get("reporter")
    choice = _Said()  # the runtime auto chose is said once the model has opened, not before its error
    cls = runner_class(p, runtime, device, choice if reporter is not None else None)
    if p.is_dir():
        raise CheckpointError(f"{p} is a folder, not a model file (segpipe info {p} lists the models in it)")
    if not p.is_file():
        raise CheckpointError(f"model file {p} does not exist")
    if p.stat().st_size == 0:
        raise CheckpointError(f"{p} is an empty file (0 bytes), not a model (an interrupted copy?)")
    if runtime == "auto" and cls.backend == "openvino" and _file_kind(p) == "onnx":
        try:
            runner = cls(p, device=device, **kwargs)
        except CheckpointError as e:  # an ONNX graph OpenVINO's converter refuses: ORT reads more
            runner = runner_class(p, "onnxruntime", device)(p, device=device, **kwargs)
            if reporter is not None:  # only once ORT has opened it: a broken file is one line
                reporter.warn(f"{e}; onnxruntime runs it instead")
            return runner
    else:
        runner = cls(p, device=device, **kwargs)
    for line in choice.lines:
        reporter.info(line)
    return runner


class _Said:
    """Holds what :func:`runner_class` would say, for :func:`load_runner` to say after opening."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, text: str) -> None:
        self.lines.append(text)
