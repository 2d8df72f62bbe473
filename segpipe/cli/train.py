"""``segpipe train``: flags (original and modern spellings) -> TrainOptions -> ``train``."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from segpipe.cli import train_flags as flag
from segpipe.cli.common import console, err_console, fail, is_debug, one_line, run_guarded, warn
from segpipe.options import TrainOptions

_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(TrainOptions) if f.default is not dataclasses.MISSING
}


def _d(name: str) -> Any:
    """The default shown in --help, read from TrainOptions (defaults live there only)."""
    value = _DEFAULTS.get(name)
    return value if value is not None else None


def train_command(
    ctx: typer.Context,
    data_root: flag.DataRootOpt = None,  # type: ignore[assignment]  # required, or from --config
    num_classes: flag.NumClassesOpt = None,
    size: flag.SizeOpt = None,
    val_fraction: flag.ValFractionOpt = _d("val_fraction"),
    val_root: flag.ValRootOpt = None,
    class_names: flag.ClassNamesOpt = None,
    colors: flag.ColorsOpt = None,
    ignore_index: flag.IgnoreIndexOpt = None,
    mask_suffix: flag.MaskSuffixOpt = _d("mask_suffix"),
    images_dir: flag.ImagesDirOpt = _d("images_dir"),
    masks_dir: flag.MasksDirOpt = _d("masks_dir"),
    format_: flag.FormatOpt = _d("format"),
    reduce_zero_label: flag.ReduceZeroLabelOpt = None,
    crowds: flag.CrowdsOpt = _d("crowds"),
    mask_type: flag.MaskTypeOpt = _d("mask_type"),
    class_map: flag.ClassMapOpt = None,
    dataset: flag.DatasetOpt = None,
    model: flag.ModelOpt = None,
    finetune: flag.FinetuneOpt = False,
    mode: flag.ModeOpt = _d("mode"),
    encoder: flag.EncoderOpt = _d("encoder"),
    arch: flag.ArchOpt = _d("arch"),
    encoder_weights: flag.EncoderWeightsOpt = _d("encoder_weights"),
    trust_checkpoint: flag.TrustCheckpointOpt = False,
    use_mixup: flag.UseMixupOpt = False,
    mixup_alpha: flag.MixupAlphaOpt = _d("mixup_alpha"),
    augment: flag.AugmentOpt = _d("augment"),
    epochs: flag.EpochsOpt = _d("epochs"),
    batch_size: flag.BatchSizeOpt = _d("batch_size"),
    lr: flag.LrOpt = _d("lr"),
    weight_decay: flag.WeightDecayOpt = _d("weight_decay"),
    optimizer: flag.OptimizerOpt = _d("optimizer"),
    scheduler: flag.SchedulerOpt = _d("scheduler"),
    loss: flag.LossOpt = _d("loss"),
    patience: flag.PatienceOpt = _d("patience"),
    skip_nonfinite: flag.SkipNonfiniteOpt = False,
    class_weights: flag.ClassWeightsOpt = "none",
    class_weight_cap: flag.ClassWeightCapOpt = _d("class_weight_cap"),
    ema: flag.EmaOpt = False,
    ema_decay: flag.EmaDecayOpt = _d("ema_decay"),
    warmup_epochs: flag.WarmupEpochsOpt = _d("warmup_epochs"),
    model_name: flag.ModelNameOpt = _d("model_name"),
    workers: flag.WorkersOpt = None,
    device: flag.DeviceOpt = _d("device"),
    amp: flag.AmpOpt = False,
    seed: flag.SeedOpt = _d("seed"),
    output_dir: flag.OutputDirOpt = None,
    config: flag.ConfigOpt = None,
    exist_ok: flag.ExistOkOpt = False,
    resume: flag.ResumeOpt = False,
    logger: flag.LoggerOpt = _d("logger"),
    log_every: flag.LogEveryOpt = _d("log_every"),
    devices: flag.DevicesOpt = _d("devices"),
    max_restarts: flag.MaxRestartsOpt = _d("max_restarts"),
    sync_bn: flag.SyncBnOpt = False,
    amp_dtype: flag.AmpDtypeOpt = _d("amp_dtype"),
    compile_: flag.CompileOpt = False,
    channels_last: flag.ChannelsLastOpt = _d("channels_last"),
    persistent_workers: flag.PersistentWorkersOpt = _d("persistent_workers"),
    deterministic: flag.DeterministicOpt = False,
) -> None:
    """Train a segmentation model on DATA_ROOT, any label format (see --format)."""
    rank = _rank()
    guard = run_guarded if rank == 0 else _quiet_on_error  # rank 0 speaks for all about bad flags
    opts = guard(build_options, ctx, config)
    if rank == 0:
        run_guarded(_check_run_folder, opts)
    if opts.devices > 1 and is_debug():
        os.environ["SEGPIPE_DEBUG"] = "1"  # the launched processes show tracebacks too
    result = _guarded_train(opts, rank)
    from segpipe.training.launch import LAUNCHED_ENV

    if rank == 0 and not os.environ.get(LAUNCHED_ENV):
        console.print(f"[bold green]done:[/] {escape(summary(result))}", markup=True)


def build_options(ctx: typer.Context, config: Path | None) -> TrainOptions:
    """TrainOptions from ``--config`` (if any) overlaid with every flag typed on the command line
    (by name: each flag's parameter is the TrainOptions field of the same name)."""
    from segpipe.errors import ConfigError
    from segpipe.options import load_config

    explicit = {
        name.rstrip("_"): value
        for name, value in ctx.params.items()
        if name != "config" and getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
    }
    if explicit.get("class_names") is not None:
        explicit["class_names"] = tuple(n.strip() for n in explicit["class_names"].split(",") if n.strip())
    values = load_config(config) if config is not None else {}
    if not os.environ.get("SEGPIPE_LAUNCHED"):  # launch.LAUNCHED_ENV: the launcher's own config is trusted
        _command_line_only(config, values, explicit)
    from_file = set(values) - set(explicit)
    values.update(explicit)
    if "data_root" not in values:
        raise ConfigError("--data-root is required (on the command line or in --config)")
    try:
        fmt = values.get("format", "auto")
        if "format" in from_file and fmt != "auto":
            from segpipe.data.formats import FORMATS

            if fmt not in FORMATS:
                raise ConfigError(f"--format {fmt}: use auto or one of {', '.join(FORMATS)}")
        return TrainOptions(**values)
    except ConfigError as e:  # a choice refused by its flag name: say the file and line it came from
        raise _from_config(e, config, from_file) from None


def _from_config(error: Exception, config: Path | None, from_file: set[str]) -> Exception:
    """``--optimizer adamx: use one of ...`` -> ``c.yaml line 3: optimizer adamx: use one of ...``
    when that value was written in the config file, not typed as a flag."""
    from segpipe.errors import ConfigError
    from segpipe.schema.options import config_where

    text = str(error)
    head = text.split(" ", 1)[0]
    name = head[2:].replace("-", "_") if head.startswith("--") else ""
    if config is None or name not in from_file:
        return error
    return ConfigError(f"{config_where(config, name)} {text.split(' ', 1)[1]}")


def _check_run_folder(opts: Any) -> None:
    """--output-dir (or the default runs/ folder) can be written, before anything starts."""
    from segpipe.outpaths import check_output_dir

    if opts.output_dir is not None:
        check_output_dir(opts.output_dir, "--output-dir")
    elif opts.model is None and not opts.resume:  # else the run folder may be the checkpoint's own
        check_output_dir(Path("runs"), "--output-dir", default=True)


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


def _quiet_on_error(fn: Any, *args: Any) -> Any:
    """Ranks other than 0 leave option errors to rank 0 (every rank parses the same flags)."""
    from segpipe.errors import SegpipeError

    try:
        return fn(*args)
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
