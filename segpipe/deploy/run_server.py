"""Start, announce and stop ``segpipe serve`` (builtin KServe v2 server, or NVIDIA Triton via PyTriton).

``--server pytriton`` runs the model inside a real Triton Inference Server (``nvidia-pytriton``,
which ships ``tritonserver`` and its Python backend stub). The stub is linked against
``libpython3.X.so.1.0`` and finds it through the dynamic loader: with an interpreter built without
a shared libpython on the loader's path (pyenv, some venvs), it loads another patch release's
library (the system's), whose C objects do not match the interpreter's standard library
(``'_thread.RLock' object has no attribute '_recursion_count'`` with pyenv 3.11.7 over Debian's
3.11.2), or none at all (``libpython3.12.so.1.0: cannot open shared object file``). Before
starting Triton the interpreter's own ``LIBDIR`` is put first on ``LD_LIBRARY_PATH`` (inherited by
tritonserver and the stub), which is what they need.
"""

from __future__ import annotations

import os
import signal
import sys
import sysconfig
import threading
from pathlib import Path
from typing import Any

from segpipe._optional import available, require
from segpipe.errors import ConfigError, SegpipeError
from segpipe.options.deploy import ServeOptions

SERVERS = ("auto", "builtin", "pytriton")


def _say(text: str) -> None:
    print(text, flush=True)


def _check_port(flag: str, port: int, allow_off: bool = False) -> None:
    low = -1 if allow_off else 0
    if not low <= port <= 65535:
        raise ConfigError(f"{flag} {port}: use 0-65535{' (-1: off)' if allow_off else ''}")


def run_server(opts: ServeOptions) -> int:
    """Serve ``opts.model`` until SIGTERM / SIGINT / SIGHUP; returns the exit code (0 after a clean
    stop). ``--mean``/``--std``: for a model without segpipe metadata (as visualize)."""
    if opts.server not in SERVERS:
        raise ConfigError(f"--server {opts.server!r}: use one of {', '.join(SERVERS)}")
    _check_port("--http-port", opts.http_port)
    _check_port("--grpc-port", opts.grpc_port, allow_off=True)
    if opts.server == "pytriton" or (opts.server == "auto" and available("pytriton.triton")):
        return run_pytriton(opts)
    return run_builtin(opts)


def _stop_event() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, handler)
    return stop


def run_builtin(opts: ServeOptions) -> int:
    """segpipe's own KServe v2 server (HTTP, and gRPC unless ``grpc_port`` is -1)."""
    from segpipe.deploy.kserve_http import KServeHTTPServer
    from segpipe.deploy.serve import ModelService

    host, http_port, grpc_port = opts.host, opts.http_port, opts.grpc_port
    service = ModelService(
        opts.model, opts.name, opts.max_batch, opts.max_delay_ms, opts.device, (opts.mean, opts.std)
    )
    grpc_server = None
    try:
        try:
            httpd = KServeHTTPServer(host, http_port, service)
        except OSError as e:
            raise SegpipeError(
                f"--http-port {http_port}: cannot listen on {host} ({e.strerror or e})"
            ) from None
        grpc_text = "gRPC off"
        if grpc_port >= 0:
            from segpipe.deploy.kserve_grpc import start_grpc

            grpc_server, bound = start_grpc(service, host, grpc_port)
            grpc_text = f"gRPC {host}:{bound}"
        stop = _stop_event()
        thread = threading.Thread(target=httpd.serve_forever, name="segpipe-http", daemon=True)
        thread.start()
        port = httpd.server_address[1]
        _say(
            f"serving {service.name} ({service.path}, {service.runner.backend}) at http://{host}:{port} "
            f"and {grpc_text}; KServe v2 / Triton protocol, input IMAGE (UINT8 N x H x W x 3 RGB), output "
            f"CLASS_MAP (INT32 N x H x W); dynamic batching up to {opts.max_batch} images, {opts.max_delay_ms:g} ms; "
            f"health /v2/health/ready, metrics /metrics; SIGTERM or Ctrl-C stops"
        )
        while not stop.wait(0.2):
            pass
        httpd.shutdown()  # no new connections; the requests already in flight get their answers
        httpd.drain()
        httpd.server_close()
    finally:
        if grpc_server is not None:
            grpc_server.stop(grace=25).wait(30)  # in-flight calls answered (inside a 30 s kill grace)
        service.close()
    s = service.stats
    _say(
        f"stopped: {s.requests} requests, {s.images} images in {s.batches} model calls, {s.failures} refused"
    )
    return 0


