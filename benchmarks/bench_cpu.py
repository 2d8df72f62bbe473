"""CPU inference: which backend and which INT8 file to deploy on a CPU, measured side by side.

For the demo model (``--demo runs/demo``: its best.pth, demo.onnx, demo.int8.onnx) and Unet /
efficientnet-b0 at 512 x 512 (``encoder_weights=None``, exported and quantized here with segpipe's
own code, calibrated on the bundled sample images), at 1 thread and all threads: ms/image (median,
p10-p90, spread) and argmax agreement with ONNX Runtime FP32 on the sample images, of

* eager PyTorch, ORT FP32, OpenVINO FP32;
* the TensorRT-shaped INT8 file (S8S8 Q/DQ, ``segpipe quantize``) under ORT with its fused integer
  kernels, under ORT with Q/DQ fusion off (what segpipe runs on CPUs without VNNI), under the INT8
  gate's emulation (``ORT_DISABLE_ALL``), and under OpenVINO;
* the CPU-targeted INT8 file (U8S8, 7-bit weights: ``segpipe quantize --target cpu``) under ORT
  and OpenVINO.

Candidates are warmed up until their timings settle and timed in interleaved rounds
(:mod:`segpipe.timing`). ``--isa AVX2`` also runs the OpenVINO rows in a child process with
``ONEDNN_MAX_CPU_ISA=AVX2`` (OpenVINO's oneDNN then runs its AVX2 INT8 kernels, those of a CPU
without VNNI; ONNX Runtime has no such switch). The CPU's flags and the load are printed.

    python benchmarks/bench_cpu.py --demo runs/demo --rounds 10 [--threads 1,0] [--isa AVX2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from segpipe.runtime.cpu import cpu_summary
from segpipe.timing import interleaved, is_steady, latency_stats, warm_up

SAMPLE = Path(__file__).resolve().parent.parent / "segpipe" / "data" / "sample" / "images"


def loadavg() -> str:
    """The 1/5/15-minute load averages (Linux), else ``?``."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def prepare(work: Path, encoder: str, size: int) -> dict[str, Path]:
    """best.pth, FP32 ONNX, TensorRT-shaped INT8 and CPU-targeted INT8 of Unet/``encoder`` (cached)."""
    import torch

    from segpipe.export.onnx import export_onnx
    from segpipe.export.quantize import quantize
    from segpipe.modelinfo import ModelInfo
    from segpipe.models import create_model, save_checkpoint
    from segpipe.options import OnnxExportOptions, QuantizeOptions

    work.mkdir(parents=True, exist_ok=True)
    files = {"pth": work / "m.pth", "fp32": work / "m.onnx", "int8": work / "m.int8.onnx"}
    if not files["pth"].is_file():
        torch.manual_seed(0)
        info = ModelInfo(arch="Unet", encoder=encoder, num_classes=4, input_size=(size, size))
        save_checkpoint(files["pth"], create_model(info, None), info)
    if not files["fp32"].is_file():
        export_onnx(OnnxExportOptions(model=files["pth"], output=files["fp32"], verify=False))
    if not files["int8"].is_file():  # a random-weight model: the gate's threshold is not the point
        quantize(
            QuantizeOptions(
                model=files["fp32"], calib_images=SAMPLE, output=files["int8"], min_agreement=0.01
            )
        )
    return files


def with_cpu_file(files: dict[str, Path], work: Path) -> dict[str, Path]:
    """``files`` plus ``cpu``: the FP32 model quantized by ``segpipe quantize --target cpu`` (cached)."""
    from segpipe.export.quantize import quantize
    from segpipe.options import QuantizeOptions

    cpu = work / (files["fp32"].stem + ".cpu-int8.onnx")
    if not cpu.is_file():  # a random-weight model's gate threshold is not the point here
        opts = QuantizeOptions(files["fp32"], SAMPLE, cpu, target="cpu", min_agreement=0.01)
        quantize(opts)
    return {**files, "cpu": cpu}


def ort_runner(path: Path, threads: int, how: str) -> Any:
    """A segpipe OnnxRunner of ``path`` whose session runs ``how``: fused (ORT's defaults), unfused
    (Q/DQ fusion off, segpipe's choice without VNNI) or emulated (the gate: ORT_DISABLE_ALL)."""
    import onnxruntime as ort

    from segpipe.runtime.cpu import DISABLE_QDQ_FUSION
    from segpipe.runtime.onnxruntime import OnnxRunner

    runner = OnnxRunner(path, "cpu", threads=threads)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    so.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        if how == "emulated"
        else ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    )
    if how == "unfused":
        so.add_session_config_entry(DISABLE_QDQ_FUSION, "1")
    runner.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return runner


