"""``segpipe deepstream``: an nvinfer config (semantic segmentation), labels and a pipeline for a model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segpipe.cli.binder import Flags, command
from segpipe.cli.common import console, print_written
from segpipe.cli.triton import DEPLOY_MODEL
from segpipe.options import flags as F
from segpipe.options.declare import flag


@dataclass(frozen=True)
class DeepstreamFlags:
    """``segpipe deepstream``'s flags."""

    model: Path = DEPLOY_MODEL()
    output: Path = flag(
        "--output",
        "-o",
        default=Path("deepstream"),
        help="Folder for the config, labels, model and pipeline.",
        metavar="DIR",
    )
    batch: int | None = F.BATCH(
        default=None, help="nvinfer batch-size (default: the model's fixed batch, else 1).", panel=None
    )
    gpu_id: int = flag("--gpu-id", default=0, help="GPU nvinfer runs on.", metavar="N")


@command(DeepstreamFlags)
def deepstream_command(flags: Flags) -> None:
    """Write a DeepStream nvinfer config (segmentation), labels file and gst-launch pipeline for a model."""
    from segpipe.deploy.deepstream import DEEPSTREAM_VERSION, write_deepstream
    from segpipe.deploy.model import read_model_file

    found = read_model_file(flags.model)
    result = write_deepstream(found, flags.output, batch_size=flags.batch, gpu_id=flags.gpu_id)
    print_written(result.model, "model")
    print_written(result.labels, "labels")
    print_written(result.config, f"nvinfer config (DeepStream {DEEPSTREAM_VERSION})")
    print_written(result.pipeline, "pipeline")
    for note in result.notes:
        console.print(f"note: {note}")
    console.print(f"run it on a video: sh {result.pipeline} VIDEO.mp4 segmented.mp4")
