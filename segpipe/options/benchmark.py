"""Options of ``segpipe benchmark``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segpipe.errors import ConfigError
from segpipe.options.base import ClassCount, Seed, Size, check_fields
from segpipe.options.inference import InferenceSpec, _check_foreign_flags, _check_spec_fields, check_runtime


@dataclass(frozen=True)
class BenchmarkOptions:
    """Everything ``segpipe benchmark`` needs. Sizes are (width, height) in pixels."""

    #: Model files to compare, any backend (``.pth``, ``.onnx``, ``.engine``).
    models: tuple[Path, ...]
    #: Input size (W, H); default each model's own.
    size: Size | None = None
    #: Images per call.
    batch: int = 1
    #: Untimed calls before timing (lets cuDNN / TensorRT / ONNX Runtime settle).
    warmup: int = 5
    #: Timed calls.
    runs: int = 20
    device: str = "auto"
    #: Backends that run each model, comma-separated: ``auto`` (the fastest available for the file on
    #: ``device``), names (``onnxruntime,openvino``: each that reads the file), or ``all`` installed.
    runtime: str = "auto"
    #: CPU threads of PyTorch and ONNX Runtime (0: their defaults, one per core).
    threads: int = 0
    #: A dataset (original layout) to compute each model's mIoU on (as ``segpipe evaluate`` does).
    data_root: Path | None = None
    #: Write the figures as JSON here.
    report: Path | None = None
    #: Describe a bare state_dict / an ONNX model without metadata.
    num_classes: ClassCount | None = None
    arch: str | None = None
    encoder: str | None = None
    trust_checkpoint: bool = False
    seed: Seed = 0
    #: Sliding-window inference: window (W, H) in image pixels (``(0, 0)``: the network size).
    tile: tuple[int, int] | None = None
    #: Fraction of a sliding window shared with its neighbour (0 <= overlap < 1).
    overlap: float = 0.25
    #: Test-time augmentation: also average the horizontally flipped input.
    tta_flip: bool = False
    #: Test-time augmentation: input scales averaged (1.0: the network size).
    tta_scales: tuple[float, ...] = (1.0,)
    #: With ``tile`` or TTA: the (W, H) of the random image timed; default twice the network's
    #: width and height (four times its area).
    image_size: Size | None = None
    #: As in :class:`VisualizeOptions`: feeding an ONNX model without segpipe metadata (models
    #: that describe themselves ignore them, with a warning, when several are compared).
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    input_layout: str | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        _check_spec_fields(self)
        _check_foreign_flags(self)
        names = [
            check_runtime(n) if n.strip().lower() != "all" else "all" for n in str(self.runtime).split(",")
        ]
        if "all" in names and len(names) > 1:
            raise ConfigError(f"--runtime {self.runtime}: 'all' stands alone")
        object.__setattr__(self, "runtime", ",".join(dict.fromkeys(names)))
        if self.image_size is not None and (len(self.image_size) != 2 or min(self.image_size) <= 0):
            raise ConfigError(
                f"--image-size {' '.join(map(str, self.image_size))}: give WIDTH HEIGHT, both positive"
            )
        object.__setattr__(self, "models", tuple(Path(m) for m in self.models))
        if not self.models:
            raise ConfigError("--model: give at least one model file")
        if self.size is not None and (len(self.size) != 2 or min(self.size) <= 0):
            raise ConfigError(f"--size {' '.join(map(str, self.size))}: give WIDTH HEIGHT, both positive")
        checks = (
            ("batch", self.batch, 1),
            ("runs", self.runs, 1),
            ("warmup", self.warmup, 0),
            ("threads", self.threads, 0),
        )
        for flag, value, low in checks:
            if value < low:
                raise ConfigError(f"--{flag} {value}: must be at least {low}")

    @property
    def spec(self) -> InferenceSpec:
        """Sliding window and test-time augmentation as one :class:`InferenceSpec`."""
        return InferenceSpec(self.tile, self.overlap, self.tta_flip, self.tta_scales)

    def replace(self, **changes: Any) -> BenchmarkOptions:
        return dataclasses.replace(self, **changes)
