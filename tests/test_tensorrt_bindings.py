"""segpipe's TensorRT builder and runner against NVIDIA's real compiled bindings, on CPU.

For each TensorRT version in :data:`trt_bindings.TENSORRT_VERSIONS` (oldest 10.x, 10.3 as on
JetPack 6, newest 10.x, 11.0, newest 11.x) a subprocess imports the real ``tensorrt_bindings``
module (with stub libraries, see ``tests/trt_bindings.py``) and drives ``build_engine``, the
``build-trt`` command, the post-build verification and ``TensorRTRunner`` through the strict proxy
of ``tests/trt_strict.py``:
every attribute, enum member, call signature (count, keyword names, types) and property must be
that version's. cuda-python is checked the same way: 13.x (installed) in every run, 12.x (with
its ``cuda.cudart`` module, the runner's fallback) beside TensorRT 10.3.

What this cannot check: behaviour on a GPU (what the builder makes of the network, numerics,
kernels); ``tests/test_tensorrt_gpu.py`` does that where a GPU and TensorRT are installed.

The wheels (about 1.2 MB each) are downloaded once and cached with the compiled stubs (see
``trt_bindings.cache_dir``). Without a C compiler or the package index the tests skip with the
reason, unless ``SEGPIPE_REQUIRE_TRT_BINDINGS=1`` (set by ``.ci/run``), which makes that a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from trt_bindings import (  # noqa: E402
    CUDA12_VERSION,
    TENSORRT_VERSIONS,
    Unavailable,
    prepare_cuda,
    prepare_tensorrt,
)

HERE = Path(__file__).resolve().parent
RUNS = [(v, None) for v in TENSORRT_VERSIONS] + [("10.3.0", CUDA12_VERSION)]
#: Names segpipe probes with ``getattr(obj, name, None)`` and handles when absent.
PROBED = {"10.0.1": {"tensorrt 10.0.1 ICudaEngine has no attribute 'device_memory_size_v2'"}}


def _prepare(version: str, cuda: str | None) -> dict[str, str]:
    try:
        env = prepare_tensorrt(version)
        if cuda:
            env["SEGPIPE_CUDA_PATH"] = prepare_cuda(cuda)
    except Unavailable as e:
        if os.environ.get("SEGPIPE_REQUIRE_TRT_BINDINGS") == "1":
            pytest.fail(f"{e} (SEGPIPE_REQUIRE_TRT_BINDINGS=1: the real-bindings check must run)")
        pytest.skip(str(e))
    return env


def _run(version: str, cuda: str | None, work: Path) -> dict:
    env = {**os.environ, **_prepare(version, cuda), "OMP_NUM_THREADS": "1"}
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (env["LD_LIBRARY_PATH"], os.environ.get("LD_LIBRARY_PATH")) if p
    )
    proc = subprocess.run(
        [sys.executable, str(HERE / "trt_bindings_check.py"), str(work)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _calls(scenario: dict) -> list[str]:
    return [f"{name}({', '.join(args)})" for name, args in scenario["calls"]]


@pytest.mark.parametrize(
    ("version", "cuda"), RUNS, ids=[f"trt{v}" + (f"-cuda{c}" if c else "") for v, c in RUNS]
)
def test_builder_and_runner_against_real_bindings(version, cuda, tmp_path):
    result = _run(version, cuda, tmp_path)
    major = int(version.split(".")[0])
    assert result["tensorrt"] == version
    assert result["cuda_bindings"].split(".")[0] == (cuda.split(".")[0] if cuda else "13")
    assert result["runner_cuda_module"] == "cuda.bindings.runtime"
    runs = {s["name"]: s for s in result["scenarios"]}
    caught = runs["self-check"]["caught"]  # the proxies refuse wrong names, counts, keywords and types
    assert caught and all(v is True for v in caught.values()), caught
    assert ("BuilderFlag.FP16 on 11.x" in caught) == (major >= 11)
    for s in runs.values():  # nothing segpipe did is missing from, or mismatched with, the real bindings
        assert s["mismatches"] == [], (s["name"], s["mismatches"])
        assert set(s["missing"]) <= PROBED.get(version, set()), (s["name"], s["missing"])
        assert "Traceback" not in (s["error"] or ""), s["error"]

    fp32 = runs["fp32"]
    assert fp32["error"] is None and "Builder.create_network()" in _calls(fp32)
    assert not any(c.startswith("IBuilderConfig.set_flag") for c in _calls(fp32))
    assert fp32["sidecar"]["precision"] == "fp32" and fp32["engine_bytes"] == "PLAN"
    assert fp32["sidecar"]["strongly_typed"] is (major >= 11)

    fp16_flag = runs["fp32+fp16"]
    if major == 10:  # weak typing: the FP16 builder flag, no STRONGLY_TYPED
        assert fp16_flag["error"] is None
        assert "IBuilderConfig.set_flag(BuilderFlag.FP16)" in _calls(fp16_flag)
        assert "Builder.create_network()" in _calls(fp16_flag)
        assert fp16_flag["sidecar"]["fp16_method"] == "builder-flag"
    else:  # no FP16 flag on 11.x; without ModelOpt: one line, before any TensorRT call
        assert "segpipe export-onnx --half" in fp16_flag["error"] and fp16_flag["calls"] == []
        autocast = runs["fp32+fp16-autocast"]  # with ModelOpt: the converted graph, built as typed
        assert autocast["error"] is None and "Builder.create_network()" in _calls(autocast)
        assert not any(c.startswith("IBuilderConfig.set_flag") for c in _calls(autocast))
        assert autocast["sidecar"]["fp16_method"] == "autocast" and autocast["sidecar"]["precision"] == "fp16"

    strongly_typed = "Builder.create_network(2)" if major == 10 else "Builder.create_network()"  # 1 << 1
    for name, precision in (("fp16-graph", "fp16"), ("int8-graph", "int8")):
        s = runs[name]
        assert s["error"] is None, s["error"]
        assert strongly_typed in _calls(s)
        assert not any(c.startswith("IBuilderConfig.set_flag") for c in _calls(s)), name  # never with typing
        assert s["sidecar"]["precision"] == precision and s["sidecar"]["strongly_typed"] is True
    assert any("--fp16 dropped" in line for line in runs["int8-graph"]["lines"])
    refused = runs["int8-flag-fp32-graph"]
    assert "segpipe export-onnx --int8 --calib-images DIR" in refused["error"] and refused["calls"] == []

    dyn = _calls(runs["dynamic+workspace+verbose+opt-level"])
    assert "IBuilderConfig.set_memory_pool_limit(MemoryPoolType.WORKSPACE, 536870912)" in dyn
    assert "IBuilderConfig.builder_optimization_level =(5)" in dyn
    assert "IBuilderConfig.profiling_verbosity =(ProfilingVerbosity.DETAILED)" in dyn
    assert "IOptimizationProfile.set_shape(input_1, (1, 32, 64, 3), (2, 32, 64, 3), (4, 32, 64, 3))" in dyn
    assert "IBuilderConfig.add_optimization_profile(<strict IOptimizationProfile>)" in dyn
    assert any(
        "batch min 1, opt 2, max 4" in line for line in runs["dynamic+workspace+verbose+opt-level"]["lines"]
    )

    new, reuse, rejected = (runs[f"timing-cache-{k}"] for k in ("new", "reuse", "rejected"))
    assert "IBuilderConfig.create_timing_cache(bytes[0])" in _calls(new)
    assert "IBuilderConfig.set_timing_cache(<strict ITimingCache>, False)" in _calls(new)
    assert new["timing_cache_bytes"] == "CACHE-1"
    assert "IBuilderConfig.create_timing_cache(bytes[7])" in _calls(reuse)  # the saved cache is read back
    assert reuse["timing_cache_bytes"] == "CACHE-2"
    assert [c for c in _calls(rejected) if "create_timing_cache" in c] == [
        "IBuilderConfig.create_timing_cache(bytes[7])",
        "IBuilderConfig.create_timing_cache(bytes[0])",
    ]
    assert any("does not fit" in line for line in rejected["lines"])

    parser = runs["parser-errors"]["error"]
    assert "cannot parse the model (2 error(s))" in parser and "node 'head_conv' (Conv)" in parser
    assert "could not build the engine" in runs["build-fails"]["error"]
    assert not (tmp_path / "build-fails" / "fp32.engine").exists()
    assert "cannot create a builder (is a CUDA GPU visible?)" in runs["no-cuda-builder"]["error"]

    verified, failed = runs["verified"], runs["verification-fails"]  # build_engine's default: verify
    assert verified["error"] is None and verified["cuda_mismatches"] == []
    assert any(
        "verified against ONNX Runtime" in line and "agreement 100.000%" in line for line in verified["lines"]
    )
    assert "verification failed" in failed["error"] and "the engine was not written" in failed["error"]
    assert sorted(p.name for p in (tmp_path / "verification-fails").iterdir()) == ["fp32.onnx"]

    cli = runs["cli"]
    assert cli["exit_code"] == 0, cli["output"]
    assert (
        "precision int8 (as-is)" in cli["output"]
        and "min 1x32x64x3 opt 1x32x64x3 max 4x32x64x3" in cli["output"]
    )
    assert "dynamic batch axis" in cli["output"]

    runner_runs = ["runner"] + (["runner-cudart"] if cuda else [])
    assert ("runner-cudart" in runs) == bool(cuda)  # cuda.cudart exists in 12.x only
    for name in runner_runs:
        s = runs[name]
        assert s["error"] is None, s["error"]
        assert s["output_shapes"] == [[1, 4, 32, 64], [3, 4, 32, 64], [6, 4, 32, 64]]  # 6 runs as 4 + 2
        calls = _calls(s)
        assert "IExecutionContext.set_input_shape(input_1, (4, 32, 64, 3))" in calls
        assert "IExecutionContext.set_input_shape(input_1, (2, 32, 64, 3))" in calls
        assert sum(c.startswith("IExecutionContext.execute_async_v3") for c in calls) == 4
        cuda_calls = [c for c, _ in s["cuda_calls"]]
        assert (
            cuda_calls[:2] == ["cudaSetDevice", "cudaStreamCreate"] and cuda_calls[-1] == "cudaStreamDestroy"
        )
        assert cuda_calls.count("cudaStreamSynchronize") == 4 and s["peak_memory"] is not None
    if result["no_driver"]:
        assert "no CUDA driver/GPU" in runs["runner-no-driver"]["error"]