def candidates(
    files: dict[str, Path], threads: int, only_openvino: bool = False
) -> dict[str, Callable[[], Any]]:
    """name -> a function opening the runner (opened one after another, all kept open)."""
    from segpipe.runtime.openvino import OpenVinoRunner
    from segpipe.runtime.torch import TorchRunner

    ov = {
        "OpenVINO FP32": lambda: OpenVinoRunner(files["fp32"], "cpu", threads=threads),
        "OpenVINO INT8 (S8S8 Q/DQ file)": lambda: OpenVinoRunner(files["int8"], "cpu", threads=threads),
        "OpenVINO INT8 (CPU file, U8S8)": lambda: OpenVinoRunner(files["cpu"], "cpu", threads=threads),
    }
    if only_openvino:
        return ov
    return {
        "eager PyTorch": lambda: TorchRunner(files["pth"], "cpu"),
        "ORT FP32": lambda: ort_runner(files["fp32"], threads, "fused"),
        "ORT INT8 fused kernels": lambda: ort_runner(files["int8"], threads, "fused"),
        "ORT INT8 Q/DQ unfused": lambda: ort_runner(files["int8"], threads, "unfused"),
        "ORT INT8 gate emulation": lambda: ort_runner(files["int8"], threads, "emulated"),
        "ORT INT8 (CPU file, U8S8) fused": lambda: ort_runner(files["cpu"], threads, "fused"),
        **ov,
    }


def measure(files: dict[str, Path], threads: int, rounds: int, images: np.ndarray, only_openvino: bool = False,
            reference: np.ndarray | None = None) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Each candidate's latency figures (one image per call) and argmax agreement with ORT FP32."""
    import torch

    torch.set_num_threads(threads or os.cpu_count() or 1)
    runners = {name: make() for name, make in candidates(files, threads, only_openvino).items()}
    try:
        labels = {
            name: np.concatenate([r.predict_labels(im[None]) for im in images]) for name, r in runners.items()
        }
        ref = labels["ORT FP32"] if reference is None else reference
        one = images[:1]
        calls = [lambda r=r: r(one) for r in runners.values()]
        warm = [warm_up(c, 3) for c in calls]
        times = interleaved(calls, rounds)
    finally:
        for r in runners.values():
            r.close()
    out = {}
    for (name, lab), w, t in zip(labels.items(), warm, times, strict=True):
        stats = latency_stats(t)
        out[name] = {**stats, "steady": is_steady(stats), "settled": w.settled,
                     "agreement": float((lab == ref).mean()), "labels": lab}  # fmt: skip
    return out


def isa_child(
    files: dict[str, Path], threads: int, rounds: int, isa: str, images_npy: Path, ref_npy: Path
) -> dict:
    """The OpenVINO rows in a child process whose oneDNN is limited to ``isa``."""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": isa}
    args = [sys.executable, __file__, "--child", json.dumps({k: str(v) for k, v in files.items()}),
            "--threads", str(threads), "--rounds", str(rounds), "--images-npy", str(images_npy), "--ref-npy", str(ref_npy)]  # fmt: skip
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: dict[str, dict[str, Any]], base: str = "ORT FP32") -> list[list[str]]:
    ref = rows[base]["p50_ms"] if base in rows else None
    out = []
    for name, r in rows.items():
        median = f"{r['p50_ms']:.1f}" if r["steady"] else f"unsteady ({r['p50_ms']:.0f})"
        vs = f"{ref / r['p50_ms']:.2f}x" if ref else "-"
        out.append([name, median, f"{r['p10_ms']:.1f}-{r['p90_ms']:.1f}", f"{100 * r['spread']:.0f}%", vs,
                    f"{100 * r['agreement']:.2f}%"])  # fmt: skip
    return out


HEADER = ["backend / file", "median ms", "p10-p90", "spread", "speed vs ORT FP32", "argmax vs ORT FP32"]


