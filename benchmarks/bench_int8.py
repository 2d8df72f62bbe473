"""INT8 figures: which parts to keep in FP32, which quantizer, which calibration, and CPU latency.

For one FP32 ONNX model (``segpipe export-onnx``), a calibration folder and a labelled held-out
data set, every variant is quantized with segpipe's own code, then measured against the FP32 model
in ONNX Runtime (CPU): argmax agreement on the held-out images, mIoU, file size, latency. A U8S8
variant (unsigned asymmetric activations, what ONNX Runtime's docs advise for x86 CPUs) is timed
too, to say whether a CPU deployment would want it (TensorRT needs the signed symmetric one).

    python benchmarks/bench_int8.py --model demo.onnx --calib-images IMAGES --data-root HELDOUT \\
        [--variants head,input+head,none] [--quantizers ort,modelopt] [--methods minmax,entropy]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from segpipe.export import quantize as q
from segpipe.options import QuantizeOptions
from segpipe.progress import Reporter


def latency_ms(path: Path, io_: q.GraphIO, image: np.ndarray, runs: int, threads: int) -> list[float]:
    """Per-call latencies (ms) of ``runs`` calls after 3 warm-up calls, one image per call."""
    sess = q._session(path, threads)
    x = next(q.batches(image, io_.batch, io_.dtype))[0]
    for _ in range(3):
        sess.run(None, {io_.name: x})
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, {io_.name: x})
        out.append((time.perf_counter() - t) * 1000)
    return out


def fmt(samples: list[float]) -> str:
    a = np.asarray(samples)
    return f"{np.median(a):.2f} ms (p10 {np.percentile(a, 10):.2f}, p90 {np.percentile(a, 90):.2f})"


def main() -> None:
    import onnx

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--calib-images", type=Path, required=True)
    ap.add_argument("--data-root", type=Path, required=True)
    ap.add_argument("--calib-count", type=int, default=64)
    ap.add_argument("--variants", default="input+head,head,none")
    ap.add_argument("--quantizers", default="ort")
    ap.add_argument("--methods", default="minmax")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--u8s8", action="store_true", help="also time the U8S8 variant")
    args = ap.parse_args()

    proto = onnx.load(str(args.model))
    info = q.ModelInfo.from_metadata({p.key: p.value for p in proto.metadata_props})
    io_ = q.graph_io(proto, info, args.model)
    files = q.image_files(args.data_root / "images", "--data-root")
    held = q.load_images(files, io_.size, "--data-root")[0]
    fp32_miou = q._miou(args.model, args.data_root, Reporter())
    fp32_lat = latency_ms(args.model, io_, held[:1], args.runs, args.threads)
    print(f"FP32: size {q.file_size_mb(args.model):.2f} MB, mIoU {fp32_miou:.4f}, latency {fmt(fp32_lat)}")
    parts = {"none": (), "head": ("head",), "input": ("input",), "input+head": ("input", "head")}
    with tempfile.TemporaryDirectory() as tmp:
        for quantizer in args.quantizers.split(","):
            for method in args.methods.split(","):
                for variant in args.variants.split(","):
                    out = Path(tmp) / f"{quantizer}_{method}_{variant}.onnx"
                    opts = QuantizeOptions(
                        model=args.model,
                        calib_images=args.calib_images,
                        output=out,
                        calib_count=args.calib_count,
                        holdout=0,
                        verify_images=args.data_root / "images",
                        verify_max_images=10_000,
                        min_agreement=0.01,
                        method=method,
                        quantizer=quantizer,
                        keep_fp32=parts[variant],
                    )
                    t = time.perf_counter()
                    try:
                        res = q.quantize(opts)
                    except Exception as e:  # a variant a quantizer cannot make: say so, go on
                        print(f"{quantizer:8s} {method:10s} {variant:10s}: failed: {str(e)[:300]}")
                        continue
                    took = time.perf_counter() - t
                    miou = q._miou(out, args.data_root, Reporter())
                    lat = latency_ms(out, io_, held[:1], args.runs, args.threads)
                    agree = next(g for g in res.gate if g.source == "verify-images").result.argmax_agreement
                    print(
                        f"{quantizer:8s} {method:10s} fp32 {variant:10s}: agreement {100 * agree:.3f}%, "
                        f"mIoU {miou:.4f} ({100 * (miou - fp32_miou):+.2f} pt), size {res.size_mb:.2f} MB, "
                        f"Q/DQ {res.quantize_linear}/{res.dequantize_linear}, quantize {took:.1f} s, "
                        f"latency {fmt(lat)}"
                    )
        if args.u8s8:
            proto_named = Path(tmp) / "named.onnx"
            q.ensure_node_names(proto)
            onnx.save(proto, str(proto_named))
            calib_files = q.image_files(args.calib_images, "--calib-images")[: args.calib_count]
            calib = q.load_images(calib_files, io_.size, "--calib-images")[0]
            exclude = q.input_nodes(proto) + q.head_nodes(proto)
            for act in ("int8", "uint8"):
                out = Path(tmp) / f"cpu_{act}.onnx"
                q.quantize_ort(proto_named, out, io_, calib, "minmax", exclude, activation=act)
                lat = latency_ms(out, io_, held[:1], args.runs, args.threads)
                miou = q._miou(out, args.data_root, Reporter())
                name = "S8S8 (signed symmetric)" if act == "int8" else "U8S8 (unsigned asymmetric)"
                print(f"{name}: latency {fmt(lat)}, mIoU {miou:.4f}")
            print(
                f"FP32 again: latency {fmt(latency_ms(args.model, io_, held[:1], args.runs, args.threads))}"
            )


if __name__ == "__main__":
    main()
