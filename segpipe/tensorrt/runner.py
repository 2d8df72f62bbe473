"""TensorRT runner: runs a serialized engine (``.engine/.plan/.trt/.bin``) on a CUDA GPU.

One execution context, one CUDA stream and one device buffer per I/O tensor (grown when a larger
shape arrives), allocated with cuda-python's runtime API. Per call: ``set_input_shape`` for dynamic
inputs, ``set_tensor_address`` for every tensor, host-to-device copies, ``execute_async_v3`` on the
stream, device-to-host copies, stream synchronise. :attr:`TensorRTRunner.info` comes from the
sidecar ``NAME.engine.json`` that ``segpipe build-trt`` writes (or from the engine's tensor shapes
when there is none); a TensorRT version or GPU different from the ones that built the engine is
reported in :attr:`TensorRTRunner.warnings` (and to the reporter).

This module imports without tensorrt or cuda-python; opening an engine without them raises a
one-line :class:`~segpipe.errors.DependencyError`.

Sources:

* TensorRT 10.x/11.x Python API: ``trt.Runtime(logger).deserialize_cuda_engine(bytes)`` (``None``
  on failure), ``engine.num_io_tensors``, ``get_tensor_name(i)``, ``get_tensor_mode(name)`` vs
  ``trt.TensorIOMode.INPUT``, ``get_tensor_dtype``, ``get_tensor_shape``,
  ``get_tensor_profile_shape(name, profile)`` -> [min, opt, max], ``trt.nptype``,
  ``engine.create_execution_context()``, ``context.set_input_shape``, ``context.get_tensor_shape``,
  ``context.set_tensor_address``, ``context.execute_async_v3(stream_handle: int)``,
  ``engine.device_memory_size_v2`` (10.1+; ``device_memory_size`` on 10.0, removed in 11.x)
  (https://docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/Engine.html).
* NVIDIA's ``samples/python/common_runtime.py`` (NVIDIA/TensorRT, 10.x): the same buffer / copy /
  ``execute_async_v3`` / synchronise sequence with cuda-python.
* cuda-python: see :mod:`segpipe.tensorrt.gpu` (``cudaStreamCreate() -> (err, cudaStream_t)``,
  ``cudaMalloc(size) -> (err, devPtr)``, ``cudaMemcpyAsync(dst, src, count, cudaMemcpyKind, stream)``,
  ``cudaStreamSynchronize``, ``cudaFree``, ``cudaStreamDestroy``, ``cudaSetDevice``).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from segpipe._optional import require
from segpipe.errors import CheckpointError, ConfigError, SegpipeError
from segpipe.modelinfo import ModelInfo
from segpipe.progress import Reporter
from segpipe.runtime.base import Runner
from segpipe.runtime.feed import FOREIGN

__all__ = ["NO_GPU_ERRORS", "TensorRTRunner", "cuda_check", "cuda_runtime", "native_handle", "split_batch"]
from segpipe.tensorrt.gpu import NO_GPU_ERRORS, cuda_check, cuda_runtime, gpu_description, native_handle
from segpipe.tensorrt.sidecar import (
    minimal_model_info,
    read_sidecar,
    sidecar_model_info,
    sidecar_path,
)


def split_batch(n: int, n_min: int, n_max: int) -> list[tuple[int, int, int]]:
    """How to run ``n`` images on an engine taking batches of ``n_min``..``n_max``.

    Returns ``(start, stop, pad)`` chunks: at most ``n_max`` images each; a chunk smaller than
    ``n_min`` is padded with ``pad`` copies of its last image (dropped from the result).
    """
    n_max = max(int(n_max), 1)
    n_min = min(max(int(n_min), 1), n_max)
    chunks = []
    for start in range(0, n, n_max):
        stop = min(start + n_max, n)
        chunks.append((start, stop, max(n_min - (stop - start), 0)))
    return chunks


_RUNTIME_LOGGERS: dict[int, Any] = {}


def _runtime_logger(trt: ModuleType) -> Any:
    """One ``trt.Logger`` per process, kept alive as long as any runtime may use it."""
    logger = _RUNTIME_LOGGERS.get(id(trt))
    if logger is None:
        logger = _RUNTIME_LOGGERS[id(trt)] = trt.Logger(trt.Logger.WARNING)
    return logger


def _device_index(device: str, path: Path) -> int:
    spec = (device or "auto").strip().lower()
    if spec in ("auto", "cuda", "gpu"):
        return 0
    if spec.startswith("cuda:") and spec[5:].isdigit():
        return int(spec[5:])
    raise ConfigError(
        f"--device {device!r}: TensorRT engine {path} runs on a CUDA GPU (auto, cuda or cuda:N)"
    )


class TensorRTRunner(Runner):
    """Runs a TensorRT engine; see the module docstring. Use as a context manager."""

    backend = "tensorrt"

    def __init__(self, path: str | Path, device: str = "auto", **kwargs: Any) -> None:
        super().__init__(path, device, **kwargs)
        opts = self.options.drop(tuple(FOREIGN), self.path, "is a TensorRT engine")
        if opts.foreign():
            raise CheckpointError(
                f"{'/'.join(opts.foreign())}: {self.path} is a TensorRT engine, which takes its input as "
                "the ONNX model it was built from did; these flags describe an ONNX model without segpipe "
                "metadata"
            )
        info = opts.info
        self.warnings: list[str] = []
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, capacity in bytes)
        self._stream: Any = None
        self._context: Any = None
        self._engine: Any = None
        self._runtime: Any = None
        self._closed = False
        reporter = opts.reporter or Reporter()
        index = _device_index(device, self.path)
        self.sidecar = read_sidecar(self.path) or {}
        trt = require("tensorrt", f"running the TensorRT engine {self.path}")
        self._trt = trt
        self._cudart = cudart = cuda_runtime()
        if not self.path.is_file():
            raise CheckpointError(f"TensorRT engine {self.path} does not exist")
        cuda_check(cudart, cudart.cudaSetDevice(index), f"cudaSetDevice({index}) for {self.path}")
        self._check_versions(str(trt.__version__), reporter)
        self._runtime = trt.Runtime(_runtime_logger(trt))
        self._engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self._engine is None:
            built = self.sidecar.get("tensorrt_version", "an unknown version")
            raise CheckpointError(
                f"TensorRT {trt.__version__} cannot deserialize {self.path} (built with TensorRT {built}; "
                "an engine only loads on the TensorRT version and GPU model that built it: rebuild it)"
            )
        self._context = self._engine.create_execution_context()
        self._stream = cuda_check(cudart, cudart.cudaStreamCreate(), "cudaStreamCreate")
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        is_input = {n: self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self._inputs = [n for n in names if is_input[n]]
        self._outputs = [n for n in names if not is_input[n]]
        if len(self._inputs) != 1 or not self._outputs:
            raise CheckpointError(
                f"{self.path}: expected one image input and at least one output, found inputs "
                f"{self._inputs} and outputs {self._outputs}"
            )
        self._input = self._inputs[0]
        self._output = "output" if "output" in self._outputs else self._outputs[0]
        self._dtypes = {n: self._numpy_dtype(trt, n) for n in names}
        self.info = (
            info or sidecar_model_info(self.sidecar, sidecar_path(self.path)) or self._guess_info(reporter)
        )
        lo, hi = self.input_range()
        if len(lo) == 4 and lo[1:3] == hi[1:3]:  # NHWC: H and W fixed by the profile
            self.fixed_size = (int(lo[2]), int(lo[1]))

    def _numpy_dtype(self, trt: ModuleType, name: str) -> np.dtype:
        """numpy dtype of an I/O tensor; one-line error for types numpy lacks (BF16, FP8, INT4...)."""
        trt_type = self._engine.get_tensor_dtype(name)
        try:
            return np.dtype(trt.nptype(trt_type))
        except TypeError as e:  # trt.nptype raises TypeError for types without a numpy equivalent
            raise CheckpointError(
                f"{self.path}: I/O tensor {name!r} has TensorRT type {trt_type}, which has no numpy "
                "equivalent; segpipe engines take float32/uint8 images and return float32/int64 outputs"
            ) from e

    # ---- information -------------------------------------------------------------------------
    def _check_versions(self, trt_version: str, reporter: Reporter) -> None:
        """Warn when this TensorRT version or GPU differ from the ones that built the engine."""
        built_trt = self.sidecar.get("tensorrt_version")
        if built_trt and str(built_trt) != trt_version:
            self._warn(
                f"{self.path} was built with TensorRT {built_trt}, this is TensorRT {trt_version}", reporter
            )
        built_gpu = self.sidecar.get("gpu_name")
        if built_gpu and built_gpu != "unknown":
            gpu = gpu_description()[0]
            if gpu != "unknown" and gpu != built_gpu:
                self._warn(f"{self.path} was built on a {built_gpu}, this GPU is a {gpu}", reporter)

    def _warn(self, message: str, reporter: Reporter) -> None:
        self.warnings.append(message)
        reporter.warn(message + " (rebuild the engine if it fails or runs slowly)")

    def _guess_info(self, reporter: Reporter) -> ModelInfo:
        shape = (
            tuple(int(d) for d in self._engine.get_tensor_profile_shape(self._input, 0)[1])
            if any(d < 0 for d in self._engine.get_tensor_shape(self._input))
            else tuple(int(d) for d in self._engine.get_tensor_shape(self._input))
        )
        out = tuple(max(int(d), 1) for d in self._engine.get_tensor_shape(self._output))
        self._warn(
            f"{self.path}: no sidecar {sidecar_path(self.path).name}; class names and colours unknown",
            reporter,
        )
        return minimal_model_info(shape, self._dtypes[self._input].name, out)

    def input_range(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(min, max) input shapes the engine's profile 0 accepts."""
        static = tuple(int(d) for d in self._engine.get_tensor_shape(self._input))
        if all(d >= 0 for d in static):
            return static, static
        lo, _opt, hi = self._engine.get_tensor_profile_shape(self._input, 0)
        return tuple(int(d) for d in lo), tuple(int(d) for d in hi)

    def peak_memory_bytes(self) -> int | None:
        """I/O buffers plus the engine's activation memory, where the engine reports it."""
        activations = getattr(self._engine, "device_memory_size_v2", None)  # 10.1 and later
        if activations is None:
            activations = getattr(self._engine, "device_memory_size", None)  # 10.0 (gone in 11.x)
        if activations is None:
            return None
        return int(activations) + sum(cap for _ptr, cap in self._buffers.values())

    # ---- inference ---------------------------------------------------------------------------
    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Run a batch N×H×W×3 (uint8 or float32 0-255) and return the engine's ``output``.

        H, W and C must lie in the engine's profile; any N works: a batch larger than the
        profile's maximum is run in chunks, a smaller one than its minimum is padded by repeating
        the last image (the padding is dropped from the result).
        """
        if self._closed:
            raise SegpipeError(f"TensorRT runner for {self.path} is closed")
        batch = np.asarray(images)
        lo, hi = self.input_range()
        if batch.ndim != len(lo) or any(
            not a <= b <= c for a, b, c in zip(lo[1:], batch.shape[1:], hi[1:], strict=True)
        ):
            raise ConfigError(
                f"{self.path}: input batch of shape {'x'.join(map(str, batch.shape))} is outside the "
                f"engine's profile ({'x'.join(map(str, lo))} to {'x'.join(map(str, hi))}); "
                "rebuild with --min-shapes/--max-shapes to accept it"
            )
        if batch.shape[0] == 0:
            raise ConfigError(f"{self.path}: empty input batch")
        results = []
        for start, stop, pad in split_batch(batch.shape[0], lo[0], hi[0]):
            chunk = batch[start:stop]
            if pad:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
            out = self._run(chunk)
            results.append(out[: stop - start])
        return results[0] if len(results) == 1 else np.concatenate(results)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        """One execution for a batch that fits the profile exactly."""
        batch = np.ascontiguousarray(batch.astype(self._dtypes[self._input], copy=False))
        cudart, ctx = self._cudart, self._context
        dynamic = any(int(d) < 0 for d in self._engine.get_tensor_shape(self._input))
        if dynamic and not ctx.set_input_shape(self._input, batch.shape):
            raise ConfigError(f"{self.path}: TensorRT refused input shape {batch.shape} for {self._input}")
        host_out = {}
        for name in self._outputs:
            shape = tuple(int(d) for d in ctx.get_tensor_shape(name))
            host_out[name] = np.empty(shape, dtype=self._dtypes[name])
        for name, nbytes in [(self._input, batch.nbytes)] + [(n, a.nbytes) for n, a in host_out.items()]:
            ctx.set_tensor_address(name, self._buffer(name, nbytes))
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        stream = self._stream
        cuda_check(
            cudart,
            cudart.cudaMemcpyAsync(
                self._buffers[self._input][0], batch.ctypes.data, batch.nbytes, h2d, stream
            ),
            "copy of the input to the GPU",
        )
        if not ctx.execute_async_v3(native_handle(stream)):
            raise SegpipeError(f"TensorRT execute_async_v3 failed for {self.path}")
        for name, arr in host_out.items():
            cuda_check(
                cudart,
                cudart.cudaMemcpyAsync(arr.ctypes.data, self._buffers[name][0], arr.nbytes, d2h, stream),
                f"copy of {name} from the GPU",
            )
        cuda_check(cudart, cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize")
        return host_out[self._output]

    def _buffer(self, name: str, nbytes: int) -> int:
        """Device pointer of ``name``'s buffer, (re)allocated when ``nbytes`` exceeds its capacity."""
        ptr, cap = self._buffers.get(name, (0, 0))
        if nbytes > cap:
            if ptr:
                cuda_check(self._cudart, self._cudart.cudaFree(ptr), "cudaFree")
            ptr = int(
                cuda_check(self._cudart, self._cudart.cudaMalloc(max(nbytes, 1)), f"cudaMalloc for {name}")
            )
            self._buffers[name] = (ptr, max(nbytes, 1))
        return ptr

    def close(self) -> None:
        """Free device buffers, the stream, the context and the engine; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        cudart = getattr(self, "_cudart", None)
        if cudart is not None:
            for ptr, _cap in self._buffers.values():
                cudart.cudaFree(ptr)
            if self._stream is not None:
                cudart.cudaStreamDestroy(self._stream)
        self._buffers.clear()
        self._stream = None
        self._context = None  # TensorRT 10+ frees objects when their last reference goes
        self._engine = None
        self._runtime = None

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter shutdown
        try:
            self.close()
        except Exception:
            pass
