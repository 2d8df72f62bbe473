"""segpipe quantize / export-onnx --int8: Q/DQ structure, the accuracy gate, bad input (tiny models)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from segpipe.errors import ConfigError, DataError, ExportError
from segpipe.options import QuantizeOptions

SIZE = (64, 64)


def tiny_onnx(path: Path, opset: int = 17) -> Path:
    """A tiny FP32 graph as export-onnx writes it: Unet/resnet18 (depth 3), NHWC 0-255, metadata.

    Untrained, but its BatchNorm statistics come from a few forward passes over structured images,
    so its activations (and INT8 ranges) look like those of a network that has seen data.
    """
    import onnx
    import segmentation_models_pytorch as smp
    import torch

    from segpipe.data.synthetic import make_sample
    from segpipe.export.onnx import set_metadata, simplify, torch_to_onnx
    from segpipe.modelinfo import ModelInfo
    from segpipe.models import DeployModel

    torch.manual_seed(0)
    net = smp.Unet("resnet18", encoder_weights=None, encoder_depth=3, decoder_channels=(32, 16, 8), classes=3)
    info = ModelInfo(
        arch="Unet",
        encoder="resnet18",
        num_classes=3,
        input_size=SIZE,
        layout="NHWC",
        output_stride=8,
        class_names=("bg", "a", "b"),
        colors=((0, 0, 0), (255, 0, 0), (0, 255, 0)),
    )
    deploy = DeployModel(net, info).train()
    rng = np.random.default_rng(7)
    images = np.stack([make_sample(rng, *SIZE, 3)[0] for _ in range(8)])
    with torch.no_grad():
        for _ in range(3):
            deploy(torch.from_numpy(images).float())
    torch_to_onnx(deploy.eval(), torch.zeros(1, SIZE[1], SIZE[0], 3), path, opset, {})
    proto, _ = simplify(onnx.load(str(path)))
    set_metadata(proto, info)
    onnx.save(proto, str(path))
    return path


@pytest.fixture(scope="module")
def fp32_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_onnx(tmp_path_factory.mktemp("q") / "tiny.onnx")


@pytest.fixture(scope="module")
def calib_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 structured images, 4 of them 80x48 (not the model's 64x64: resized)."""
    import cv2

    from segpipe.data.synthetic import make_dataset

    ds = make_dataset(tmp_path_factory.mktemp("calib_ds"), count=10, size=SIZE, num_classes=3, seed=5)
    for f in sorted((ds / "images").iterdir())[:4]:
        cv2.imwrite(str(f), cv2.resize(cv2.imread(str(f)), (80, 48)))
    return ds / "images"


def _opts(model: Path, calib: Path, out: Path, **kw) -> QuantizeOptions:
    return QuantizeOptions(model=model, calib_images=calib, output=out, **kw)


