"""``segpipe train``'s flags, one section per ``--help`` panel (data, model, augmentation,
optimisation, recipe, run, logging, scale, speed): each an ``Annotated`` alias carrying the flag's
spellings (the original tool's ``--data_root`` style ones included), help text and panel.

The command (:mod:`segpipe.cli.train`) lists them in this order with their defaults, which come
from :class:`~segpipe.options.TrainOptions`; so ``segpipe train --help`` reads as a table of
contents. A new flag: an alias here, a line in the command's signature, a field in TrainOptions
of the same name (the command passes every flag given on the command line to TrainOptions by name).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# the data flags train shares with evaluate, visualize and data (same spelling, help and panel)
from segpipe.cli.dataflags import (  # noqa: F401 - re-exported for the train command
    DATA_PANEL,
    CrowdsOpt,
    FormatOpt,
    ImagesDirOpt,
    MasksDirOpt,
    MaskSuffixOpt,
    ReduceZeroLabelOpt,
)

DATA, MODEL, AUG, OPTIM = DATA_PANEL, "Model", "Augmentation", "Optimisation"
RECIPE, RUN, LOGGING = "Recipe (class weights, EMA, warm-up)", "Run", "Logging"
SCALE, SPEED = "Several GPUs / processes", "Speed (CUDA)"

# ---- data: where the images and masks are and how to read them -------------------------------
DataRootOpt = Annotated[
    Path,
    typer.Option(
        "--data-root",
        "--data_root",
        help="Data set folder, any label format (see --format).",
        rich_help_panel=DATA,
    ),
]
NumClassesOpt = Annotated[
    int | None,
    typer.Option(
        "--num-classes", "--num_classes", help="Number of classes (binary: 2).", rich_help_panel=DATA
    ),
]
SizeOpt = Annotated[
    tuple[int, int] | None,
    typer.Option(
        "--size",
        help="WIDTH HEIGHT, multiples of the output stride. Default: 512 512.",
        rich_help_panel=DATA,
        show_default=False,
    ),
]
ValFractionOpt = Annotated[
    float,
    typer.Option("--val-fraction", help="Share of the data held out for validation.", rich_help_panel=DATA),
]
ValRootOpt = Annotated[
    Path | None,
    typer.Option("--val-root", help="A separate validation folder (same layout).", rich_help_panel=DATA),
]
ClassNamesOpt = Annotated[
    str | None,
    typer.Option(
        "--class-names",
        help="Comma-separated class names (default: the data's, else class_0...).",
        rich_help_panel=DATA,
    ),
]
ColorsOpt = Annotated[
    Path | None,
    typer.Option(
        "--colors",
        help="Palette CSV id,name,r,g,b (default: the data's, else segpipe's colours).",
        rich_help_panel=DATA,
    ),
]
IgnoreIndexOpt = Annotated[
    int | None,
    typer.Option(
        "--ignore-index",
        help="Mask value ignored by loss and metrics. Default: 255 (65535 above 255 classes).",
        rich_help_panel=DATA,
        show_default=False,
    ),
]
MaskTypeOpt = Annotated[str, typer.Option("--mask-type", help="auto, index or color.", rich_help_panel=DATA)]
ClassMapOpt = Annotated[
    Path | None,
    typer.Option("--class-map", help="File of 'raw,new' lines (new may be 'ignore').", rich_help_panel=DATA),
]
DatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset",
        help="Your own dataset class, package.module:ClassName: this IMPORTS AND RUNS that Python "
        "code (only from the command line, never from a --config file).",
        rich_help_panel=DATA,
    ),
]

# ---- model: what is trained, from what -------------------------------------------------------
ModelOpt = Annotated[
    Path | None,
    typer.Option(
        "--model",
        help="Checkpoint to start from (segpipe checkpoints resume; bare state_dicts load weights).",
        rich_help_panel=MODEL,
    ),
]
FinetuneOpt = Annotated[
    bool,
    typer.Option(
        "--finetune",
        help="With --model: load its weights only and start a new run.",
        rich_help_panel=MODEL,
    ),
]
ModeOpt = Annotated[
    str,
    typer.Option("--mode", help="seg (multiclass softmax), binary or multilabel.", rich_help_panel=MODEL),
]
EncoderOpt = Annotated[
    str, typer.Option("--encoder", "--backend", help="Any smp encoder.", rich_help_panel=MODEL)
]
ArchOpt = Annotated[
    str,
    typer.Option("--arch", help="Any smp architecture (Unet, FPN, DeepLabV3Plus...).", rich_help_panel=MODEL),
]
EncoderWeightsOpt = Annotated[
    str,
    typer.Option("--encoder-weights", help="imagenet, none, or a weights file.", rich_help_panel=MODEL),
]
TrustCheckpointOpt = Annotated[
    bool,
    typer.Option(
        "--trust-checkpoint",
        help="Allow a --model checkpoint that needs full unpickling (it can run code: trusted files only).",
        rich_help_panel=MODEL,
    ),
]

# ---- augmentation ----------------------------------------------------------------------------
UseMixupOpt = Annotated[
    bool,
    typer.Option(
        "--use-mixup",
        "--use_mixup",
        help="Mix-up of two samples, loss mixed by the same weight.",
        rich_help_panel=AUG,
    ),
]
MixupAlphaOpt = Annotated[
    float,
    typer.Option("--mixup-alpha", help="Beta(alpha, alpha) of the mix-up weight.", rich_help_panel=AUG),
]
AugmentOpt = Annotated[
    str,
    typer.Option("--augment", help="none, light, heavy or an albumentations YAML file.", rich_help_panel=AUG),
]

# ---- optimisation ----------------------------------------------------------------------------
EpochsOpt = Annotated[int, typer.Option("--epochs", rich_help_panel=OPTIM)]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", "--batch_size", rich_help_panel=OPTIM)]
LrOpt = Annotated[float, typer.Option("--lr", help="Learning rate.", rich_help_panel=OPTIM)]
WeightDecayOpt = Annotated[float, typer.Option("--weight-decay", rich_help_panel=OPTIM)]
OptimizerOpt = Annotated[str, typer.Option("--optimizer", help="adamw, adam or sgd.", rich_help_panel=OPTIM)]
SchedulerOpt = Annotated[
    str, typer.Option("--scheduler", help="cosine, poly or constant (per epoch).", rich_help_panel=OPTIM)
]
LossOpt = Annotated[
    str,
    typer.Option(
        "--loss", help="ce, dice, focal, lovasz (bce) or a sum like ce+dice.", rich_help_panel=OPTIM
    ),
]
PatienceOpt = Annotated[
    int,
    typer.Option(
        "--patience",
        help="Early stopping after N epochs without a better mIoU (0: off).",
        rich_help_panel=OPTIM,
    ),
]
SkipNonfiniteOpt = Annotated[
    bool,
    typer.Option(
        "--skip-nonfinite",
        help="Skip batches with a NaN/inf loss instead of stopping.",
        rich_help_panel=OPTIM,
    ),
]

# ---- recipe: class weights, EMA, warm-up -----------------------------------------------------
ClassWeightsOpt = Annotated[
    str,
    typer.Option(
        "--class-weights",
        help="Per-class loss weights: none, inverse or sqrt-inverse (of the pixel share), a file of one weight per class, or 0.5,1,4.",
        rich_help_panel=RECIPE,
    ),
]
ClassWeightCapOpt = Annotated[
    float,
    typer.Option(
        "--class-weight-cap",
        help="inverse/sqrt-inverse: no class weighs more than this times the most frequent.",
        rich_help_panel=RECIPE,
    ),
]
EmaOpt = Annotated[
    bool,
    typer.Option("--ema", help="EMA of the weights: validation and best.pth use it.", rich_help_panel=RECIPE),
]
EmaDecayOpt = Annotated[
    float,
    typer.Option("--ema-decay", help="The EMA decay its warm-up rises to.", rich_help_panel=RECIPE),
]
WarmupEpochsOpt = Annotated[
    float,
    typer.Option(
        "--warmup-epochs",
        help="Linear learning-rate warm-up over N epochs (per step) before the scheduler.",
        rich_help_panel=RECIPE,
    ),
]

# ---- run: where it is written, on what device, resumed or not --------------------------------
ModelNameOpt = Annotated[
    str,
    typer.Option(
        "--model-name",
        "--model_name",
        help="Name of the run and its checkpoints (the original --model_name means this name here; "
        "in visualize and evaluate it is the model file).",
        rich_help_panel=RUN,
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="Data loader processes. Default: min(4, cores).",
        rich_help_panel=RUN,
        show_default=False,
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.", rich_help_panel=RUN)]
AmpOpt = Annotated[bool, typer.Option("--amp", help="Mixed precision on CUDA.", rich_help_panel=RUN)]
SeedOpt = Annotated[int, typer.Option("--seed", rich_help_panel=RUN)]
OutputDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--output-dir",
        "--output_dir",
        help="Run folder (default runs/<model_name>).",
        rich_help_panel=RUN,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="YAML file of options; flags on the command line win. It cannot set --trust-checkpoint "
        "or --dataset (they run code).",
        rich_help_panel=RUN,
    ),
]
ExistOkOpt = Annotated[
    bool,
    typer.Option(
        "--exist-ok",
        help="Write into an --output-dir that already holds a finished run (its files are replaced).",
        rich_help_panel=RUN,
    ),
]
ResumeOpt = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="If the run folder holds last.pth, go on from it (re-queued jobs).",
        rich_help_panel=RUN,
    ),
]

# ---- logging ---------------------------------------------------------------------------------
LoggerOpt = Annotated[
    str,
    typer.Option(
        "--logger",
        help="auto (TensorBoard if installed), tensorboard, mlflow or none; into the run folder.",
        rich_help_panel=LOGGING,
    ),
]
LogEveryOpt = Annotated[
    int,
    typer.Option(
        "--log-every",
        help="Steps between progress updates (host syncs); 0: 1 on CPU, 10 on CUDA.",
        rich_help_panel=LOGGING,
    ),
]

# ---- scale: several GPUs or processes --------------------------------------------------------
DevicesOpt = Annotated[
    int,
    typer.Option(
        "--devices",
        help="Processes on this machine (one per GPU; with --device cpu, CPU processes), launched by torch's elastic launcher. Under torchrun: ignored.",
        rich_help_panel=SCALE,
    ),
]
MaxRestartsOpt = Annotated[
    int,
    typer.Option(
        "--max-restarts",
        help="With --devices: restart all processes this often after a failure, resuming from last.pth.",
        rich_help_panel=SCALE,
    ),
]
SyncBnOpt = Annotated[
    bool, typer.Option("--sync-bn", help="SyncBatchNorm across processes (CUDA).", rich_help_panel=SCALE)
]

# ---- speed on CUDA ---------------------------------------------------------------------------
AmpDtypeOpt = Annotated[
    str,
    typer.Option(
        "--amp-dtype", help="fp16 (with a gradient scaler) or bf16, with --amp.", rich_help_panel=SPEED
    ),
]
CompileOpt = Annotated[
    bool,
    typer.Option("--compile", help="torch.compile the model (slow first steps).", rich_help_panel=SPEED),
]
ChannelsLastOpt = Annotated[
    bool | None,
    typer.Option(
        "--channels-last/--no-channels-last",
        help="Memory layout of the model and its batches (default: channels-last on CUDA, "
        "contiguous on the CPU).",
        rich_help_panel=SPEED,
        show_default=False,
    ),
]
PersistentWorkersOpt = Annotated[
    bool,
    typer.Option(
        "--persistent-workers/--no-persistent-workers",
        help="Keep loader workers alive between epochs.",
        rich_help_panel=SPEED,
    ),
]
DeterministicOpt = Annotated[
    bool,
    typer.Option(
        "--deterministic",
        help="Deterministic CUDA kernels, no cudnn.benchmark (exact resume on GPU; slower).",
        rich_help_panel=SPEED,
    ),
]
