"""Channels-last against contiguous (NCHW) memory for training on the CPU; prints figures, asserts nothing.

One training step as segpipe's loop runs it (forward, smp Dice+CE-like loss, backward, AdamW) of
smp models on random batches, in both layouts, steps/s as the best of a few timed rounds. The
default model is segpipe's default (Unet/efficientnet-b0, random weights); ``--encoders`` adds
others. Each layout runs in a subprocess of its own, so an encoder whose channels-last backward
kills the process (``tu-mobileone_s0`` on AVX-512 CPUs: oneDNN) is reported, not fatal.

    python -m benchmarks.bench_channels_last [--size 128] [--batch 4] [--steps 5] [--threads 2]
        [--encoders efficientnet-b0,resnet18,tu-mobilenetv3_small_050]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time


def _one(arch: str, encoder: str, size: int, batch: int, steps: int, channels_last: bool) -> float:
    """Steps/s of one layout (best of 3 rounds of ``steps`` steps after 2 warm-up steps)."""
    import segmentation_models_pytorch as smp
    import torch

    torch.manual_seed(0)
    net = smp.create_model(arch, encoder, encoder_weights=None, classes=4).train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    # as segpipe's Normalize hands it over: NHWC pixels permuted to N×3×H×W (channels-last memory)
    x = torch.rand(batch, size, size, 3).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
    y = torch.randint(0, 4, (batch, size, size))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(net(x), y).backward()
        opt.step()

    for _ in range(2):
        step()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, time.perf_counter() - t0)
    return steps / best


def _child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    sps = _one(args.arch, args.encoder, args.size, args.batch, args.steps, args.layout == "channels_last")
    print(json.dumps({"steps_per_s": sps}), flush=True)


def _measure(args: argparse.Namespace, encoder: str, layout: str) -> str:
    cmd = [sys.executable, "-m", "benchmarks.bench_channels_last", "--child", "--encoder", encoder,
           "--layout", layout, "--arch", args.arch, "--size", str(args.size), "--batch", str(args.batch),
           "--steps", str(args.steps), "--threads", str(args.threads)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sig = -r.returncode if r.returncode < 0 else None
        return f"died ({signal.Signals(sig).name})" if sig else f"failed (exit {r.returncode})"
    return f"{json.loads(r.stdout.strip().splitlines()[-1])['steps_per_s']:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="Unet")
    ap.add_argument("--encoders", default="efficientnet-b0,tu-mobileone_s0")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--encoder", help=argparse.SUPPRESS)
    ap.add_argument("--layout", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    avx512 = "avx512f" in flags
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, AVX-512 {avx512}; "
        f"{args.arch}, {args.size}x{args.size}, batch {args.batch}, {args.threads} threads, "
        f"steps/s best of 3 x {args.steps}"
    )
    print(f"{'encoder':28s} {'contiguous':>12s} {'channels-last':>14s}")
    for enc in args.encoders.split(","):
        cf = _measure(args, enc, "contiguous")
        cl = _measure(args, enc, "channels_last")
        print(f"{enc:28s} {cf:>12s} {cl:>14s}", flush=True)


if __name__ == "__main__":
    main()
