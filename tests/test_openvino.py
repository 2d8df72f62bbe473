"""The OpenVINO backend against ONNX Runtime, ``--runtime`` selection, and the CPU INT8 policy.

The OpenVINO tests skip when openvino is not installed (CI installs it through the ``test`` extra).
The INT8 policy is tested for both kinds of CPU by setting the VNNI detection, never by the CPU the
suite happens to run on.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from inference_helpers import export_onnx, make_checkpoint
from typer.testing import CliRunner

from segpipe.errors import CheckpointError, ConfigError
from segpipe.progress import RecordingReporter
from segpipe.runtime import cpu, load_runner
from segpipe.runtime.base import runner_class
from segpipe.runtime.onnxruntime import OnnxRunner

ov = pytest.importorskip("openvino", reason="openvino is not installed (pip install 'segpipe[openvino]')")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny model: checkpoint, dynamic float ONNX, fixed uint8 labels ONNX, an INT8 Q/DQ file and an IR."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    d = tmp_path_factory.mktemp("ov_models")
    pth, model, info = make_checkpoint(d / "m.pth", seed=3)
    onnx_path = export_onnx(model, info, d / "m.onnx")
    rng = np.random.default_rng(0)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(
                [{"input_1": rng.uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)} for _ in range(4)]
            )

        def get_next(self):
            return next(self._it, None)

    import onnx

    norm = [n.name for n in onnx.load(str(onnx_path)).graph.node if n.name.startswith("/normalize")]
    assert norm  # segpipe quantize keeps the normalisation in FP32 too
    files = {}
    for name, exclude in (("int8", norm), ("int8_all", [])):
        files[name] = d / f"m.{name}.onnx"
        quantize_static(  # TensorRT-shaped: S8S8, symmetric, per channel
            str(onnx_path), str(files[name]), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
        )  # fmt: skip
        rng = np.random.default_rng(0)
    files["cpu"] = d / "m.cpu-int8.onnx"
    quantize_static(  # CPU-shaped (quantize --target cpu): U8 activations, 7-bit weights
        str(onnx_path), str(files["cpu"]), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
        reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        nodes_to_exclude=norm, extra_options={"WeightSymmetric": True},
    )  # fmt: skip
    xml = d / "ir" / "m.xml"
    ov.save_model(ov.Core().read_model(str(onnx_path)), str(xml), compress_to_fp16=False)
    return {
        "pth": pth,
        "info": info,
        "onnx": onnx_path,
        "labels": export_onnx(model, info, d / "fixed.onnx", dynamic=False, uint8=True, output="labels"),
        **files,
        "xml": xml,
    }


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(1).integers(0, 256, size=(3, 64, 96, 3), dtype=np.uint8)


def test_openvino_matches_onnxruntime(models, batch):
    with (
        load_runner(models["onnx"], "cpu", runtime="openvino") as ovr,
        load_runner(models["onnx"], "cpu", runtime="onnxruntime") as ort,
    ):
        assert ovr.backend == "openvino" and ort.backend == "onnxruntime"
        assert ovr.info == ort.info  # the metadata read through OpenVINO is the same description
        a, b = ovr(batch), ort(batch)
        assert a.shape == b.shape == (3, 3, 64, 96)
        assert np.abs(a - b).max() < 1e-3  # FP32 kept (OpenVINO's bf16 default would differ more)
        assert (ovr.predict_labels(batch) == ort.predict_labels(batch)).all()
    # a fixed batch-1 uint8 graph with the argmax inside: looped and exact
    with (
        load_runner(models["labels"], "cpu", runtime="openvino") as ovr,
        load_runner(models["labels"]) as ort,
    ):
        assert ovr.output_kind == "labels" and ovr.fixed_batch == 1 and ovr.fixed_size == (64, 64)
        x = batch[:, :, :64]
        assert (ovr(x) == ort(x)).all()


def test_openvino_ir_and_its_weights_file(models, batch):
    with load_runner(models["xml"], "cpu") as ir, load_runner(models["onnx"], "cpu") as ort:
        assert ir.backend == "openvino" and ir.info.class_names == ort.info.class_names
        assert (ir.predict_labels(batch) == ort.predict_labels(batch)).all()
    with pytest.raises(CheckpointError, match=r"OpenVINO IR model: pass .*m\.xml"):
        runner_class(models["xml"].with_suffix(".bin"))
    with pytest.raises(ConfigError, match="--runtime onnxruntime: .*m.xml is an OpenVINO IR model"):
        runner_class(models["xml"], "onnxruntime")
    broken = models["xml"].with_name("broken.xml")
    broken.write_text("<net>")
    broken.with_suffix(".bin").write_bytes(b"")
    with pytest.raises(CheckpointError, match="broken.xml is not a model OpenVINO can load"):
        load_runner(broken, "cpu", runtime="auto")  # no ONNX Runtime fallback for an IR file


def test_runtime_refusals_are_one_line(models, tmp_path):
    with pytest.raises(
        ConfigError, match=r"--runtime openvino: .*m\.pth is a PyTorch checkpoint.*export-onnx"
    ):
        load_runner(models["pth"], "cpu", runtime="openvino")
    with pytest.raises(ConfigError, match="--runtime 'openvno'.*openvino"):
        runner_class(models["onnx"], "openvno")
    with pytest.raises(ConfigError, match="--device cuda: --runtime openvino runs on the CPU"):
        load_runner(models["onnx"], "cuda", runtime="openvino")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07\x12garbage")
    with pytest.raises(CheckpointError) as e:
        load_runner(junk, "cpu", runtime="openvino")
    assert "junk.onnx is not a model OpenVINO can load" in str(e.value) and "\n" not in str(e.value)


def _cpu(monkeypatch, vnni: bool) -> None:
    """Pretend to be an x86-64 CPU with or without VNNI."""
    flags = {"avx2", "avx512f", "avx512_vnni"} if vnni else {"avx2"}
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(cpu, "is_x86", lambda: True)


def test_auto_picks_openvino_on_a_vnni_cpu_and_says_so(models, monkeypatch):
    _cpu(monkeypatch, vnni=True)
    rec = RecordingReporter()
    with load_runner(models["int8"], "cpu", runtime="auto", reporter=rec) as r:
        assert r.backend == "openvino"
    assert len(rec.infos) == 1 and rec.infos[0].startswith(
        f"runtime for {models['int8'].name}: openvino (INT8 Q/DQ model on the CPU"
    )
    assert not rec.warnings
    # FP32: ONNX Runtime (OpenVINO measured no steady gain there), said so
    rec = RecordingReporter()
    assert runner_class(models["onnx"], "auto", "cpu", rec) is OnnxRunner
    assert rec.infos[0].startswith(f"runtime for {models['onnx'].name}: onnxruntime (not INT8")
    # a .pth stays with PyTorch; without openvino an ONNX model goes to ONNX Runtime, said so
    assert runner_class(models["pth"], "auto").backend == "pytorch"
    import segpipe._optional as optional

    monkeypatch.setattr(optional, "available", lambda m: m != "openvino")
    rec = RecordingReporter()
    assert runner_class(models["int8"], "auto", "cpu", rec) is OnnxRunner
    assert "openvino not installed" in rec.infos[0]


def test_auto_keeps_an_s8s8_file_accurate_on_a_cpu_without_vnni(models, monkeypatch):
    """OpenVINO's AVX2 INT8 kernels saturate on a TensorRT-shaped file too (bench_cpu.py --isa AVX2):
    auto runs it on ONNX Runtime with the Q/DQ unfused, and says both things."""
    _cpu(monkeypatch, vnni=False)
    rec = RecordingReporter()
    with load_runner(models["int8"], "cpu", runtime="auto", reporter=rec) as r:
        assert r.backend == "onnxruntime"
        assert r.session.get_session_options().get_session_config_entry(cpu.DISABLE_QDQ_FUSION) == "1"
    assert "CPU without VNNI" in rec.infos[0] and len(rec.warnings) == 1
    # asked for explicitly, OpenVINO runs the INT8 file, with a warning
    rec = RecordingReporter()
    with load_runner(models["int8"], "cpu", runtime="openvino", reporter=rec) as r:
        assert r.backend == "openvino"
    assert len(rec.warnings) == 1 and "OpenVINO's INT8 kernels saturate" in rec.warnings[0]


def test_auto_falls_back_to_onnxruntime_when_openvino_cannot_load_it(models, batch):
    """OpenVINO 2026.4 refuses a graph whose normalisation is quantized too; auto says so and runs ORT."""
    rec = RecordingReporter()
    with load_runner(models["int8_all"], "cpu", runtime="auto", reporter=rec) as r:
        assert r.backend in ("openvino", "onnxruntime") and r(batch).shape == (3, 3, 64, 96)
    if r.backend == "onnxruntime":
        assert len(rec.warnings) == 1 and "is not a model OpenVINO can load" in rec.warnings[0]
        assert rec.warnings[0].endswith("onnxruntime runs it instead") and "\n" not in rec.warnings[0]


def _int8_session_config(path, monkeypatch, flags):
    """The session config ORT gets for ``path`` on the CPU when the CPU's flags are ``flags``."""
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(cpu, "is_x86", lambda: True)
    rec = RecordingReporter()
    with load_runner(path, "cpu", runtime="onnxruntime", reporter=rec) as r:
        entry = r.session.get_session_options().get_session_config_entry
        try:
            value = entry(cpu.DISABLE_QDQ_FUSION)
        except Exception:  # not set
            value = None
        return value, rec.warnings, r


