"""KServe v2 / Triton HTTP protocol over the standard library, in front of a :class:`ModelService`.

The subset a Triton client needs (``tritonclient.http`` works against it unchanged): health
(``/v2/health/live``, ``/v2/health/ready``), server and model metadata, model readiness and
config, inference (``POST /v2/models/NAME[/versions/1]/infer``) with tensors as JSON ``data`` or in
the binary tensor extension (``Inference-Header-Content-Length``), and Prometheus ``/metrics``.
Errors are ``{"error": "one line"}`` with status 400 (bad request) or 404 (unknown path or model).
One thread per connection (``ThreadingHTTPServer``); the model calls are batched by the service.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import numpy as np

from segpipe import __version__
from segpipe.deploy.serve import INPUT, MAX_REQUEST_BYTES, OUTPUT, ModelService, RequestError

_DTYPES = {"UINT8": np.uint8}
_INFER = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?/infer$")
_MODEL = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/config)?$")


class _NotFound(RequestError):
    pass


def _params(obj: dict[str, Any], where: str) -> dict[str, Any]:
    """``obj["parameters"]`` (a JSON object, or absent)."""
    params = obj.get("parameters")
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise RequestError(f"{where} parameters: {str(params)[:40]!r} is not a JSON object")
    return params


def _is_size(d: Any) -> bool:
    return isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**31


def _decode_input(header: dict[str, Any], body: bytes, offset: int) -> tuple[np.ndarray, int]:
    """The request's one input tensor from JSON ``data`` or the binary section at ``offset``."""
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise RequestError(f"inputs: send one tensor named {INPUT}")
    spec = inputs[0]
    if spec.get("name") != INPUT:
        raise RequestError(f"input {str(spec.get('name'))[:60]!r}: this model's input is {INPUT}")
    datatype = spec.get("datatype")
    if datatype not in _DTYPES:
        raise RequestError(f"{INPUT}: datatype {str(datatype)[:20]!r} given; send UINT8 RGB pixels")
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(_is_size(d) for d in shape) or len(shape) > 8:
        raise RequestError(f"{INPUT}: shape {str(shape)[:60]} is not a list of sizes")
    dtype = np.dtype(_DTYPES[datatype])
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if count * dtype.itemsize > MAX_REQUEST_BYTES:
        raise RequestError(f"{INPUT}: shape {shape} is more than {MAX_REQUEST_BYTES >> 20} MiB")
    size = _params(spec, INPUT).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size != count * dtype.itemsize or offset + size > len(body):
            raise RequestError(
                f"{INPUT}: binary_data_size {size} for shape {shape} {datatype} "
                f"({count * dtype.itemsize} bytes expected, {len(body) - offset} sent)"
            )
        return np.frombuffer(body, dtype, count, offset).reshape(shape), offset + size
    data = spec.get("data")
    if not isinstance(data, list):
        raise RequestError(f"{INPUT}: no data and no binary_data_size")
    try:  # as sent: 0.5 or true would be cast to 0 and 1 without a word
        array = np.asarray(data)
    except (ValueError, TypeError, OverflowError):
        array = np.asarray([0.0])
    if array.dtype.kind not in "iu":
        raise RequestError(f"{INPUT}: data is not a list of integers")
    array = array.reshape(-1)
    if array.size != count:
        raise RequestError(f"{INPUT}: {array.size} values for shape {shape} ({count} expected)")
    if datatype == "UINT8" and array.size and (array.min() < 0 or array.max() > 255):
        raise RequestError(f"{INPUT}: UINT8 values must be 0-255")
    return array.astype(dtype).reshape(shape), offset


def _binary_wanted(header: dict[str, Any]) -> bool:
    outputs = header.get("outputs")
    if isinstance(outputs, list) and outputs:
        for out in outputs:
            if not isinstance(out, dict) or out.get("name") != OUTPUT:
                name = out.get("name") if isinstance(out, dict) else out
                raise RequestError(f"output {str(name)[:60]!r}: this model's output is {OUTPUT}")
        return bool(_params(outputs[0], OUTPUT).get("binary_data", False))
    return bool(_params(header, "request").get("binary_data_output", False))


