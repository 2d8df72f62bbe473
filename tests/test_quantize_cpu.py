"""``segpipe quantize --target cpu`` (export/quantize_cpu.py): the file's shape, its record, how segpipe runs it."""

from __future__ import annotations

import json

import cv2
import numpy as np
import onnx
import pytest
from inference_helpers import export_onnx, make_checkpoint, printed_wide
from onnx import numpy_helper

from segpipe.errors import ConfigError
from segpipe.export.quantize import quantize
from segpipe.options import QuantizeOptions
from segpipe.progress import RecordingReporter
from segpipe.runtime import cpu, load_runner


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("qcpu")
    _, model, info = make_checkpoint(d / "m.pth", seed=5)
    fp32 = export_onnx(model, info, d / "m.onnx")
    calib = d / "calib"
    calib.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        img = cv2.GaussianBlur(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), (7, 7), 0)
        cv2.imwrite(str(calib / f"{i}.png"), img)
    res = quantize(QuantizeOptions(model=fp32, calib_images=calib, target="cpu", min_agreement=0.5))
    out = res.path
    assert out == d / "m.cpu-int8.onnx"  # the default name says what it is for
    return {"fp32": fp32, "cpu": out, "calib": calib, "dir": d, "result": res}


def test_summary_names_u8s8_not_symmetric_activations(files):
    """The command's summary describes the file it wrote: a --target cpu file's activations are
    uint8 asymmetric (it said "int8 symmetric" for every file)."""
    from segpipe.cli.quantize import render_result

    qdq = next(
        ln for ln in printed_wide(render_result, files["result"]).splitlines() if "QuantizeLinear" in ln
    )
    assert "activations uint8 asymmetric per-tensor" in qdq, qdq
    assert "7-bit range" in qdq and "int8 symmetric per-tensor" not in qdq, qdq


def test_u8_activations_and_7_bit_weights(files):
    proto = onnx.load(str(files["cpu"]))
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    quant = [n for n in proto.graph.node if n.op_type == "QuantizeLinear"]
    assert quant
    # activations: uint8 zero points (asymmetric); weights: int8 within the 7-bit range
    zero_points = [inits[n.input[2]] for n in quant if len(n.input) > 2 and n.input[2] in inits]
    assert zero_points and all(z.dtype == np.uint8 for z in zero_points)
    weights = [a for a in inits.values() if a.dtype == np.int8 and a.ndim == 4]
    assert weights and all(np.abs(w.astype(int)).max() <= 64 for w in weights)  # ORT: [-64, 64]
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["segpipe.precision"]) == "int8"
    record = json.loads(props["segpipe.calibration"])
    assert record["target"] == cpu.CPU_TARGET and "reduce_range" in record["weights"]
    assert record["float_nodes"]  # normalisation and head left in FP32, as in segpipe quantize's file
    assert cpu.qdq_precision(files["cpu"]) == "int8-cpu" and cpu.qdq_precision(files["fp32"]) is None


def test_runs_fused_on_every_cpu_and_stays_close_to_fp32(files, monkeypatch):
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset({"avx2"}))  # no VNNI: 7 bits cannot saturate
    monkeypatch.setattr(cpu, "is_x86", lambda: True)
    x = np.stack([cv2.imread(str(p))[:, :, ::-1] for p in sorted(files["calib"].glob("*.png"))])
    rec = RecordingReporter()
    with (
        load_runner(files["cpu"], "cpu", runtime="onnxruntime", reporter=rec) as r8,
        load_runner(files["fp32"]) as r,
    ):
        assert not rec.warnings and not r8.int8_note
        assert (r8.predict_labels(x) == r.predict_labels(x)).mean() > 0.9
    with pytest.raises(Exception, match="already"):  # a quantized file is not quantized again
        quantize(
            QuantizeOptions(model=files["cpu"], calib_images=files["calib"], output=files["dir"] / "x.onnx")
        )
    with pytest.raises(ConfigError, match="--target gpu: use tensorrt or cpu"):
        QuantizeOptions(model=files["fp32"], calib_images=files["calib"], target="gpu")
    with pytest.raises(ConfigError, match="--target cpu: made with --quantizer ort"):
        QuantizeOptions(model=files["fp32"], calib_images=files["calib"], target="cpu", quantizer="modelopt")


def test_gate_says_and_emulates_the_cpu_kernels_arithmetic(files):
    """A --target cpu file's gate emulates the U8S8 CPU kernels it is meant for (exact integer sums
    of activation minus zero point times 7-bit weight), not TensorRT: its heading, its record and
    its arithmetic say so. The gate's figure equals ONNX's numpy reference evaluator's on the
    integer-sum graph (on any CPU), and that graph is the Q/DQ graph as written."""
    from onnx import version_converter
    from onnx.reference import ReferenceEvaluator

    from segpipe.cli.quantize import render_result
    from segpipe.export.int8_gate import gate, recorded_gate
    from segpipe.export.qdq_emulate import EMULATION_CPU, integer_convolutions, integer_ops
    from segpipe.export.quantize import graph_io, read_calibration
    from segpipe.modelinfo import ModelInfo
    from segpipe.runtime.base import compare

    res = files["result"]
    title = next(ln for ln in printed_wide(render_result, res).splitlines() if "accuracy gate" in ln)
    assert "U8S8 CPU kernels" in title and "TensorRT" not in title, title
    proto = onnx.load(str(files["cpu"]))
    record = read_calibration({p.key: p.value for p in proto.metadata_props})
    assert record["gate"] == EMULATION_CPU and "TensorRT" not in record["gate"].split("(")[0]
    # the figures the gate measured are in the file, as the summary printed them
    said = recorded_gate(record)
    assert [(g.source, g.images) for g in said] == [(r.source, r.images) for r in res.gate]
    assert [g.argmax_agreement for g in said] == pytest.approx([r.result.argmax_agreement for r in res.gate])
    from segpipe.info import describe_model

    shown = describe_model(files["cpu"]).details["int8 gate"]
    assert shown.endswith("(U8S8 CPU kernels emulated)") and said[0].text() in shown, shown

    # every quantized convolution sums integers (uint8 activations minus their zero point)
    exact, count = integer_convolutions(proto)
    producer = {o: n for n in proto.graph.node for o in n.output}
    quantized = [n for n in proto.graph.node if n.op_type == "Conv" and n.input[1] in producer]
    assert count == len(quantized) > 0 and integer_ops(files["cpu"]) == []
    x = np.stack([cv2.imread(str(p))[:, :, ::-1] for p in sorted(files["calib"].glob("*.png"))])
    fp32_proto = onnx.load(str(files["fp32"]))
    info = ModelInfo.from_metadata({p.key: p.value for p in fp32_proto.metadata_props})
    rows = gate(files["fp32"], files["cpu"], graph_io(fp32_proto, info, files["fp32"]), info, {"x": x}, "m")

    def reference(p) -> np.ndarray:  # numpy ops as the ONNX spec defines them
        ev = ReferenceEvaluator(version_converter.convert_version(p, 21))
        return np.concatenate(
            [ev.run(None, {"input_1": x[i : i + 1].astype(np.float32)})[0] for i in range(len(x))]
        )

    expected = compare(reference(fp32_proto), reference(exact), "seg", "logits")
    assert (
        rows[0].images == len(x) and abs(rows[0].result.argmax_agreement - expected.argmax_agreement) <= 1e-4
    )
    as_written = compare(reference(exact), reference(proto), "seg", "logits")
    assert as_written.argmax_agreement >= 0.99 and as_written.max_abs_diff < 0.1