def test_int8_graph_structure_gate_and_metadata(fp32_onnx: Path, calib_dir: Path, tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    from segpipe.export.quantize import head_nodes, input_nodes, quantize
    from segpipe.info import describe_model
    from segpipe.progress import RecordingReporter

    out = tmp_path / "tiny.int8.onnx"
    rec = RecordingReporter()
    res = quantize(_opts(fp32_onnx, calib_dir, out, calib_count=100, min_agreement=0.9), rec)
    # fewer images than --calib-count: uses what there is and says how many; resized images: said once
    assert any("calibrating on 8" in w and "2 held out" in w for w in rec.warnings)
    assert sum("resized" in w for w in rec.warnings) == 1
    assert res.calibration["images"] == 8 and res.gate[0].source == "held-out" and res.gate[0].images == 2
    assert res.worst.result.argmax_agreement >= 0.9

    m = onnx.load(str(out))
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    qs = [n for n in m.graph.node if n.op_type == "QuantizeLinear"]
    dqs = [n for n in m.graph.node if n.op_type == "DequantizeLinear"]
    assert len(qs) == res.quantize_linear > 10 and len(dqs) == res.dequantize_linear > len(qs)
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    producer = {o: n for n in m.graph.node for o in n.output}
    for n in qs + dqs:  # signed INT8, symmetric: every zero point is int8 0
        zp = init[n.input[2]]
        assert zp.dtype == np.int8 and not zp.any()
    quantized_convs = 0
    for conv in convs:  # per-channel INT8 weights on every quantized convolution
        w = producer.get(conv.input[1])
        if w is None or w.op_type != "DequantizeLinear":
            continue
        quantized_convs += 1
        q_w, scale = init[w.input[0]], init[w.input[1]]
        assert q_w.dtype == np.int8 and scale.shape == (q_w.shape[0],)
        assert next(a.i for a in w.attribute if a.name == "axis") == 0
        assert len(conv.input) < 3 or conv.input[2] in init and init[conv.input[2]].dtype == np.float32
    assert quantized_convs == len(convs) - 1  # the head's convolution stays FP32
    fp32 = onnx.load(str(fp32_onnx))
    assert head_nodes(fp32)[0] not in {n.name for n in qs} and len(input_nodes(fp32)) >= 2
    head = next(c for c in convs if c.input[1] not in producer)
    assert head.input[1] in init and init[head.input[1]].dtype == np.float32

    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"input_1": np.zeros((1, 64, 64, 3), np.float32)})[0]
    assert y.shape == (1, 3, 64, 64) and y.dtype == np.float32

    desc = describe_model(out)
    assert desc.info.precision == "int8"
    cal = json.loads({p.key: p.value for p in m.metadata_props}["segpipe.calibration"])
    assert cal["images"] == 8 and cal["source"] == calib_dir.name and cal["method"] == "minmax"
    assert desc.details["calibration"].startswith("minmax, 8 images of images/")
    assert "QuantizeLinear" in desc.details["quantization"]
    # ONNX Runtime's own metadata reads as words, not "metadata onnx.infer | onnxruntime.quant"
    if {p.key: p.value for p in m.metadata_props}.get("onnx.infer") == "onnxruntime.quant":
        assert desc.details["quantized by"].startswith("ONNX Runtime quantization")
    assert not any(key.startswith("metadata onnx") for key in desc.details)

    # quantizing a quantized graph: one line
    with pytest.raises(ConfigError, match="already quantized"):
        quantize(_opts(out, calib_dir, tmp_path / "again.onnx"))