class KServeHandler(BaseHTTPRequestHandler):
    """One request of the protocol (the server's ``service`` answers it)."""

    protocol_version = "HTTP/1.1"
    #: seconds a connection may be silent (a body shorter than its Content-Length, an idle
    #: keep-alive connection) before it is closed: no thread waits on a client forever
    timeout = 60.0
    server: Any

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: no line per request
        return

    # ---- replies ---------------------------------------------------------------------------------
    def _send(
        self, status: int, body: bytes, ctype: str = "application/json", headers: dict | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode())

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": " ".join(message.split())[:500]})

    # ---- routes ----------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        service: ModelService = self.server.service
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        if path in ("/v2/health/live", "/v2/health/ready"):
            return self._send(200, b"")
        if path == "/v2":
            return self._json(
                200, {"name": "segpipe", "version": __version__, "extensions": ["binary_tensor_data"]}
            )
        if path == "/metrics":
            return self._send(200, service.metrics_text().encode(), "text/plain; version=0.0.4")
        m = _MODEL.match(path)
        if m and self._model_ok(m.group(1), m.group(2)):
            if m.group(3) == "/ready":
                return self._send(200, b"")
            return self._json(200, service.config() if m.group(3) == "/config" else service.metadata())
        if not m:
            self._error(404, f"no such endpoint: GET {path[:100]}")

    def _model_ok(self, name: str, version: str | None) -> bool:
        """``name`` and ``version`` as they stand in the URL (percent-encoded: tritonclient quotes a
        name with a space or a non-ASCII letter) match the model served; a 404 line otherwise."""
        service: ModelService = self.server.service
        name, version = unquote(name), None if version is None else unquote(version)
        if name != service.name or version not in (None, "1"):
            what = f"model {name[:60]!r}" + (f" version {version[:10]!r}" if version else "")
            self._error(404, f"{what} is not served here (serving {service.name!r} version 1)")
            return False
        return True

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        with self.server.in_flight():
            self._post()

    def _post(self) -> None:
        service: ModelService = self.server.service
        path = self.path.split("?", 1)[0]
        m = _INFER.match(path)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            return self._error(
                400, f"Content-Length {str(self.headers.get('Content-Length'))[:20]!r} is not a size"
            )
        if length > MAX_REQUEST_BYTES + (1 << 20):
            self.close_connection = True
            return self._error(400, f"request of {length} bytes; at most {MAX_REQUEST_BYTES >> 20} MiB")
        body = self.rfile.read(length) if length else b""
        if not m:
            return self._error(404, f"no such endpoint: POST {path[:100]}")
        if not self._model_ok(m.group(1), m.group(2)):
            return None
        try:
            reply, headers = self._infer(service, body)
        except RequestError as e:
            with service._lock:
                service.stats.failures += 1
            return self._error(400, str(e))
        except Exception as e:  # the model failed: the client gets one line, the server goes on
            return self._error(500, f"inference failed: {type(e).__name__}: {e}")
        self._send(200, reply, "application/octet-stream" if headers else "application/json", headers)

    def _infer(self, service: ModelService, body: bytes) -> tuple[bytes, dict[str, Any]]:
        hlen = self.headers.get("Inference-Header-Content-Length")
        try:
            size = int(hlen) if hlen is not None else len(body)
        except ValueError:
            raise RequestError(f"Inference-Header-Content-Length {hlen[:20]!r} is not a number") from None
        if not 0 <= size <= len(body):
            raise RequestError(f"Inference-Header-Content-Length {size}: the body has {len(body)} bytes")
        try:
            header = json.loads(body[:size])
        except (ValueError, UnicodeDecodeError) as e:
            raise RequestError(f"request is not valid JSON ({str(e)[:80]})") from None
        if not isinstance(header, dict):
            raise RequestError("request: expected a JSON object with 'inputs'")
        array, _ = _decode_input(header, body, size)
        binary = _binary_wanted(header)
        maps = np.stack(service.infer(service.check_images(array)))
        out: dict[str, Any] = {"name": OUTPUT, "datatype": "INT32", "shape": list(maps.shape)}
        reply = {"model_name": service.name, "model_version": "1", "outputs": [out]}
        if "id" in header:
            reply["id"] = str(header["id"])[:200]
        if not binary:
            out["data"] = maps.reshape(-1).tolist()
            return json.dumps(reply).encode(), {}
        raw = maps.astype("<i4").tobytes()
        out["parameters"] = {"binary_data_size": len(raw)}
        text = json.dumps(reply).encode()
        return text + raw, {"Inference-Header-Content-Length": len(text)}


class KServeHTTPServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` bound to ``(host, port)`` serving ``service``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, service: ModelService) -> None:
        self.service = service
        self._active = 0
        self._idle = threading.Condition()
        super().__init__((host, port), KServeHandler)

    @contextlib.contextmanager
    def in_flight(self) -> Iterator[None]:
        """Count a request from its headers to its answer (see :meth:`drain`)."""
        with self._idle:
            self._active += 1
        try:
            yield
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def drain(self, timeout: float = 25.0) -> int:
        """After :meth:`shutdown`: wait until the requests being read or answered have their answers
        (handler threads are daemons: leaving earlier dropped them); returns how many were left."""
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout)
            return self._active

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line on stderr for a connection that failed (none for a client that went away),
        instead of socketserver's traceback."""
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        sys.stderr.write(
            f"segpipe serve: a request from {client_address[0]} failed: {type(exc).__name__}: {exc}\n"
        )
