"""An INT8 file for ONNX Runtime on CPUs without VNNI: U8S8 with 7-bit weights (``reduce_range``).

segpipe's INT8 file (``segpipe quantize``) is shaped for TensorRT: signed symmetric activations and
full 8-bit weights (S8S8). ONNX Runtime's quantization guide advises another shape for x86-64 CPUs
without VNNI, whose ``vpmaddubsw`` sums two u8 x s8 products into a saturating 16-bit value:
unsigned asymmetric activations (U8) and weights quantized to 7 bits (``reduce_range``), so that no
pair of products can overflow. This module writes that file from the same FP32 model, with the same
parts kept in FP32 (normalisation, head), and measures it with the INT8 gate's emulation
(:mod:`segpipe.export.qdq_emulate`: what the integer kernels compute when nothing saturates).
``benchmarks/bench_cpu.py`` compares it with the TensorRT-shaped file for accuracy and speed.
The file is for CPU runs only; TensorRT needs the S8S8 one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from segpipe.errors import ConfigError
from segpipe.progress import Reporter
from segpipe.runtime.cpu import CALIBRATION_KEY, CPU_TARGET


def quantize_cpu(
    model: Path,
    calib_images: Path,
    output: Path,
    calib_count: int = 64,
    method: str = "minmax",
    reporter: Reporter | None = None,
) -> Path:
    """Write ``output``: ``model`` (an FP32 ONNX file of ``segpipe export-onnx``) quantized as
    ONNX Runtime advises for CPUs without VNNI (QDQ, U8 asymmetric activations, S8 symmetric
    per-channel weights with ``reduce_range``), input normalisation and head kept in FP32."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from segpipe.export.calibrate import _quiet, batches, image_files, load_images
    from segpipe.export.graph import set_metadata
    from segpipe.export.qdq_graph import (
        check_not_quantized,
        ensure_node_names,
        graph_io,
        head_nodes,
        input_nodes,
    )
    from segpipe.modelinfo import ModelInfo
    from segpipe.utils import atomic_write_bytes

    model, output = Path(model), Path(output)
    if output.resolve() == model.resolve():
        raise ConfigError(f"--output {output}: would overwrite the FP32 model it quantizes")
    proto = onnx.load(str(model))
    check_not_quantized(proto, model)
    info = ModelInfo.from_metadata({p.key: p.value for p in proto.metadata_props}, f"{model}: metadata")
    if info is None:
        raise ConfigError(f"{model}: no segpipe metadata; export it with segpipe export-onnx")
    io_ = graph_io(proto, info, model)
    files = image_files(Path(calib_images), "--calib-images")[:calib_count]
    calib = load_images(files, io_.size, "--calib-images")[0]
    ensure_node_names(proto)
    exclude = input_nodes(proto) + head_nodes(proto)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{io_.name: b} for b, _ in batches(calib, io_.batch, io_.dtype)])

        def get_next(self) -> dict[str, Any] | None:
            return next(self._it, None)

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy}
    if method not in methods:
        raise ConfigError(f"--calib-method {method}: use minmax or entropy")
    import tempfile

    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".quantize-cpu-") as tmp:
        named, cand = Path(tmp) / "fp32.onnx", Path(tmp) / "cpu.onnx"
        onnx.save(proto, str(named))
        with _quiet():
            quantize_static(
                str(named),
                str(cand),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                reduce_range=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=exclude,
                calibrate_method=methods[method],
                extra_options={"ActivationSymmetric": False, "WeightSymmetric": True, "QuantizeBias": False},
            )
        q = onnx.load(str(cand))
    set_metadata(q, info.replace(precision="int8"))
    record = {
        "method": method,
        "quantizer": "onnxruntime quantize_static",
        "images": len(files),
        "source": Path(calib_images).resolve().name,
        "activations": "uint8 asymmetric per-tensor",
        "weights": "int8 symmetric per-channel, 7-bit range (reduce_range)",
        "float_nodes": exclude,
        "target": CPU_TARGET,
    }
    entry = q.metadata_props.add()
    entry.key, entry.value = CALIBRATION_KEY, json.dumps(record)
    atomic_write_bytes(output, q.SerializeToString())
    if reporter is not None:
        reporter.info(f"wrote {output} (INT8 for {CPU_TARGET})")
    return output
