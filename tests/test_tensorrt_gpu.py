"""Real TensorRT tests: build engines from tiny ONNX models, run them, compare with ONNX Runtime.

Marked ``gpu``; the whole module is skipped cleanly unless ``import tensorrt`` works and torch sees
a CUDA device. Written against the TensorRT 10.x / 11.x Python API; they could not be run on the
development machine (no GPU, no tensorrt), so they are the first thing to run on a GPU machine:
``pytest -m gpu tests/test_tensorrt_gpu.py``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

trt = pytest.importorskip("tensorrt", reason="tensorrt is not installed")
torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

from segpipe._optional import available  # noqa: E402
from segpipe.errors import ConfigError, ExportError  # noqa: E402
from segpipe.runtime.base import compare, load_runner  # noqa: E402
from segpipe.tensorrt.build import EngineOptions, build_engine, trt_major_version  # noqa: E402
from segpipe.tensorrt.runner import TensorRTRunner  # noqa: E402
from segpipe.tensorrt.sidecar import read_sidecar  # noqa: E402
from segpipe.tensorrt.verify import onnx_reference, verification_batches  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from trt_helpers import make_seg_onnx  # noqa: E402

pytestmark = pytest.mark.gpu
MAJOR = trt_major_version(trt.__version__)


def check_against_onnxruntime(engine: Path, onnx: Path, shape: tuple[int, ...], min_agreement: float) -> None:
    batch = verification_batches(shape, "uint8", random_batches=1, seed=3)[0]
    (ref,) = onnx_reference(onnx, [batch])
    with TensorRTRunner(engine) as runner:
        out = runner(batch)
    assert out.shape == ref.shape
    result = compare(ref, out)
    assert result.argmax_agreement >= min_agreement, str(result)


def test_fp32_engine_static_profile(tmp_path):
    onnx = make_seg_onnx(tmp_path / "m.onnx", size=(64, 32))
    engine = build_engine(EngineOptions(onnx=onnx, shapes="input_1:1x32x64x3", workspace_mib=256))
    assert engine == tmp_path / "m.engine" and engine.stat().st_size > 0
    side = read_sidecar(engine)
    assert side["precision"] == "fp32" and side["tensorrt_version"] == trt.__version__
    assert side["gpu_name"] == torch.cuda.get_device_name(0)
    assert side["profile"]["input_1"]["opt"] == [1, 32, 64, 3]
    check_against_onnxruntime(engine, onnx, (1, 32, 64, 3), 0.999)
    with TensorRTRunner(engine) as runner:
        assert runner.fixed_size == (64, 32) and runner.info.num_classes == 4 and not runner.warnings
        with pytest.raises(ConfigError):
            runner(np.zeros((1, 64, 64, 3), np.uint8))


def test_fp16_engine_from_fp32_graph(tmp_path):
    onnx = make_seg_onnx(tmp_path / "m.onnx", size=(64, 32))
    if MAJOR >= 11 and not available("modelopt.onnx.autocast"):
        with pytest.raises(ExportError, match="export-onnx --half"):
            build_engine(EngineOptions(onnx=onnx, fp16=True))
        pytest.skip("TensorRT 11 without ModelOpt: FP16 needs an FP16 graph (covered below)")
    engine = build_engine(EngineOptions(onnx=onnx, fp16=True, engine=tmp_path / "m16.engine"))
    side = read_sidecar(engine)
    assert side["precision"] == "fp16"
    assert side["fp16_method"] == ("builder-flag" if MAJOR == 10 else "autocast")
    check_against_onnxruntime(engine, onnx, (1, 32, 64, 3), 0.99)


def test_fp16_engine_from_fp16_graph(tmp_path):
    onnx = make_seg_onnx(tmp_path / "m.onnx", size=(64, 32), half=True)
    engine = build_engine(EngineOptions(onnx=onnx, fp16=True))
    side = read_sidecar(engine)
    assert side["precision"] == "fp16" and side["fp16_method"] == "as-is" and side["strongly_typed"]
    check_against_onnxruntime(engine, onnx, (1, 32, 64, 3), 0.99)


def test_int8_engine_from_qdq_graph(tmp_path):
    """A Q/DQ graph builds strongly typed with no precision flag on 10.x and 11.x."""
    onnx = make_seg_onnx(tmp_path / "m.onnx", size=(64, 32), int8=True)
    engine = build_engine(EngineOptions(onnx=onnx, max_batch=4))
    side = read_sidecar(engine)
    assert side["precision"] == "int8" and side["strongly_typed"] and side["fp16_method"] == "as-is"
    assert side["profile"]["input_1"]["max"] == [4, 32, 64, 3]
    check_against_onnxruntime(engine, onnx, (3, 32, 64, 3), 0.98)


def test_dynamic_shapes_at_two_sizes_and_batch_chunking(tmp_path):
    onnx = make_seg_onnx(tmp_path / "m.onnx", size=(64, 32))
    engine = build_engine(
        EngineOptions(
            onnx=onnx,
            min_shapes="input_1:1x32x64x3",
            opt_shapes="input_1:2x64x64x3",
            max_shapes="input_1:4x64x128x3",
            timing_cache=tmp_path / "timing.cache",
        )
    )
    assert (tmp_path / "timing.cache").stat().st_size > 0
    for shape in [(1, 32, 64, 3), (3, 64, 128, 3), (6, 64, 64, 3)]:  # 6 > max batch 4: two chunks
        check_against_onnxruntime(engine, onnx, shape, 0.999)
    with load_runner(engine) as runner:
        assert isinstance(runner, TensorRTRunner) and runner.fixed_size is None
        peak = runner.peak_memory_bytes()
        assert runner.backend == "tensorrt" and (peak is None or peak > 0)
    # the timing cache is read back on a rebuild
    build_engine(
        EngineOptions(onnx=onnx, engine=tmp_path / "again.engine", timing_cache=tmp_path / "timing.cache")
    )


def test_uint8_input_and_label_output(tmp_path):
    onnx = make_seg_onnx(tmp_path / "m.onnx", dims=(1, 32, 64, 3), input_dtype="uint8", output_kind="labels")
    engine = build_engine(EngineOptions(onnx=onnx))
    batch = verification_batches((1, 32, 64, 3), "uint8")[0]
    (ref,) = onnx_reference(onnx, [batch])
    with TensorRTRunner(engine) as runner:
        out = runner(batch.astype(np.float32))  # float32 0-255 is accepted and cast to the engine's uint8
        assert runner.info.output_kind == "labels"
        assert np.mean(runner.predict_labels(batch) == ref) >= 0.999
    assert np.mean(out.astype(np.int64) == ref) >= 0.999


def test_failed_verification_leaves_no_engine(tmp_path, monkeypatch):
    import segpipe.tensorrt.verify as verify_mod

    onnx = make_seg_onnx(tmp_path / "m.onnx", dims=(1, 32, 64, 3))
    class Negated(verify_mod.GraphRunner):  # a reference that disagrees everywhere
        def __call__(self, batch):
            return -super().__call__(batch)

    monkeypatch.setattr(verify_mod, "onnx_runner", Negated)
    with pytest.raises(ExportError, match="verification failed"):
        build_engine(EngineOptions(onnx=onnx))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_runner_close_is_idempotent(tmp_path):
    onnx = make_seg_onnx(tmp_path / "m.onnx", dims=(1, 32, 64, 3))
    runner = TensorRTRunner(build_engine(EngineOptions(onnx=onnx, verify=False)))
    runner.close()
    runner.close()


@pytest.mark.skipif(shutil.which("trtexec") is None, reason="trtexec not on PATH")
def test_use_trtexec(tmp_path):
    from segpipe.tensorrt.trtexec import run_trtexec

    onnx = make_seg_onnx(tmp_path / "m.onnx", size=(64, 32))
    engine = run_trtexec(EngineOptions(onnx=onnx, shapes="input_1:1x32x64x3", engine=tmp_path / "m.plan"))
    assert read_sidecar(engine)["builder"] == "trtexec"
    check_against_onnxruntime(engine, onnx, (1, 32, 64, 3), 0.999)