@pytest.mark.parametrize("flags", [{"avx2"}, {"avx2", "avx512f"}])
def test_int8_on_a_cpu_without_vnni_keeps_its_accuracy_and_says_so(models, monkeypatch, flags, batch):
    value, warnings, runner = _int8_session_config(models["int8"], monkeypatch, flags)
    assert value == "1"  # Q/DQ run as written: no saturating integer kernels
    assert len(warnings) == 1 and "no VNNI" in warnings[0] and "--target cpu" in warnings[0]
    assert runner.int8_note == warnings[0]
    # an FP32 model on the same CPU is left alone
    value, warnings, _ = _int8_session_config(models["onnx"], monkeypatch, flags)
    assert value in (None, "") and not warnings


@pytest.mark.parametrize("flags", [{"avx2", "avx512f", "avx512_vnni"}, {"avx2", "avx_vnni"}])
def test_int8_on_a_vnni_cpu_uses_the_integer_kernels(models, monkeypatch, flags):
    value, warnings, _ = _int8_session_config(models["int8"], monkeypatch, flags)
    assert value in (None, "") and not warnings


def test_cpu_flags_read_proc_cpuinfo_once():
    flags = cpu.cpu_flags()
    assert isinstance(flags, frozenset) and cpu.cpu_flags() is flags
    assert cpu.has_vnni() == any(f in flags for f in cpu.VNNI_FLAGS)
    assert cpu.cpu_summary()


