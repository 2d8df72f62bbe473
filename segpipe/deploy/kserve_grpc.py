"""KServe v2 / Triton gRPC protocol in front of a :class:`ModelService`, with Triton's own service
definition (``tritonclient.grpc.service_pb2_grpc``), so ``tritonclient.grpc`` works unchanged.

Served: ServerLive, ServerReady, ServerMetadata, ModelReady, ModelMetadata, ModelInfer (tensors in
``raw_input_contents`` / ``raw_output_contents``). A bad request is ``INVALID_ARGUMENT`` with one
line; an unknown model ``NOT_FOUND``.
"""

from __future__ import annotations

import os
from concurrent import futures
from typing import Any

import numpy as np

from segpipe import __version__
from segpipe._optional import require
from segpipe.deploy.serve import INPUT, MAX_REQUEST_BYTES, OUTPUT, ModelService, RequestError
from segpipe.errors import ConfigError


def start_grpc(service: ModelService, host: str, port: int, workers: int = 16) -> tuple[Any, int]:
    """Start the gRPC server on ``host:port`` (0: any free port); returns (server, bound port)."""
    # gRPC's core logs its own line for a port it cannot bind (beside ours); GRPC_VERBOSITY set by
    # the user wins; read when grpc is first imported, which serve does here
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    grpc = require("grpc", "segpipe serve over gRPC")
    pb = require("tritonclient.grpc.service_pb2", "segpipe serve over gRPC")
    pb_grpc = require("tritonclient.grpc.service_pb2_grpc", "segpipe serve over gRPC")

    def _model(context: Any, name: str, version: str) -> None:
        if name != service.name or version not in ("", "1"):
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"model {name[:60]!r} is not served here (serving {service.name!r} version 1)",
            )

    class Servicer(pb_grpc.GRPCInferenceServiceServicer):
        def ServerLive(self, request: Any, context: Any) -> Any:  # noqa: N802 - the protocol's names
            return pb.ServerLiveResponse(live=True)

        def ServerReady(self, request: Any, context: Any) -> Any:  # noqa: N802
            return pb.ServerReadyResponse(ready=True)

        def ServerMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
            return pb.ServerMetadataResponse(name="segpipe", version=__version__)

        def ModelReady(self, request: Any, context: Any) -> Any:  # noqa: N802
            _model(context, request.name, request.version)
            return pb.ModelReadyResponse(ready=True)

        def ModelMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
            _model(context, request.name, request.version)
            meta = service.metadata()
            reply = pb.ModelMetadataResponse(
                name=meta["name"], versions=meta["versions"], platform=meta["platform"]
            )
            for kind, target in (("inputs", reply.inputs), ("outputs", reply.outputs)):
                for t in meta[kind]:
                    target.add(name=t["name"], datatype=t["datatype"], shape=t["shape"])
            return reply

        def ModelInfer(self, request: Any, context: Any) -> Any:  # noqa: N802
            _model(context, request.model_name, request.model_version)
            try:
                array = _input(request)
                maps = np.stack(service.infer(service.check_images(array)))
            except RequestError as e:
                with service._lock:
                    service.stats.failures += 1
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, " ".join(str(e).split()))
            except Exception as e:  # the model failed: one line to the client, no server traceback
                context.abort(
                    grpc.StatusCode.INTERNAL,
                    " ".join(f"inference failed: {type(e).__name__}: {e}".split())[:500],
                )
            reply = pb.ModelInferResponse(model_name=service.name, model_version="1", id=request.id)
            reply.outputs.add(name=OUTPUT, datatype="INT32", shape=list(maps.shape))
            reply.raw_output_contents.append(maps.astype("<i4").tobytes())
            return reply

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        options=[
            ("grpc.max_receive_message_length", MAX_REQUEST_BYTES + (1 << 20)),
            ("grpc.max_send_message_length", MAX_REQUEST_BYTES + (1 << 20)),
        ],
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(Servicer(), server)
    try:  # grpcio >= 1.60 raises where older ones returned 0
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if bound == 0:
        server.stop(None)
        raise ConfigError(f"--grpc-port {port}: cannot listen on {host}:{port} (in use?)")
    server.start()
    return server, bound


def _input(request: Any) -> np.ndarray:
    """The one ``IMAGE`` tensor of a ModelInferRequest (raw contents or typed contents)."""
    if len(request.inputs) != 1 or request.inputs[0].name != INPUT:
        names = [i.name[:60] for i in request.inputs]
        raise RequestError(f"inputs {names}: send one tensor named {INPUT}")
    spec = request.inputs[0]
    if spec.datatype != "UINT8":
        raise RequestError(f"{INPUT}: datatype {spec.datatype[:20]!r} given; send UINT8 RGB pixels")
    for out in request.outputs:
        if out.name != OUTPUT:
            raise RequestError(f"output {out.name[:60]!r}: this model's output is {OUTPUT}")
    shape = [int(d) for d in spec.shape]
    if len(shape) > 8 or any(not 0 <= d < 2**31 for d in shape):
        raise RequestError(f"{INPUT}: shape {shape[:8]} is not a list of sizes")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if request.raw_input_contents:
        raw = request.raw_input_contents[0]
        if len(raw) != count:
            raise RequestError(f"{INPUT}: {len(raw)} bytes for shape {shape} UINT8 ({count} expected)")
        return np.frombuffer(raw, np.uint8).reshape(shape)
    values = np.asarray(spec.contents.uint_contents, dtype=np.int64)
    if values.size != count or (values.size and (values.min() < 0 or values.max() > 255)):
        raise RequestError(f"{INPUT}: {values.size} values 0-255 expected for shape {shape}")
    return values.astype(np.uint8).reshape(shape)
