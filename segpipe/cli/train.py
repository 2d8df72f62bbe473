"""``segpipe train``: flags (original and modern spellings) -> TrainOptions -> ``train``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from segpipe.cli.common import console, run_guarded
from segpipe.options import TrainOptions

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainOptions) if f.default is not dataclasses.MISSING}


def _d(name: str) -> Any:
    """The default shown in --help, read from TrainOptions (defaults live there only)."""
    value = _DEFAULTS.get(name)
    return value if value is not None else None


DATA, MODEL, OPTIM, AUG, RUN = "Data", "Model", "Optimisation", "Augmentation", "Run"


def train_command(
    ctx: typer.Context,
    data_root: Annotated[Path, typer.Option("--data-root", "--data_root", help="Folder holding images/ and indexes/.", rich_help_panel=DATA)] = None,  # type: ignore[assignment]
    num_classes: Annotated[int | None, typer.Option("--num-classes", "--num_classes", help="Number of classes (binary: 2).", rich_help_panel=DATA)] = None,
    model_name: Annotated[str, typer.Option("--model-name", "--model_name", help="Name of the run and its checkpoints.", rich_help_panel=RUN)] = _d("model_name"),
    model: Annotated[Path | None, typer.Option("--model", help="Checkpoint to start from (segpipe checkpoints resume; bare state_dicts load weights).", rich_help_panel=MODEL)] = None,
    finetune: Annotated[bool, typer.Option("--finetune", help="With --model: load its weights only and start a new run.", rich_help_panel=MODEL)] = False,
    mode: Annotated[str, typer.Option("--mode", help="seg (multiclass softmax), binary or multilabel.", rich_help_panel=MODEL)] = _d("mode"),
    use_mixup: Annotated[bool, typer.Option("--use-mixup", "--use_mixup", help="Mix-up of two samples, loss mixed by the same weight.", rich_help_panel=AUG)] = False,
    mixup_alpha: Annotated[float, typer.Option("--mixup-alpha", help="Beta(alpha, alpha) of the mix-up weight.", rich_help_panel=AUG)] = _d("mixup_alpha"),
    encoder: Annotated[str, typer.Option("--encoder", "--backend", help="Any smp encoder.", rich_help_panel=MODEL)] = _d("encoder"),
    arch: Annotated[str, typer.Option("--arch", help="Any smp architecture (Unet, FPN, DeepLabV3Plus...).", rich_help_panel=MODEL)] = _d("arch"),
    encoder_weights: Annotated[str, typer.Option("--encoder-weights", help="imagenet, none, or a weights file.", rich_help_panel=MODEL)] = _d("encoder_weights"),
    epochs: Annotated[int, typer.Option("--epochs", rich_help_panel=OPTIM)] = _d("epochs"),
    batch_size: Annotated[int, typer.Option("--batch-size", "--batch_size", rich_help_panel=OPTIM)] = _d("batch_size"),
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.", rich_help_panel=OPTIM)] = _d("lr"),
    weight_decay: Annotated[float, typer.Option("--weight-decay", rich_help_panel=OPTIM)] = _d("weight_decay"),
    optimizer: Annotated[str, typer.Option("--optimizer", help="adamw, adam or sgd.", rich_help_panel=OPTIM)] = _d("optimizer"),
    scheduler: Annotated[str, typer.Option("--scheduler", help="cosine, poly or constant (per epoch).", rich_help_panel=OPTIM)] = _d("scheduler"),
    loss: Annotated[str, typer.Option("--loss", help="ce, dice, focal, lovasz (bce) or a sum like ce+dice.", rich_help_panel=OPTIM)] = _d("loss"),
    size: Annotated[tuple[int, int] | None, typer.Option("--size", help="WIDTH HEIGHT, multiples of the output stride.", rich_help_panel=DATA, show_default="512 512")] = None,
    val_fraction: Annotated[float, typer.Option("--val-fraction", help="Share of the data held out for validation.", rich_help_panel=DATA)] = _d("val_fraction"),
    val_root: Annotated[Path | None, typer.Option("--val-root", help="A separate validation folder (same layout).", rich_help_panel=DATA)] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Data loader processes.", rich_help_panel=RUN, show_default="min(4, cores)")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.", rich_help_panel=RUN)] = _d("device"),
    amp: Annotated[bool, typer.Option("--amp", help="Mixed precision on CUDA.", rich_help_panel=RUN)] = False,
    seed: Annotated[int, typer.Option("--seed", rich_help_panel=RUN)] = _d("seed"),
    output_dir: Annotated[Path | None, typer.Option("--output-dir", "--output_dir", help="Run folder (default runs/<model_name>).", rich_help_panel=RUN)] = None,
    class_names: Annotated[str | None, typer.Option("--class-names", help="Comma-separated class names (default: the palette's).", rich_help_panel=DATA)] = None,
    colors: Annotated[Path | None, typer.Option("--colors", help="Palette CSV id,name,r,g,b (default: segpipe's colors.csv).", rich_help_panel=DATA)] = None,
    ignore_index: Annotated[int, typer.Option("--ignore-index", help="Mask value ignored by loss and metrics.", rich_help_panel=DATA)] = _d("ignore_index"),
    augment: Annotated[str, typer.Option("--augment", help="none, light, heavy or an albumentations YAML file.", rich_help_panel=AUG)] = _d("augment"),
    patience: Annotated[int, typer.Option("--patience", help="Early stopping after N epochs without a better mIoU (0: off).", rich_help_panel=OPTIM)] = _d("patience"),
    mask_suffix: Annotated[str, typer.Option("--mask-suffix", help="Mask file = NAME + suffix + .png.", rich_help_panel=DATA)] = _d("mask_suffix"),
    mask_type: Annotated[str, typer.Option("--mask-type", help="auto, index or color.", rich_help_panel=DATA)] = _d("mask_type"),
    class_map: Annotated[Path | None, typer.Option("--class-map", help="File of 'raw,new' lines (new may be 'ignore').", rich_help_panel=DATA)] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="Your own dataset class, package.module:ClassName.", rich_help_panel=DATA)] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML file of options; flags on the command line win.", rich_help_panel=RUN)] = None,
) -> None:
    """Train a segmentation model on DATA_ROOT/images + DATA_ROOT/indexes."""
    from segpipe.options import load_config

    explicit = {
        name: value
        for name, value in ctx.params.items()
        if name != "config" and getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
    }
    if "class_names" in explicit and explicit["class_names"] is not None:
        explicit["class_names"] = tuple(n.strip() for n in explicit["class_names"].split(",") if n.strip())

    def build() -> TrainOptions:
        values = load_config(config) if config is not None else {}
        values.update(explicit)
        if "data_root" not in values:
            from segpipe.errors import ConfigError

            raise ConfigError("--data-root is required (on the command line or in --config)")
        return TrainOptions(**values)

    opts = run_guarded(build)
    result = run_guarded(_run, opts)
    console.print(
        f"[bold green]done[/] {result.epochs_done} epochs; best mIoU {result.best_miou:.4f} at epoch {result.best_epoch}; "
        f"run folder {result.run_dir} (best.pth, last.pth, metrics.csv, curves.png, val_samples.png)"
    )


def _run(opts: TrainOptions):
    from segpipe.cli.common import RichReporter
    from segpipe.training import train

    return train(opts, RichReporter())
