"""The data flags every command that reads a labelled data set shares (train, evaluate, visualize,
data): one spelling, one help text, one panel. No torch, no segpipe.data import here."""

from __future__ import annotations

from typing import Annotated

import typer

DATA_PANEL = "Data"

FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        help="Label format: auto (detected, and said), seed, voc, cityscapes, ade20k, ultralytics, yolo, "
        "coco, coco_panoptic, labelme, cvat, cvat_images, mapillary_vistas, common_semantic_segmentation, camvid "
        "(segpipe data --formats lists them).",
        rich_help_panel=DATA_PANEL,
    ),
]
ImagesDirOpt = Annotated[
    str, typer.Option("--images-dir", help="Seed layout: the images folder.", rich_help_panel=DATA_PANEL)
]
MasksDirOpt = Annotated[
    str, typer.Option("--masks-dir", help="Seed layout: the masks folder.", rich_help_panel=DATA_PANEL)
]
MaskSuffixOpt = Annotated[
    str,
    typer.Option(
        "--mask-suffix", help="Seed layout: mask file = NAME + suffix + .png.", rich_help_panel=DATA_PANEL
    ),
]
ReduceZeroLabelOpt = Annotated[
    bool | None,
    typer.Option(
        "--reduce-zero-label/--no-reduce-zero-label",
        help="Index masks where 0 means 'other' (ADE20K): 0 -> ignore, others minus 1. "
        "Default: the format's (on for ade20k).",
        rich_help_panel=DATA_PANEL,
        show_default=False,
    ),
]
CrowdsOpt = Annotated[
    str,
    typer.Option(
        "--crowds",
        help="COCO crowd regions (iscrowd 1): ignore (ignored where no object covers them, as COCO "
        "and MMSegmentation do) or class (kept as their category).",
        rich_help_panel=DATA_PANEL,
    ),
]
SplitOpt = Annotated[
    str | None,
    typer.Option(
        "--split",
        help="train, val, test or all (default: val when the data set ships one, else the images "
        "the model's training held out, else all).",
        rich_help_panel=DATA_PANEL,
        show_default=False,
    ),
]
