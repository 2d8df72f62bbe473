"""Options of ``segpipe benchmark``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segpipe.errors import ConfigError
from segpipe.options import flags as F
from segpipe.options.base import ClassCount, Count, Count0, Seed, Size, check_fields
from segpipe.options.declare import Panel
from segpipe.options.inference import InferenceSpec, check_foreign_flags, check_runtime, check_spec_fields

RUN = Panel("Run")


@dataclass(frozen=True)
class BenchmarkOptions:
    """Everything ``segpipe benchmark`` needs. Sizes are (width, height) in pixels."""

    # one declaration a line or two (segpipe.options.declare), kept so by the formatter:
    # fmt: off
    #: Model files to compare, any backend (``.pth``, ``.onnx``, ``.engine``).
    models: tuple[Path, ...] = F.MODEL(help="A model file (.pth, .onnx, .engine); repeat to compare several.",
        cli_type=list[Path], parse=tuple)
    #: Input size (W, H); default each model's own.
    size: Size | None = F.SIZE()
    #: Images per call.
    batch: Count = F.BATCH(default=1, help="Images per call.")
    #: Untimed calls before timing (lets cuDNN / TensorRT / ONNX Runtime settle).
    warmup: Count0 = RUN.flag("--warmup", 5,
        "Untimed calls first: at least this many, then until the timings settle (0: none).")
    #: Timed calls.
    runs: Count = RUN.flag("--runs", 20, "Timed rounds: one call of every model and backend each.")
    device: str = F.DEVICE()
    #: Backends that run each model, comma-separated: ``auto`` (the fastest available for the file on
    #: ``device``), names (``onnxruntime,openvino``: each that reads the file), or ``all`` installed.
    runtime: str = F.RUNTIME(metavar="NAMES", help="Backends that run each model, side by side: auto (the fastest "
        "available for the file on this device), names joined by commas (onnxruntime,openvino: each that reads the "
        "file) or all (every installed one that reads it).")
    #: CPU threads of PyTorch and ONNX Runtime (0: their defaults, one per core).
    threads: Count0 = F.HARDWARE_PANEL.flag("--threads", 0, "CPU threads of PyTorch and ONNX Runtime (0: one per core).")
    #: A labelled data set to compute each model's mIoU on (as ``segpipe evaluate`` does).
    data_root: Path | None = F.DATA_ROOT(default=None, help="Also compute each model's mIoU on this data set.")
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
    image_size: Size | None = F.INFERENCE_PANEL.flag("--image-size", None, "With --tile/--tta: time whole images "
        "of this size (default twice the network's width and height); --batch is then windows per call.",
        metavar="W H")
    #: As in :class:`VisualizeOptions`: feeding an ONNX model without segpipe metadata (models
    #: that describe themselves ignore them, with a warning, when several are compared).
    mean: tuple[float, float, float] | None = F.MEAN()
    std: tuple[float, float, float] | None = F.STD()
    input_layout: str | None = F.INPUT_LAYOUT()
    # fmt: on

    def __post_init__(self) -> None:
        check_fields(self)
        check_spec_fields(self)
        check_foreign_flags(self)
        names = [
            check_runtime(n) if n.strip().lower() != "all" else "all" for n in str(self.runtime).split(",")
        ]
        if "all" in names and len(names) > 1:
            raise ConfigError(f"--runtime {self.runtime}: 'all' stands alone")
        object.__setattr__(self, "runtime", ",".join(dict.fromkeys(names)))
        if not self.models:
            raise ConfigError("--model: give at least one model file")

    @property
    def spec(self) -> InferenceSpec:
        """Sliding window and test-time augmentation as one :class:`InferenceSpec`."""
        return InferenceSpec(self.tile, self.overlap, self.tta_flip, self.tta_scales)

    def replace(self, **changes: Any) -> BenchmarkOptions:
        return dataclasses.replace(self, **changes)
