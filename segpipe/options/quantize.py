"""Options of ``segpipe quantize`` (and ``export-onnx --int8``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from segpipe.errors import ConfigError, close_matches
from segpipe.options import flags as F
from segpipe.options.base import Agreement, Count, Seed, check_choice, check_fields
from segpipe.options.declare import Panel, comma_list
from segpipe.schema import Range

QUANT_METHODS = ("minmax", "entropy", "percentile")
QUANTIZERS = ("ort", "modelopt")
#: What an INT8 file is shaped for (``--target``): TensorRT (S8S8) or CPUs (U8S8, 7-bit weights).
TARGETS = ("tensorrt", "cpu")
FP32_PARTS = ("input", "head")
#: Default smallest argmax agreement of an INT8 graph with its FP32 graph. Measured (README, INT8):
#: calibrations that kept mIoU within 0.3 point agreed on 99.80-99.96% of held-out pixels; ones on
#: 4-16 images, which cost 2.8-3.1 mIoU points, agreed on 99.34-99.38%.
INT8_MIN_AGREEMENT = 0.995


CALIB, GATE = Panel("Calibration"), Panel("Accuracy gate")
#: The gate's largest mIoU loss, in points of a 0-100 scale.
Points = Annotated[float, Range(0, 100, why="give mIoU points from 0 to 100")]


def parse_parts(value: str | tuple[str, ...]) -> tuple[str, ...]:
    """``input,head`` -> ("input", "head"); ``none`` -> () (the options check the names)."""
    parts = comma_list(value) or ()
    parts = tuple(p.lower() for p in parts)
    return () if parts == ("none",) else parts


# fmt: off
# shared with export-onnx --int8 (declared once, placed in both options classes); one declaration a
# line or two (segpipe.options.declare), kept so by the formatter
CALIB_IMAGES = CALIB.shared("--calib-images", help="Folder of calibration images (any size: resized to the model's "
    "input; some held out for the gate).", metavar="DIR")
CALIB_COUNT = CALIB.shared("--calib-count", 64, "Most images calibrated on.")
CALIB_METHOD = CALIB.shared("--calib-method", "minmax", "minmax, entropy or percentile (99.999th).",
    hidden="--method", metavar="METHOD")
QUANTIZER = CALIB.shared("--quantizer", "ort",
    "ort (ONNX Runtime quantize_static) or modelopt (NVIDIA ModelOpt ONNX PTQ, if installed).")
#: The one name of the INT8 threshold (quantize's former ``--min-agreement`` is hidden there).
INT8_AGREEMENT = GATE.shared("--int8-min-agreement", None,
    f"Smallest argmax agreement of INT8 with FP32 accepted (default {INT8_MIN_AGREEMENT}).",
    hidden="--min-agreement")
# fmt: on


@dataclass(frozen=True)
class QuantizeOptions:
    """Everything ``segpipe quantize`` (and ``export-onnx --int8``) needs."""

    # fmt: off
    #: The FP32 ONNX model to quantize (as ``segpipe export-onnx`` writes it).
    model: Path = F.MODEL(argument=True, help="The FP32 .onnx model (as segpipe export-onnx writes it).")
    #: A folder of calibration images (any size: resized to the model's input).
    calib_images: Path = CALIB_IMAGES()
    #: The INT8 ONNX file to write; default beside the model, ``NAME.int8.onnx``.
    output: Path | None = F.OUTPUT(help="INT8 file to write (default NAME.int8.onnx).")
    #: Most images calibrated on (after the held-out ones are set aside).
    calib_count: Count = CALIB_COUNT()
    #: Calibration images held out for the accuracy gate (at most a quarter of the folder).
    holdout: int = GATE.flag("--holdout", 8, "Calibration images held out for the gate.")
    #: A folder of images to compare INT8 with FP32 on too.
    verify_images: Path | None = F.VERIFY_IMAGES(help="More images to compare INT8 with FP32 on.", panel=GATE)
    #: Most images read from ``verify_images``.
    verify_max_images: int = 16
    #: A labelled data set (any label format): mIoU of the FP32 and INT8 models, reported.
    data_root: Path | None = F.DATA_ROOT(default=None, help="Labelled data set: mIoU of FP32 and INT8.", panel=GATE)
    #: Smallest argmax agreement with the FP32 model accepted (0..1); default INT8_MIN_AGREEMENT.
    min_agreement: Agreement | None = INT8_AGREEMENT()
    #: With ``data_root``: largest mIoU loss of INT8 against FP32 accepted, in points (0-100 scale).
    max_miou_drop: Points = GATE.flag("--max-miou-drop", 1.0,
        "With --data-root: largest mIoU loss of INT8 vs FP32 accepted, in points.", metavar="POINTS")
    #: Calibration: ``minmax``, ``entropy`` or ``percentile`` (99.999th).
    method: str = CALIB_METHOD()
    #: ``ort`` (ONNX Runtime quantize_static) or ``modelopt`` (NVIDIA ModelOpt ONNX PTQ).
    quantizer: str = QUANTIZER()
    #: Parts left in FP32: ``input`` (the normalisation before the first convolution) and ``head``
    #: (the last convolution and what follows it: Resize, Softmax/Sigmoid, ArgMax).
    keep_fp32: tuple[str, ...] = CALIB.flag("--keep-fp32", ("input", "head"), "Parts left in FP32: input "
        "(normalisation), head (last conv, Resize, Softmax/ArgMax), input,head or none.", metavar="LIST",
        cli_default="input,head", cli_type=str, parse=parse_parts)
    #: ``tensorrt``: signed symmetric activations and 8-bit weights (S8S8), what TensorRT builds;
    #: ``cpu``: unsigned activations and 7-bit weights (U8S8, ``reduce_range``), ONNX Runtime's
    #: advice for CPUs without VNNI, whose integer kernels would saturate on the S8S8 file
    #: (segpipe.export.quantize_cpu; ``--quantizer ort`` only; not for TensorRT).
    target: str = CALIB.flag("--target", "tensorrt", "tensorrt (S8S8 Q/DQ, TensorRT 10/11) or cpu (U8S8 with 7-bit "
        "weights: fast and accurate with ONNX Runtime or OpenVINO on any CPU, VNNI or not; written "
        "NAME.cpu-int8.onnx).")
    #: Seed of the choice of held-out images.
    seed: Seed = F.SEED(help="Seed of the held-out images.", panel=GATE)
    # fmt: on

    def __post_init__(self) -> None:
        check_fields(self)
        if self.holdout < 0 or self.verify_max_images < 1:
            raise ConfigError(f"--holdout {self.holdout}: must be >= 0 (and --verify-max-images >= 1)")
        object.__setattr__(self, "keep_fp32", tuple(self.keep_fp32))
        for part in self.keep_fp32:
            if part not in FP32_PARTS:
                raise ConfigError(f"--keep-fp32 {part}: use input, head, both (input,head) or none")
        check_choice("--calib-method", self.method, QUANT_METHODS)
        check_choice("--quantizer", self.quantizer, QUANTIZERS)
        if self.target not in TARGETS:
            raise ConfigError(
                f"--target {self.target}: use tensorrt or cpu{close_matches(self.target, TARGETS)}"
            )
        if self.target == "cpu" and self.quantizer != "ort":
            raise ConfigError(f"--target cpu: made with --quantizer ort (ONNX Runtime), not {self.quantizer}")

    @property
    def resolved_min_agreement(self) -> float:
        """The agreement threshold used: the one asked for, else :data:`INT8_MIN_AGREEMENT`."""
        return self.min_agreement if self.min_agreement is not None else INT8_MIN_AGREEMENT

    @property
    def resolved_output(self) -> Path:
        """The INT8 file written: ``output``, else ``NAME.int8.onnx`` (``--target cpu``:
        ``NAME.cpu-int8.onnx``) beside the model."""
        if self.output is not None:
            return self.output
        return self.model.with_name(
            self.model.stem + (".cpu-int8.onnx" if self.target == "cpu" else ".int8.onnx")
        )

    def replace(self, **changes: Any) -> QuantizeOptions:
        return dataclasses.replace(self, **changes)
