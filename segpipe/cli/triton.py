"""``segpipe triton``: a Triton model repository (config.pbtxt, labels, model) from an ONNX model or engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segpipe.cli.binder import Flags, command
from segpipe.cli.common import console, print_written
from segpipe.options import flags as F
from segpipe.options.declare import flag

#: ``--model`` of the deploy commands (triton, deepstream): what a deployment runs.
DEPLOY_MODEL = F.MODEL.but(
    help="Model to deploy: an ONNX model (segpipe export-onnx) or a TensorRT engine with its "
    "NAME.engine.json sidecar (segpipe build-trt)."
)
#: The largest batch a server forms (triton, serve; build-trt's profile has the same flag).
MAX_BATCH = F.MAX_BATCH.but(
    hidden=("--max-batch-size",),
    default=8,
    help="Largest batch the dynamic batcher forms (capped by an engine's profile; a fixed-batch "
    "model gets 0, no batching).",
)


@dataclass(frozen=True)
class TritonFlags:
    """``segpipe triton``'s flags."""

    model: Path = DEPLOY_MODEL()
    output: Path = flag(
        "--output",
        "-o",
        default=Path("model_repository"),
        help="Model repository folder (created if missing).",
        metavar="DIR",
    )
    name: str | None = flag(
        "--name",
        default=None,
        help="Model name in the repository (default: the model file's stem).",
        metavar="NAME",
    )
    version: int = flag("--version", default=1, help="Model version folder.", metavar="N")
    max_batch: int = MAX_BATCH()
    queue_delay_us: int = flag(
        "--queue-delay-us",
        default=100,
        help="How long the dynamic batcher waits to fill a batch, in microseconds.",
        metavar="US",
    )
    instance_kind: str = flag(
        "--instance-kind",
        default="auto",
        help="auto, gpu or cpu (an engine always runs on the GPU).",
        metavar="KIND",
    )


@command(TritonFlags)
def triton_command(flags: Flags) -> None:
    """Write a Triton model repository (config.pbtxt checked with Triton's ModelConfig, labels, model)."""
    from segpipe.deploy.model import read_model_file
    from segpipe.deploy.triton import write_triton_repo

    result = write_triton_repo(
        read_model_file(flags.model),
        flags.output,
        name=flags.name,
        version=flags.version,
        max_batch_size=flags.max_batch,
        queue_delay_us=flags.queue_delay_us,
        instance_kind=flags.instance_kind,
    )
    print_written(result.model, "model")
    print_written(result.labels, "labels")
    print_written(result.config, "config (checked with Triton's ModelConfig schema)")
    for note in result.notes:
        console.print(f"note: {note}")
    repo = result.model_dir.parent
    console.print(f"serve it: tritonserver --model-repository={repo}")
