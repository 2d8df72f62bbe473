"""``segpipe triton``: a Triton model repository (config.pbtxt, labels, model) from an ONNX model or engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segpipe.cli.common import MODEL_PANEL, console, print_written, run_guarded

DeployModelOpt = Annotated[
    Path,
    typer.Option(
        "--model",
        "-m",
        metavar="FILE",
        help="Model to deploy: an ONNX model (segpipe export-onnx) or a TensorRT engine with its "
        "NAME.engine.json sidecar (segpipe build-trt).",
        show_default=False,
        rich_help_panel=MODEL_PANEL,
    ),
]


def triton_command(
    model: DeployModelOpt,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", metavar="REPO", help="Model repository folder (created if missing)."),
    ] = Path("model_repository"),
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Model name in the repository (default: the model file's stem).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[int, typer.Option("--version", help="Model version folder.")] = 1,
    max_batch_size: Annotated[
        int,
        typer.Option(
            "--max-batch-size",
            help="Largest batch Triton's dynamic batcher forms (capped by an engine's profile; a "
            "fixed-batch model gets 0, no batching).",
        ),
    ] = 8,
    queue_delay_us: Annotated[
        int,
        typer.Option(
            "--queue-delay-us", help="How long the dynamic batcher waits to fill a batch, in microseconds."
        ),
    ] = 100,
    instance_kind: Annotated[
        str,
        typer.Option("--instance-kind", help="auto, gpu or cpu (an engine always runs on the GPU)."),
    ] = "auto",
) -> None:
    """Write a Triton model repository (config.pbtxt checked with Triton's ModelConfig, labels, model)."""
    from segpipe.deploy.model import read_model_file
    from segpipe.deploy.triton import write_triton_repo

    found = run_guarded(read_model_file, model)
    result = run_guarded(
        write_triton_repo,
        found,
        output,
        name=name,
        version=version,
        max_batch_size=max_batch_size,
        queue_delay_us=queue_delay_us,
        instance_kind=instance_kind,
    )
    print_written(result.model, "model")
    print_written(result.labels, "labels")
    print_written(result.config, "config (checked with Triton's ModelConfig schema)")
    for note in result.notes:
        console.print(f"note: {note}")
    repo = result.model_dir.parent
    console.print(f"serve it: tritonserver --model-repository={repo}")
