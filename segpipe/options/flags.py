"""The flags several commands share, each declared once (see :mod:`segpipe.options.declare`).

An options class places one in a field with ``format: str = FORMAT()`` (keywords override, e.g. a
command's own help); every command bound to that class then takes the flag with the same
spelling, help, panel and metavar. Groups: the data flags (train, evaluate, visualize, data),
how a model file is opened and fed (every command that runs a model), hardware, sliding window
and test-time augmentation. No typer, no torch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segpipe.options.base import flag_error
from segpipe.options.declare import Panel, comma_list, flag, shared
from segpipe.options.formats import FORMATS, check_format  # noqa: F401 (F.check_format: the one check)

DATA_PANEL = Panel("Data")
MODEL_PANEL = Panel("Model")
HARDWARE_PANEL = Panel("Hardware")
INFERENCE_PANEL = Panel("Sliding window and TTA")
OUTPUT_PANEL = Panel("Outputs")

# fmt: off
# One declaration a line or two (spellings, default, help, then what is not the usual), unformatted:
# see segpipe.options.declare.

# ---- data: where a labelled data set is and how to read it --------------------------------------
DATA_ROOT = DATA_PANEL.shared("--data-root", "--data_root", help="Data set folder, any label format (see --format).",
    metavar="DIR")
# fmt: on
#: The label formats ``--format`` names, in the order ``--help`` lists them (declared once, with
#: their readers, in :mod:`segpipe.options.formats`).
FORMAT_NAMES = tuple(FORMATS)

# fmt: off
FORMAT = DATA_PANEL.shared("--format", "auto", f"Label format: auto (detected, and said), {', '.join(FORMAT_NAMES)} "
    "(segpipe data --formats lists them).", metavar="FORMAT")
IMAGES_DIR = DATA_PANEL.shared("--images-dir", "images", "Seed layout: the images folder.")
MASKS_DIR = DATA_PANEL.shared("--masks-dir", "indexes", "Seed layout: the masks folder.")
MASK_SUFFIX = DATA_PANEL.shared("--mask-suffix", "_color_mask", "Seed layout: mask file = NAME + suffix + .png.",
    metavar="SUFFIX")
REDUCE_ZERO_LABEL = DATA_PANEL.shared("--reduce-zero-label/--no-reduce-zero-label", None,
    "Index masks where 0 means 'other' (ADE20K): 0 -> ignore, others minus 1. "
    "Default: the format's (on for ade20k).", show_default=False)
CROWDS = DATA_PANEL.shared("--crowds", "ignore", "COCO crowd regions (iscrowd 1): ignore (ignored where no object covers "
    "them, as COCO and MMSegmentation do) or class (kept as their category).", metavar="MODE")
SPLIT = DATA_PANEL.shared("--split", None, "train, val, test or all (default: val when the data set ships one, else the "
    "images the model's training held out, else all).", metavar="SPLIT")
MASK_TYPE = DATA_PANEL.shared("--mask-type", "auto", "auto, index or color.", metavar="TYPE")
CLASS_MAP = DATA_PANEL.shared("--class-map", None, "File of 'raw,new' lines (new may be 'ignore').")
CLASS_NAMES = DATA_PANEL.shared("--class-names", None,
    "Comma-separated class names (default: the data's, else class_0...).", metavar="LIST", parse=comma_list,
    cli_type=str)
IGNORE_INDEX = DATA_PANEL.shared("--ignore-index", None,
    "Mask value ignored by loss and metrics. Default: 255 (65535 above 255 classes).")
COLORS = DATA_PANEL.shared("--colors", None, "Palette CSV id,name,r,g,b (default: the data's, else segpipe's colours).")
# fmt: on



def check_data_flags(opts: Any) -> None:
    """The data flags an options class holds, checked in one place for train, evaluate, visualize
    and data: ``--format`` (lower-cased), ``--crowds``, and ``--mask-type``/``--split`` where held."""
    object.__setattr__(opts, "format", check_format(opts.format))
    if opts.crowds not in ("ignore", "class"):
        raise flag_error("--crowds", opts.crowds, "use ignore or class")
    if getattr(opts, "mask_type", "auto") not in ("auto", "index", "color"):
        raise flag_error("--mask-type", opts.mask_type, "use auto, index or color")
    if getattr(opts, "split", None) not in (None, "train", "val", "test", "all"):
        raise flag_error("--split", opts.split, "use train, val, test or all")


# fmt: off
# ---- the model file, and how to open and feed one that does not describe itself ---------------
MODEL = MODEL_PANEL.shared("--model", "-m", help="Model file: .pth, .onnx or .engine.", metavar="FILE")
#: The model file of visualize, evaluate and benchmark: ``--model_name`` was the original tool's
#: name for it (in train, ``--model-name`` names the run).
MODEL_FILE_NAMES = ("--model", "--model_name", "-m")
MODEL_FILE_HELP = ("Model file: .pth, .onnx or .engine (the original --model_name means this file here; "
    "in train it names the run).")
NUM_CLASSES = MODEL_PANEL.shared("--num-classes", "--num_classes", None,
    "Bare state_dict / ONNX without metadata: number of classes (otherwise checked against the model's own).")
ARCH = MODEL_PANEL.shared("--arch", None, "Bare state_dict: smp architecture (default Unet).")
ENCODER = MODEL_PANEL.shared("--encoder", "--backend", None,
    "Bare state_dict: smp encoder (default efficientnet-b0).")
MODE = MODEL_PANEL.shared("--mode", "seg", "Bare state_dict / ONNX without metadata: seg, binary or multilabel.",
    metavar="MODE")
TRUST_CHECKPOINT = MODEL_PANEL.shared("--trust-checkpoint", False,
    "Allow .pth files that need full unpickling (it can run code: trusted files only).")
MEAN = MODEL_PANEL.shared("--mean", None, "ONNX without segpipe metadata (or a bare state_dict): input = (pixel - "
    "mean) / std, in pixel units 0-255; ImageNet (smp, torchvision): --mean 123.675 116.28 103.53 --std 58.395 "
    "57.12 57.375; pixels as they are: --mean 0 0 0 --std 1 1 1.", metavar="R G B")
STD = MODEL_PANEL.shared("--std", None, "With --mean: the divisor, in pixel units 0-255.", metavar="R G B")
INPUT_LAYOUT = MODEL_PANEL.shared("--input-layout", None,
    "ONNX without segpipe metadata whose input shape does not show it: nchw or nhwc.", metavar="LAYOUT")
SIZE = shared("--size", None, 'Network input size as WIDTH HEIGHT (width first; 1280,640 1280x640 "(1280, 640)" '
    "work too), multiples of the output stride; default: the model's own.", metavar="W H")

# ---- hardware and batching ----------------------------------------------------------------------
#: The one batch flag: images per model call (``--batch-size`` and the original ``--batch_size``
#: are accepted everywhere, hidden).
BATCH = HARDWARE_PANEL.shared("--batch", 4, "Images per model call.", hidden=("--batch-size", "--batch_size"))
DEVICE = HARDWARE_PANEL.shared("--device", "auto", "auto, cpu, cuda or cuda:N.", metavar="DEVICE")
RUNTIME = HARDWARE_PANEL.shared("--runtime", "auto", "Backend that runs the model: auto (the fastest available for the "
    "file on this device, said in one line), pytorch, onnxruntime, openvino or tensorrt.")
#: The largest batch: of a TensorRT profile (build-trt), of a server's dynamic batcher (serve, triton).
MAX_BATCH = shared("--max-batch", None, "Largest batch.")
WORKERS = HARDWARE_PANEL.shared("--workers", 2, "Image decoding threads (and writing, for commands that write pictures).")

# ---- sliding window and test-time augmentation --------------------------------------------------
TILE = INFERENCE_PANEL.shared("--tile", None, "Sliding-window inference: cover each image with overlapping W x H "
    "windows (image pixels), each run at the network size, outputs averaged where they overlap; 0 0: windows of "
    "the network size.", metavar="W H")
OVERLAP = INFERENCE_PANEL.shared("--overlap", 0.25, "Fraction of a window shared with its neighbour (with --tile).")

# ---- verification: a converted model against the one it was made from -------------------------
VERIFY_PANEL = Panel("Verification")
VERIFY = VERIFY_PANEL.shared("--verify/--no-verify", True, "Compare the new model with the one it was made from.")
VERIFY_IMAGES = VERIFY_PANEL.shared("--verify-images", None, "Folder of pictures to verify on.", metavar="DIR")
MIN_AGREEMENT = VERIFY_PANEL.shared("--min-agreement", None, "Smallest argmax agreement accepted.")

# ---- outputs and runs ---------------------------------------------------------------------------
REPORT = shared("--report", None, "Write the figures as JSON here.")
#: The file a command writes (export-onnx's ONNX, quantize's INT8 ONNX).
OUTPUT = shared("--output", "-o", None, "File to write.")
#: The folder a command writes into (train's run folder, visualize's pictures).
OUTPUT_DIR = shared("--output-dir", "--output_dir", help="Folder written to.", metavar="DIR")
SEED = shared("--seed", 0, "Random seed.")
# fmt: on


@dataclass(frozen=True)
class QuietFlag:
    """``--quiet``: only the summary (the commands whose progress bars are worth silencing)."""

    quiet: bool = flag("--quiet", "-q", False, "Only the summary.")
