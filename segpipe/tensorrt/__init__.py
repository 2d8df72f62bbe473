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

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "build": (
            "EngineOptions",
            "OnnxSummary",
            "build_engine",
            "engine_summary",
            "inspect_onnx",
            "trt_major_version",
        ),
        "precision": (
            "Fp16Plan",
            "PrecisionDecision",
            "decide_precision",
            "is_int8_graph",
            "graph_precision",
        ),
        "shapes": ("ProfileShape", "TensorSpec", "format_shapes", "parse_shapes"),
        "sidecar": ("engine_sidecar", "read_sidecar", "sidecar_model_info", "sidecar_path", "write_sidecar"),
        "gpu": ("gpu_description",),
        "runner": ("TensorRTRunner",),
        "trtexec": ("TrtexecCommand", "run_trtexec", "trtexec_command"),
    },
)
