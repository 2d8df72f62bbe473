"""Everything TensorRT: ``segpipe build-trt`` (ONNX -> engine) and the engine runner, 10.x and 11.x.

Modules, each importing only those above it (no cycle; none imports tensorrt or cuda-python at
module level, so the package imports without them):

* :mod:`~segpipe.tensorrt.shapes`: trtexec-style shape strings, the optimisation profile.
* :mod:`~segpipe.tensorrt.sidecar`: the ``NAME.engine.json`` sidecar.
* :mod:`~segpipe.tensorrt.gpu`: cuda-python (runtime module, error codes, the GPU's name).
* :mod:`~segpipe.tensorrt.log`: the TensorRT logger and ONNX parser errors as one line.
* :mod:`~segpipe.tensorrt.precision`: FP32 / FP16 / INT8 (Q/DQ) decisions per TensorRT major.
* :mod:`~segpipe.tensorrt.runner`: :class:`TensorRTRunner` (registered by suffix in
  ``segpipe.runtime.base.RUNNERS``) and the cuda-python helpers.
* :mod:`~segpipe.tensorrt.verify`: the built engine against ONNX Runtime.
* :mod:`~segpipe.tensorrt.build`: :class:`EngineOptions`, :func:`build_engine` (Python API).
* :mod:`~segpipe.tensorrt.trtexec`: the equivalent trtexec command line, ``--use-trtexec``.

The public names below are re-exported lazily (PEP 562), so ``import segpipe.tensorrt.shapes``
does not pull in the builder.
"""

from __future__ import annotations

from segpipe._optional import lazy_exports

_EXPORTS = {
    "EngineOptions": "build",
    "OnnxSummary": "build",
    "build_engine": "build",
    "engine_summary": "build",
    "inspect_onnx": "build",
    "trt_major_version": "build",
    "Fp16Plan": "precision",
    "PrecisionDecision": "precision",
    "decide_precision": "precision",
    "is_int8_graph": "precision",
    "graph_precision": "precision",
    "ProfileShape": "shapes",
    "TensorSpec": "shapes",
    "format_shapes": "shapes",
    "parse_shapes": "shapes",
    "engine_sidecar": "sidecar",
    "gpu_description": "gpu",
    "read_sidecar": "sidecar",
    "sidecar_model_info": "sidecar",
    "sidecar_path": "sidecar",
    "write_sidecar": "sidecar",
    "TensorRTRunner": "runner",
    "TrtexecCommand": "trtexec",
    "run_trtexec": "trtexec",
    "trtexec_command": "trtexec",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
