"""Options of the deploy commands (``triton``, ``deepstream``, ``serve``), each flag declared once.

The field names are the keywords of the functions in :mod:`segpipe.deploy` they fill
(``write_triton_repo(model, repo=..., max_batch_size=...)``), so a command passes them on as they
are. The checks (ports, server kind, names) stay with the code that uses the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segpipe.options import flags as F
from segpipe.options.declare import Flag, flag

#: ``--model`` of triton and deepstream: what a deployment runs.
DEPLOY_MODEL = F.MODEL.but(
    help="Model to deploy: an ONNX model (segpipe export-onnx) or a TensorRT engine with its "
    "NAME.engine.json sidecar (segpipe build-trt)."
)
#: ``-o``: the folder a deploy command writes.
OUTPUT_DIR = Flag(("--output", "-o"), metavar="DIR")
#: The largest batch a server forms (triton, serve; build-trt's profile has the same flag).
MAX_BATCH = F.MAX_BATCH.but(
    hidden=("--max-batch-size",),
    default=8,
    help="Largest batch the dynamic batcher forms (capped by an engine's profile; a fixed-batch "
    "model gets 0, no batching).",
)
#: ``--name``: the model's name where clients ask for it.
NAME = Flag(("--name",), default=None)

# one declaration a line or two (segpipe.options.declare), kept so by the formatter:
# fmt: off


@dataclass(frozen=True)
class TritonOptions:
    """``segpipe triton``: a Triton model repository."""

    model: Path = DEPLOY_MODEL()
    repo: Path = OUTPUT_DIR(default=Path("model_repository"),
        help="Model repository folder (created if missing).")
    name: str | None = NAME(help="Model name in the repository (default: the model file's stem).")
    version: int = flag("--version", 1, "Model version folder.")
    max_batch_size: int = MAX_BATCH()
    queue_delay_us: int = flag("--queue-delay-us", 100,
        "How long the dynamic batcher waits to fill a batch, in microseconds.", metavar="US")
    instance_kind: str = flag("--instance-kind", "auto",
        "auto, gpu or cpu (an engine always runs on the GPU).", metavar="KIND")


@dataclass(frozen=True)
class DeepstreamOptions:
    """``segpipe deepstream``: an nvinfer config, labels and a pipeline."""

    model: Path = DEPLOY_MODEL()
    output_dir: Path = OUTPUT_DIR(default=Path("deepstream"),
        help="Folder for the config, labels, model and pipeline.")
    batch_size: int | None = F.BATCH(default=None, panel=None,
        help="nvinfer batch-size (default: the model's fixed batch, else 1).")
    gpu_id: int = flag("--gpu-id", 0, "GPU nvinfer runs on.")


@dataclass(frozen=True)
class ServeOptions:
    """``segpipe serve``: a model file behind the KServe v2 / Triton protocol."""

    model: Path = F.MODEL(help="Model to serve: .pth, .onnx or .engine (any file segpipe visualize runs).")
    host: str = flag("--host", "127.0.0.1", "Address to listen on (0.0.0.0: every interface).",
        metavar="ADDRESS")
    http_port: int = flag("--http-port", 8000, "HTTP port (0: any free port).", metavar="PORT")
    grpc_port: int = flag("--grpc-port", 8001, "gRPC port (0: any free port, -1: no gRPC).", metavar="PORT")
    name: str | None = NAME(help="Model name clients ask for (default: the file's stem).")
    max_batch: int = MAX_BATCH(help="Most images one model call batches.")
    max_delay_ms: float = flag("--max-delay-ms", 5.0,
        "How long a request waits for others to batch with, in ms.", metavar="MS")
    server: str = flag("--server", "auto", "builtin (segpipe's own KServe v2 server), pytriton (NVIDIA "
        "Triton through nvidia-pytriton) or auto (pytriton when installed).")
    device: str = F.DEVICE()
    #: For a model without segpipe metadata (as visualize).
    mean: tuple[float, float, float] | None = F.MEAN()
    std: tuple[float, float, float] | None = F.STD()
