"""The smp zoo through segpipe: every architecture x encoder trained, exported and verified.

For each pair (random-initialised encoder, no downloads) on a tiny generated dataset (CPU):
train one epoch with ``segpipe.training.train``, export the best checkpoint with
``segpipe.export.onnx.export_onnx`` (default options: exporter ``auto``, onnx-simplifier, ONNX
Runtime verified against PyTorch) and print one Markdown row: train / export outcome, seconds, the
exporter used and the worst argmax agreement; a refusal shows segpipe's one-line error.

    nice -n 10 .venv/bin/python benchmarks/bench_zoo.py [--size 128 128] [--archs Unet,PAN]
        [--encoders resnet18,tu-convnext_atto] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ARCHS = (
    "Unet",
    "UnetPlusPlus",
    "MAnet",
    "Linknet",
    "FPN",
    "PSPNet",
    "DeepLabV3",
    "DeepLabV3Plus",
    "PAN",
    "UPerNet",
    "Segformer",
    "DPT",
)
ENCODERS = (
    "resnet18",
    "efficientnet-b0",
    "mobilenet_v2",
    "mit_b0",
    "tu-convnext_atto",
    "tu-mobilenetv3_small_100",
)


def one(arch: str, encoder: str, data: Path, work: Path, size: tuple[int, int]) -> list[Any]:
    """[arch, encoder, train, export, exporter, agreement] for one pair."""
    from segpipe.errors import SegpipeError
    from segpipe.export.onnx import export_onnx
    from segpipe.options import OnnxExportOptions, TrainOptions
    from segpipe.training import train

    row: list[Any] = [arch, encoder]
    t0 = time.perf_counter()
    try:
        run = train(
            TrainOptions(
                data_root=data,
                num_classes=3,
                arch=arch,
                encoder=encoder,
                encoder_weights="none",
                epochs=1,
                batch_size=2,
                size=size,
                workers=0,
                device="cpu",
                output_dir=work / f"{arch}-{encoder}",
                augment="none",
                persistent_workers=False,
            )
        )
    except SegpipeError as e:
        return [*row, f"refused: {e}", "-", "-", "-"]
    except Exception as e:  # a traceback segpipe let through: exactly what this table looks for
        return [*row, f"CRASH {type(e).__name__}: {str(e).splitlines()[0][:120]}", "-", "-", "-"]
    row.append(f"ok {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    try:
        res = export_onnx(OnnxExportOptions(model=run.best_path, output=work / f"{arch}-{encoder}.onnx"))
    except SegpipeError as e:
        return [*row, f"failed: {e}", "-", "-"]
    except Exception as e:
        return [*row, f"CRASH {type(e).__name__}: {str(e).splitlines()[0][:120]}", "-", "-"]
    agreement = 100 * res.verification.worst.argmax_agreement
    (work / f"{arch}-{encoder}.onnx").unlink(missing_ok=True)
    return [
        *row,
        f"ok {time.perf_counter() - t0:.1f} s",
        f"{res.exporter} (opset {res.opset})",
        f"{agreement:.3f}%",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, nargs=2, default=(128, 128), metavar=("W", "H"))
    ap.add_argument("--archs", default=",".join(ARCHS))
    ap.add_argument("--encoders", default=",".join(ENCODERS))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import torch

    from segpipe.data.synthetic import make_dataset

    torch.set_num_threads(args.threads)
    size = (args.size[0], args.size[1])
    print(
        f"| architecture | encoder | train (1 epoch, {size[0]}x{size[1]}) | export + verify | exporter | agreement |"
    )
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bench_zoo_") as tmp:
        data = make_dataset(Path(tmp) / "ds", count=6, size=size, num_classes=3, seed=0)
        for arch in args.archs.split(","):
            for encoder in args.encoders.split(","):
                row = one(arch, encoder, data, Path(tmp), size)
                print("| " + " | ".join(str(v).replace("|", "/") for v in row) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
