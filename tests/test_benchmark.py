"""``segpipe benchmark``: latency statistics, .pth and .onnx backends, mIoU, the JSON report, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from segpipe._optional import available
from segpipe.benchmark import benchmark, latency_stats
from segpipe.cli.app import app
from segpipe.errors import ConfigError, SegpipeError
from segpipe.evaluate import evaluate
from segpipe.export.onnx import export_onnx
from segpipe.modelinfo import ModelInfo
from segpipe.models import create_model, save_checkpoint
from segpipe.options import BenchmarkOptions, EvaluateOptions, OnnxExportOptions

#: What --runtime auto runs an FP32 ONNX model with on the CPU.
CPU_ONNX = "onnxruntime"


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A checkpoint, its fixed-size ONNX export and a dynamic-size one, plus a 4-image data set."""
    from segpipe.data.synthetic import make_dataset

    root = tmp_path_factory.mktemp("bench")
    torch.manual_seed(0)
    info = ModelInfo(arch="Unet", encoder="resnet18", num_classes=3, input_size=(64, 64))
    ckpt = save_checkpoint(root / "m.pth", create_model(info, None), info)
    fixed = export_onnx(OnnxExportOptions(model=ckpt, output=root / "fixed.onnx", verify=False)).path
    dynamic = export_onnx(
        OnnxExportOptions(
            model=ckpt, output=root / "dyn.onnx", dynamic_batch=True, dynamic_size=True, verify=False
        )
    ).path
    data = make_dataset(root / "data", count=4, size=(64, 64), num_classes=3, seed=3)
    return {"pth": ckpt, "fixed": fixed, "dynamic": dynamic, "data": data}


def test_latency_stats_match_numpy() -> None:
    rng = np.random.default_rng(0)
    samples = rng.gamma(2.0, 3.0, 200)
    stats = latency_stats(list(samples))
    assert stats["mean_ms"] == pytest.approx(samples.mean()) and stats["min_ms"] == pytest.approx(
        samples.min()
    )
    assert stats["p50_ms"] == pytest.approx(np.median(samples))
    assert stats["p99_ms"] == pytest.approx(np.percentile(samples, 99))
    assert stats["min_ms"] <= stats["p50_ms"] <= stats["p90_ms"] <= stats["p99_ms"] <= samples.max()
    with pytest.raises(ValueError):
        latency_stats([])


def test_pth_and_onnx_side_by_side(models: dict[str, Path], tmp_path: Path) -> None:
    report = tmp_path / "out" / "bench.json"
    opts = BenchmarkOptions(
        models=(models["pth"], models["fixed"]), warmup=1, runs=4, device="cpu", report=report
    )
    result = benchmark(opts)
    pth, onx = result.models
    assert (pth.backend, onx.backend) == ("pytorch", CPU_ONNX)
    for b in result.models:
        assert b.size == (64, 64) and b.batch == 1 and b.runs == 4 and b.device == "cpu"
        assert 0 < b.min_ms <= b.p50_ms <= b.p90_ms <= b.p99_ms
        assert b.throughput == pytest.approx(1000.0 / b.mean_ms)
        assert b.peak_memory_mb is None and b.miou is None  # CPU backends report no device memory
    data = json.loads(report.read_text())
    assert [m["backend"] for m in data["models"]] == ["pytorch", CPU_ONNX]
    assert data["models"][1]["p90_ms"] == pytest.approx(onx.p90_ms) and data["runs"] == 4
    assert data["machine"]["cpu_count"] >= 1 and "onnxruntime" in data["machine"]


def test_batch_and_size_on_dynamic_onnx(models: dict[str, Path]) -> None:
    result = benchmark(
        BenchmarkOptions(models=(models["dynamic"],), size=(96, 64), batch=3, warmup=0, runs=2, device="cpu")
    )
    (b,) = result.models
    assert b.size == (96, 64) and b.batch == 3
    assert b.throughput == pytest.approx(3000.0 / b.mean_ms)


