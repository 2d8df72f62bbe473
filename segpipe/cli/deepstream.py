"""``segpipe deepstream``: an nvinfer config (semantic segmentation), labels and a pipeline for a model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segpipe.cli.common import console, print_written, run_guarded
from segpipe.cli.triton import DeployModelOpt


def deepstream_command(
    model: DeployModelOpt,
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", metavar="DIR", help="Folder for the config, labels, model and pipeline."
        ),
    ] = Path("deepstream"),
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            help="nvinfer batch-size (default: the model's fixed batch, else 1).",
            show_default=False,
        ),
    ] = None,
    gpu_id: Annotated[int, typer.Option("--gpu-id", help="GPU nvinfer runs on.")] = 0,
) -> None:
    """Write a DeepStream nvinfer config (segmentation), labels file and gst-launch pipeline for a model."""
    from segpipe.deploy.deepstream import DEEPSTREAM_VERSION, write_deepstream
    from segpipe.deploy.model import read_model_file

    found = run_guarded(read_model_file, model)
    result = run_guarded(write_deepstream, found, output, batch_size=batch_size, gpu_id=gpu_id)
    print_written(result.model, "model")
    print_written(result.labels, "labels")
    print_written(result.config, f"nvinfer config (DeepStream {DEEPSTREAM_VERSION})")
    print_written(result.pipeline, "pipeline")
    for note in result.notes:
        console.print(f"note: {note}")
    console.print(f"run it on a video: sh {result.pipeline} VIDEO.mp4 segmented.mp4")
