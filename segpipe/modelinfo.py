"""The self-description every segpipe model file carries.

A checkpoint (``.pth``), an ONNX model (metadata props) and an engine (sidecar ``.engine.json``) all
describe the network with the same :class:`ModelInfo`, so every tool (``visualize``, ``evaluate``,
``info``, the runners) can use a model file without extra flags.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
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
        data_split: how training split its data (:func:`segpipe.data.heldout.split_record`: kind,
            source folder name, seed, val_fraction, image counts, digest of the sample names), so
            ``evaluate`` reads the held-out images back; ``None`` when unknown.
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
    data_split: dict[str, Any] | None = None

    @property
    def out_channels(self) -> int:
        """Channels of the network's output: 1 in binary mode, else the class count."""
        return 1 if self.mode == "binary" else self.num_classes

    def replace(self, **changes: Any) -> ModelInfo:
        """A copy with some fields changed (values from code; files go through :meth:`from_dict`)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML/torch-safe types only (lists, str, int, float); not validated (reports)."""
        data = dataclasses.asdict(self)
        data["input_size"] = list(self.input_size)
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        data["class_names"] = list(self.class_names)
        data["colors"] = [list(c) for c in self.colors]
        return data

    def to_file_dict(self, source: str = "model description") -> dict[str, Any]:
        """What a checkpoint or ONNX model stores: :meth:`to_dict` checked by the schema that reads
        it back (:class:`segpipe.schema.files.ModelInfoFile`); one-line error when it would not."""
        from segpipe.schema.files import dump_model_info

        return dump_model_info(self.to_dict(), source)

    @classmethod
    def from_dict(cls, data: Any, source: str = "model description") -> ModelInfo:
        """Build from what a file holds (:meth:`to_file_dict` output), validated by the declared
        schema: every field typed, ranged and bounded; unknown keys are ignored (forward
        compatibility). ``source`` (``ckpt.pth: model_info``) starts the one-line error."""
        from segpipe.schema.files import read_model_info

        return cls(**read_model_info(data, source))

    # ONNX metadata_props are str -> str: every value is JSON-encoded under a ``segpipe.`` prefix.
    def to_metadata(self) -> dict[str, str]:
        """The ``metadata_props`` of an exported ONNX model (and the sidecar of an engine)."""
        return {f"segpipe.{k}": json.dumps(v) for k, v in self.to_file_dict().items()}

    @classmethod
    def from_metadata(cls, props: Mapping[str, str], source: str = "model metadata") -> ModelInfo | None:
        """Inverse of :meth:`to_metadata`; ``None`` when the props hold no segpipe description.
        Each value's JSON is size-bounded and the whole validated (one line naming ``source``,
        e.g. ``m.onnx: metadata``, the field and the value)."""
        from segpipe.schema.files import read_metadata

        data = read_metadata(props, source)
        return None if data is None else cls(**data)


def metadata_value(props: Mapping[str, str], key: str, kind: type | tuple[type, ...]) -> Any:
    """The JSON value of one metadata prop (``segpipe.precision``, ``segpipe.calibration``) when it
    is a ``kind``; ``None`` when it is absent, over 1 MiB, not JSON or of another type. For props
    that only describe (what a summary shows, which precision a graph carries): a damaged one reads
    as missing, never as an error."""
    raw = props.get(key)
    if not isinstance(raw, str) or len(raw) > 1 << 20:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, kind) else None
