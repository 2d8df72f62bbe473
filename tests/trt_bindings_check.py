"""Run segpipe's TensorRT builder and runner against one version of NVIDIA's real bindings.

Started by ``tests/test_tensorrt_bindings.py`` in a subprocess per TensorRT version (two versions
cannot share a process), with ``SEGPIPE_TRT_BINDINGS`` (the unpacked ``tensorrt-cu12-bindings``
wheel) and ``LD_LIBRARY_PATH`` (the stub libraries) from ``tests/trt_bindings.py``, and optionally
``SEGPIPE_CUDA_PATH`` (a cuda-bindings 12.x folder put first on ``sys.path``).
``python tests/trt_bindings_check.py WORKDIR`` prints one JSON object: per scenario, the calls
segpipe made (as ``[name, [argument reprs]]``), the error it raised (one line) and every mismatch
with the real bindings (see ``tests/trt_strict.py``).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _setup() -> tuple[Any, Any]:
    if os.environ.get("SEGPIPE_CUDA_PATH"):
        sys.path.insert(0, os.environ["SEGPIPE_CUDA_PATH"])
    sys.path.insert(0, os.environ["SEGPIPE_TRT_BINDINGS"])
    sys.path.insert(0, str(HERE))
    import tensorrt_bindings
    from cuda.bindings import runtime as cuda_rt

    return tensorrt_bindings, cuda_rt


REAL, CUDA = _setup()

import numpy as np  # noqa: E402
from trt_helpers import make_seg_onnx  # noqa: E402
from trt_strict import BindingsMismatch, StrictCudaRuntime, StrictTensorRT  # noqa: E402

import segpipe.tensorrt.runner as runner_mod  # noqa: E402
from segpipe.errors import SegpipeError  # noqa: E402
from segpipe.progress import Reporter  # noqa: E402
from segpipe.tensorrt.build import EngineOptions, build_engine  # noqa: E402
from segpipe.tensorrt.sidecar import read_sidecar  # noqa: E402

NO_DRIVER = int(CUDA.cudaSetDevice(0)[0]) != 0  # True on a machine without a CUDA driver/GPU


class Recorder(Reporter):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(f"info: {message}")

    def warn(self, message: str) -> None:
        self.lines.append(f"warn: {message}")


def _arg(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return f"bytes[{len(value)}]"
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return f"{value[0]}={_arg(value[1])}"  # a keyword argument
    text = str(value)
    return text if len(text) < 80 else text[:77] + "..."


def scenario(
    name: str, work: Path, fn, trt_scenario: dict | None = None, cuda: StrictCudaRuntime | None = None
):
    trt = StrictTensorRT(REAL, trt_scenario)
    sys.modules["tensorrt"] = trt  # what segpipe's require("tensorrt") imports
    reporter = Recorder()
    error = None
    extra: dict[str, Any] = {}
    try:
        extra = fn(work, reporter) or {}
    except BindingsMismatch as e:
        error = f"BindingsMismatch: {e}"
    except SegpipeError as e:
        error = f"{type(e).__name__}: {e}"
    except Exception as e:  # anything else is a bug in segpipe or in this check: keep the traceback
        error = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
    finally:
        sys.modules.pop("tensorrt", None)
    return {
        "name": name,
        "calls": [[key, [_arg(a) for a in args]] for key, args in trt.calls],
        "cuda_calls": [[key, [_arg(a) for a in args]] for key, args in (cuda.calls if cuda else [])],
        "error": error,
        "lines": reporter.lines,
        "mismatches": trt.mismatches + (cuda.mismatches if cuda else []),
        "missing": trt.missing,
        "unchecked": sorted(trt.unchecked),
        **extra,
    }


def build(work: Path, reporter: Recorder, **kw: Any) -> dict:
    graph = kw.pop("graph", "fp32")
    onnx_kw = kw.pop("onnx", {})
    onnx = make_seg_onnx(work / f"{graph}.onnx", half=graph == "fp16", int8=graph == "int8", **onnx_kw)
    kw.setdefault("verify", False)
    opts = EngineOptions(onnx=onnx, engine=work / f"{graph}.engine", **kw)
    path = build_engine(opts, reporter)
    side = read_sidecar(path)
    out: dict[str, Any] = {
        "sidecar": {k: side.get(k) for k in ("precision", "fp16_method", "strongly_typed", "profile")},
        "engine_bytes": path.read_bytes().decode(),
    }
    if opts.timing_cache is not None:
        out["timing_cache_bytes"] = opts.timing_cache.read_bytes().decode()
    return out


def build_autocast(work: Path, reporter: Recorder) -> dict:
    """11.x, FP32 graph + --fp16: the AutoCast branch, ModelOpt replaced by an FP16 export of the model."""
    import segpipe.tensorrt.build as build_mod
    import segpipe.tensorrt.precision as precision_mod

    saved = precision_mod.available, build_mod.autocast_fp16
    precision_mod.available = lambda name: True  # "modelopt imports": the decision takes AutoCast
    build_mod.autocast_fp16 = lambda src, out: make_seg_onnx(out, half=True, dims=(1, 32, 64, 3))
    try:
        return build(work, reporter, fp16=True, onnx={"dims": (1, 32, 64, 3)})
    finally:
        precision_mod.available, build_mod.autocast_fp16 = saved


def cli(work: Path, reporter: Recorder) -> dict:
    """``segpipe build-trt`` as a user types it, on an INT8 graph with a dynamic batch axis."""
    import typer
    from typer.testing import CliRunner

    from segpipe.cli.build_trt import build_trt_command

    app = typer.Typer(add_completion=False)
    app.callback()(lambda: None)
    app.command("build-trt")(build_trt_command)
    onnx = make_seg_onnx(work / "m.onnx", int8=True)
    args = ["build-trt", "--onnx", str(onnx), "--int8", "--max-batch", "4", "--no-verify"]
    result = CliRunner().invoke(app, args)
    return {"exit_code": result.exit_code, "output": result.output}


ERRORS = [("head_conv", "Conv", "kernel weights must be initializers"), ("argmax", "ArgMax", "unsupported")]


def parser_scenario() -> dict:
    from trt_strict import StrictObject

    def get_error(i: int) -> Any:
        node, op, desc = ERRORS[i]
        answers = {"node_name": node, "node_operator": op, "desc": desc}
        return StrictObject(sys.modules["tensorrt"], REAL.ParserError, answers)

    return {
        "OnnxParser.parse_from_file": False,
        "OnnxParser.num_errors": len(ERRORS),
        "OnnxParser.get_error": get_error,
    }


def runner_scenario() -> dict:
    dims = REAL.Dims
    shapes = {"input_1": (-1, 32, 64, 3), "output": (-1, 4, 32, 64)}
    set_shapes: dict[str, tuple] = {}

    def set_input_shape(name, shape):
        set_shapes[name] = tuple(shape)
        return True

    def ctx_shape(name):
        n = set_shapes["input_1"][0] if set_shapes else 1
        return dims((n, *shapes[name][1:]))

    return {
        "ICudaEngine.num_io_tensors": 2,
        "ICudaEngine.get_tensor_name": lambda i: ["input_1", "output"][i],
        "ICudaEngine.get_tensor_mode": lambda n: (
            REAL.TensorIOMode.INPUT if n == "input_1" else REAL.TensorIOMode.OUTPUT
        ),
        "ICudaEngine.get_tensor_dtype": lambda n: REAL.DataType.FLOAT,
        "ICudaEngine.get_tensor_shape": lambda n: dims(shapes[n]),
        "ICudaEngine.get_tensor_profile_shape": lambda n, p: [
            dims((1, 32, 64, 3)),
            dims((2, 32, 64, 3)),
            dims((4, 32, 64, 3)),
        ],
        "ICudaEngine.device_memory_size_v2": 1 << 20,
        "ICudaEngine.device_memory_size": 1 << 20,
        "IExecutionContext.set_input_shape": set_input_shape,
        "IExecutionContext.get_tensor_shape": ctx_shape,
    }


CUDA_RUNTIME = runner_mod.cuda_runtime


def run_engine(work: Path, reporter: Recorder, cuda: Any) -> dict:
    from segpipe.modelinfo import ModelInfo

    engine = work / "m.engine"
    engine.write_bytes(b"serialized plan")
    info = ModelInfo(arch="Unet", encoder="tiny", num_classes=4, input_size=(64, 32), layout="NHWC")
    shapes = []
    runner_mod.cuda_runtime = lambda: cuda  # the runner's only way to cuda-python
    try:
        with runner_mod.TensorRTRunner(engine, info=info, reporter=reporter) as runner:
            for n in (1, 3, 6):  # the profile takes 1..4: 6 runs as 4 + 2
                out = runner(np.zeros((n, 32, 64, 3), np.uint8))
                shapes.append(list(out.shape))
            memory = runner.peak_memory_bytes()
    finally:
        runner_mod.cuda_runtime = CUDA_RUNTIME
    return {"output_shapes": shapes, "peak_memory": memory}


class FakeDeviceMemory:
    """Host bytes standing in for device memory behind the strict cuda proxy (CPU only).

    ``cudaMalloc`` hands out keys, ``cudaMemcpyAsync`` copies real host bytes in and out, and the
    engine's ``execute_async_v3`` (a scenario answer) computes the tiny model's logits with numpy:
    enough for ``build_engine``'s verification against ONNX Runtime to run end to end.
    """

    def __init__(self, wrong: bool = False) -> None:
        import ctypes

        self.ctypes = ctypes
        self.mem: dict[int, bytearray] = {}
        self.addrs: dict[str, int] = {}
        self.shape: tuple[int, ...] = (1, 32, 64, 3)
        self.wrong = wrong
        self.next = 0x100000

    def cuda_values(self) -> dict:
        ok = CUDA.cudaError_t.cudaSuccess
        h2d = CUDA.cudaMemcpyKind.cudaMemcpyHostToDevice

        def malloc(size):
            self.next += 0x100000
            self.mem[self.next] = bytearray(int(size))
            return (ok, self.next)

        def memcpy(dst, src, count, kind, stream):
            if kind == h2d:
                self.mem[dst][:count] = self.ctypes.string_at(src, count)
            else:
                self.ctypes.memmove(dst, bytes(self.mem[src][:count]), count)
            return (ok,)

        return {"cudaMalloc": malloc, "cudaMemcpyAsync": memcpy}

    def trt_values(self) -> dict:
        from trt_helpers import reference_logits

        def set_tensor_address(name, ptr):
            self.addrs[name] = ptr
            return True

        def execute(handle):
            n = self.shape[0]
            size = n * 32 * 64 * 3 * 4
            images = np.frombuffer(bytes(self.mem[self.addrs["input_1"]][:size]), np.float32).reshape(
                self.shape
            )
            logits = reference_logits(images).astype(np.float32)
            if self.wrong:
                logits = -logits
            out = self.mem[self.addrs["output"]]
            out[: logits.nbytes] = logits.tobytes()
            return True

        return {
            "IExecutionContext.set_tensor_address": set_tensor_address,
            "IExecutionContext.execute_async_v3": execute,
        }


def build_verified(work: Path, reporter: Recorder, device: FakeDeviceMemory) -> dict:
    """``build_engine`` with verification on: the runner opens the plan and is compared with ONNX Runtime."""
    cuda = StrictCudaRuntime(CUDA, call_real=NO_DRIVER, values=device.cuda_values())
    runner_mod.cuda_runtime = lambda: cuda
    try:
        return build(work, reporter, onnx={"dims": (1, 32, 64, 3)}, verify=True) | {
            "cuda_mismatches": cuda.mismatches
        }
    finally:
        runner_mod.cuda_runtime = CUDA_RUNTIME


def run_engine_on_gpu(work: Path, reporter: Recorder) -> dict:
    """On a machine with a GPU: the runner with the REAL cuda-python (allocations, copies, stream).

    TensorRT is still the strict proxy (no TensorRT libraries), so ``execute_async_v3`` reads the
    input the runner copied to the GPU and fills the output buffer with a known byte pattern; what
    comes back to the host shows the runner's copies, shapes, stream ordering and chunking work.
    """
    from segpipe.modelinfo import ModelInfo
    from segpipe.tensorrt.gpu import gpu_description

    trt = sys.modules["tensorrt"]
    addrs: dict[str, int] = {}
    state = {"n": 0, "start": 0, "sent": np.zeros((0, 32, 64, 3), np.float32)}
    seen_inputs: list[bool] = []
    d2h = CUDA.cudaMemcpyKind.cudaMemcpyDeviceToHost
    set_shape = trt.scenario["IExecutionContext.set_input_shape"]

    def set_input_shape(name, shape):
        state["n"] = shape[0]
        return set_shape(name, shape)

    def set_tensor_address(name, ptr):
        addrs[name] = ptr
        return True

    def execute(handle):
        n, start = state["n"], state["start"]
        host = np.empty((n, 32, 64, 3), np.float32)
        assert int(CUDA.cudaMemcpy(host.ctypes.data, addrs["input_1"], host.nbytes, d2h)[0]) == 0
        want = state["sent"][start : start + n]
        seen_inputs.append(bool(np.array_equal(host[: len(want)], want)))
        assert int(CUDA.cudaMemset(addrs["output"], 0x40, n * 4 * 32 * 64 * 4)[0]) == 0
        state["start"] = start + n
        return True

    trt.scenario.update(
        {
            "IExecutionContext.set_input_shape": set_input_shape,
            "IExecutionContext.set_tensor_address": set_tensor_address,
            "IExecutionContext.execute_async_v3": execute,
        }
    )
    engine = work / "m.engine"
    engine.write_bytes(b"serialized plan")
    info = ModelInfo(arch="Unet", encoder="tiny", num_classes=4, input_size=(64, 32), layout="NHWC")
    rng = np.random.default_rng(0)
    pattern = np.frombuffer(b"\x40" * 4, np.float32)[0]
    outputs_ok = []
    with runner_mod.TensorRTRunner(engine, info=info, reporter=reporter) as runner:
        for n in (1, 3, 6):
            batch = rng.integers(0, 256, (n, 32, 64, 3)).astype(np.uint8)
            state.update(sent=batch.astype(np.float32), start=0)
            out = runner(batch)
            outputs_ok.append(bool(out.shape == (n, 4, 32, 64) and np.all(out == pattern)))
    return {"inputs_on_gpu_ok": seen_inputs, "outputs_ok": outputs_ok, "gpu": list(gpu_description())}


def self_check(work: Path, reporter: Recorder) -> dict:
    """Wrong calls the strict proxies must refuse: proof that the check bites."""
    trt = sys.modules["tensorrt"]
    from segpipe.tensorrt.log import build_logger

    logger = build_logger(trt, reporter, False)
    builder = trt.Builder(logger)
    network = builder.create_network()
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    cache = config.create_timing_cache(b"")
    cuda = StrictCudaRuntime(CUDA, call_real=NO_DRIVER)
    stream = cuda.cudaStreamCreate()[1]
    attempts = {
        "unknown module attribute": lambda: trt.NotATensorRTName,
        "unknown method": lambda: builder.build_engine_with_magic(network, config),
        "flags as str": lambda: builder.create_network("1"),
        "path object for str": lambda: trt.OnnxParser(network, logger).parse_from_file(work),
        "float for int": lambda: config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1.5),
        "int for enum": lambda: config.set_memory_pool_limit(0, 1 << 20),
        "wrong keyword": lambda: config.set_timing_cache(cache, ignore=False),
        "too many arguments": lambda: config.set_timing_cache(cache, False, True),
        "missing argument": lambda: profile.set_shape("input_1", (1, 2), (1, 2)),
        "str for Dims": lambda: profile.set_shape("input_1", "1x2", (1, 2), (1, 2)),
        "str for property": lambda: setattr(config, "builder_optimization_level", "3"),
        "read-only property": lambda: setattr(builder, "platform_has_tf32", True),
        "str for buffer": lambda: config.create_timing_cache("cache"),
        "cuda: missing argument": lambda: cuda.cudaMemcpyAsync(1, 2, 3),
        "cuda: str for cudaMemcpyKind": lambda: cuda.cudaMemcpyAsync(1, 2, 3, "kind", stream),
    }
    if int(REAL.__version__.split(".")[0]) >= 11:
        attempts["BuilderFlag.FP16 on 11.x"] = lambda: trt.BuilderFlag.FP16
    caught = {}
    for label, attempt in attempts.items():
        try:
            attempt()
            caught[label] = False
        except (BindingsMismatch, AttributeError):
            caught[label] = True
        except TypeError as e:  # e.g. a real pybind11 object refusing the value
            caught[label] = f"TypeError: {e}"
    trt.mismatches.clear()  # these were deliberate
    trt.missing.clear()
    return {"caught": caught}


def main() -> None:
    work = Path(sys.argv[1])
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = []

    def add(name: str, fn, trt_scenario: dict | None = None, cuda=None) -> None:
        sub = work / name
        sub.mkdir(exist_ok=True)
        results.append(scenario(name, sub, fn, trt_scenario, cuda))

    add("self-check", self_check)
    add("fp32", lambda w, r: build(w, r, shapes="input_1:1x32x64x3"))
    add("fp32+fp16", lambda w, r: build(w, r, fp16=True, onnx={"dims": (1, 32, 64, 3)}))
    add("fp16-graph", lambda w, r: build(w, r, graph="fp16", fp16=True, onnx={"dims": (1, 32, 64, 3)}))
    if int(REAL.__version__.split(".")[0]) >= 11:
        add("fp32+fp16-autocast", build_autocast)
    add(
        "int8-graph",
        lambda w, r: build(w, r, graph="int8", int8=True, fp16=True, onnx={"dims": (1, 32, 64, 3)}),
    )
    add("int8-flag-fp32-graph", lambda w, r: build(w, r, int8=True, onnx={"dims": (1, 32, 64, 3)}))
    add(
        "dynamic+workspace+verbose+opt-level",
        lambda w, r: build(w, r, workspace_mib=512, verbose=True, opt_level=5, batch=2, max_batch=4),
    )
    cache_file = work / "timing.cache"
    add(
        "timing-cache-new",
        lambda w, r: build(w, r, timing_cache=cache_file, onnx={"dims": (1, 32, 64, 3)}),
        {"IHostMemory.bytes": b"CACHE-1"},
    )
    add(
        "timing-cache-reuse",
        lambda w, r: build(w, r, timing_cache=cache_file, onnx={"dims": (1, 32, 64, 3)}),
        {"IHostMemory.bytes": b"CACHE-2"},
    )
    add(
        "timing-cache-rejected",
        lambda w, r: build(w, r, timing_cache=cache_file, onnx={"dims": (1, 32, 64, 3)}),
        {"IBuilderConfig.set_timing_cache": False},
    )
    add("parser-errors", lambda w, r: build(w, r, onnx={"dims": (1, 32, 64, 3)}), parser_scenario())
    add(
        "build-fails",
        lambda w, r: build(w, r, onnx={"dims": (1, 32, 64, 3)}),
        {"Builder.build_serialized_network": None},
    )
    add(
        "no-cuda-builder",
        lambda w, r: build(w, r, onnx={"dims": (1, 32, 64, 3)}),
        {"Builder": TypeError("pybind11::init(): factory function returned nullptr")},
    )

    add("cli", cli)
    static = {"input_1": (1, 32, 64, 3), "output": (1, 4, 32, 64)}  # the engine of a static ONNX
    for name, wrong in (("verified", False), ("verification-fails", True)):
        device = FakeDeviceMemory(wrong)
        scen = runner_scenario() | {"ICudaEngine.get_tensor_shape": lambda n: REAL.Dims(static[n])}
        add(name, lambda w, r, d=device: build_verified(w, r, d), scen | device.trt_values())
    cuda = StrictCudaRuntime(CUDA, call_real=NO_DRIVER)
    add("runner", lambda w, r: run_engine(w, r, cuda), runner_scenario(), cuda)
    cudart_version = None
    try:
        from cuda import cudart  # the fallback for cuda-python < 12.6.1 (gone in 13.x)

        cudart_version = "cuda.cudart"
        legacy = StrictCudaRuntime(cudart, call_real=NO_DRIVER)
        add("runner-cudart", lambda w, r: run_engine(w, r, legacy), runner_scenario(), legacy)
    except ImportError:
        pass
    if NO_DRIVER:  # the real cuda-python on a machine without a driver: one clear line
        add("runner-no-driver", lambda w, r: run_engine(w, r, CUDA), runner_scenario())
    else:  # a GPU: the runner's real cuda-python calls
        add("runner-real-cuda", run_engine_on_gpu, runner_scenario())
    import cuda.bindings

    chosen = CUDA_RUNTIME()
    print(
        json.dumps(
            {
                "tensorrt": REAL.__version__,
                "cuda_bindings": cuda.bindings.__version__,
                "cudart_fallback": cudart_version,
                "runner_cuda_module": chosen.__name__,
                "no_driver": NO_DRIVER,
                "seconds": round(time.perf_counter() - started, 2),
                "scenarios": results,
            }
        )
    )


if __name__ == "__main__":
    main()
