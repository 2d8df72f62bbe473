"""``segpipe serve``: a model file behind the Triton (KServe v2) protocol, HTTP and gRPC, batched."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from segpipe.cli.binder import Flags, command
from segpipe.cli.triton import MAX_BATCH
from segpipe.options import flags as F
from segpipe.options.declare import flag


@dataclass(frozen=True)
class ServeFlags:
    """``segpipe serve``'s flags."""

    model: Path = F.MODEL(help="Model to serve: .pth, .onnx or .engine (any file segpipe visualize runs).")
    host: str = flag(
        "--host",
        default="127.0.0.1",
        help="Address to listen on (0.0.0.0: every interface).",
        metavar="ADDRESS",
    )
    http_port: int = flag("--http-port", default=8000, help="HTTP port (0: any free port).", metavar="PORT")
    grpc_port: int = flag(
        "--grpc-port", default=8001, help="gRPC port (0: any free port, -1: no gRPC).", metavar="PORT"
    )
    name: str | None = flag(
        "--name", default=None, help="Model name clients ask for (default: the file's stem).", metavar="NAME"
    )
    max_batch: int = MAX_BATCH(help="Most images one model call batches.")
    max_delay_ms: float = flag(
        "--max-delay-ms",
        default=5.0,
        help="How long a request waits for others to batch with, in ms.",
        metavar="MS",
    )
    server: str = flag(
        "--server",
        default="auto",
        help="builtin (segpipe's own KServe v2 server), pytriton (NVIDIA Triton through "
        "nvidia-pytriton) or auto (pytriton when installed).",
        metavar="NAME",
    )
    device: str = F.DEVICE()
    mean: tuple[float, float, float] | None = F.MEAN()
    std: tuple[float, float, float] | None = F.STD()


@command(ServeFlags)
def serve_command(flags: Flags) -> None:
    """Serve a model over HTTP and gRPC with the Triton (KServe v2) protocol, batching requests."""
    from segpipe.deploy.run_server import run_server

    code = run_server(
        flags.model,
        host=flags.host,
        http_port=flags.http_port,
        grpc_port=flags.grpc_port,
        name=flags.name,
        max_batch=flags.max_batch,
        max_delay_ms=flags.max_delay_ms,
        server=flags.server,
        device=flags.device,
        normalization=(flags.mean, flags.std),
    )
    raise typer.Exit(code)
