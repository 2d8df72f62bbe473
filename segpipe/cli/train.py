"""``segpipe train``: flags (original and modern spellings) -> TrainOptions -> ``train``."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from segpipe.cli.common import console, err_console, fail, is_debug, one_line, run_guarded, warn
from segpipe.cli.dataflags import FormatOpt, ImagesDirOpt, MasksDirOpt, MaskSuffixOpt, ReduceZeroLabelOpt
from segpipe.options import TrainOptions

_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(TrainOptions) if f.default is not dataclasses.MISSING
}


def _d(name: str) -> Any:
    """The default shown in --help, read from TrainOptions (defaults live there only)."""
    value = _DEFAULTS.get(name)
    return value if value is not None else None


DATA, MODEL, OPTIM, AUG, RUN = "Data", "Model", "Optimisation", "Augmentation", "Run"
SCALE, SPEED = "Several GPUs / processes", "Speed (CUDA)"
RECIPE = "Recipe (class weights, EMA, warm-up, logging)"


def train_command(
    ctx: typer.Context,
    data_root: Annotated[
        Path,
        typer.Option(
            "--data-root",
            "--data_root",
            help="Data set folder, any label format (see --format).",
            rich_help_panel=DATA,
        ),
    ] = None,  # type: ignore[assignment]
    num_classes: Annotated[
        int | None,
        typer.Option(
            "--num-classes", "--num_classes", help="Number of classes (binary: 2).", rich_help_panel=DATA
        ),
    ] = None,
    model_name: Annotated[
        str,
        typer.Option(
            "--model-name",
            "--model_name",
            help="Name of the run and its checkpoints (the original --model_name means this name here; "
            "in visualize and evaluate it is the model file).",
            rich_help_panel=RUN,
        ),
    ] = _d("model_name"),
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="Checkpoint to start from (segpipe checkpoints resume; bare state_dicts load weights).",
            rich_help_panel=MODEL,
        ),
    ] = None,
    finetune: Annotated[
        bool,
        typer.Option(
            "--finetune",
            help="With --model: load its weights only and start a new run.",
            rich_help_panel=MODEL,
        ),
    ] = False,
    mode: Annotated[
        str,
        typer.Option("--mode", help="seg (multiclass softmax), binary or multilabel.", rich_help_panel=MODEL),
    ] = _d("mode"),
    use_mixup: Annotated[
        bool,
        typer.Option(
            "--use-mixup",
            "--use_mixup",
            help="Mix-up of two samples, loss mixed by the same weight.",
            rich_help_panel=AUG,
        ),
    ] = False,
    mixup_alpha: Annotated[
        float,
        typer.Option("--mixup-alpha", help="Beta(alpha, alpha) of the mix-up weight.", rich_help_panel=AUG),
    ] = _d("mixup_alpha"),
    encoder: Annotated[
        str, typer.Option("--encoder", "--backend", help="Any smp encoder.", rich_help_panel=MODEL)
    ] = _d("encoder"),
    arch: Annotated[
        str,
        typer.Option(
            "--arch", help="Any smp architecture (Unet, FPN, DeepLabV3Plus...).", rich_help_panel=MODEL
        ),
    ] = _d("arch"),
    encoder_weights: Annotated[
        str,
        typer.Option("--encoder-weights", help="imagenet, none, or a weights file.", rich_help_panel=MODEL),
    ] = _d("encoder_weights"),
    epochs: Annotated[int, typer.Option("--epochs", rich_help_panel=OPTIM)] = _d("epochs"),
    batch_size: Annotated[int, typer.Option("--batch-size", "--batch_size", rich_help_panel=OPTIM)] = _d(
        "batch_size"
    ),
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.", rich_help_panel=OPTIM)] = _d("lr"),
    weight_decay: Annotated[float, typer.Option("--weight-decay", rich_help_panel=OPTIM)] = _d(
        "weight_decay"
    ),
    optimizer: Annotated[
        str, typer.Option("--optimizer", help="adamw, adam or sgd.", rich_help_panel=OPTIM)
    ] = _d("optimizer"),
    scheduler: Annotated[
        str, typer.Option("--scheduler", help="cosine, poly or constant (per epoch).", rich_help_panel=OPTIM)
    ] = _d("scheduler"),
    loss: Annotated[
        str,
        typer.Option(
            "--loss", help="ce, dice, focal, lovasz (bce) or a sum like ce+dice.", rich_help_panel=OPTIM
        ),
    ] = _d("loss"),
    size: Annotated[
        tuple[int, int] | None,
        typer.Option(
            "--size",
            help="WIDTH HEIGHT, multiples of the output stride.",
            rich_help_panel=DATA,
            show_default="512 512",
        ),
    ] = None,
    val_fraction: Annotated[
        float,
        typer.Option(
            "--val-fraction", help="Share of the data held out for validation.", rich_help_panel=DATA
        ),
    ] = _d("val_fraction"),
    val_root: Annotated[
        Path | None,
        typer.Option("--val-root", help="A separate validation folder (same layout).", rich_help_panel=DATA),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", help="Data loader processes.", rich_help_panel=RUN, show_default="min(4, cores)"
        ),
    ] = None,
    device: Annotated[
        str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.", rich_help_panel=RUN)
    ] = _d("device"),
    amp: Annotated[bool, typer.Option("--amp", help="Mixed precision on CUDA.", rich_help_panel=RUN)] = False,
    seed: Annotated[int, typer.Option("--seed", rich_help_panel=RUN)] = _d("seed"),
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            "--output_dir",
            help="Run folder (default runs/<model_name>).",
            rich_help_panel=RUN,
        ),
    ] = None,
    class_names: Annotated[
        str | None,
        typer.Option(
            "--class-names",
            help="Comma-separated class names (default: the palette's).",
            rich_help_panel=DATA,
        ),
    ] = None,
    colors: Annotated[
        Path | None,
        typer.Option(
            "--colors",
            help="Palette CSV id,name,r,g,b (default: segpipe's colors.csv).",
            rich_help_panel=DATA,
        ),
    ] = None,
    ignore_index: Annotated[
        int | None,
        typer.Option(
            "--ignore-index",
            help="Mask value ignored by loss and metrics.",
            rich_help_panel=DATA,
            show_default="255; 65535 above 255 classes",
        ),
    ] = None,
    augment: Annotated[
        str,
        typer.Option(
            "--augment", help="none, light, heavy or an albumentations YAML file.", rich_help_panel=AUG
        ),
    ] = _d("augment"),
    patience: Annotated[
        int,
        typer.Option(
            "--patience",
            help="Early stopping after N epochs without a better mIoU (0: off).",
            rich_help_panel=OPTIM,
        ),
    ] = _d("patience"),
    mask_suffix: MaskSuffixOpt = _d("mask_suffix"),
    images_dir: ImagesDirOpt = _d("images_dir"),
    masks_dir: MasksDirOpt = _d("masks_dir"),
    format_: FormatOpt = _d("format"),
    reduce_zero_label: ReduceZeroLabelOpt = None,
    mask_type: Annotated[
        str, typer.Option("--mask-type", help="auto, index or color.", rich_help_panel=DATA)
    ] = _d("mask_type"),
    class_map: Annotated[
        Path | None,
        typer.Option(
            "--class-map", help="File of 'raw,new' lines (new may be 'ignore').", rich_help_panel=DATA
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="Your own dataset class, package.module:ClassName: this IMPORTS AND RUNS that Python "
            "code (only from the command line, never from a --config file).",
            rich_help_panel=DATA,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML file of options; flags on the command line win. It cannot set --trust-checkpoint "
            "or --dataset (they run code).",
            rich_help_panel=RUN,
        ),
    ] = None,
    trust_checkpoint: Annotated[
        bool,
        typer.Option(
            "--trust-checkpoint",
            help="Allow a --model checkpoint that needs full unpickling (it can run code: trusted files only).",
            rich_help_panel=MODEL,
        ),
    ] = False,
    exist_ok: Annotated[
        bool,
        typer.Option(
            "--exist-ok",
            help="Write into an --output-dir that already holds a finished run (its files are replaced).",
            rich_help_panel=RUN,
        ),
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="If the run folder holds last.pth, go on from it (re-queued jobs).",
            rich_help_panel=RUN,
        ),
    ] = False,
    skip_nonfinite: Annotated[
        bool,
        typer.Option(
            "--skip-nonfinite",
            help="Skip batches with a NaN/inf loss instead of stopping.",
            rich_help_panel=OPTIM,
        ),
    ] = False,
    devices: Annotated[
        int,
        typer.Option(
            "--devices",
            help="Processes on this machine (one per GPU; with --device cpu, CPU processes), launched by torch's elastic launcher. Under torchrun: ignored.",
            rich_help_panel=SCALE,
        ),
    ] = _d("devices"),
    max_restarts: Annotated[
        int,
        typer.Option(
            "--max-restarts",
            help="With --devices: restart all processes this often after a failure, resuming from last.pth.",
            rich_help_panel=SCALE,
        ),
    ] = _d("max_restarts"),
    sync_bn: Annotated[
        bool, typer.Option("--sync-bn", help="SyncBatchNorm across processes (CUDA).", rich_help_panel=SCALE)
    ] = False,
    amp_dtype: Annotated[
        str,
        typer.Option(
            "--amp-dtype", help="fp16 (with a gradient scaler) or bf16, with --amp.", rich_help_panel=SPEED
        ),
    ] = _d("amp_dtype"),
    compile_: Annotated[
        bool,
        typer.Option("--compile", help="torch.compile the model (slow first steps).", rich_help_panel=SPEED),
    ] = False,
    channels_last: Annotated[
        bool,
        typer.Option(
            "--channels-last/--no-channels-last",
            help="Channels-last memory layout for the model (as the inputs).",
            rich_help_panel=SPEED,
        ),
    ] = _d("channels_last"),
    persistent_workers: Annotated[
        bool,
        typer.Option(
            "--persistent-workers/--no-persistent-workers",
            help="Keep loader workers alive between epochs.",
            rich_help_panel=SPEED,
        ),
    ] = _d("persistent_workers"),
    deterministic: Annotated[
        bool,
        typer.Option(
            "--deterministic",
            help="Deterministic CUDA kernels, no cudnn.benchmark (exact resume on GPU; slower).",
            rich_help_panel=SPEED,
        ),
    ] = False,
    class_weights: Annotated[
        str,
        typer.Option(
            "--class-weights",
            help="Per-class loss weights: none, inverse or sqrt-inverse (of the pixel share), a file of one weight per class, or 0.5,1,4.",
            rich_help_panel=RECIPE,
        ),
    ] = "none",
    class_weight_cap: Annotated[
        float,
        typer.Option(
            "--class-weight-cap",
            help="inverse/sqrt-inverse: no class weighs more than this times the most frequent.",
            rich_help_panel=RECIPE,
        ),
    ] = _d("class_weight_cap"),
    ema: Annotated[
        bool,
        typer.Option(
            "--ema", help="EMA of the weights: validation and best.pth use it.", rich_help_panel=RECIPE
        ),
    ] = False,
    ema_decay: Annotated[
        float,
        typer.Option("--ema-decay", help="The EMA decay its warm-up rises to.", rich_help_panel=RECIPE),
    ] = _d("ema_decay"),
    warmup_epochs: Annotated[
        float,
        typer.Option(
            "--warmup-epochs",
            help="Linear learning-rate warm-up over N epochs (per step) before the scheduler.",
            rich_help_panel=RECIPE,
        ),
    ] = _d("warmup_epochs"),
    logger: Annotated[
        str,
        typer.Option(
            "--logger",
            help="auto (TensorBoard if installed), tensorboard, mlflow or none; into the run folder.",
            rich_help_panel=RECIPE,
        ),
    ] = _d("logger"),
    log_every: Annotated[
        int,
        typer.Option(
            "--log-every",
            help="Steps between progress updates (host syncs); 0: 1 on CPU, 10 on CUDA.",
            rich_help_panel=SPEED,
        ),
    ] = _d("log_every"),
) -> None:
    """Train a segmentation model on DATA_ROOT/images + DATA_ROOT/indexes."""
    from segpipe.options import load_config

    explicit = {
        name.rstrip("_"): value
        for name, value in ctx.params.items()
        if name != "config" and getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
    }
    if "class_names" in explicit and explicit["class_names"] is not None:
        explicit["class_names"] = tuple(n.strip() for n in explicit["class_names"].split(",") if n.strip())

    def build() -> TrainOptions:
        values = load_config(config) if config is not None else {}
        if not os.environ.get(
            "SEGPIPE_LAUNCHED"
        ):  # launch.LAUNCHED_ENV: the launcher's own config is trusted
            _command_line_only(config, values, explicit)
        values.update(explicit)
        if "data_root" not in values:
            from segpipe.errors import ConfigError

            raise ConfigError("--data-root is required (on the command line or in --config)")
        return TrainOptions(**values)

    rank = _rank()
    opts = run_guarded(build) if rank == 0 else _quiet_on_error(build)
    if opts.devices > 1 and is_debug():
        os.environ["SEGPIPE_DEBUG"] = "1"  # the launched processes show tracebacks too
    result = _guarded_train(opts, rank)
    from segpipe.training.launch import LAUNCHED_ENV

    if rank == 0 and not os.environ.get(LAUNCHED_ENV):
        console.print(f"[bold green]done:[/] {escape(summary(result))}", markup=True)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def summary(result: Any) -> str:
    """The closing line: epochs, what "best" means here, the files the run folder holds."""
    import math

    history = result.history or []
    validated = any(not math.isnan(float(r.get("miou", math.nan))) for r in history)
    epochs = _plural(result.epochs_done, "epoch")
    if validated:
        best = f"best mIoU {result.best_miou:.4f} at epoch {result.best_epoch}"
    else:
        row = next((r for r in history if r.get("epoch") == result.best_epoch), None)
        loss = f" {float(row['train_loss']):.4g}" if row else ""
        best = f"no validation data: best.pth is epoch {result.best_epoch}, the lowest training loss{loss}"
    names = ("best.pth", "last.pth", "metrics.csv", "curves.png", "val_samples.png")
    files = ", ".join(n for n in names if (result.run_dir / n).exists())
    return f"{epochs} trained; {best}; run folder {result.run_dir} ({files})"


def _command_line_only(config: Path | None, values: dict[str, Any], explicit: dict[str, Any]) -> None:
    """A config file cannot switch on code execution: ``trust_checkpoint`` in it is ignored (with
    a warning), ``dataset`` in it must be repeated on the command line."""
    from segpipe.errors import ConfigError
    from segpipe.options import COMMAND_LINE_ONLY

    if values.pop("trust_checkpoint", None):
        if "trust_checkpoint" not in explicit:
            warn(
                f"{config}: trust_checkpoint ignored: a config file cannot allow unpickling; pass "
                "--trust-checkpoint on the command line if you trust the checkpoint"
            )
    spec = values.pop("dataset", None)
    if spec and "dataset" not in explicit:
        raise ConfigError(
            f"{config}: dataset: {spec} would import and run Python code, which a config file cannot "
            f"switch on; pass {COMMAND_LINE_ONLY['dataset'].split(' ')[0]} {spec} on the command line if you trust it"
        )


def _rank() -> int:
    """This process's rank under torchrun (0 otherwise)."""
    from segpipe.training.distributed import under_elastic, world_from_env

    return world_from_env()[0] if under_elastic() else 0