def test_gate_emulates_qdq_independent_of_cpu_kernels(
    fp32_onnx: Path, calib_dir: Path, tmp_path: Path
) -> None:
    """The gate's figure is the Q/DQ graph's arithmetic (TensorRT's: INT8 products summed exactly,
    then scaled), not whatever integer kernels this CPU's ONNX Runtime fuses it into, nor the order
    its float kernels sum in: its sessions run no integer op, and ONNX's pure-numpy reference
    evaluator gives the same agreement (to 1e-4) on the same graph, on any CPU."""
    import platform

    import onnx
    from onnx import version_converter
    from onnx.reference import ReferenceEvaluator

    from segpipe.export.qdq_emulate import EMULATION, integer_convolutions, integer_ops
    from segpipe.export.quantize import image_files, load_images, quantize
    from segpipe.runtime.base import compare

    res = quantize(
        _opts(fp32_onnx, calib_dir, tmp_path / "e.int8.onnx", min_agreement=0.5, verify_images=calib_dir)
    )
    assert res.calibration["gate"] == EMULATION and res.target == "tensorrt"
    # the summary's heading says what the gate emulates for this target (a --target cpu file:
    # test_quantize_cpu.py), and the file records the figures the summary printed
    from inference_helpers import printed_wide

    from segpipe.cli.quantize import render_result
    from segpipe.export.int8_gate import recorded_gate
    from segpipe.export.quantize import read_calibration

    lines = printed_wide(render_result, res).splitlines()
    title = next(line for line in lines if "accuracy gate" in line)
    assert "as TensorRT computes INT8" in title and "CPU kernels" not in title, title
    header = lines[lines.index(title) + 2]
    from segpipe.runtime.comparator import COMPARE_COLUMNS  # export-onnx's columns too

    assert [c.strip() for c in header.strip("┃ ").split("┃")] == list(COMPARE_COLUMNS), header
    said = recorded_gate(read_calibration({p.key: p.value for p in onnx.load(str(res.path)).metadata_props}))
    assert [(g.source, g.images) for g in said] == [("held-out", 2), ("verify-images", 10)]
    assert [g.argmax_agreement for g in said] == pytest.approx([r.result.argmax_agreement for r in res.gate])
    printed = {
        line.split("│")[1].strip(): line.split("│")[5].strip()
        for line in lines
        if line.count("│") == 6 and "%" in line
    }
    assert printed == {g.source: f"{100 * g.argmax_agreement:.3f}%" for g in said}
    from segpipe.info import describe_model

    shown = describe_model(res.path).details["int8 gate"]
    assert shown.endswith("(TensorRT INT8 emulated)") and "on 10 images of --verify-images" in shown, shown
    # what the gate runs: no fused integer kernel; ORT's default optimizations would fuse some
    # (the QDQ fusions exist for x86-64 and ARM64), so the check can tell the two apart
    assert integer_ops(res.path) == [] and integer_ops(fp32_onnx) == []
    if platform.machine().lower() in ("x86_64", "amd64", "aarch64", "arm64"):
        assert "QLinearConv" in integer_ops(res.path, emulated=False)

    # the gate's verify-images row: 10 images, 40,960 pixels
    images = load_images(image_files(calib_dir, "x"), SIZE, "x")[0].astype(np.float32)

    def reference(proto) -> np.ndarray:  # numpy ops as the ONNX spec defines them
        ev = ReferenceEvaluator(version_converter.convert_version(proto, 21))
        return np.concatenate([ev.run(None, {"input_1": images[i : i + 1]})[0] for i in range(len(images))])

    qdq = onnx.load(str(res.path))
    exact, count = integer_convolutions(qdq)
    assert count == sum(n.op_type == "Conv" for n in qdq.graph.node) - 1  # all but the FP32 head
    fp32 = reference(onnx.load(str(fp32_onnx)))
    expected = compare(fp32, reference(exact), "seg", "logits")
    row = next(r for r in res.gate if r.source == "verify-images")
    assert row.images == len(images) == 10 and row.result.pixels == expected.pixels
    assert abs(row.result.argmax_agreement - expected.argmax_agreement) <= 1e-4
    assert abs(row.result.max_abs_diff - expected.max_abs_diff) <= 1e-4
    # the integer-sum form computes the Q/DQ graph as written; summed in float instead, rounding
    # differences move values across INT8 steps (99.42% with numpy's sums here, 99.97% with ORT's)
    as_written = compare(reference(exact), reference(qdq), "seg", "logits")
    assert as_written.argmax_agreement >= 0.99 and as_written.max_abs_diff < 0.1


def test_gate_fails_on_black_calibration_and_leaves_no_file(
    fp32_onnx: Path, calib_dir: Path, tmp_path: Path
) -> None:
    import cv2

    from segpipe.export.quantize import quantize

    black = tmp_path / "black"
    black.mkdir()
    for i in range(4):
        cv2.imwrite(str(black / f"b{i}.png"), np.zeros((64, 64, 3), np.uint8))
    out_dir = tmp_path / "out"
    out = out_dir / "bad.int8.onnx"
    with pytest.raises(ExportError, match="INT8 gate failed .* nothing was written") as e:
        quantize(_opts(fp32_onnx, black, out, verify_images=calib_dir, min_agreement=0.9))
    msg = str(e.value)
    assert "verify-images" in msg and "\n" not in msg
    assert not out.exists() and list(out_dir.iterdir()) == []
    # the refusal says what to try next, in quantize's own flags, and the threshold that would pass
    assert f"segpipe quantize {fp32_onnx}" in msg and "more images like the deployed ones" in msg
    assert "--calib-method entropy or percentile (now minmax)" in msg and "--quantizer modelopt" in msg
    assert "--keep-fp32" not in msg  # input and head are already FP32 by default: nothing to offer
    agreement = float(re.search(r"model (\d+\.\d+)% on", msg).group(1))
    assert "below --int8-min-agreement 0.9 (90.00%)" in msg
    accept = float(re.search(r"--int8-min-agreement (0\.\d{4}) \((\d+\.\d+)%\) accepts it", msg).group(1))
    assert accept <= agreement / 100 < accept + 1e-4
    res = quantize(_opts(fp32_onnx, black, out, verify_images=calib_dir, min_agreement=accept))
    assert out.exists() and res.worst.result.argmax_agreement >= accept
    # with parts quantized, keeping them in FP32 is offered
    with pytest.raises(ExportError, match=r"--keep-fp32 input,head \(now none: input and head quantized\)"):
        quantize(_opts(fp32_onnx, black, out_dir / "b.onnx", min_agreement=0.9999, keep_fp32=()))


