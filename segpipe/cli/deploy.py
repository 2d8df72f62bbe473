"""``segpipe triton``, ``deepstream`` and ``serve``: a model file deployed (options in
:mod:`segpipe.options.deploy`, the work in :mod:`segpipe.deploy`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from segpipe.cli.binder import Flags, command
from segpipe.cli.common import console, print_written
from segpipe.options.deploy import DeepstreamOptions, ServeOptions, TritonOptions


def _write(flags: Flags, cls: type, write: Callable[..., Any], wrote: dict[str, str]) -> Any:
    """``write(model file, **the other options)``, then a line for each file written and each note."""
    from segpipe.deploy.model import read_model_file

    settings = flags.fields_of(cls)
    result = write(read_model_file(settings.pop("model")), **settings)
    for attr, label in wrote.items():
        print_written(getattr(result, attr), label)
    for note in result.notes:
        console.print(f"note: {note}")
    return result


@command(TritonOptions)
def triton_command(flags: Flags) -> None:
    """Write a Triton model repository (config.pbtxt checked with Triton's ModelConfig, labels, model)."""
    from segpipe.deploy.triton import write_triton_repo

    config = "config (checked with Triton's ModelConfig schema)"
    result = _write(
        flags, TritonOptions, write_triton_repo, {"model": "model", "labels": "labels", "config": config}
    )
    console.print(f"serve it: tritonserver --model-repository={result.model_dir.parent}")


@command(DeepstreamOptions)
def deepstream_command(flags: Flags) -> None:
    """Write a DeepStream nvinfer config (segmentation), labels file and gst-launch pipeline for a model."""
    from segpipe.deploy.deepstream import DEEPSTREAM_VERSION, write_deepstream

    config = f"nvinfer config (DeepStream {DEEPSTREAM_VERSION})"
    wrote = {"model": "model", "labels": "labels", "config": config, "pipeline": "pipeline"}
    result = _write(flags, DeepstreamOptions, write_deepstream, wrote)
    console.print(f"run it on a video: sh {result.pipeline} VIDEO.mp4 segmented.mp4")


@command(ServeOptions)
def serve_command(flags: Flags) -> None:
    """Serve a model over HTTP and gRPC with the Triton (KServe v2) protocol, batching requests."""
    from segpipe.deploy.run_server import run_server

    raise typer.Exit(run_server(flags.build(ServeOptions)))
