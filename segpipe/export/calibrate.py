"""Calibration for ``segpipe quantize``: the images (read and resized by
:mod:`segpipe.runtime.inputs`, as every check's are; some held out for the gate) and the two
quantizers fed with them (ONNX Runtime ``quantize_static``, NVIDIA ModelOpt ONNX PTQ).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from segpipe.errors import ConfigError
from segpipe.export.qdq_graph import GraphIO
from segpipe.runtime.inputs import fixed_batches, image_files, load_images

__all__ = ["image_files", "load_images", "quantize_modelopt", "quantize_ort", "split_holdout"]


def split_holdout(
    files: list[Path], holdout: int, calib_count: int, seed: int
) -> tuple[list[Path], list[Path]]:
    """(calibration files, held-out files): ``holdout`` images drawn at random are kept out of the
    calibration (at most a quarter of the folder; none when it holds one image), then at most
    ``calib_count`` of the others calibrate."""
    n = len(files)
    k = 0 if n < 2 or holdout == 0 else max(1, min(holdout, n // 4))
    order = np.random.default_rng(seed).permutation(n)
    held = sorted(files[i] for i in order[:k])
    calib = sorted(files[i] for i in order[k:])[:calib_count]
    return calib, held


# ---- calibration readers and quantizers ----------------------------------------------------------
def feeds(images: np.ndarray, io_: GraphIO) -> list[np.ndarray]:
    """The calibration batches: ``io_.batch`` images each (the last padded with repeats), ``io_.dtype``."""
    return [b.images.astype(io_.dtype) for b in fixed_batches("calibration", images, io_.batch)]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep the quantizers' logging, warnings and prints off the terminal (the core never prints)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    sink = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink):
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def quantize_ort(
    src: Path,
    dst: Path,
    io_: GraphIO,
    calib: np.ndarray,
    method: str,
    exclude: list[str],
    activation: str = "int8",
    reduce_range: bool = False,
) -> str:
    """ONNX Runtime ``quantize_static`` in QDQ format; returns a description of the quantizer.

    ``activation="uint8"`` makes the U8S8 variant (asymmetric unsigned activations) for CPUs
    (:mod:`segpipe.export.quantize_cpu`, with ``reduce_range``: 7-bit weights): TensorRT needs
    signed symmetric INT8.
    """
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{io_.name: x} for x in feeds(calib, io_)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    symmetric = activation == "int8"
    with _quiet():
        quantize_static(
            str(src),
            str(dst),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=reduce_range,
            activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude,
            calibrate_method=methods[method],
            extra_options={
                "ActivationSymmetric": symmetric,
                "WeightSymmetric": True,
                "QuantizeBias": False,
                "CalibPercentile": 99.999,
            },
        )
    return f"onnxruntime {ort.__version__} quantize_static"


def quantize_modelopt(
    src: Path, dst: Path, io_: GraphIO, calib: np.ndarray, method: str, exclude: list[str]
) -> str:
    """NVIDIA ModelOpt ONNX PTQ (``quantize_mode="int8"``, ``calibration_eps=["cpu"]``)."""
    from segpipe.errors import DependencyError

    try:
        import modelopt
        import modelopt.onnx.quantization as mq
    except ImportError as e:
        raise DependencyError(
            f"--quantizer modelopt needs NVIDIA ModelOpt's ONNX PTQ ({e}): pip install nvidia-modelopt "
            "onnx-graphsurgeon onnxslim polygraphy (its [onnx] extra pins onnx and onnxruntime-gpu: see README), "
            "or use --quantizer ort"
        ) from e

    methods = {"minmax": "max", "entropy": "entropy"}
    if method not in methods:
        raise ConfigError(f"--calib-method {method}: ModelOpt calibrates with minmax or entropy")
    data = np.concatenate(feeds(calib, io_))
    with _quiet():
        mq.quantize(
            str(src),
            quantize_mode="int8",
            calibration_data={io_.name: data},
            calibration_method=methods[method],
            calibration_eps=["cpu"],
            nodes_to_exclude=exclude,
            output_path=str(dst),
            high_precision_dtype="fp32",
            log_level="ERROR",
        )
    return f"nvidia-modelopt {modelopt.__version__} onnx PTQ"
