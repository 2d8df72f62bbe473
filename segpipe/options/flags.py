"""The flags several commands share, each declared once (see :mod:`segpipe.options.declare`).

An options class places one in a field with ``format: str = FORMAT()`` (keywords override, e.g. a
command's own help); every command bound to that class then takes the flag with the same
spelling, help, panel and metavar. Groups: the data flags (train, evaluate, visualize, data),
how a model file is opened and fed (every command that runs a model), hardware, sliding window
and test-time augmentation. No typer, no torch here.
"""

from __future__ import annotations

from dataclasses import dataclass

from segpipe.errors import ConfigError
from segpipe.options.declare import Flag, comma_list, flag

DATA_PANEL = "Data"
MODEL_PANEL = "Model"
HARDWARE_PANEL = "Hardware"
INFERENCE_PANEL = "Sliding window and TTA"
OUTPUT_PANEL = "Outputs"

# ---- data: where a labelled data set is and how to read it --------------------------------------
DATA_ROOT = Flag(
    ("--data-root", "--data_root"),
    help="Data set folder, any label format (see --format).",
    panel=DATA_PANEL,
    metavar="DIR",
)
#: The label formats ``--format`` names (the readers, in :data:`segpipe.data.formats.FORMATS`;
#: tests/test_declare.py keeps the two equal), in the order ``--help`` lists them.
FORMAT_NAMES = (
    "seed",
    "voc",
    "cityscapes",
    "ade20k",
    "ultralytics",
    "yolo",
    "coco",
    "coco_panoptic",
    "labelme",
    "cvat",
    "cvat_images",
    "mapillary_vistas",
    "common_semantic_segmentation",
    "camvid",
)


def check_format(value: str) -> str:
    """``--format`` lower-cased and checked: ``auto`` or one of :data:`FORMAT_NAMES` (the one check,
    for the options classes and :func:`segpipe.data.formats.resolve_format` alike)."""
    name = (value or "auto").lower()
    if name != "auto" and name not in FORMAT_NAMES:
        raise ConfigError(f"--format {value}: use auto or one of {', '.join(FORMAT_NAMES)}")
    return name


FORMAT = Flag(
    ("--format",),
    default="auto",
    help=f"Label format: auto (detected, and said), {', '.join(FORMAT_NAMES)} (segpipe data --formats "
    "lists them).",
    panel=DATA_PANEL,
    metavar="FORMAT",
)
IMAGES_DIR = Flag(
    ("--images-dir",),
    default="images",
    help="Seed layout: the images folder.",
    panel=DATA_PANEL,
    metavar="NAME",
)
MASKS_DIR = Flag(
    ("--masks-dir",),
    default="indexes",
    help="Seed layout: the masks folder.",
    panel=DATA_PANEL,
    metavar="NAME",
)
MASK_SUFFIX = Flag(
    ("--mask-suffix",),
    default="_color_mask",
    help="Seed layout: mask file = NAME + suffix + .png.",
    panel=DATA_PANEL,
    metavar="SUFFIX",
)
REDUCE_ZERO_LABEL = Flag(
    ("--reduce-zero-label/--no-reduce-zero-label",),
    default=None,
    help="Index masks where 0 means 'other' (ADE20K): 0 -> ignore, others minus 1. "
    "Default: the format's (on for ade20k).",
    panel=DATA_PANEL,
    show_default=False,
)
CROWDS = Flag(
    ("--crowds",),
    default="ignore",
    help="COCO crowd regions (iscrowd 1): ignore (ignored where no object covers them, as COCO "
    "and MMSegmentation do) or class (kept as their category).",
    panel=DATA_PANEL,
    metavar="MODE",
)
SPLIT = Flag(
    ("--split",),
    default=None,
    help="train, val, test or all (default: val when the data set ships one, else the images "
    "the model's training held out, else all).",
    panel=DATA_PANEL,
    metavar="SPLIT",
)
MASK_TYPE = Flag(
    ("--mask-type",), default="auto", help="auto, index or color.", panel=DATA_PANEL, metavar="TYPE"
)
CLASS_MAP = Flag(
    ("--class-map",),
    default=None,
    help="File of 'raw,new' lines (new may be 'ignore').",
    panel=DATA_PANEL,
    metavar="FILE",
)
CLASS_NAMES = Flag(
    ("--class-names",),
    default=None,
    help="Comma-separated class names (default: the data's, else class_0...).",
    panel=DATA_PANEL,
    metavar="LIST",
    parse=comma_list,
    cli_type=str,
)
IGNORE_INDEX = Flag(
    ("--ignore-index",),
    default=None,
    help="Mask value ignored by loss and metrics. Default: 255 (65535 above 255 classes).",
    panel=DATA_PANEL,
    metavar="N",
)
COLORS = Flag(
    ("--colors",),
    default=None,
    help="Palette CSV id,name,r,g,b (default: the data's, else segpipe's colours).",
    panel=DATA_PANEL,
    metavar="FILE",
)