def print_rows(title: str, rows: list[list[str]], markdown: bool) -> None:
    print(f"\n{title}")
    if markdown:
        print("| " + " | ".join(HEADER) + " |\n|" + "---|" * len(HEADER))
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADER)]
    print("  ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True)))
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def sample_images(size: tuple[int, int], count: int) -> np.ndarray:
    """``count`` bundled sample images resized to (W, H), uint8 NHWC."""
    from segpipe.export.calibrate import image_files, load_images

    files = image_files(SAMPLE, "--images")[-count:]
    return np.clip(load_images(files, size, "--images")[0], 0, 255).astype(np.uint8)


def run(size: int = 512, encoder: str = "efficientnet-b0", rounds: int = 8, threads: str = "1,0",
        demo: str | None = None, work: str | None = None, isa: str = "", markdown: bool = False,
        images: int = 4) -> list[tuple[str, str, str, str]]:  # fmt: skip
    """Measure and print the tables; rows (benchmark, measured, reference, ratio) for python -m benchmarks."""
    import tempfile

    from segpipe.runtime.onnxruntime import OnnxRunner

    workdir = Path(work) if work else Path(tempfile.mkdtemp(prefix="bench_cpu_"))
    sets = {}
    if demo:
        d = Path(demo)
        files = {"pth": d / "train" / "best.pth", "fp32": d / "demo.onnx", "int8": d / "demo.int8.onnx"}
        with OnnxRunner(files["fp32"], "cpu") as r:
            w, h = r.input_size
        sets[f"demo model {w}x{h}"] = (with_cpu_file(files, workdir / "demo"), (w, h))
    if encoder != "none":
        enc = with_cpu_file(prepare(workdir / encoder, encoder, size), workdir / encoder)
        sets[f"Unet/{encoder} {size}x{size}"] = (enc, (size, size))
    print(f"CPU: {cpu_summary()}, {os.cpu_count()} cores; load before: {loadavg()}", flush=True)
    summary = []
    for label, (files, wh) in sets.items():
        pics = sample_images(wh, images)
        for t in (int(v) for v in threads.split(",")):
            rows = measure(files, t, rounds, pics)
            if isa:
                with tempfile.TemporaryDirectory() as tmp:
                    np.save(Path(tmp) / "x.npy", pics)
                    np.save(Path(tmp) / "ref.npy", rows["ORT FP32"]["labels"])
                    child = isa_child(files, t, rounds, isa, Path(tmp) / "x.npy", Path(tmp) / "ref.npy")
                rows.update({f"{k} [{isa} kernels]": v for k, v in child.items()})
            tname = (
                f"{t} thread" if t == 1 else f"all threads ({os.cpu_count()})" if t == 0 else f"{t} threads"
            )
            print_rows(
                f"{label}, {tname}, {rounds} rounds interleaved, load {loadavg()}", table(rows), markdown
            )
            base = rows["ORT FP32"]["p50_ms"]
            for name, r in rows.items():
                summary.append((f"cpu {label} {tname}: {name}", f"{r['p50_ms']:.1f} ms",
                                f"argmax vs FP32 {100 * r['agreement']:.2f}%", f"{base / r['p50_ms']:.2f}x ORT FP32"))  # fmt: skip
    print(f"\nload after: {loadavg()}")
    return summary


def _child(args: argparse.Namespace) -> None:
    files = {k: Path(v) for k, v in json.loads(args.child).items()}
    pics = np.load(args.images_npy)
    ref = np.load(args.ref_npy)
    rows = measure(files, int(args.threads), args.rounds, pics, only_openvino=True, reference=ref)
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "labels"} for k, v in rows.items()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", help="the demo's output folder (train/best.pth, demo.onnx, demo.int8.onnx)")
    ap.add_argument("--work", help="where the efficientnet-b0 files are made (kept: a rerun reuses them)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--encoder", default="efficientnet-b0", help="none: the demo model only")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--threads", default="1,0", help="comma-separated; 0: all cores")
    ap.add_argument("--images", type=int, default=4, help="sample images the agreement is measured on")
    ap.add_argument("--isa", default="", help="also run OpenVINO with ONEDNN_MAX_CPU_ISA=ISA (e.g. AVX2)")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--images-npy", help=argparse.SUPPRESS)
    ap.add_argument("--ref-npy", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return
    run(
        args.size,
        args.encoder,
        args.rounds,
        args.threads,
        args.demo,
        args.work,
        args.isa,
        args.markdown,
        args.images,
    )


if __name__ == "__main__":
    main()
