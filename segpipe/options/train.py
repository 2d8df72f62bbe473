"""Options of ``segpipe train``: each field declared once with its command-line flag (the values
and the checks that tie fields together are in :mod:`segpipe.options.train_checks`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segpipe.options import flags as F
from segpipe.options.base import ClassCount, Count, Count0, IgnoreIndex, Seed, Size, to_plain
from segpipe.options.declare import UNSET, Panel
from segpipe.options.train_checks import (
    AMP_DTYPES,
    CLASS_WEIGHTS,
    LOGGERS,
    LOSSES,
    MAX_CLASS_WEIGHT,
    OPTIMIZERS,
    SCHEDULERS,
    Decay,
    Fraction,
    NonNegative,
    Positive,
    WeightCap,
    check_train,
    default_workers,
    parse_class_weights,
    parse_loss,
)

__all__ = [
    "AMP_DTYPES",
    "CLASS_WEIGHTS",
    "LOGGERS",
    "LOSSES",
    "MAX_CLASS_WEIGHT",
    "OPTIMIZERS",
    "SCHEDULERS",
    "TrainOptions",
    "parse_class_weights",
    "parse_loss",
]

DATA, MODEL, AUG, OPTIM = F.DATA_PANEL, F.MODEL_PANEL, Panel("Augmentation"), Panel("Optimisation")
RECIPE, RUN, LOGGING = Panel("Recipe (class weights, EMA, warm-up)"), Panel("Run"), Panel("Logging")
SCALE, SPEED = Panel("Several GPUs / processes"), Panel("Speed (CUDA)")


@dataclass(frozen=True)
class TrainOptions:
    """Everything ``segpipe train`` needs. Sizes are (width, height) in pixels."""

    # one declaration a line or two (segpipe.options.declare), kept so by the formatter:
    # fmt: off
    #: The data set folder, any label format (required: on the command line or in ``--config``).
    data_root: Path = F.DATA_ROOT(required=False)
    #: Number of classes in the masks (binary mode: 2). None: from --class-names or the checkpoint.
    num_classes: ClassCount | None = F.NUM_CLASSES(help="Number of classes (binary: 2).", panel=DATA)
    #: Name the run and its checkpoints are saved under (run folder ``runs/<model_name>``).
    model_name: str = RUN.flag("--model-name", "--model_name", "model", "Name of the run and its checkpoints (the "
        "original --model_name means this name here; in visualize and evaluate it is the model file).")
    #: Checkpoint to start from: a segpipe checkpoint resumes (model, optimizer, scheduler,
    #: epoch, best metric); a bare state_dict loads weights only. Missing file: warn, start fresh.
    model: Path | None = F.MODEL(names=("--model",), default=None,
        help="Checkpoint to start from (segpipe checkpoints resume; bare state_dicts load weights).")
    #: Load only the weights of ``model`` (fine-tune) instead of resuming its run.
    finetune: bool = MODEL.flag("--finetune", False, "With --model: load its weights only and start a new run.")
    #: ``seg`` (multiclass softmax), ``binary`` (one sigmoid channel) or ``multilabel``.
    mode: str = F.MODE(help="seg (multiclass softmax), binary or multilabel.")
    arch: str = F.ARCH(default="Unet", help="Any smp architecture (Unet, FPN, DeepLabV3Plus...).")
    encoder: str = F.ENCODER(default="efficientnet-b0", help="Any smp encoder.")
    #: ``imagenet``, ``none`` or a path to an encoder weights file.
    encoder_weights: str = MODEL.flag("--encoder-weights", "imagenet", "imagenet, none, or a weights file.",
        metavar="WEIGHTS")
    epochs: Count = OPTIM.flag("--epochs", 50, "Training epochs.")
    #: Images per step and process.
    batch_size: Count = F.BATCH(default=8, help="Images per step (per process).", panel=OPTIM)
    lr: Positive = OPTIM.flag("--lr", 1e-3, "Learning rate.")
    weight_decay: NonNegative = OPTIM.flag("--weight-decay", 1e-4, "Weight decay.")
    optimizer: str = OPTIM.flag("--optimizer", "adamw", "adamw, adam or sgd.")
    scheduler: str = OPTIM.flag("--scheduler", "cosine", "cosine, poly or constant (per epoch).")
    size: Size = F.SIZE(default=(512, 512), help="WIDTH HEIGHT, multiples of the output stride. Default: 512 512.",
        panel=DATA, show_default=False)
    #: Fraction of the data held out for validation when ``val_root`` is not given (0: none).
    val_fraction: Fraction = DATA.flag("--val-fraction", 0.2, "Share of the data held out for validation.")
    val_root: Path | None = DATA.flag("--val-root", None, "A separate validation folder (same layout).",
        metavar="DIR")
    #: Data loader processes; default min(4, cores).
    workers: Count0 = F.WORKERS(default=UNSET, default_factory=default_workers,
        help="Data loader processes. Default: min(4, cores).", panel=RUN, show_default=False)
    device: str = F.DEVICE(panel=RUN)
    #: Mixed precision (CUDA only; ignored with a warning on CPU).
    amp: bool = RUN.flag("--amp", False, "Mixed precision on CUDA.")
    seed: Seed = F.SEED(panel=RUN)
    #: Run folder; default ``runs/<model_name>`` (``-2``, ``-3``... if that already holds a run).
    output_dir: Path | None = F.OUTPUT_DIR(default=None, help="Run folder (default runs/<model_name>).", panel=RUN)
    class_names: tuple[str, ...] | None = F.CLASS_NAMES()
    #: Palette CSV for colour masks and pictures; default the colors.csv shipped with segpipe.
    colors: Path | None = F.COLORS()
    #: Mask value ignored by loss and metrics; default 255, or 65535 above 255 classes.
    ignore_index: IgnoreIndex | None = F.IGNORE_INDEX()
    #: One of ce, dice, focal, lovasz (bce in binary/multilabel) or a sum such as ``ce+dice``.
    loss: str = OPTIM.flag("--loss", "ce", "ce, dice, focal, lovasz (bce) or a sum like ce+dice.", metavar="LOSS")
    #: ``none``, ``light``, ``heavy`` or a YAML albumentations pipeline.
    augment: str = AUG.flag("--augment", "light", "none, light, heavy or an albumentations YAML file.",
        metavar="PRESET")
    use_mixup: bool = AUG.flag("--use-mixup", "--use_mixup", False,
        "Mix-up of two samples, loss mixed by the same weight.")
    mixup_alpha: Positive = AUG.flag("--mixup-alpha", 0.4, "Beta(alpha, alpha) of the mix-up weight.")
    #: Stop after this many epochs without a better validation mIoU (0: never).
    patience: Count0 = OPTIM.flag("--patience", 0, "Early stopping after N epochs without a better mIoU (0: off).")
    images_dir: str = F.IMAGES_DIR()
    masks_dir: str = F.MASKS_DIR()
    mask_suffix: str = F.MASK_SUFFIX()
    #: ``auto``, ``index`` or ``color``.
    mask_type: str = F.MASK_TYPE()
    class_map: Path | None = F.CLASS_MAP()
    #: Label format of ``data_root``: ``auto`` (detected) or a name of
    #: :data:`segpipe.options.flags.FORMAT_NAMES` (seed, voc, cityscapes, ade20k, ultralytics, ...).
    format: str = F.FORMAT()
    #: MMSegmentation's reduce-zero-label for index masks: 0 -> ignore, others minus 1. None: the
    #: format's default (on for ADE20K, off elsewhere).
    reduce_zero_label: bool | None = F.REDUCE_ZERO_LABEL()
    #: COCO crowd regions (``iscrowd: 1``): ``ignore`` (the ignore value where no object covers
    #: them) or ``class`` (drawn as their category).
    crowds: str = F.CROWDS()
    #: A user's dataset class ``package.module:ClassName`` for other layouts. It imports and runs
    #: that Python code: the command line takes it from ``--dataset`` only, never from a config file.
    dataset: str | None = DATA.flag("--dataset", None, "Your own dataset class, package.module:ClassName: this "
        "IMPORTS AND RUNS that Python code (only from the command line, never from a --config file).",
        metavar="MODULE:CLASS")
    # ---- scale and robustness ----
    #: Processes (one per GPU, or CPU processes with ``device="cpu"``) on this machine, launched
    #: through torch.distributed's elastic launcher. Under ``torchrun`` the world size comes from
    #: torchrun and this is ignored. ``batch_size`` is per process: the effective batch is
    #: ``batch_size * processes``; ``lr`` is used as given (not scaled).
    devices: Count = SCALE.flag("--devices", 1, "Processes on this machine (one per GPU; with --device cpu, CPU "
        "processes), launched by torch's elastic launcher. Under torchrun: ignored.")
    #: Elastic restarts of all processes after a failure when launched with ``devices > 1``
    #: (torchrun: its own ``--max-restarts``); a restart resumes from the run's ``last.pth``.
    max_restarts: Count0 = SCALE.flag("--max-restarts", 0,
        "With --devices: restart all processes this often after a failure, resuming from last.pth.")
    #: If the run folder already holds ``last.pth``, resume from it (else start as usual): makes a
    #: re-queued job pick up where it stopped. Needs ``output_dir`` or the default folder name.
    resume: bool = RUN.flag("--resume", False, "If the run folder holds last.pth, go on from it (re-queued jobs).")
    #: Synchronised BatchNorm across processes (CUDA, more than one process).
    sync_bn: bool = SCALE.flag("--sync-bn", False, "SyncBatchNorm across processes (CUDA).")
    #: Mixed-precision type with ``amp``: ``fp16`` (with a gradient scaler) or ``bf16`` (none needed).
    amp_dtype: str = SPEED.flag("--amp-dtype", "fp16", "fp16 (with a gradient scaler) or bf16, with --amp.",
        metavar="DTYPE")
    #: ``torch.compile`` the model (opt-in; the first steps are slow while it compiles).
    compile: bool = SPEED.flag("--compile", False, "torch.compile the model (slow first steps).")
    #: Channels-last memory layout for the model and its input batches: ``None`` (default) is
    #: channels-last on CUDA (faster convolutions, above all with AMP) and contiguous NCHW on the CPU
    #: (as fast or faster there, see benchmarks/bench_channels_last.py, and oneDNN's channels-last
    #: backward crashes some encoders on AVX-512 CPUs); True / False force one layout.
    channels_last: bool | None = SPEED.flag("--channels-last/--no-channels-last", None, "Memory layout of the "
        "model and its batches (default: channels-last on CUDA, contiguous on the CPU).", show_default=False)
    #: Keep data-loader worker processes alive between epochs (``workers > 0``); augmentation stays
    #: seeded per (seed, epoch, image), so resuming is exact either way.
    persistent_workers: bool = SPEED.flag("--persistent-workers/--no-persistent-workers", True,
        "Keep loader workers alive between epochs.")
    #: Deterministic kernels on CUDA (no cudnn.benchmark): slower, repeatable to the bit.
    deterministic: bool = SPEED.flag("--deterministic", False,
        "Deterministic CUDA kernels, no cudnn.benchmark (exact resume on GPU; slower).")
    #: Steps between progress-bar updates, each a host synchronisation; 0: every step on CPU, every
    #: 10 on CUDA. A stop signal or a non-finite loss is acted on at the next update.
    log_every: Count0 = LOGGING.flag("--log-every", 0, "Steps between progress updates (host syncs); 0: 1 on CPU, "
        "10 on CUDA.")
    #: Skip batches whose loss is not finite (NaN/inf) instead of stopping the run (costs one host
    #: synchronisation per step).
    skip_nonfinite: bool = OPTIM.flag("--skip-nonfinite", False,
        "Skip batches with a NaN/inf loss instead of stopping.")
    #: Allow a ``model`` checkpoint that needs full unpickling (Python objects; can run code). The
    #: command line takes it from ``--trust-checkpoint`` only; options.yaml never records it.
    trust_checkpoint: bool = F.TRUST_CHECKPOINT(
        help="Allow a --model checkpoint that needs full unpickling (it can run code: trusted files only).")
    # ---- training recipe ----
    #: Per-class loss weights: ``none``, ``inverse`` or ``sqrt-inverse`` (of each class's pixel
    #: share in the data), a file of one weight per class, or the weights (``0.5,1,4``). Resolved
    #: to the weights themselves once the data is scanned: options.yaml records the numbers.
    class_weights: str | tuple[float, ...] = RECIPE.flag("--class-weights", "none",
        "Per-class loss weights: none, inverse or sqrt-inverse (of the pixel share), a file of one weight per "
        "class, or 0.5,1,4.", cli_type=str, metavar="WEIGHTS")
    #: With ``inverse``/``sqrt-inverse``: no class weighs more than this many times the most
    #: frequent one.
    class_weight_cap: WeightCap = RECIPE.flag("--class-weight-cap", 10.0,
        "inverse/sqrt-inverse: no class weighs more than this times the most frequent.")
    #: Exponential moving average of the weights (timm ModelEmaV3, decay warmed up):
    #: validation and best.pth use the averaged weights.
    ema: bool = RECIPE.flag("--ema", False, "EMA of the weights: validation and best.pth use it.")
    #: The EMA decay the warm-up ``1 - (1 + step) ** -0.75`` rises to.
    ema_decay: Decay = RECIPE.flag("--ema-decay", 0.9999, "The EMA decay its warm-up rises to.")
    #: Linear learning-rate warm-up over this many epochs (per step; fractions allowed), before
    #: the scheduler takes over.
    warmup_epochs: NonNegative = RECIPE.flag("--warmup-epochs", 0.0,
        "Linear learning-rate warm-up over N epochs (per step) before the scheduler.")
    #: ``auto``, ``tensorboard``, ``mlflow`` or ``none``; both log into the run folder, no network.
    logger: str = LOGGING.flag("--logger", "auto",
        "auto (TensorBoard if installed), tensorboard, mlflow or none; into the run folder.")
    #: Write into a run folder (``output_dir``) that already holds a finished run, replacing its files.
    exist_ok: bool = RUN.flag("--exist-ok", False,
        "Write into an --output-dir that already holds a finished run (its files are replaced).")
    # fmt: on

    def __post_init__(self) -> None:
        check_train(self)

    def replace(self, **changes: Any) -> TrainOptions:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain types (for options.yaml and the checkpoint), less ``trust_checkpoint``: trusting a
        pickle is decided on the command line each time, never recorded in a file."""
        plain = to_plain(self)
        plain.pop("trust_checkpoint", None)
        return plain