# ---- the model file, and how to open and feed one that does not describe itself ---------------
MODEL = Flag(
    ("--model", "-m"),
    help="Model file: .pth, .onnx or .engine.",
    panel=MODEL_PANEL,
    metavar="FILE",
)
#: The model file of visualize, evaluate and benchmark: ``--model_name`` was the original tool's
#: name for it (in train, ``--model-name`` names the run).
MODEL_FILE_NAMES = ("--model", "--model_name", "-m")
MODEL_FILE_HELP = (
    "Model file: .pth, .onnx or .engine (the original --model_name means this file here; "
    "in train it names the run)."
)
NUM_CLASSES = Flag(
    ("--num-classes", "--num_classes"),
    default=None,
    help="Bare state_dict / ONNX without metadata: number of classes "
    "(otherwise checked against the model's own).",
    panel=MODEL_PANEL,
    metavar="N",
)
ARCH = Flag(
    ("--arch",),
    default=None,
    help="Bare state_dict: smp architecture (default Unet).",
    panel=MODEL_PANEL,
    metavar="NAME",
)
ENCODER = Flag(
    ("--encoder", "--backend"),
    default=None,
    help="Bare state_dict: smp encoder (default efficientnet-b0).",
    panel=MODEL_PANEL,
    metavar="NAME",
)
MODE = Flag(
    ("--mode",),
    default="seg",
    help="Bare state_dict / ONNX without metadata: seg, binary or multilabel.",
    panel=MODEL_PANEL,
    metavar="MODE",
)
TRUST_CHECKPOINT = Flag(
    ("--trust-checkpoint",),
    default=False,
    help="Allow .pth files that need full unpickling (it can run code: trusted files only).",
    panel=MODEL_PANEL,
)
MEAN = Flag(
    ("--mean",),
    default=None,
    help="ONNX without segpipe metadata (or a bare state_dict): input = (pixel - mean) / std, "
    "in pixel units 0-255; ImageNet (smp, torchvision): --mean 123.675 116.28 103.53 "
    "--std 58.395 57.12 57.375; pixels as they are: --mean 0 0 0 --std 1 1 1.",
    panel=MODEL_PANEL,
    metavar="R G B",
)
STD = Flag(
    ("--std",),
    default=None,
    help="With --mean: the divisor, in pixel units 0-255.",
    panel=MODEL_PANEL,
    metavar="R G B",
)
INPUT_LAYOUT = Flag(
    ("--input-layout",),
    default=None,
    help="ONNX without segpipe metadata whose input shape does not show it: nchw or nhwc.",
    panel=MODEL_PANEL,
    metavar="LAYOUT",
)
SIZE = Flag(
    ("--size",),
    default=None,
    help='Network input size as WIDTH HEIGHT (width first; 1280,640 1280x640 "(1280, 640)" work '
    "too), multiples of the output stride; default: the model's own.",
    metavar="W H",
)

# ---- hardware and batching ----------------------------------------------------------------------
#: The one batch flag: images per model call (``--batch-size`` and the original ``--batch_size``
#: are accepted everywhere, hidden).
BATCH = Flag(
    ("--batch",),
    hidden=("--batch-size", "--batch_size"),
    default=4,
    help="Images per model call.",
    panel=HARDWARE_PANEL,
    metavar="N",
)
DEVICE = Flag(
    ("--device",), default="auto", help="auto, cpu, cuda or cuda:N.", panel=HARDWARE_PANEL, metavar="DEVICE"
)
RUNTIME = Flag(
    ("--runtime",),
    default="auto",
    help="Backend that runs the model: auto (the fastest available for the file on this device, "
    "said in one line), pytorch, onnxruntime, openvino or tensorrt.",
    panel=HARDWARE_PANEL,
    metavar="NAME",
)
#: The largest batch: of a TensorRT profile (build-trt), of a server's dynamic batcher (serve, triton).
MAX_BATCH = Flag(("--max-batch",), default=None, help="Largest batch.", metavar="N")
WORKERS = Flag(
    ("--workers",),
    default=2,
    help="Image decoding threads (and writing, for commands that write pictures).",
    panel=HARDWARE_PANEL,
    metavar="N",
)

# ---- sliding window and test-time augmentation --------------------------------------------------
TILE = Flag(
    ("--tile",),
    default=None,
    help="Sliding-window inference: cover each image with overlapping W x H windows (image "
    "pixels), each run at the network size, outputs averaged where they overlap; 0 0: windows "
    "of the network size.",
    panel=INFERENCE_PANEL,
    metavar="W H",
)
OVERLAP = Flag(
    ("--overlap",),
    default=0.25,
    help="Fraction of a window shared with its neighbour (with --tile).",
    panel=INFERENCE_PANEL,
    metavar="NUM",
)

# ---- outputs ------------------------------------------------------------------------------------
REPORT = Flag(("--report",), default=None, help="Write the figures as JSON here.", metavar="FILE")


@dataclass(frozen=True)
class QuietFlag:
    """``--quiet``: only the summary (the commands whose progress bars are worth silencing)."""

    quiet: bool = flag("--quiet", "-q", default=False, help="Only the summary.")
