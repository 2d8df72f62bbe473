"""Tiny model files for the deployment tests (Triton, DeepStream, serve).

The ONNX models are the suite's tiny FPN (tests/inference_helpers.py) exported as the ONNX contract
says; the engine is opaque bytes with the sidecar ``build-trt`` writes (nothing here opens it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from inference_helpers import export_onnx, tiny_info, tiny_model

SIZE = (96, 64)  # W x H (multiples of the stride, 32): different, so a swapped axis shows


_MADE: dict[str, Path] = {}


def make_models(folder: Path) -> dict[str, Path]:
    """``probs`` (dynamic batch and size), ``fixed`` (batch 1, 96x64, probs), ``logits`` (dynamic),
    ``labels`` (uint8 in, class map out, dynamic). Exported once per test session (the first
    caller's ``folder``); treat them as read-only."""
    if _MADE and all(p.is_file() for p in _MADE.values()):
        return dict(_MADE)
    info = tiny_info(size=SIZE)
    model = tiny_model(info, seed=3)
    folder.mkdir(parents=True, exist_ok=True)
    _MADE.update(
        {
            "probs": export_onnx(model, info, folder / "probs.onnx", output="probs"),
            "fixed": export_onnx(model, info, folder / "fixed.onnx", dynamic=False, output="probs"),
            "logits": export_onnx(model, info, folder / "logits.onnx", output="logits"),
            "labels": export_onnx(model, info, folder / "labels.onnx", output="labels", uint8=True),
        }
    )
    return dict(_MADE)


def fake_engine(folder: Path, onnx_path: Path, max_batch: int = 4) -> Path:
    """An engine file (opaque bytes) and the sidecar build-trt writes for ``onnx_path``."""
    import onnx

    from segpipe.tensorrt.shapes import ProfileShape, onnx_io
    from segpipe.tensorrt.sidecar import engine_sidecar, write_sidecar

    proto = onnx.load(str(onnx_path))
    inputs, outputs = onnx_io(proto)
    w, h = SIZE
    engine = folder / f"{onnx_path.stem}.engine"
    engine.write_bytes(b"\x00" * 1000)
    sidecar = engine_sidecar(
        engine_path=engine,
        onnx_path=onnx_path,
        metadata={p.key: p.value for p in proto.metadata_props},
        tensorrt_version="10.13.0",
        gpu_name="NVIDIA H100",
        compute_capability="9.0",
        precision="fp16",
        onnx_precision="fp32",
        fp16_method="builder-flag",
        strongly_typed=False,
        profile={"input_1": ProfileShape((1, h, w, 3), (1, h, w, 3), (max_batch, h, w, 3))},
        inputs=inputs,
        outputs=outputs,
    )
    write_sidecar(engine, sidecar)
    return engine


def frames(count: int = 3, seed: int = 0) -> np.ndarray:
    """``count`` random RGB uint8 frames at the models' size (N x H x W x 3), with smooth blobs so
    the tiny network's classes vary across the frame."""
    rng = np.random.default_rng(seed)
    w, h = SIZE
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty((count, h, w, 3), np.uint8)
    for i in range(count):
        base = rng.integers(0, 256, (h, w, 3)).astype(np.float32) * 0.3
        for c in range(3):
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            base[..., c] += 180 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (w / 4) ** 2))
        out[i] = np.clip(base, 0, 255).astype(np.uint8)
    return out
