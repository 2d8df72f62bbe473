"""The runners (PyTorch, ONNX Runtime) against each other, and the shared inference pipeline."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from inference_helpers import ENCODER, export_onnx, make_checkpoint, save_bare

from segpipe.errors import CheckpointError, ConfigError, DataError
from segpipe.runtime import compare, load_runner
from segpipe.runtime.onnxruntime import OnnxRunner
from segpipe.runtime.pipeline import list_images, network_size, predict, predict_arrays, restore_labels
from segpipe.runtime.torch import TorchRunner


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """One random tiny model as a checkpoint and as two ONNX exports (float dynamic; uint8 fixed)."""
    d = tmp_path_factory.mktemp("models")
    pth, model, info = make_checkpoint(d / "m.pth", seed=1)
    return {
        "pth": pth,
        "model": model,
        "info": info,
        "onnx": export_onnx(model, info, d / "m.onnx"),
        "onnx_u8_labels_b1": export_onnx(
            model, info, d / "fixed.onnx", dynamic=False, uint8=True, output="labels"
        ),
        "dir": d,
    }


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(3, 64, 96, 3), dtype=np.uint8)


def test_torch_and_onnxruntime_agree(models, batch):
    with load_runner(models["pth"], "cpu") as ref, load_runner(models["onnx"], "cpu") as cand:
        assert isinstance(ref, TorchRunner) and isinstance(cand, OnnxRunner)
        assert cand.info.num_classes == 3 and cand.info.class_names == models["info"].class_names
        assert cand.fixed_size is None and cand.fixed_batch is None
        a, b = ref(batch), cand(batch)
        assert a.shape == b.shape == (3, 3, 64, 96)
        result = compare(a, b)
        assert result.argmax_agreement == 1.0, result
        assert result.max_abs_diff < 1e-3, result
        # float32 0-255 input gives the same as uint8
        assert compare(a, cand(batch.astype(np.float32))).argmax_agreement == 1.0
        # the random model does not predict one class everywhere (the comparison means something)
        assert len(np.unique(ref.predict_labels(batch))) > 1


def test_fixed_batch_uint8_labels_graph_is_looped(models, batch):
    x = batch[:, :, :64]  # the fixed graph takes 64x64 only
    with TorchRunner(models["pth"], "cpu") as ref, OnnxRunner(models["onnx_u8_labels_b1"], "cpu") as cand:
        assert cand.fixed_batch == 1 and cand.fixed_size == (64, 64)
        assert cand.output_kind == "labels" and cand.info.input_dtype == "uint8"
        labels = cand(x)
        assert labels.shape == (3, 64, 64)
        np.testing.assert_array_equal(labels, ref.predict_labels(x))
        with pytest.raises(ConfigError, match="fixed input size; use --size 64 64"):
            network_size(cand, (96, 64))


def test_onnx_without_metadata(models, tmp_path):
    model, info = models["model"], models["info"]
    bare_logits = export_onnx(model, info, tmp_path / "bare.onnx", metadata=False)
    raw = {"mean": (0, 0, 0), "std": (1, 1, 1)}  # DeployModel normalises inside: pixels as they are
    with OnnxRunner(bare_logits, "cpu", **raw) as r:  # the class count is read off the output's channels
        assert r.info.num_classes == 3 and r.info.layout == "NHWC"
    with pytest.raises(
        CheckpointError, match="--num-classes 4 contradicts .*bare.onnx: its output has 3 channels"
    ):
        OnnxRunner(bare_logits, "cpu", num_classes=4, **raw)
    bare_labels = export_onnx(model, info, tmp_path / "bare_labels.onnx", metadata=False, output="labels")
    with pytest.raises(CheckpointError, match=r"bare_labels.onnx has no segpipe metadata.*--num-classes"):
        OnnxRunner(bare_labels, "cpu", **raw)
    with OnnxRunner(bare_labels, "cpu", num_classes=3, **raw) as r:
        assert r.output_kind == "labels" and r.info.num_classes == 3


def test_metadata_contradicted_by_num_classes(models):
    with pytest.raises(CheckpointError, match="--num-classes 5 contradicts .*m.onnx.*3 classes"):
        load_runner(models["onnx"], "cpu", num_classes=5)
    with pytest.raises(CheckpointError, match="--num-classes 5 contradicts"):
        load_runner(models["pth"], "cpu", num_classes=5)


def test_bare_state_dict(models, batch, tmp_path):
    bare = save_bare(tmp_path / "old.pth", models["model"])
    with (
        TorchRunner(bare, "cpu", arch="FPN", encoder=ENCODER, num_classes=3) as r,
        TorchRunner(models["pth"], "cpu") as ref,
    ):
        assert r.info.num_classes == 3
        np.testing.assert_allclose(r(batch), ref(batch), atol=1e-5)


def test_bad_model_files(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all" * 10)
    with pytest.raises(CheckpointError, match="junk.onnx is not a loadable ONNX model"):
        load_runner(junk, "cpu")
    with pytest.raises(CheckpointError, match=r"unknown model file type '\.h5'"):
        load_runner(tmp_path / "model.h5")
    with pytest.raises(CheckpointError, match="missing.onnx does not exist"):
        load_runner(tmp_path / "missing.onnx")


def test_cuda_provider_missing_is_one_line(models):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(ConfigError, match="--device cuda: this onnxruntime has no CUDA provider"):
        OnnxRunner(models["onnx"], "cuda")


def test_runner_closes(models, batch):
    with OnnxRunner(models["onnx"], "cpu") as r:
        r(batch)
    with pytest.raises(RuntimeError, match="closed"):
        r(batch)


# ---- pipeline ------------------------------------------------------------------------------------
def test_restore_labels_resizes_logits_then_argmax():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(5, 8, 12)).astype(np.float32)
    labels = restore_labels(logits, (20, 30), num_classes=5)
    assert labels.shape == (20, 30) and labels.dtype == np.uint8
    hwc = cv2.resize(
        np.ascontiguousarray(logits.transpose(1, 2, 0)), (30, 20), interpolation=cv2.INTER_LINEAR
    )
    np.testing.assert_array_equal(labels, hwc.argmax(axis=2))
    # same size: a plain argmax; a class map is resized with nearest neighbour; binary thresholds
    np.testing.assert_array_equal(restore_labels(logits, (8, 12)), logits.argmax(0))
    cmap = np.array([[0, 1], [2, 3]], dtype=np.int64)
    np.testing.assert_array_equal(
        restore_labels(cmap, (4, 4), output_kind="labels"), np.kron(cmap, np.ones((2, 2), dtype=np.int64))
    )
    one = np.array([[[-1.0, 2.0]]], dtype=np.float32)
    np.testing.assert_array_equal(restore_labels(one, (1, 2), mode="binary"), [[0, 1]])
    assert restore_labels(logits, (4, 4), num_classes=300).dtype == np.uint16


def test_predict_in_order_with_failures(models, tmp_path, batch):
    paths = []
    for i, img in enumerate(batch):
        p = tmp_path / f"img{i}.png"
        cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        paths.append(p)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG garbage")
    keys = [paths[0], bad, paths[1], paths[2]]
    with OnnxRunner(models["onnx"], "cpu") as r:
        preds = list(predict(r, keys, size=(64, 64), batch_size=2, workers=2))
        direct = predict_arrays(r, list(batch), size=(64, 64), batch_size=3)
        expected_net = r.predict_labels(np.stack([cv2.resize(b, (64, 64)) for b in batch]))
    assert sorted(str(p.key) for p in preds) == sorted(str(k) for k in keys)
    failed = [p for p in preds if p.error is not None]
    assert [p.key for p in failed] == [bad] and "broken.png" in str(failed[0].error)
    good = [p for p in preds if p.error is None]
    assert [p.key for p in good] == [paths[0], paths[1], paths[2]]
    for p, d, img in zip(good, direct, batch, strict=True):
        assert p.labels.shape == (64, 96) == d.shape
        np.testing.assert_array_equal(p.labels, d)
        np.testing.assert_array_equal(p.image, img)
    # at the network size the pipeline's class map is the runner's own argmax (resize only outside)
    with OnnxRunner(models["onnx"], "cpu") as r:
        same = predict_arrays(r, [cv2.resize(b, (64, 64)) for b in batch], size=(64, 64))
    np.testing.assert_array_equal(np.stack(same), expected_net)


def test_network_size_checks_the_stride(models):
    with TorchRunner(models["pth"], "cpu") as r:
        assert network_size(r) == (64, 64)
        assert network_size(r, (96, 32)) == (96, 32)
        with pytest.raises(ConfigError, match=r"--size 100 64: .*output stride 32.*width 100 \(try 96"):
            network_size(r, (100, 64))


def test_list_images(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("a.png", "b.JPG", "sub/c.bmp", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.png", "b.JPG"]
    assert [p.name for p in list_images(tmp_path, recursive=True)] == ["a.png", "b.JPG", "c.bmp"]
    assert list_images(tmp_path / "a.png") == [tmp_path / "a.png"]
    with pytest.raises(DataError, match=r"holds no images \(read: \.png, \.jpg.*pass --recursive"):
        list_images(_only_nested(tmp_path))
    with pytest.raises(DataError, match="notes.txt: not an image file type"):
        list_images(tmp_path / "notes.txt")
    with pytest.raises(DataError, match="nothere does not exist"):
        list_images(tmp_path / "nothere")


def _only_nested(root):
    d = root / "nested_only"
    (d / "deeper").mkdir(parents=True)
    (d / "deeper" / "x.png").write_bytes(b"x")
    return d


def test_reads_what_segpipe_export_onnx_writes(models, batch, tmp_path):
    """A fixed-size, batch-1 export taking uint8 and giving the class map (no flags needed)."""
    from segpipe.export.onnx import export_onnx as segpipe_export
    from segpipe.options import OnnxExportOptions

    x = batch[:, :, :64]
    out = tmp_path / "exported.onnx"
    segpipe_export(
        OnnxExportOptions(
            model=models["pth"], output=out, input_dtype="uint8", output_kind="labels", verify=False
        )
    )
    with load_runner(out, "cpu") as r, TorchRunner(models["pth"], "cpu") as ref:
        assert r.fixed_batch == 1 and r.fixed_size == (64, 64) and r.output_kind == "labels"
        assert r.info.class_names == models["info"].class_names and r.info.input_dtype == "uint8"
        np.testing.assert_array_equal(r.predict_labels(x), ref.predict_labels(x))


def test_a_folder_named_like_a_model_is_said_to_be_a_folder(tmp_path):
    folder = tmp_path / "m.onnx"
    folder.mkdir()
    with pytest.raises(CheckpointError, match=r"m\.onnx is a folder, not a model file \(segpipe info .* lists"):
        load_runner(folder, "cpu")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_runner(tmp_path / "gone.onnx", "cpu")


class _Warnings:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warn(self, text: str) -> None:
        self.lines.append(text)

    info = warn


def test_runner_keywords_are_one_declaration_lenient_drops_with_one_warning(models):
    """Every runner takes RunnerOptions' keywords: flags for models without a description are
    refused by one that has it, or, given for several models at once (lenient), ignored for it in
    one warning naming the flags given; an unknown keyword is a programming error."""
    onnx, pth = models["onnx"], models["pth"]
    with pytest.raises(CheckpointError, match="carries segpipe metadata"):
        OnnxRunner(onnx, "cpu", mean=(0, 0, 0), std=(1, 1, 1))
    rec = _Warnings()
    with OnnxRunner(onnx, "cpu", mean=(0, 0, 0), std=(1, 1, 1), lenient=True, reporter=rec) as r:
        assert r.options.lenient and r.options.mean == (0, 0, 0)  # as given; the model ignored them
    assert rec.lines == [f"{onnx} carries segpipe metadata: --mean/--std ignored for it"]
    with pytest.raises(CheckpointError, match="--input-layout nhwc: .* is a PyTorch checkpoint"):
        TorchRunner(pth, "cpu", input_layout="nhwc")
    rec = _Warnings()
    with load_runner(
        pth, "cpu", input_layout="nhwc", mean=(1, 2, 3), std=(4, 5, 6), lenient=True, reporter=rec
    ):
        pass
    assert rec.lines == [
        f"{pth} is a PyTorch checkpoint: --input-layout ignored for it",
        f"{pth} carries its own normalisation: --mean/--std ignored for it",
    ]
    with pytest.raises(TypeError, match="bogus"):
        OnnxRunner(onnx, "cpu", bogus=1)
