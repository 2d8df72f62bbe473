"""cuda-python for segpipe's TensorRT code: the runtime module, error codes as one line, the GPU.

* ``cuda.bindings.runtime`` since cuda-python 12.6.1 ("``cuda.cudart`` -> ``cuda.bindings.runtime``",
  https://nvidia.github.io/cuda-python/cuda-bindings/latest/release/12.6.1-notes.html); the old
  ``cuda.cudart`` module is the fallback (deprecated in 12.x, removed in cuda-bindings 13.0.0,
  .../release/13.0.0-notes.html). Every call returns ``(cudaError_t, *results)``.
* ``cuda.bindings.utils.get_cuda_native_handle`` replaces ``int(cuda_obj)`` (deprecated since
  cuda-bindings 12.9.1 / 13.0.0, release notes above).
* Without a driver or GPU every call returns ``cudaErrorInsufficientDriver`` /
  ``cudaErrorNoDevice``; :func:`cuda_check` turns that into "no CUDA driver/GPU".

Nothing here imports cuda-python at module level.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from segpipe.errors import DependencyError, SegpipeError


def cuda_runtime() -> ModuleType:
    """cuda-python's runtime module (``cuda.bindings.runtime``, or the older ``cuda.cudart``)."""
    try:
        from cuda.bindings import runtime  # cuda-python >= 12.6

        return runtime
    except ImportError:
        pass
    try:
        from cuda import cudart  # cuda-python < 12.6

        return cudart
    except ImportError as e:
        raise DependencyError(
            "python package 'cuda-python' is not installed (needed to run TensorRT engines): "
            'pip install "segpipe[trt]"'
        ) from e


def native_handle(obj: Any) -> int:
    """The address behind a cuda-python object (e.g. a ``cudaStream_t``) as a plain int.

    ``cuda.bindings.utils.get_cuda_native_handle`` on cuda-bindings >= 12.9.1, where ``int(obj)`` is
    deprecated; ``int(obj)`` on older releases (and for values that already are ints).
    """
    if isinstance(obj, int):
        return obj
    try:
        from cuda.bindings.utils import get_cuda_native_handle
    except ImportError:
        return int(obj)
    return int(get_cuda_native_handle(obj))


#: cuda-python error names that mean "no usable driver or GPU" (what a CPU-only machine reports).
NO_GPU_ERRORS = ("cudaErrorInsufficientDriver", "cudaErrorNoDevice", "cudaErrorDevicesUnavailable")


def cuda_check(cudart: ModuleType, result: Any, what: str) -> Any:
    """Unpack a cuda-python ``(err, *values)`` result; one-line SegpipeError unless ``cudaSuccess``.

    Returns ``None``, the single value, or a tuple of values.
    """
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        try:
            name = cudart.cudaGetErrorName(err)[1].decode()
            text = cudart.cudaGetErrorString(err)[1].decode()
        except Exception:  # an unknown code: show the number
            name, text = f"error {int(err)}", ""
        if name in NO_GPU_ERRORS:
            raise SegpipeError(f"CUDA {what} failed: no CUDA driver/GPU ({name}: {text})")
        raise SegpipeError(f"CUDA {what} failed: {name}{': ' + text if text else ''}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def gpu_description(device: int = 0) -> tuple[str, str]:
    """(GPU name, compute capability ``"8.6"``) of CUDA device ``device``, or ``("unknown", "unknown")``.

    Read with cuda-python's ``cudaGetDeviceProperties`` (``name``, ``major``, ``minor``), which the
    TensorRT runner needs anyway; no torch import (that alone takes seconds).
    """
    try:
        err, prop = cuda_runtime().cudaGetDeviceProperties(device)
        if int(err) == 0:
            raw = prop.name
            name = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
            return name.strip("\x00 ") or "unknown", f"{int(prop.major)}.{int(prop.minor)}"
    except Exception:  # no cuda-python, no driver: the sidecar just says unknown
        pass
    return "unknown", "unknown"
