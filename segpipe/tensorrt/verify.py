"""Post-build verification: the engine against ONNX Runtime on the same inputs.

``build_engine`` runs the freshly built engine (still at its temporary path) and the ONNX model on
ONNX Runtime's CPU provider with the same batches, random images or pictures from a folder resized
to the network size (:mod:`segpipe.runtime.inputs`), and compares the outputs with
:class:`~segpipe.runtime.comparator.Comparator`, as export-onnx's check and quantize's gate do.
Under the agreement threshold (argmax agreement, default 0.999 for fp32, 0.99 for fp16, 0.98 for
int8 engines) the build fails and the engine is not left at the output path.

The batch making and the ONNX Runtime reference run on CPU and are tested; running the engine
needs a CUDA GPU and tensorrt (``tests/test_tensorrt_gpu.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from segpipe.errors import DataError, ExportError
from segpipe.modelinfo import ModelInfo
from segpipe.options.engine import DEFAULT_MIN_AGREEMENT, default_min_agreement  # noqa: F401 (declared there)
from segpipe.progress import Reporter
from segpipe.runtime.base import CompareResult
from segpipe.runtime.comparator import Comparator
from segpipe.runtime.inputs import VerifyBatch, fixed_batches, folder_images, random_images
from segpipe.runtime.onnxruntime import GraphRunner


def verify_batches(
    shape: Sequence[int],
    dtype: str = "float32",
    images_dir: str | Path | None = None,
    max_images: int = 8,
    random_batches: int = 2,
    seed: int = 0,
) -> list[VerifyBatch]:
    """Input batches of exactly ``shape`` (N×H×W×C, NHWC RGB 0-255) in ``dtype``, built as export
    verification builds them (:mod:`segpipe.runtime.inputs`).

    With ``images_dir``: up to ``max_images`` pictures (sorted by name), read as RGB and resized to
    W×H, grouped N at a time (the last group is filled by repeating pictures, left out of the
    comparison). Without: seeded smooth random images, ``random_batches`` batches.
    """
    n, h, w, c = (int(v) for v in shape)
    np_dtype = np.dtype(dtype)
    if c != 3:
        if images_dir is not None:
            raise DataError(f"--verify-images {images_dir}: the model takes {c} channels, images give 3")
        rng = np.random.default_rng(seed)
        noise = [rng.integers(0, 256, size=(n, h, w, c)).astype(np_dtype) for _ in range(random_batches)]
        return [VerifyBatch("random", x, n) for x in noise]
    if images_dir is None:
        source, images = "random", random_images(n * random_batches, (w, h), seed)
    else:
        source, images = "images", folder_images(Path(images_dir), (w, h), max_images, error=DataError)
    return [replace(b, images=b.images.astype(np_dtype)) for b in fixed_batches(source, images, n)]


def verification_batches(
    shape: Sequence[int], dtype: str = "float32", *args: Any, **kwargs: Any
) -> list[np.ndarray]:
    """The arrays of :func:`verify_batches` (same arguments)."""
    return [b.images for b in verify_batches(shape, dtype, *args, **kwargs)]


def onnx_runner(onnx_path: str | Path) -> GraphRunner:
    """The reference: the ONNX model as written on ONNX Runtime's CPU provider."""
    return GraphRunner(onnx_path)


def onnx_reference(onnx_path: str | Path, batches: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run the ONNX model on ONNX Runtime (CPU) over ``batches``; the first output of each run."""
    with onnx_runner(onnx_path) as runner:
        return [runner(b) for b in batches]


def verify_engine(
    engine_path: str | Path,
    onnx_path: str | Path,
    info: ModelInfo,
    input_shape: Sequence[int],
    min_agreement: float,
    images_dir: str | Path | None = None,
    reporter: Reporter | None = None,
    display_path: str | Path | None = None,
) -> CompareResult:
    """Run the engine and ONNX Runtime on the same batches; ExportError under ``min_agreement``.

    ``engine_path`` may be a temporary file (the runner is opened with ``info`` directly, so no
    sidecar is needed); ``display_path`` is the name used in messages (the final engine path).
    """
    from segpipe.tensorrt.runner import TensorRTRunner

    reporter = reporter or Reporter()
    shown = display_path or engine_path
    batches = verify_batches(input_shape, info.input_dtype, images_dir)
    with onnx_runner(onnx_path) as reference, TensorRTRunner(engine_path, info=info) as engine:
        runs = Comparator.run({"ONNX Runtime": reference, "TensorRT": engine}, batches, where=shown)
    (row,) = Comparator.compare_accuracy(
        runs, "ONNX Runtime", "TensorRT", mode=info.mode, output_kind=info.output_kind, where=shown
    )
    result = row.result
    what = (
        f"{len(batches)} batch(es) of {'images from ' + str(images_dir) if images_dir else 'random images'}"
    )
    if not result.ok(min_agreement):
        raise ExportError(
            f"{shown}: verification failed on {what}: TensorRT and ONNX Runtime agree on "
            f"{100 * result.argmax_agreement:.3f}% of pixels, {100 * min_agreement:.3f}% required "
            f"(--min-agreement); {result}; the engine was not written"
        )
    reporter.info(f"verified against ONNX Runtime on {what}: {result}")
    return result
