"""``segpipe serve`` started as users start it (a subprocess on loopback, free ports), queried with
tritonclient over HTTP and gRPC: class maps equal ``segpipe visualize``'s, concurrent requests are
batched, bad requests get one line, SIGTERM stops it cleanly."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from deploy_helpers import frames, make_models

from segpipe._optional import available

tclient_http = pytest.importorskip("tritonclient.http")
tclient_grpc = pytest.importorskip("tritonclient.grpc")
from tritonclient.utils import InferenceServerException  # noqa: E402

IMG_H, IMG_W = 50, 80  # not the network's 64 x 96: the server resizes there and back, as visualize


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_models(tmp_path_factory.mktemp("serve_models"))["probs"]


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.stack([cv2.resize(f, (IMG_W, IMG_H)) for f in frames(3, seed=11)])


@pytest.fixture(scope="module")
def expected(model: Path, images: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """segpipe visualize --save-labels on the same images (PNG, lossless)."""
    root = tmp_path_factory.mktemp("serve_vis") / "images"
    root.mkdir()
    for i, img in enumerate(images):
        cv2.imwrite(str(root / f"i{i}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    out = root.parent / "out"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "segpipe",
            "visualize",
            "-m",
            str(model),
            "-i",
            str(root),
            "-o",
            str(out),
            "--save-labels",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    return np.stack(
        [cv2.imread(str(out / f"i{i}_labels.png"), cv2.IMREAD_UNCHANGED) for i in range(len(images))]
    )


class Server:
    def __init__(self, proc: subprocess.Popen, http: int, grpc: int, first: str) -> None:
        self.proc, self.http, self.grpc, self.first = proc, http, grpc, first


@pytest.fixture(scope="module")
def server(model: Path) -> Server:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "segpipe",
            "serve",
            "-m",
            str(model),
            "--name",
            "seg",
            "--host",
            "127.0.0.1",
            "--http-port",
            "0",
            "--grpc-port",
            "0",
            "--max-batch",
            "8",
            "--max-delay-ms",
            "50",
            "--server",
            "builtin",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=120)
    first = lines[0] if lines else ""
    m = re.search(r"http://127\.0\.0\.1:(\d+) and gRPC 127\.0\.0\.1:(\d+)", first)
    if m is None:
        proc.kill()
        pytest.fail(f"server did not start: {first!r} {proc.stderr.read()[:2000]}")
    srv = Server(proc, int(m.group(1)), int(m.group(2)), first)
    yield srv
    if proc.poll() is None:
        proc.kill()
        proc.wait(30)


def _http(server: Server):
    return tclient_http.InferenceServerClient(f"127.0.0.1:{server.http}", concurrency=4)


def _http_infer(client, batch: np.ndarray, name: str = "seg", binary: bool = True) -> np.ndarray:
    inp = tclient_http.InferInput("IMAGE", list(batch.shape), "UINT8")
    inp.set_data_from_numpy(batch, binary_data=binary)
    out = tclient_http.InferRequestedOutput("CLASS_MAP", binary_data=binary)
    return client.infer(name, [inp], outputs=[out]).as_numpy("CLASS_MAP")


def test_http_class_maps_equal_visualize(server: Server, images: np.ndarray, expected: np.ndarray) -> None:
    client = _http(server)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("seg")
    assert client.get_model_config("seg")["max_batch_size"] == 8
    for binary in (True, False):  # the binary tensor extension and plain JSON
        got = _http_infer(client, images, binary=binary)
        assert got.shape == expected.shape == (3, IMG_H, IMG_W)
        np.testing.assert_array_equal(got, expected)
    assert len(np.unique(expected)) > 1


def test_grpc_class_maps_equal_visualize(server: Server, images: np.ndarray, expected: np.ndarray) -> None:
    client = tclient_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc}")
    assert client.is_server_live() and client.is_model_ready("seg")
    inp = tclient_grpc.InferInput("IMAGE", list(images.shape), "UINT8")
    inp.set_data_from_numpy(images)
    got = client.infer("seg", [inp]).as_numpy("CLASS_MAP")
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(InferenceServerException, match="model 'other' is not served here"):
        client.infer("other", [inp])


def test_concurrent_requests_are_batched(server: Server, images: np.ndarray, expected: np.ndarray) -> None:
    results: dict[int, np.ndarray] = {}

    def one(k: int) -> None:
        client = _http(server)
        results[k] = _http_infer(client, images[k % 3 : k % 3 + 1])[0]

    threads = [threading.Thread(target=one, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 12
    for k, got in results.items():
        np.testing.assert_array_equal(got, expected[k % 3])  # batched with others, same answer
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{server.http}/metrics", timeout=30).read().decode()
    sizes = {
        int(s): int(n)
        for s, n in re.findall(r'segpipe_batch_size_total\{model="seg",size="(\d+)"\} (\d+)', metrics)
    }
    assert max(sizes) > 1  # twelve simultaneous one-image requests shared model calls
    assert re.search(r'nv_inference_request_success\{model="seg",version="1"\} \d+', metrics)


@pytest.mark.parametrize(
    "batch, dtype, name, message",
    [
        (np.zeros((1, 8, 8, 3), np.float32), "FP32", "IMAGE", "datatype 'FP32' given; send UINT8 RGB pixels"),
        (np.zeros((8, 8, 3), np.uint8), "UINT8", "IMAGE", "shape [8, 8, 3] given; send N x H x W x 3"),
        (np.zeros((1, 8, 8, 3), np.uint8), "UINT8", "PIXELS", "input 'PIXELS': this model's input is IMAGE"),
        (
            np.zeros((9, 8, 8, 3), np.uint8),
            "UINT8",
            "IMAGE",
            "batch 9 is more than this server's --max-batch 8",
        ),
    ],
)
def test_bad_requests_get_one_line(
    server: Server, batch: np.ndarray, dtype: str, name: str, message: str
) -> None:
    client = _http(server)
    inp = tclient_http.InferInput(name, list(batch.shape), dtype)
    inp.set_data_from_numpy(batch)
    with pytest.raises(InferenceServerException) as err:
        client.infer("seg", [inp])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_malformed_json_and_unknown_paths(server: Server) -> None:
    base = f"http://127.0.0.1:{server.http}"
    req = urllib.request.Request(f"{base}/v2/models/seg/infer", data=b"{not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 400
    assert json.loads(err.value.read())["error"].startswith("request is not valid JSON")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{base}/v2/models/nope/ready", timeout=30)
    assert err.value.code == 404
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.http, timeout=30)
    conn.putrequest("POST", "/v2/models/seg/infer")
    conn.putheader("Content-Length", "-5")  # would read to the end of the stream: refused at once
    conn.endheaders()
    reply = conn.getresponse()
    assert reply.status == 400 and b"is not a size" in reply.read()
    conn.close()


def test_sigterm_stops_cleanly(server: Server, images: np.ndarray, expected: np.ndarray) -> None:
    """SIGTERM while a request is being read: it still gets its answer, then the server stops."""
    import socket

    assert server.proc.poll() is None
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "IMAGE",
                    "datatype": "UINT8",
                    "shape": [1, IMG_H, IMG_W, 3],
                    "parameters": {"binary_data_size": images[0].nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    body = head + images[0].tobytes()
    sock = socket.create_connection(("127.0.0.1", server.http), timeout=60)
    sock.sendall(
        b"POST /v2/models/seg/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
        b"Inference-Header-Content-Length: %d\r\n\r\n" % (len(body), len(head)) + body[:100]
    )
    time.sleep(0.5)  # the handler is reading the body
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(1.0)  # the server has seen it (it looks every 0.2 s) and stopped taking connections
    sock.sendall(body[100:])
    reply = b""
    while chunk := sock.recv(1 << 16):  # the server closes the connection when it exits
        reply += chunk
    sock.close()
    assert reply.startswith(b"HTTP/1.1 200"), reply[:300]  # the old server exited without answering
    maps = np.frombuffer(reply[-IMG_H * IMG_W * 4 :], "<i4").reshape(IMG_H, IMG_W)
    np.testing.assert_array_equal(maps, expected[0])
    out, err = server.proc.communicate(timeout=60)
    assert server.proc.returncode == 0, err
    assert re.search(r"stopped: \d+ requests, \d+ images in \d+ model calls", out)
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--server", "triton"], "--server 'triton': use one of auto, builtin, pytriton"),
        (["--http-port", "70000"], "--http-port 70000: use 0-65535"),
        (["--max-batch", "0"], "--max-batch 0: must be at least 1"),
        (
            ["--server", "pytriton", "--http-port", "9000", "--grpc-port", "9002"],
            "(9002), which is --grpc-port",
        ),
        (
            ["--server", "pytriton", "--http-port", "65535", "--grpc-port", "9001"],
            "(65537), which is past 65535",
        ),
        pytest.param(
            ["--server", "pytriton"],
            "segpipe serve --server pytriton): pip install",
            marks=pytest.mark.skipif(available("pytriton.triton"), reason="pytriton is installed here"),
        ),
    ],
)
def test_bad_flags_are_one_line(model: Path, args: list[str], message: str) -> None:
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "segpipe", "serve", "-m", str(model), "--grpc-port", "-1", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1 and message in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and time.perf_counter() - start < 120


@pytest.mark.parametrize(
    "spec, says",
    [
        ({"shape": [True, 1, 1, 3], "data": [0, 0, 0]}, "is not a list of sizes"),
        ({"shape": [2**70, 1, 1, 3], "data": [0]}, "is not a list of sizes"),
        ({"shape": [1, 1, 2, 3], "data": [0.5] * 6}, "data is not a list of integers"),
        ({"shape": [1, 1, 1, 3], "data": [True, False, True]}, "data is not a list of integers"),
        ({"shape": [1, 1, 1, 3], "data": [0, 0, 0], "parameters": [1]}, "IMAGE parameters: '[1]' is not"),
    ],
)
def test_malformed_tensors_are_one_line_not_a_cast(spec: dict, says: str) -> None:
    """Each was a 500 (TypeError, OverflowError, AttributeError) or silently cast (0.5 -> 0)."""
    from segpipe.deploy.kserve_http import _binary_wanted, _decode_input
    from segpipe.deploy.serve import RequestError

    header = {"inputs": [{"name": "IMAGE", "datatype": "UINT8", **spec}]}
    with pytest.raises(RequestError, match=re.escape(says)):
        _decode_input(header, b"", 0)
    with pytest.raises(RequestError, match="request parameters: 'x' is not a JSON object"):
        _binary_wanted({"parameters": "x"})
    with pytest.raises(RequestError, match="CLASS_MAP parameters"):
        _binary_wanted({"outputs": [{"name": "CLASS_MAP", "parameters": 3}]})


def test_a_silent_client_does_not_hold_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """A body shorter than its Content-Length: the connection is closed after the handler's timeout
    (the old handler waited for the rest forever)."""
    import socket

    from segpipe.deploy.kserve_http import KServeHandler, KServeHTTPServer

    monkeypatch.setattr(KServeHandler, "timeout", 0.5)
    httpd = KServeHTTPServer("127.0.0.1", 0, service=None)  # type: ignore[arg-type]
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        sock = socket.create_connection(("127.0.0.1", httpd.server_address[1]), timeout=30)
        sock.sendall(b"POST /v2/models/seg/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}")
        start = time.perf_counter()
        assert sock.recv(100) == b""  # closed by the server, not by this timeout
        assert time.perf_counter() - start < 20
        assert httpd.drain(timeout=10) == 0
        sock.close()
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_grpc_shape_that_wraps_int64_is_one_line() -> None:
    """2^62 x 4 x 1 x 3 wraps to 0 elements in int64: it passed the count check, then reshape raised
    a ValueError the gRPC server logged as a traceback."""
    from tritonclient.grpc import service_pb2 as pb

    from segpipe.deploy.kserve_grpc import _input
    from segpipe.deploy.serve import RequestError

    request = pb.ModelInferRequest(model_name="seg")
    request.inputs.add(name="IMAGE", datatype="UINT8", shape=[2**62, 4, 1, 3])
    with pytest.raises(RequestError, match="is not a list of sizes"):
        _input(request)


def test_a_model_without_metadata_is_served_with_mean_and_std(model: Path, tmp_path: Path) -> None:
    """serve's refusal names --mean/--std (visualize's flags), which serve now takes too."""
    import onnx

    from segpipe.deploy.serve import ModelService
    from segpipe.errors import SegpipeError

    proto = onnx.load(str(model))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(SegpipeError, match="pass --mean and --std"):
        ModelService(bare)
    service = ModelService(bare, normalization=((0, 0, 0), (1, 1, 1)))
    try:
        (labels,) = service.infer([np.zeros((IMG_H, IMG_W, 3), np.uint8)])
        assert labels.shape == (IMG_H, IMG_W)
    finally:
        service.close()
    run = subprocess.run(
        [sys.executable, "-m", "segpipe", "serve", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "--mean" in run.stdout and "--std" in run.stdout


def test_a_grpc_port_in_use_is_one_line(model: Path) -> None:
    """grpcio raises RuntimeError for a port it cannot bind (it used to return 0): was a traceback."""
    import socket

    from segpipe.deploy.kserve_grpc import start_grpc
    from segpipe.errors import ConfigError

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(ConfigError, match=rf"--grpc-port {port}: cannot listen on 127.0.0.1:{port}"):
            start_grpc(None, "127.0.0.1", port)  # type: ignore[arg-type]
        run = subprocess.run(  # and the command says it in one line (gRPC's core logged one more)
            [
                sys.executable,
                "-m",
                "segpipe",
                "serve",
                "-m",
                str(model),
                "--http-port",
                "0",
                "--grpc-port",
                str(port),
                "--server",
                "builtin",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 1 and f"--grpc-port {port}: cannot listen" in run.stderr, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    finally:
        taken.close()


def test_a_name_with_a_space_quote_and_accent_is_reachable(model: Path) -> None:
    """tritonclient percent-encodes the model name in the URL: the server compared it encoded (404);
    the metrics label escapes the quote (it ended the label value)."""
    from segpipe.deploy.kserve_http import KServeHTTPServer
    from segpipe.deploy.serve import ModelService

    name = 'my mödel "v2"'
    service = ModelService(model, name=name)
    httpd = KServeHTTPServer("127.0.0.1", 0, service)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        client = tclient_http.InferenceServerClient(f"127.0.0.1:{httpd.server_address[1]}")
        inp = tclient_http.InferInput("IMAGE", [1, 8, 8, 3], "UINT8")
        inp.set_data_from_numpy(np.zeros((1, 8, 8, 3), np.uint8))
        assert client.infer(name, [inp]).as_numpy("CLASS_MAP").shape == (1, 8, 8)
        assert client.is_model_ready(name)
        assert (
            'nv_inference_request_success{model="my mödel \\"v2\\"",version="1"} 1' in service.metrics_text()
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
        service.close()
