"""``segpipe serve``: a model file behind the Triton (KServe v2) protocol, HTTP and gRPC, batched."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segpipe.cli.common import MODEL_PANEL, DeviceOpt, run_guarded


def serve_command(
    model: Annotated[
        Path,
        typer.Option(
            "--model",
            "-m",
            metavar="FILE",
            help="Model to serve: .pth, .onnx or .engine (any file segpipe visualize runs).",
            show_default=False,
            rich_help_panel=MODEL_PANEL,
        ),
    ],
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    http_port: Annotated[int, typer.Option("--http-port", help="HTTP port (0: any free port).")] = 8000,
    grpc_port: Annotated[
        int, typer.Option("--grpc-port", help="gRPC port (0: any free port, -1: no gRPC).")
    ] = 8001,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="Model name clients ask for (default: the file's stem).", show_default=False
        ),
    ] = None,
    max_batch: Annotated[int, typer.Option("--max-batch", help="Most images one model call batches.")] = 8,
    max_delay_ms: Annotated[
        float,
        typer.Option("--max-delay-ms", help="How long a request waits for others to batch with, in ms."),
    ] = 5.0,
    server: Annotated[
        str,
        typer.Option(
            "--server",
            help="builtin (segpipe's own KServe v2 server), pytriton (NVIDIA Triton through "
            "nvidia-pytriton) or auto (pytriton when installed).",
        ),
    ] = "auto",
    device: DeviceOpt = "auto",
) -> None:
    """Serve a model over HTTP and gRPC with the Triton (KServe v2) protocol, batching requests."""
    from segpipe.deploy.run_server import run_server

    code = run_guarded(
        run_server,
        model,
        host=host,
        http_port=http_port,
        grpc_port=grpc_port,
        name=name,
        max_batch=max_batch,
        max_delay_ms=max_delay_ms,
        server=server,
        device=device,
    )
    raise typer.Exit(code)