@pytest.mark.parametrize("name", ["cpu", "int8"])
def test_int8_openvino_is_as_accurate_as_the_qdq_emulation(models, batch, name):
    """OpenVINO's INT8 is as close to FP32 as the Q/DQ graph computed in float (the gate's
    emulation; OpenVINO places some rescaling differently, so masks may differ at near-ties).
    The CPU-shaped file holds on every CPU; the S8S8 one where the integer kernels do not saturate
    (elsewhere --runtime auto does not give it to OpenVINO: test_auto_keeps_an_s8s8_file_accurate...)."""
    import onnxruntime as ort

    if name == "int8" and cpu.int8_kernels_saturate():
        pytest.skip("an S8S8 file saturates OpenVINO's INT8 kernels on a CPU without VNNI")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    emul = ort.InferenceSession(str(models[name]), so, providers=["CPUExecutionProvider"])
    x = batch[:, :, :64].astype(np.float32)
    emulated = emul.run(None, {"input_1": x})[0].argmax(1)
    with load_runner(models["onnx"], "cpu", runtime="onnxruntime") as fp32:
        ref = fp32.predict_labels(x)
    with load_runner(models[name], "cpu", runtime="openvino") as r:
        assert (r.predict_labels(x) == ref).mean() >= (emulated == ref).mean() - 0.01


# ---- through the commands ------------------------------------------------------------------------
def cli(*args):
    from segpipe.cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_visualize_evaluate_benchmark_with_openvino(models, tmp_path, index_dataset):
    img = np.random.default_rng(2).integers(0, 256, (50, 90, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    labels = {}
    for runtime in ("openvino", "onnxruntime"):
        out = tmp_path / runtime
        res = cli("visualize", "--images", tmp_path / "a.png", "--model", models["onnx"], "--output-dir", out,
                  "--save-labels", "--runtime", runtime, "--device", "cpu", "--tta", "flip", "--tile", "48", "48")  # fmt: skip
        assert res.exit_code == 0, res.output
        (png,) = [p for p in out.rglob("*.png") if "label" in p.name]
        labels[runtime] = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    assert labels["openvino"].shape == (50, 90) and (labels["openvino"] == labels["onnxruntime"]).all()
    reports = {}
    for runtime in ("openvino", "onnxruntime"):
        rep = tmp_path / f"{runtime}.json"
        res = cli("evaluate", "--data-root", index_dataset, "--model", models["onnx"], "--runtime", runtime,
                  "--device", "cpu", "--report", rep, "--split", "all")  # fmt: skip
        assert res.exit_code == 0, res.output
        reports[runtime] = json.loads(rep.read_text())
    assert reports["openvino"]["miou"] == pytest.approx(reports["onnxruntime"]["miou"], abs=1e-6)
    res = cli("benchmark", "--model", models["onnx"], "--runtime", "openvino", "--runs", "3", "--warmup", "1",
              "--device", "cpu", "-q")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "openvino" in res.output
    res = cli("visualize", "--images", tmp_path / "a.png", "--model", models["pth"], "--runtime", "openvino",
              "--output-dir", tmp_path / "x")  # fmt: skip
    assert res.exit_code != 0 and "--runtime openvino" in res.output and "Traceback" not in res.output


def test_video_with_openvino_matches_onnxruntime(models, tmp_path):
    from segpipe.options import VisualizeOptions
    from segpipe.visualize import visualize

    src = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (80, 48))
    rng = np.random.default_rng(4)
    for _ in range(4):
        writer.write(cv2.GaussianBlur(rng.integers(0, 256, (48, 80, 3), dtype=np.uint8), (9, 9), 0))
    writer.release()
    frames = {}
    for runtime in ("openvino", "onnxruntime"):
        opts = VisualizeOptions(images=src, model=models["onnx"], output_dir=tmp_path / runtime, overlay=1.0,
                                runtime=runtime, device="cpu")  # fmt: skip
        result = visualize(opts)
        assert result.backend == runtime and result.frames == 4
        cap, got = cv2.VideoCapture(str(result.videos[0])), []
        while (frame := cap.read())[0]:
            got.append(frame[1])
        cap.release()
        frames[runtime] = np.stack(got)
    assert frames["openvino"].shape == (4, 48, 80, 3)
    assert np.array_equal(frames["openvino"], frames["onnxruntime"])  # same masks, same encoder: same video