def libpython_on_loader_path() -> str | None:
    """Put this interpreter's shared-libpython folder first on ``LD_LIBRARY_PATH`` (for the Triton
    Python backend stub, see the module docstring); returns the folder, or None when it has none."""
    libdir = sysconfig.get_config_var("LIBDIR")
    ldlib = sysconfig.get_config_var("LDLIBRARY") or ""
    if not libdir or not ldlib.endswith(".so") and ".so." not in ldlib:
        return None
    if not any(Path(libdir).glob(f"libpython{sys.version_info.major}.{sys.version_info.minor}*.so*")):
        return None
    paths = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p and p != libdir]
    os.environ["LD_LIBRARY_PATH"] = ":".join([libdir, *paths])
    return libdir


def run_pytriton(opts: ServeOptions) -> int:
    """The model inside NVIDIA Triton through PyTriton: Triton's dynamic batcher gathers requests of
    one image size, the bound function runs them through the visualize path."""
    import numpy as np

    host, http_port, grpc_port = opts.host, opts.http_port, opts.grpc_port
    # the flags first: a wrong port is said with or without PyTriton installed
    if http_port == 0 or grpc_port == 0:
        raise ConfigError(
            "--server pytriton: Triton takes fixed ports; give --http-port and --grpc-port (not 0)"
        )
    if http_port + 2 > 65535 or http_port + 2 == grpc_port:  # Triton's metrics port: HTTP's + 2
        raise ConfigError(
            f"--http-port {http_port}: --server pytriton puts Triton's metrics on --http-port + 2 "
            f"({http_port + 2}), which {'is past 65535' if http_port + 2 > 65535 else 'is --grpc-port'}"
        )
    triton = require("pytriton.triton", "segpipe serve --server pytriton")
    mc = require("pytriton.model_config", "segpipe serve --server pytriton")
    from segpipe.deploy.serve import INPUT, OUTPUT
    from segpipe.runtime.base import load_runner
    from segpipe.runtime.pipeline import predict_arrays

    if sys.platform != "linux":
        raise SegpipeError("--server pytriton: PyTriton runs on Linux only; use --server builtin")
    libpython_on_loader_path()
    runner = load_runner(opts.model, device=opts.device, mean=opts.mean, std=opts.std)
    name = opts.name or Path(opts.model).stem
    lock = threading.Lock()

    def infer(requests: list[Any]) -> list[dict[str, Any]]:
        images = [img for r in requests for img in r[INPUT]]
        with lock:
            maps = predict_arrays(runner, images, batch_size=max(1, len(images)))
        out, i = [], 0
        for r in requests:
            k = len(r[INPUT])
            out.append({OUTPUT: np.stack(maps[i : i + k]).astype(np.int32)})
            i += k
        return out

    config = triton.TritonConfig(
        http_address=host,
        http_port=http_port,
        grpc_address=host,
        allow_grpc=grpc_port >= 0,
        grpc_port=grpc_port if grpc_port >= 0 else 8001,
        metrics_port=http_port + 2,
        allow_metrics=True,
    )
    batcher = mc.DynamicBatcher(max_queue_delay_microseconds=int(opts.max_delay_ms * 1000))
    for sig in (signal.SIGTERM, signal.SIGHUP):  # PyTriton's serve() stops cleanly on SIGINT only
        signal.signal(sig, signal.default_int_handler)
    try:
        with triton.Triton(config=config) as server:
            server.bind(
                model_name=name,
                infer_func=infer,
                inputs=[mc.Tensor(name=INPUT, dtype=np.uint8, shape=(-1, -1, 3))],
                outputs=[mc.Tensor(name=OUTPUT, dtype=np.int32, shape=(-1, -1))],
                config=mc.ModelConfig(max_batch_size=opts.max_batch, batcher=batcher),
                strict=False,
            )
            _say(
                f"serving {name} ({opts.model}, {runner.backend}) in NVIDIA Triton (PyTriton) at "
                f"http://{host}:{http_port}, {f'gRPC {host}:{grpc_port}' if grpc_port >= 0 else 'gRPC off'}, metrics port {config.metrics_port}; "
                "SIGTERM or Ctrl-C stops"
            )
            server.serve()
    finally:
        runner.close()
    _say("stopped")
    return 0
