"""Options of the inference commands: ``segpipe visualize`` and ``segpipe evaluate``, and the
:class:`InferenceSpec` (tiling, test-time augmentation) they share with ``benchmark``."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from segpipe.errors import ConfigError
from segpipe.modelinfo import MODES
from segpipe.options import flags as F
from segpipe.options.base import ClassCount, Count, IgnoreIndex, Size, check_choice, check_fields, flag_error
from segpipe.options.declare import flag
from segpipe.schema import Range

OUT = F.OUTPUT_PANEL
#: Image decoding threads: at least one.
Threads = Annotated[int, Range(1, why="must be at least 1 (decoding threads)")]


@dataclass(frozen=True)
class InferenceSpec:
    """How each image is predicted, beyond resizing it to the network size.

    Attributes:
        tile: sliding-window size (W, H) in image pixels; ``(0, 0)``: the network size; ``None``:
            no sliding window (the image is resized to the network size).
        overlap: fraction of a window shared with its neighbour, 0 <= overlap < 1.
        flip: average with the horizontally flipped input.
        scales: input scales to average (1.0: the network size).
    """

    tile: tuple[int, int] | None = None
    overlap: float = 0.25
    flip: bool = False
    scales: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        if self.tile is not None:
            tile = tuple(int(v) for v in self.tile)
            if len(tile) != 2 or min(tile) < 0 or (0 in tile and tile != (0, 0)):
                raise ConfigError(
                    f"--tile {' '.join(map(str, self.tile))}: give WIDTH HEIGHT, both positive "
                    "(0 0: the network size)"
                )
            object.__setattr__(self, "tile", tile)
        if not 0.0 <= self.overlap < 1.0:
            raise ConfigError(f"--overlap {self.overlap}: must be at least 0 and below 1")
        scales = tuple(float(s) for s in self.scales)
        if not scales or any(not 0.0 < s <= 8.0 for s in scales):
            raise ConfigError(
                f"--tta scales={','.join(map(str, self.scales))}: give scales above 0 and at most 8"
            )
        object.__setattr__(self, "scales", scales)

    @property
    def tta(self) -> bool:
        """True when more than one view of each input is averaged."""
        return self.flip or self.scales != (1.0,)

    @property
    def plain(self) -> bool:
        """True when nothing beyond the plain resize-to-network prediction is asked for."""
        return self.tile is None and not self.tta

    def describe(self) -> str:
        """A few words for reports: ``tile 512x512 overlap 0.25, flip, scales 0.75,1,1.25``."""
        parts = []
        if self.tile is not None:
            tile = "network size" if self.tile == (0, 0) else f"{self.tile[0]}x{self.tile[1]}"
            parts.append(f"tile {tile} overlap {self.overlap:g}")
        if self.flip:
            parts.append("flip")
        if self.scales != (1.0,):
            parts.append("scales " + ",".join(f"{s:g}" for s in self.scales))
        return ", ".join(parts)


def parse_tta(values: list[str] | tuple[str, ...] | str | None) -> tuple[bool, tuple[float, ...]]:
    """``--tta`` values -> (flip, scales). Each value is ``flip``, ``scales=0.75,1,1.25`` (also
    ``scales:...``), ``none``, or several of them joined by ``+`` (``flip+scales=0.75,1``)."""
    if values is None:
        return False, (1.0,)
    items = [values] if isinstance(values, str) else list(values)
    flip, scales = False, (1.0,)
    for item in items:
        for part in str(item).split("+"):
            text = part.strip()
            low = text.lower()
            if low in ("", "none"):
                continue
            if low == "flip":
                flip = True
                continue
            if low.startswith(("scales=", "scales:", "scale=", "scale:")):
                nums = text.split("=", 1)[1] if "=" in text else text.split(":", 1)[1]
                try:
                    scales = tuple(float(v) for v in nums.split(",") if v.strip())
                except ValueError:
                    raise ConfigError(
                        f"--tta {text}: scales must be numbers, e.g. scales=0.75,1,1.25"
                    ) from None
                if not scales:
                    raise ConfigError(f"--tta {text}: give the scales, e.g. scales=0.75,1,1.25")
                continue
            raise ConfigError(
                f"--tta {text}: use flip, scales=0.75,1,1.25 (comma-separated, no spaces) or none"
            )
    return flip, scales


@dataclass(frozen=True)
class TtaFlag:
    """``--tta``, read into the ``tta_flip`` / ``tta_scales`` fields by :meth:`fields`."""

    tta: list[str] | None = F.INFERENCE_PANEL.flag("--tta", None, "Test-time augmentation, averaged: flip "
        "(horizontal), scales=0.75,1,1.25 (models that take other sizes); repeat or join with + to combine.",
        metavar="SPEC")  # fmt: skip

    @staticmethod
    def fields(values: list[str] | None) -> dict[str, Any]:
        """``{"tta_flip": ..., "tta_scales": ...}`` of the ``--tta`` values."""
        flip, scales = parse_tta(values)
        return {"tta_flip": flip, "tta_scales": scales}


def _check_model_flags(opts: Any) -> None:
    """Checks shared by the inference stages (visualize, evaluate)."""
    check_choice("--mode", opts.mode, MODES)
    if opts.num_classes is not None and opts.num_classes < (1 if opts.mode == "multilabel" else 2):
        raise flag_error("--num-classes", opts.num_classes, "need at least 2 classes (binary: 2)")
    object.__setattr__(opts, "runtime", check_runtime(opts.runtime))
    check_foreign_flags(opts)


INPUT_LAYOUTS = ("nchw", "nhwc")
#: ``--runtime`` values (segpipe.runtime.base.RUNTIMES, plus ``auto``).
RUNTIME_NAMES = ("auto", "pytorch", "onnxruntime", "openvino", "tensorrt")


def check_runtime(value: str) -> str:
    """``--runtime`` lower-cased and checked (one line naming the choices)."""
    name = str(value).strip().lower()
    check_choice("--runtime", name, RUNTIME_NAMES)
    return name


def check_foreign_flags(opts: Any) -> None:
    """``mean``/``std``/``input_layout``: how to feed an ONNX model without segpipe metadata."""
    for name in ("mean", "std"):
        value = getattr(opts, name)
        if value is None:
            continue
        values = tuple(value) if isinstance(value, (list, tuple)) else (value,)
        if len(values) != 3 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            why = "give 3 numbers, R G B, in pixel units (0-255)"
            raise flag_error(f"--{name}", " ".join(map(str, values)), why)
        if name == "std" and min(values) <= 0:
            raise flag_error(f"--{name}", " ".join(map(str, values)), "every value must be above 0")
        object.__setattr__(opts, name, tuple(float(v) for v in values))
    if (opts.mean is None) != (opts.std is None):
        given, missing = ("mean", "std") if opts.std is None else ("std", "mean")
        raise flag_error(f"--{given}", " ".join(map(str, getattr(opts, given))), f"give --{missing} too")
    if opts.input_layout is not None:
        if str(opts.input_layout).lower() not in INPUT_LAYOUTS:
            raise flag_error("--input-layout", opts.input_layout, "use nchw or nhwc")
        object.__setattr__(opts, "input_layout", str(opts.input_layout).lower())


def check_spec_fields(opts: Any) -> None:
    """Validate (and normalise) the sliding-window / TTA fields through :class:`InferenceSpec`."""
    spec = opts.spec
    object.__setattr__(opts, "tile", spec.tile)
    object.__setattr__(opts, "tta_scales", spec.scales)


@dataclass(frozen=True, kw_only=True)
class _PredictOptions:
    """The fields ``visualize`` and ``evaluate`` share: how the model is opened and fed, and how a
    labelled data set is read. Keyword-only, so each command's own fields keep their positions.
    Each field is declared with its command-line flag (:mod:`segpipe.options.flags`)."""

    # fmt: off
    #: Images per model call.
    batch_size: Count = F.BATCH()
    device: str = F.DEVICE()
    #: Backend that runs the model: ``auto`` (the fastest available for the file on ``device``,
    #: said in one line), ``pytorch``, ``onnxruntime``, ``openvino`` or ``tensorrt``.
    runtime: str = F.RUNTIME()
    #: Image decoding threads (they run while the model works).
    workers: Threads = F.WORKERS()
    #: Describe a bare state_dict (defaults Unet / efficientnet-b0 / seg).
    arch: str | None = F.ARCH()
    encoder: str | None = F.ENCODER()
    mode: str = F.MODE()
    #: Allow full unpickling of a checkpoint holding Python objects (only for trusted files).
    trust_checkpoint: bool = F.TRUST_CHECKPOINT()
    #: Sliding-window inference: window (W, H) in image pixels (``(0, 0)``: the network size).
    tile: tuple[int, int] | None = F.TILE()
    #: Fraction of a sliding window shared with its neighbour (0 <= overlap < 1).
    overlap: float = F.OVERLAP()
    #: Test-time augmentation: also average the horizontally flipped input (``--tta``).
    tta_flip: bool = False
    #: Test-time augmentation: input scales averaged (1.0: the network size; ``--tta``).
    tta_scales: tuple[float, ...] = (1.0,)
    #: An ONNX model without segpipe metadata (or a bare state_dict): its input is
    #: ``(pixel - mean) / std`` per RGB channel, in pixel units (0-255).
    mean: tuple[float, float, float] | None = F.MEAN()
    std: tuple[float, float, float] | None = F.STD()
    #: An ONNX model without segpipe metadata whose input shape does not show it: ``nchw``/``nhwc``.
    input_layout: str | None = F.INPUT_LAYOUT()
    #: Label format of the data set (``auto``: detected), as in training.
    format: str = F.FORMAT()
    #: Split read: ``train``, ``val``, ``test`` or ``all``; None: ``val`` when the format ships
    #: one, else every sample.
    split: str | None = F.SPLIT()
    #: 0 -> ignore, others minus 1 (index masks); None: the format's default (on for ADE20K).
    reduce_zero_label: bool | None = F.REDUCE_ZERO_LABEL()
    #: COCO crowd regions: ``ignore`` (where no object covers them) or ``class``, as in training.
    crowds: str = F.CROWDS()
    images_dir: str = F.IMAGES_DIR()
    masks_dir: str = F.MASKS_DIR()
    mask_suffix: str = F.MASK_SUFFIX()
    # fmt: on

    def _check_shared(self) -> None:
        check_fields(self)
        _check_model_flags(self)
        check_spec_fields(self)
        F.check_data_flags(self)

    @property
    def spec(self) -> InferenceSpec:
        """Sliding window and test-time augmentation as one :class:`InferenceSpec`."""
        return InferenceSpec(self.tile, self.overlap, self.tta_flip, self.tta_scales)

    def replace(self, **changes: Any) -> Any:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class VisualizeOptions(_PredictOptions):
    """Everything ``segpipe visualize`` needs. Sizes are (width, height) in pixels."""

    # fmt: off
    #: One image, or a folder of images (PNG, JPEG, BMP, TIFF).
    images: Path = flag("--images", "--images_path", "-i", help="One image or a folder of images.",
        metavar="FILE|DIR", required=False, show_default=False)
    #: Any model file: ``.pth`` checkpoint, ``.onnx`` model or TensorRT ``.engine``.
    model: Path = F.MODEL(names=F.MODEL_FILE_NAMES, help=F.MODEL_FILE_HELP)
    #: Where the pictures go (created if needed).
    output_dir: Path = F.OUTPUT_DIR(names=(*F.OUTPUT_DIR.names, "-o"), hidden="--output",
        default=Path("runs/visualize"), help="Folder the pictures are written to.", panel=OUT)
    #: Needed only for a bare state_dict or an ONNX file without segpipe metadata.
    num_classes: ClassCount | None = F.NUM_CLASSES()
    #: Network input size (W, H); default the model's own (training / export size).
    size: Size | None = F.SIZE()
    #: Palette CSV; default the model's colours, else the colors.csv shipped with segpipe.
    colors: Path | None = F.COLORS(panel=OUT,
        help="Palette CSV (id,name,r,g,b); default: the model's colours, else the colors.csv shipped with segpipe.")
    #: Also write the mask blended on the image with this opacity (0..1).
    overlay: float | None = OUT.flag("--overlay", None, "Also write the mask blended on the image (opacity 0-1), "
        "legend beside it; the background class (0) stays as the photo.", metavar="ALPHA")
    #: Also write image and mask next to each other.
    side_by_side: bool = OUT.flag("--side-by-side", False, "Also write image and mask next to each other.")
    #: Also write the class-index PNG (uint8, uint16 above 256 classes).
    save_labels: bool = OUT.flag("--save-labels", False, "Also write the class-index PNG.")
    #: Overlays blend the background class (0) too; by default it is left as the photo.
    overlay_background: bool = OUT.flag("--overlay-background", False, "Overlays blend the background class too.")
    #: Overlays draw each region's outline in its class colour.
    outline: bool = OUT.flag("--outline", False, "Overlays outline each region in its class colour.")
    #: Also write NAME_legend.png per image (one legend.png per run is always written).
    legend_per_image: bool = OUT.flag("--legend-per-image", False,
        "Also write NAME_legend.png per image (one legend.png per run is always written).")
    #: Read the sub-folders of ``images`` too and keep their structure in ``output_dir``.
    recursive: bool = flag("--recursive", "-r", False, "Read sub-folders too; keep their structure in the output.")
    #: A labelled data set (any format) instead of ``images``: its images (``split``: default
    #: ``val`` when it ships one, else the images the model's training held out) are predicted,
    #: and ``side_by_side`` shows the ground truth too.
    data_root: Path | None = F.DATA_ROOT(default=None, help="A labelled data set (any --format) instead of "
        "--images: its val images, ground truth beside the prediction with --side-by-side.")
    # fmt: on

    def __post_init__(self) -> None:
        self._check_shared()
        if self.overlay is not None and not 0.0 <= self.overlay <= 1.0:
            raise flag_error("--overlay", self.overlay, "alpha must be between 0 and 1")


@dataclass(frozen=True)
class EvaluateOptions(_PredictOptions):
    """Everything ``segpipe evaluate`` needs (same dataset layout and decoding as training)."""

    # fmt: off
    data_root: Path = F.DATA_ROOT()
    #: Any model file: ``.pth``, ``.onnx`` or ``.engine``.
    model: Path = F.MODEL(names=F.MODEL_FILE_NAMES, help=F.MODEL_FILE_HELP)
    #: Network input size (W, H); default the model's own. Metrics are computed at each mask's size.
    size: Size | None = F.SIZE()
    #: Write the figures as JSON here.
    report: Path | None = F.REPORT(panel=OUT)
    #: Draw the row-normalised confusion matrix (PNG) here.
    confusion_matrix: Path | None = OUT.flag("--confusion-matrix", None,
        "Draw the normalised confusion matrix (PNG) here.")
    #: Needed only for a bare state_dict or an ONNX file without segpipe metadata.
    num_classes: ClassCount | None = F.NUM_CLASSES()
    #: Palette CSV to decode colour masks; default DATA_ROOT/colors.csv, else the model's colours.
    colors: Path | None = F.COLORS(help="Palette CSV (id,name,r,g,b) decoding colour masks; default: "
        "DATA_ROOT/colors.csv, else the model's colours, else the colors.csv shipped with segpipe.")
    class_map: Path | None = F.CLASS_MAP(help="Class remapping file (as in training).")
    #: Label ignored by the metrics; default the model's (255).
    ignore_index: IgnoreIndex | None = F.IGNORE_INDEX(
        help="Label left out of the metrics (default: the model's, 255).")
    #: ``auto``, ``index`` or ``color``.
    mask_type: str = F.MASK_TYPE()
    # fmt: on

    def __post_init__(self) -> None:
        self._check_shared()