def _quiet_on_error(fn: Any) -> Any:
    """Ranks other than 0 leave option errors to rank 0 (every rank parses the same flags)."""
    from segpipe.errors import SegpipeError

    try:
        return fn()
    except SegpipeError:
        if is_debug():
            raise
        raise typer.Exit(1) from None


def _guarded_train(opts: TrainOptions, rank: int) -> Any:
    """Train; every failure one line and an exit code: 1 for errors, 128 + signal when stopped.

    In a distributed run, rank 0 speaks for all: other ranks stay quiet about failures rank 0
    reports (bad input, a non-finite loss, a stop signal) and prefix their own with their rank.
    """
    from segpipe.cli.common import RichReporter
    from segpipe.errors import SegpipeError
    from segpipe.training import train
    from segpipe.training.distributed import is_comm_error, under_elastic
    from segpipe.training.guard import TrainingInterrupted

    try:
        return train(opts, RichReporter())
    except TrainingInterrupted as e:
        if rank == 0 and not e.reported:
            err_console.print(f"[bold yellow]stopped:[/] {escape(one_line(e))}", markup=True)
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:  # before training started (no checkpoint to write yet)
        if is_debug():
            raise
        raise (  # noqa: B904 - one line, no chained traceback
            fail("interrupted before training started; nothing was written", code=130)
            if rank == 0
            else typer.Exit(130)
        )
    except SegpipeError as e:
        if is_debug():
            raise
        code = int(getattr(e, "exit_code", 1))
        if getattr(e, "reported", False) or (rank > 0 and getattr(e, "collective", False)):
            raise typer.Exit(code) from None
        raise fail(f"[rank {rank}] {one_line(e)}" if rank else one_line(e), code) from None
    except RuntimeError as e:
        if is_debug() or not (under_elastic() and is_comm_error(e)):
            raise
        prefix = f"[rank {rank}] " if rank else ""
        raise fail(
            f"{prefix}lost contact with the other training processes ({type(e).__name__}): one of them "
            "probably failed, see its error above (--debug for the traceback)"
        ) from None