def test_threads_apply_to_the_run_only(models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from segpipe.runtime.torch import TorchRunner

    before = torch.get_num_threads()
    seen: list[int] = []
    original = TorchRunner.__call__

    def spy_call(self: TorchRunner, images: np.ndarray) -> np.ndarray:  # PyTorch's threads while it works
        seen.append(torch.get_num_threads())
        return original(self, images)

    monkeypatch.setattr(TorchRunner, "__call__", spy_call)
    result = benchmark(BenchmarkOptions(models=(models["pth"],), warmup=0, runs=2, device="cpu", threads=2))
    assert seen == [2, 2] and torch.get_num_threads() == before  # no extra call for the agreement
    assert result.to_dict()["threads"] == 2


def test_miou_matches_evaluate(models: dict[str, Path]) -> None:
    result = benchmark(
        BenchmarkOptions(
            models=(models["pth"], models["fixed"]), warmup=0, runs=1, device="cpu", data_root=models["data"]
        )
    )
    for bench, path in zip(result.models, (models["pth"], models["fixed"]), strict=True):
        expected = evaluate(EvaluateOptions(data_root=models["data"], model=path, device="cpu")).miou
        assert bench.miou == pytest.approx(expected, abs=1e-6)
        assert 0.0 <= bench.miou <= 1.0


def test_cli_table(models: dict[str, Path], tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    res = CliRunner().invoke(
        app,
        [
            "benchmark",
            "--model",
            str(models["pth"]),
            "--model",
            str(models["fixed"]),
            "--warmup",
            "1",
            "--runs",
            "2",
            "--device",
            "cpu",
            "--report",
            str(report),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    for text in (
        "m.pth",
        "fixed.onnx",
        "pytorch cpu",
        f"{CPU_ONNX} cpu",
        "1 x 64x64 fp32",
        "p10-p90 ms",
        "spread",
        "argmax vs FP32",
        "images/s",
        "wrote benchmark report",
    ):
        assert text in res.output, text
    assert len(json.loads(report.read_text())["models"]) == 2


def test_bad_input_is_one_line(models: dict[str, Path], tmp_path: Path) -> None:
    def error(*args: str) -> str:
        res = CliRunner().invoke(app, ["benchmark", "--device", "cpu", "-q", *args])
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert res.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error:"), res.output
        return lines[0]

    missing = tmp_path / "missing.onnx"
    assert str(missing) in error("--model", str(models["pth"]), "--model", str(missing))
    assert "unknown model file type" in error("--model", str(tmp_path / "m.h5"))
    assert "--runs 0" in error("--model", str(models["pth"]), "--runs", "0")
    assert "fixed input size" in error("--model", str(models["fixed"]), "--size", "128", "64")
    assert "96 or 128" in error("--model", str(models["dynamic"]), "--size", "100", "64")
    assert "--data-root" in error("--model", str(models["pth"]), "--data-root", str(tmp_path / "nodata"))
    res = CliRunner().invoke(app, ["benchmark"])  # a missing required flag is click's usage error
    assert res.exit_code == 2 and "--model" in res.output
    with pytest.raises(ConfigError):
        BenchmarkOptions(models=())
    assert issubclass(ConfigError, SegpipeError)


@pytest.mark.skipif(not available("openvino"), reason="openvino is not installed")
def test_backends_side_by_side_with_agreement(models: dict[str, Path]) -> None:
    """--runtime all: every installed backend that reads each file, one row each, interleaved."""
    opts = BenchmarkOptions(
        models=(models["pth"], models["fixed"]), runtime="all", warmup=1, runs=3, device="cpu"
    )
    result = benchmark(opts)
    assert [(Path(m.model).name, m.backend) for m in result.models] == [
        ("m.pth", "pytorch"),
        ("fixed.onnx", "onnxruntime"),
        ("fixed.onnx", "openvino"),
    ]
    ref, *others = result.models
    assert ref.agreement == 1.0 and ref.agreement_text() == "reference"
    for m in others:  # the same FP32 model on other backends: the same masks but for near-ties
        assert m.reference == "m.pth (pytorch)" and m.agreement > 0.99
        assert m.runs == 3 and m.warmup_calls >= 1
    with pytest.raises(ConfigError, match="--runtime tensorrt: none of the models"):
        benchmark(opts.replace(runtime="tensorrt"))
    with pytest.raises(ConfigError, match="--runtime all,openvino: 'all' stands alone"):
        BenchmarkOptions(models=(models["pth"],), runtime="all,openvino")