def test_bad_input_is_one_line(fp32_onnx: Path, calib_dir: Path, tmp_path: Path) -> None:
    from segpipe.export.quantize import quantize

    out = tmp_path / "x.int8.onnx"
    with pytest.raises(ConfigError, match="folder does not exist"):
        quantize(_opts(fp32_onnx, tmp_path / "nope", out))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"empty: no images"):
        quantize(_opts(fp32_onnx, empty, out))
    broken = tmp_path / "broken"
    shutil.copytree(calib_dir, broken)
    (broken / "zz_broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="zz_broken.jpg"):
        quantize(_opts(fp32_onnx, broken, out, holdout=0))
    with pytest.raises(ConfigError, match="end in .onnx"):
        quantize(_opts(fp32_onnx, calib_dir, tmp_path / "x.engine"))
    with pytest.raises(ConfigError, match="overwrite"):
        quantize(_opts(fp32_onnx, calib_dir, fp32_onnx))
    with pytest.raises(ConfigError, match="--calib-count 0"):
        _opts(fp32_onnx, calib_dir, out, calib_count=0)
    with pytest.raises(ConfigError, match="--keep-fp32 tail"):
        _opts(fp32_onnx, calib_dir, out, keep_fp32=("tail",))
    assert not out.exists()


def test_cli_quantize_errors_are_one_line(fp32_onnx: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from segpipe.cli.app import app

    runner = CliRunner()
    res = runner.invoke(app, ["quantize", str(fp32_onnx), "--calib-images", str(tmp_path / "none")])
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--calib-images" in lines[0] and "does not exist" in lines[0]
    res = runner.invoke(app, ["quantize", str(fp32_onnx)])
    assert res.exit_code == 2 and "--calib-images" in res.output and len(res.output.strip().splitlines()) == 1


def test_export_onnx_int8_flags_checked_before_export(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from segpipe.cli.app import app

    runner = CliRunner()
    out = tmp_path / "m.onnx"
    base = ["export-onnx", "--model", str(tiny_checkpoint), "--model-out", str(out)]
    cases = [
        (["--int8"], "--int8 needs --calib-images DIR"),
        (["--calib-images", str(tmp_path)], "--calib-images is for --int8"),
        (["--int8", "--half", "--calib-images", str(tmp_path)], "--int8 with --half"),
        (["--int8", "--calib-images", str(tmp_path / "none")], "folder does not exist"),
    ]
    for extra, message in cases:
        res = runner.invoke(app, base + extra)
        assert res.exit_code == 1 and message in res.output, res.output
        assert len([ln for ln in res.output.splitlines() if ln.strip()]) == 1
    assert not out.exists()


def test_export_onnx_int8_writes_both_graphs(
    tiny_checkpoint: Path, color_dataset: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from segpipe.cli.app import app
    from segpipe.info import describe_model

    out = tmp_path / "m.onnx"
    args = ["export-onnx", "--model", str(tiny_checkpoint), "--model-out", str(out), "--int8", "-q"]
    args += [
        "--calib-images",
        str(color_dataset / "images"),
        "--calib-count",
        "4",
        "--int8-min-agreement",
        "0.5",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert describe_model(out).info.precision == "fp32"
    assert describe_model(tmp_path / "m.int8.onnx").info.precision == "int8"
    assert "INT8 quantization" in res.output and "accuracy gate" in res.output


def test_benchmark_precision_ladder(fp32_onnx: Path, calib_dir: Path, tmp_path: Path, capsys) -> None:
    from segpipe.benchmark import benchmark
    from segpipe.data.synthetic import make_dataset
    from segpipe.export.quantize import quantize
    from segpipe.ladder import LADDER_COLUMNS, precision_ladder
    from segpipe.options import BenchmarkOptions

    res8 = quantize(_opts(fp32_onnx, calib_dir, tmp_path / "tiny.int8.onnx", min_agreement=0.5))
    int8 = res8.path
    data = make_dataset(tmp_path / "ds", count=3, size=SIZE, num_classes=3, seed=9)
    opts = BenchmarkOptions(models=(int8, fp32_onnx), warmup=1, runs=2, device="cpu", data_root=data)
    col = {name: i for i, name in enumerate(LADDER_COLUMNS)}
    result = benchmark(opts)
    rows = precision_ladder(result)
    fp32, q8 = rows
    assert [r[0] for r in rows] == ["FP32", "INT8"] and fp32[col["vs FP32"]] == "reference"
    assert fp32[col["mIoU vs FP32"]] == "+0.00 pt"
    assert float(q8[col["size MB"]]) < float(fp32[col["size MB"]]) / 2  # INT8 weights: under half the file
    assert q8[col["mIoU"]] != "-" and q8[col["mIoU vs FP32"]].endswith(" pt")
    # a speed ratio, or 'unsteady' when this (shared, busy) machine's timings spread too widely
    assert q8[col["vs FP32"]].endswith(("x faster", "x slower")) or q8[col["vs FP32"]] == "unsteady"
    single = BenchmarkOptions(models=(fp32_onnx,), warmup=0, runs=1, device="cpu")
    assert precision_ladder(benchmark(single)) == []

    # two figures for one file explain each other: the benchmark's own (random pixels) and, beside
    # it, the one quantize's gate measured on held-out images and recorded in the file
    from segpipe.cli.benchmark import agreement_note, render

    m8, m32 = result.models
    assert m32.gate_agreement is None and m8.gate_agreement == pytest.approx(
        res8.worst.result.argmax_agreement
    )
    shown = f"{100 * m8.agreement:.2f}% (gate {100 * m8.gate_agreement:.2f}%)"
    assert m8.agreement_text() == q8[col["argmax vs FP32"]] == shown
    note = agreement_note(result)
    gate = f"{100 * m8.gate_agreement:.2f}% on 2 held-out images (TensorRT INT8 emulated)"
    assert (
        "on the timed batch: uniform random pixels (--seed 0)" in note and f"tiny.int8.onnx: {gate}" in note
    )
    from segpipe.cli.common import console

    capsys.readouterr()
    width, console.width = console.width, 400  # one table row a line, however wide the figures
    try:
        render(result)  # a pipe, as here: the figures whole
    finally:
        console.width = width
    printed = " ".join(capsys.readouterr().out.split())
    assert "argmax vs FP32 ┃" in printed and "(random pixels) ┃" in printed and shown in printed and f"note: {note}" in printed
    assert result.to_dict()["models"][0]["gate"] == gate and agreement_note(benchmark(single)) == ""


def test_recorded_gate_reads_damage_as_missing() -> None:
    """The gate figures in a file only describe: a damaged record reads as none, never an error."""
    from segpipe.export.int8_gate import gate_summary, recorded_gate

    good = {"source": "held-out", "images": 3, "argmax_agreement": 0.9988}
    assert recorded_gate({"gate_figures": {"rows": [good]}})[0].text() == "99.88% on 3 held-out images"
    assert gate_summary({"gate_figures": {"rows": [good]}, "target": "x"})[1].endswith(
        "(TensorRT INT8 emulated)"
    )
    for bad in ({"argmax_agreement": float("nan")}, {"argmax_agreement": 1.5}, {"images": True},
                {"images": 0}, {"source": "[red]x"}, {"source": "a" * 41}, {"argmax_agreement": "1"}):  # fmt: skip
        assert recorded_gate({"gate_figures": {"rows": [good, {**good, **bad}]}}) == [], bad
    for record in (
        None,
        {},
        {"gate_figures": []},
        {"gate_figures": {"rows": "x"}},
        {"gate_figures": {"rows": [1]}},
    ):
        assert recorded_gate(record) == [] and gate_summary(record) is None


def test_calibration_sees_the_pixels_inference_feeds(fp32_onnx: Path, calib_dir: Path) -> None:
    """Calibration and the gate's images (quantize), --verify-images (export-onnx, build-trt) and
    the inference pipeline (visualize, evaluate, serve) resize an image to the network the same
    way: each calibration image equals what the pipeline hands the model for the same file, the
    80x48 ones included (calibration used INTER_AREA, inference bilinear)."""
    import cv2
    import onnx

    from segpipe.export.quantize import _images, graph_io
    from segpipe.modelinfo import ModelInfo
    from segpipe.runtime import load_runner
    from segpipe.runtime.inputs import folder_images, image_files
    from segpipe.runtime.pipeline import predict

    proto = onnx.load(str(fp32_onnx))
    io_ = graph_io(proto, ModelInfo.from_metadata({p.key: p.value for p in proto.metadata_props}), fp32_onnx)
    calib, calib_files, held_files, sources, _ = _images(_opts(fp32_onnx, calib_dir, fp32_onnx), io_, [])
    seen = np.concatenate([calib, sources["held-out"]])
    files = calib_files + held_files

    class Recording:  # the runner the pipeline calls, keeping what it was fed
        def __init__(self, runner) -> None:
            self.runner, self.fed = runner, []

        def __getattr__(self, name: str):
            return getattr(self.runner, name)

        def __call__(self, x: np.ndarray) -> np.ndarray:
            self.fed.append(np.array(x))
            return self.runner(x)

    with load_runner(fp32_onnx, "cpu") as runner:
        rec = Recording(runner)
        assert all(p.error is None for p in predict(rec, files, size=io_.size, batch_size=1))
    fed = np.concatenate(rec.fed)
    assert fed.shape == seen.shape == (10, SIZE[1], SIZE[0], 3) and fed.dtype == seen.dtype == np.uint8
    assert np.array_equal(fed, seen)
    # export-onnx's and build-trt's --verify-images: the same pixels
    everything = image_files(calib_dir, "x")
    order = [everything.index(f) for f in files]
    assert np.array_equal(folder_images(calib_dir, SIZE, 100)[order], seen)
    # not vacuous: the resized images are ones where the interpolation shows
    small = [i for i, f in enumerate(files) if cv2.imread(str(f)).shape[:2] != (SIZE[1], SIZE[0])]
    assert len(small) == 4
    area = cv2.resize(cv2.imread(str(files[small[0]]))[:, :, ::-1], SIZE, interpolation=cv2.INTER_AREA)
    assert not np.array_equal(area, seen[small[0]])


def test_split_holdout() -> None:
    from segpipe.export.quantize import split_holdout

    files = [Path(f"{i:02d}.png") for i in range(20)]
    calib, held = split_holdout(files, holdout=8, calib_count=64, seed=0)
    assert len(held) == 5 and len(calib) == 15 and not set(calib) & set(held)  # at most a quarter held out
    assert split_holdout(files, holdout=0, calib_count=64, seed=0) == (files, [])
    assert len(split_holdout(files, holdout=2, calib_count=4, seed=0)[0]) == 4
    assert split_holdout(files[:1], holdout=8, calib_count=64, seed=0) == (files[:1], [])


def test_old_opset_is_converted_to_13(calib_dir: Path, tmp_path: Path) -> None:
    import onnx

    from segpipe.export.quantize import quantize
    from segpipe.progress import RecordingReporter

    src = tiny_onnx(tmp_path / "op12.onnx", opset=12)
    rec = RecordingReporter()
    res = quantize(_opts(src, calib_dir, tmp_path / "op12.int8.onnx", min_agreement=0.5), rec)
    assert any("opset 12; converted to opset 13" in w for w in rec.warnings)
    out = onnx.load(str(res.path))
    assert next(o.version for o in out.opset_import if o.domain in ("", "ai.onnx")) == 13
    onnx.checker.check_model(out)


def test_gate_on_miou_drop(fp32_onnx: Path, tmp_path: Path) -> None:
    import cv2

    from segpipe.data.synthetic import make_dataset
    from segpipe.export.quantize import quantize

    black = tmp_path / "black"
    black.mkdir()
    for i in range(4):
        cv2.imwrite(str(black / f"b{i}.png"), np.zeros((64, 64, 3), np.uint8))
    data = make_dataset(tmp_path / "ds", count=6, size=SIZE, num_classes=3, seed=11)
    out = tmp_path / "m.int8.onnx"
    opts = _opts(fp32_onnx, black, out, min_agreement=0.01, data_root=data, max_miou_drop=0.0)
    with pytest.raises(ExportError, match=r"mIoU on --data-root .* more than --max-miou-drop 0 points") as e:
        quantize(opts)
    # one unit: mIoU in percent, its fall in points (never a 0.6923 fraction beside points)
    msg = str(e.value)
    fp32, int8, drop = re.search(
        r"from (\d+\.\d\d)% \(FP32\) to (\d+\.\d\d)% \(INT8\), (\d+\.\d\d) points", msg
    ).groups()
    assert abs(float(fp32) - float(int8) - float(drop)) <= 0.011 and not re.search(r"\b0\.\d{4}\b", msg)
    accept = float(re.search(r"--max-miou-drop (\d+\.\d\d) accepts it", msg).group(1))
    assert quantize(opts.replace(max_miou_drop=accept)).path == out
    out.unlink()
    assert not out.exists()
    res = quantize(opts.replace(max_miou_drop=100.0))
    assert res.miou_int8 < res.miou_fp32 and out.exists()


def test_info_says_what_the_int8_file_was_quantized_for(fp32_onnx: Path, tmp_path: Path) -> None:
    """Read from the graph itself: TensorRT's signed symmetric per-channel Q/DQ, or the U8S8 form
    ONNX Runtime's CPU kernels prefer (which TensorRT does not take)."""
    import onnx

    from segpipe.export.quantize import graph_io, quantize_ort
    from segpipe.info import describe_model
    from segpipe.modelinfo import ModelInfo

    proto = onnx.load(str(fp32_onnx))
    info = ModelInfo.from_metadata({p.key: p.value for p in proto.metadata_props})
    io_ = graph_io(proto, info, fp32_onnx)
    calib = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3)).astype(np.float32)
    s8 = tmp_path / "s8.onnx"
    quantize_ort(fp32_onnx, s8, io_, calib, "minmax", [])
    said = describe_model(s8).details["quantized for"]
    assert said.startswith("TensorRT") and "S8S8" in said and "symmetric" in said
    assert "weights per output channel" in said
    u8 = tmp_path / "u8.onnx"
    quantize_ort(fp32_onnx, u8, io_, calib, "minmax", [], activation="uint8")
    said = describe_model(u8).details["quantized for"]
    assert said.startswith("ONNX Runtime on the CPU: U8S8") and "not TensorRT" in said
    assert "quantized for" not in describe_model(fp32_onnx).details


def test_precision_ladder_joins_the_cpu_runtimes_auto_chose() -> None:
    """The demo's three files: FP32 and FP16 on ONNX Runtime, INT8 on OpenVINO (``--runtime auto``)
    are one ladder of three rows (the INT8 rung was dropped when FP16 was there too); with
    ``--runtime all`` each runtime keeps its own ladder."""
    from types import SimpleNamespace

    from segpipe.ladder import precision_ladder

    def model(name: str, precision: str, backend: str, ms: float) -> SimpleNamespace:
        return SimpleNamespace(
            model=name, precision=precision, backend=backend, size_mb=1.0, p50_ms=ms, steady=True,
            miou=0.5, latency_text=lambda: f"{ms:.2f}", agreement_text=lambda: "99.00%",
        )  # fmt: skip

    auto = [model("m.onnx", "fp32", "onnxruntime", 20), model("m.fp16.onnx", "fp16", "onnxruntime", 30),
            model("m.int8.onnx", "int8", "openvino", 5)]  # fmt: skip
    rows = precision_ladder(SimpleNamespace(models=auto))
    assert [(r[0], r[2]) for r in rows] == [("FP32", "onnxruntime"), ("FP16", "onnxruntime"), ("INT8", "openvino")]
    assert rows[2][5] == "4.00x faster"
    both = [model("m.onnx", "fp32", b, 20) for b in ("onnxruntime", "openvino")]
    both += [model("m.int8.onnx", "int8", b, 10) for b in ("onnxruntime", "openvino")]
    rows = precision_ladder(SimpleNamespace(models=both))
    assert [(r[0], r[2]) for r in rows] == [
        ("FP32", "onnxruntime"), ("INT8", "onnxruntime"), ("FP32", "openvino"), ("INT8", "openvino")
    ]  # fmt: skip
