"""Options of ``segpipe benchmark``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segpipe.errors import ConfigError
from segpipe.options import flags as F
from segpipe.options.base import ClassCount, Seed, Size, check_fields
from segpipe.options.declare import flag
from segpipe.options.inference import InferenceSpec, _check_foreign_flags, _check_spec_fields, check_runtime

RUN = "Run"


@dataclass(frozen=True)
class BenchmarkOptions:
    """Everything ``segpipe benchmark`` needs. Sizes are (width, height) in pixels."""

    #: Model files to compare, any backend (``.pth``, ``.onnx``, ``.engine``).
    models: tuple[Path, ...] = F.MODEL(
        help="A model file (.pth, .onnx, .engine); repeat to compare several.",
        cli_type=list[Path],
        parse=tuple,
    )
    #: Input size (W, H); default each model's own.
    size: Size | None = F.SIZE()
    #: Images per call.
    batch: int = F.BATCH(default=1, help="Images per call.")
    #: Untimed calls before timing (lets cuDNN / TensorRT / ONNX Runtime settle).
    warmup: int = flag(
        "--warmup",
        default=5,
        help="Untimed calls first: at least this many, then until the timings settle (0: none).",
        panel=RUN,
        metavar="N",
    )
    #: Timed calls.
    runs: int = flag(
        "--runs",
        default=20,
        help="Timed rounds: one call of every model and backend each.",
        panel=RUN,
        metavar="N",
    )
    device: str = F.DEVICE()
    #: Backends that run each model, comma-separated: ``auto`` (the fastest available for the file on
    #: ``device``), names (``onnxruntime,openvino``: each that reads the file), or ``all`` installed.
    runtime: str = F.RUNTIME(
        metavar="NAMES",
        help="Backends that run each model, side by side: auto (the fastest available for the file "
        "on this device), names joined by commas (onnxruntime,openvino: each that reads the file) "
        "or all (every installed one that reads it).",
    )
    #: CPU threads of PyTorch and ONNX Runtime (0: their defaults, one per core).
    threads: int = flag(
        "--threads",
        default=0,
        help="CPU threads of PyTorch and ONNX Runtime (0: one per core).",
        panel=F.HARDWARE_PANEL,
        metavar="N",
    )
    #: A labelled data set to compute each model's mIoU on (as ``segpipe evaluate`` does).
    data_root: Path | None = F.DATA_ROOT(
        default=None, help="Also compute each model's mIoU on this data set."
    )
    #: Write the figures as JSON here.
    report: Path | None = F.REPORT()
    #: Describe a bare state_dict / an ONNX model without metadata.
    num_classes: ClassCount | None = F.NUM_CLASSES()
    arch: str | None = F.ARCH()
    encoder: str | None = F.ENCODER()
    trust_checkpoint: bool = F.TRUST_CHECKPOINT()
    seed: Seed = 0
    #: Sliding-window inference: window (W, H) in image pixels (``(0, 0)``: the network size).
    tile: tuple[int, int] | None = F.TILE()
    #: Fraction of a sliding window shared with its neighbour (0 <= overlap < 1).
    overlap: float = F.OVERLAP()
    #: Test-time augmentation: also average the horizontally flipped input (``--tta``).
    tta_flip: bool = False
    #: Test-time augmentation: input scales averaged (1.0: the network size; ``--tta``).
    tta_scales: tuple[float, ...] = (1.0,)
    #: With ``tile`` or TTA: the (W, H) of the random image timed; default twice the network's
    #: width and height (four times its area).
    image_size: Size | None = flag(
        "--image-size",
        default=None,
        metavar="W H",
        help="With --tile/--tta: time whole images of this size (default twice the network's "
        "width and height); --batch is then windows per call.",
        panel=F.INFERENCE_PANEL,
    )
    #: As in :class:`VisualizeOptions`: feeding an ONNX model without segpipe metadata (models
    #: that describe themselves ignore them, with a warning, when several are compared).
    mean: tuple[float, float, float] | None = F.MEAN()
    std: tuple[float, float, float] | None = F.STD()
    input_layout: str | None = F.INPUT_LAYOUT()

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
        for name, value, low in checks:
            if value < low:
                raise ConfigError(f"--{name} {value}: must be at least {low}")

    @property
    def spec(self) -> InferenceSpec:
        """Sliding window and test-time augmentation as one :class:`InferenceSpec`."""
        return InferenceSpec(self.tile, self.overlap, self.tta_flip, self.tta_scales)

    def replace(self, **changes: Any) -> BenchmarkOptions:
        return dataclasses.replace(self, **changes)
