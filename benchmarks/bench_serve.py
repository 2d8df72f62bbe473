"""``segpipe serve`` under 1, 4 and 16 concurrent clients on loopback, next to the same model in-process.

    python -m benchmarks.bench_serve                       # a tiny FPN exported here, 320x240 images
    python -m benchmarks.bench_serve --model m.onnx --clients 1,4,16 --requests 40 --max-seconds 60

Starts ``segpipe serve`` (a subprocess, 127.0.0.1, free ports), then for each client count runs
that many threads, each with its own ``tritonclient.http`` client sending one-image requests
(``--requests`` per client, stopping early after ``--max-seconds``). Prints requests/s, p50 and p99
latency, and the dynamic batching the server did (model calls and mean images per call, from its
``/metrics``), next to the model run in-process through the same path (``predict_arrays``, the
one ``visualize`` uses) with batch 1 and with batch ``--max-batch``. Clients and server share the
machine's cores: on a small CPU the client threads take part of it.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np


def tiny_model(folder: Path, size: tuple[int, int]) -> Path:
    """An untrained FPN (timm mobilenetv3_small_050 encoder), probabilities, dynamic batch and size."""
    import torch

    from segpipe.modelinfo import ModelInfo
    from segpipe.models import DeployModel, create_model

    info = ModelInfo(
        arch="FPN",
        encoder="tu-mobilenetv3_small_050",
        num_classes=4,
        input_size=size,
        class_names=("a", "b", "c", "d"),
        layout="NHWC",
        output_kind="probs",
    )
    torch.manual_seed(0)
    net = DeployModel(create_model(info, encoder_weights=None).eval(), info, "probs").eval()
    path = folder / "bench_serve.onnx"
    w, h = size
    axes = {"input_1": {0: "n", 1: "h", 2: "w"}, "output": {0: "n", 2: "h", 3: "w"}}
    torch.onnx.export(
        net,
        torch.zeros(1, h, w, 3),
        str(path),
        input_names=["input_1"],
        output_names=["output"],
        dynamic_axes=axes,
        dynamo=False,
        opset_version=17,
    )
    import onnx

    proto = onnx.load(str(path))
    for key, value in info.to_metadata().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
    return path


def percentiles(ms: list[float]) -> tuple[float, float]:
    a = np.asarray(ms)
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def in_process(
    model: Path, images: list[np.ndarray], batch: int, seconds: float
) -> tuple[float, float, float]:
    """(images/s, p50 ms, p99 ms per call) of predict_arrays on ``batch`` images at a time."""
    from segpipe.runtime.base import load_runner
    from segpipe.runtime.pipeline import predict_arrays

    with load_runner(model, device="cpu") as runner:
        predict_arrays(runner, images[:batch], batch_size=batch)  # warm-up
        times, done, start = [], 0, time.perf_counter()
        while time.perf_counter() - start < seconds or len(times) < 5:
            t = time.perf_counter()
            predict_arrays(runner, [images[(done + j) % len(images)] for j in range(batch)], batch_size=batch)
            times.append((time.perf_counter() - t) * 1000)
            done += batch
        elapsed = time.perf_counter() - start
    p50, p99 = percentiles(times)
    return done / elapsed, p50, p99


def batch_counts(port: int) -> dict[int, int]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
    return {
        int(s): int(n) for s, n in re.findall(r'segpipe_batch_size_total\{[^}]*size="(\d+)"\} (\d+)', text)
    }


def drive(
    port: int, name: str, images: list[np.ndarray], clients: int, requests: int, seconds: float
) -> dict:
    """``clients`` threads, one-image requests; latencies (ms), elapsed, and the batching done."""
    import tritonclient.http as th

    before = batch_counts(port)
    lat: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(k: int) -> None:
        c = th.InferenceServerClient(f"127.0.0.1:{port}")
        mine = []
        for i in range(requests):
            if time.perf_counter() > deadline:
                break
            img = images[(k + i) % len(images)][None]
            inp = th.InferInput("IMAGE", list(img.shape), "UINT8")
            inp.set_data_from_numpy(img)
            t = time.perf_counter()
            c.infer(name, [inp], outputs=[th.InferRequestedOutput("CLASS_MAP")])
            mine.append((time.perf_counter() - t) * 1000)
        with lock:
            lat.extend(mine)

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    after = batch_counts(port)
    calls = {s: after.get(s, 0) - before.get(s, 0) for s in after}
    n_calls = sum(calls.values())
    mean_batch = sum(s * n for s, n in calls.items()) / max(1, n_calls)
    return {"n": len(lat), "elapsed": elapsed, "lat": lat, "calls": n_calls, "mean_batch": mean_batch}


def cpu_text() -> str:
    flags = ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = re.search(r"model name\s*:\s*(.*)", info)
        have = set(re.search(r"flags\s*:\s*(.*)", info).group(1).split())
        flags = ", ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "amx_tile") if f in have)
        name = model.group(1) if model else "?"
    except (OSError, AttributeError):
        name = "?"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{name}, {os.cpu_count()} cores ({flags}), load {load}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="ONNX model (default: a tiny FPN exported here)")
    ap.add_argument(
        "--size", type=int, nargs=2, default=(256, 192), metavar=("W", "H"), help="tiny model's size"
    )
    ap.add_argument("--image-size", type=int, nargs=2, default=(320, 240), metavar=("W", "H"))
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--requests", type=int, default=40, help="requests per client (bound)")
    ap.add_argument("--max-seconds", type=float, default=30.0, help="time bound per client count")
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--max-delay-ms", type=float, default=5.0)
    ap.add_argument("--server", default="builtin", help="builtin or pytriton")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_serve_"))
    model = args.model or tiny_model(tmp, tuple(args.size))
    rng = np.random.default_rng(0)
    w, h = args.image_size
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(16)]
    cmd = [
        sys.executable,
        "-m",
        "segpipe",
        "serve",
        "-m",
        str(model),
        "--name",
        "bench",
        "--http-port",
        "0",
        "--grpc-port",
        "-1",
        "--max-batch",
        str(args.max_batch),
        "--max-delay-ms",
        str(args.max_delay_ms),
        "--server",
        args.server,
        "--device",
        "cpu",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if not m:
            sys.exit(f"server did not start: {line!r} {proc.stderr.read()[:1000]}")
        port = int(m.group(1))
        print(f"machine: {cpu_text()}")
        print(
            f"model: {model.name}, images {w}x{h} resized to the network and back; server: {args.server}, "
            f"dynamic batching up to {args.max_batch} images, {args.max_delay_ms:g} ms; "
            f"{args.requests} requests per client at most, {args.max_seconds:g} s at most per row"
        )
        print(f"{'':28} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'model calls':>12} {'images/call':>12}")
        for batch in (1, args.max_batch):
            ips, p50, p99 = in_process(model, images, batch, min(args.max_seconds, 10))
            print(
                f"{'in-process, batch ' + str(batch):28} {ips:8.1f} {p50:8.1f} {p99:8.1f} {'':>12} {batch:12d}"
            )
        for clients in (int(c) for c in args.clients.split(",")):
            r = drive(port, "bench", images, clients, args.requests, args.max_seconds)
            p50, p99 = percentiles(r["lat"])
            label = f"serve, {clients} client{'s' if clients > 1 else ''}"
            print(
                f"{label:28} {r['n'] / r['elapsed']:8.1f} {p50:8.1f} {p99:8.1f} {r['calls']:12d} {r['mean_batch']:12.2f}"
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=60)
            print(
                f"server: {out.strip().splitlines()[-1] if out.strip() else '(no output)'}, exit {proc.returncode}"
            )
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
