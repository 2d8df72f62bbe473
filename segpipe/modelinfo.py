"""The self-description every segpipe model file carries.

A checkpoint (``.pth``), an ONNX model (metadata props) and an engine (sidecar ``.engine.json``) all
describe the network with the same :class:`ModelInfo`, so every tool (``visualize``, ``evaluate``,
``info``, the runners) can use a model file without extra flags.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from segpipe import __version__

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

MODES = ("seg", "binary", "multilabel")


@dataclass(frozen=True)
class ModelInfo:
    """What a model is and how to feed it.

    Attributes:
        arch: smp architecture name, e.g. ``Unet``.
        encoder: smp encoder name, e.g. ``efficientnet-b0``.
        num_classes: number of classes the masks use (for ``binary`` mode: 2, background and
            foreground, although the network has one output channel).
        in_channels: input channels (3 for RGB).
        mode: ``seg`` (multiclass softmax), ``binary`` (one sigmoid channel) or ``multilabel``
            (one sigmoid channel per class).
        input_size: training / export size as (width, height) in pixels.
        mean, std: normalisation of 0-1 RGB pixels: ``(x / 255 - mean) / std``.
        class_names: one name per class.
        colors: one (r, g, b) per class, 0-255.
        output_stride: H and W must be multiples of this.
        ignore_index: label value ignored by losses and metrics.
        layout: ``NCHW`` for PyTorch checkpoints, ``NHWC`` for exported models.
        input_dtype: dtype of the deployed input (``float32`` 0-255 pixels or ``uint8``).
        precision: ``fp32`` or ``fp16`` (compute precision of an exported graph).
        output_kind: ``logits`` (N×C×H×W), ``probs`` (N×C×H×W) or ``labels`` (N×H×W class map).
        min_side: smallest width and height the network takes (0: no limit beyond the output
            stride); set for dynamic-size graphs of models with a minimum (PAN: 128).
    """

    arch: str
    encoder: str
    num_classes: int
    in_channels: int = 3
    mode: str = "seg"
    input_size: tuple[int, int] = (512, 512)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    class_names: tuple[str, ...] = ()
    colors: tuple[tuple[int, int, int], ...] = ()
    output_stride: int = 32
    ignore_index: int = 255
    layout: str = "NCHW"
    input_dtype: str = "float32"
    precision: str = "fp32"
    output_kind: str = "logits"
    min_side: int = 0
    segpipe_version: str = field(default=__version__)

    @property
    def out_channels(self) -> int:
        """Channels of the network's output: 1 in binary mode, else the class count."""
        return 1 if self.mode == "binary" else self.num_classes

    def replace(self, **changes: Any) -> ModelInfo:
        """A copy with some fields changed."""
        data = asdict(self)
        data.update(changes)
        return ModelInfo.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML/torch-safe types only (lists, str, int, float)."""
        data = asdict(self)
        data["input_size"] = list(self.input_size)
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        data["class_names"] = list(self.class_names)
        data["colors"] = [list(c) for c in self.colors]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        """Build from :meth:`to_dict` output; unknown keys are ignored (forward compatibility)."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in known}
        if "input_size" in kw:
            kw["input_size"] = tuple(int(v) for v in kw["input_size"])
        for key in ("mean", "std"):
            if key in kw:
                kw[key] = tuple(float(v) for v in kw[key])
        if "class_names" in kw:
            kw["class_names"] = tuple(str(v) for v in kw["class_names"])
        if "colors" in kw:
            kw["colors"] = tuple(tuple(int(c) for c in rgb) for rgb in kw["colors"])
        for key in ("num_classes", "in_channels", "output_stride", "ignore_index", "min_side"):
            if key in kw:
                kw[key] = int(kw[key])
        return cls(**kw)

    # ONNX metadata_props are str -> str: every value is JSON-encoded under a ``segpipe.`` prefix.
    def to_metadata(self) -> dict[str, str]:
        """The ``metadata_props`` of an exported ONNX model (and the sidecar of an engine)."""
        return {f"segpipe.{k}": json.dumps(v) for k, v in self.to_dict().items()}

    @classmethod
    def from_metadata(cls, props: dict[str, str]) -> ModelInfo | None:
        """Inverse of :meth:`to_metadata`; ``None`` when the props hold no segpipe description."""
        data = {k[len("segpipe.") :]: json.loads(v) for k, v in props.items() if k.startswith("segpipe.")}
        if "arch" not in data or "num_classes" not in data:
            return None
        return cls.from_dict(data)
