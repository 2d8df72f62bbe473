"""The one comparator over runners (segpipe.runtime.comparator): known differences give known
figures, per source, padding left out; a failing runner is one line naming it; one place opens
ONNX Runtime sessions."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import segpipe
from segpipe.errors import ConfigError, DataError, ExportError
from segpipe.runtime.comparator import Comparator, CompareRow, worst
from segpipe.runtime.inputs import VerifyBatch, fixed_batches


def _logits(batch: np.ndarray) -> np.ndarray:
    """2-class logits N×2×H×W from the red channel: class 1 where red > 127, margin 1 or more."""
    red = batch[..., 0].astype(np.float32)
    return np.stack([127.5 - red, red - 127.5], axis=1)


#: 2 channels × 8 columns: 14 values 0.25 apart, and 254.75 and 255.25 in the flipped column.
MEAN = (14 * 0.25 + 254.75 + 255.25) / 16


def _batches() -> list[VerifyBatch]:
    ramp = np.tile(np.arange(0, 256, 32, dtype=np.uint8), (4, 1))  # 4×8, red 0..224
    img = np.repeat(ramp[None, :, :, None], 3, axis=3)  # 1×4×8×3
    images = np.concatenate([img, img, img])  # 3 images
    # batches of 2: "random" is 2 batches, the last padded with a repeat (not compared)
    return fixed_batches("random", images, 2) + fixed_batches("images", images[:2], 2)


def test_known_difference_gives_known_figures() -> None:
    batches = _batches()

    def shifted(batch: np.ndarray) -> np.ndarray:  # +0.25 everywhere, and one flipped column
        out = _logits(batch) + 0.25
        out[:, :, :, 0] = out[:, ::-1, :, 0]  # column 0: red 0 -> class 1 instead of 0
        return out

    runs = Comparator.run({"ref": _logits, "cand": shifted}, batches, where="m.onnx")
    assert [len(o) for o in runs.outputs["ref"]] == [2, 1, 2]  # the padding is cut off
    rows = Comparator.compare_accuracy(runs, "ref", "cand", where="m.onnx")
    assert [(r.source, r.images) for r in rows] == [("random", 3), ("images", 2)]
    for row in rows:
        r = row.result
        assert r.pixels == row.images * 4 * 8
        assert r.argmax_agreement == pytest.approx(7 / 8)  # one column of eight disagrees
        # the flipped column swaps 127.5 and -127.5, then +0.25: |diff| 254.75 and 255.25 there
        assert r.max_abs_diff == pytest.approx(255.25)
        assert r.mean_abs_diff == pytest.approx(MEAN)
        assert row.ok(0.875) and not row.ok(0.876)
    assert rows[0].cells() == ["random", "3", "255", "32.1", "87.500%"]
    assert worst([rows[1], CompareRow("x", 1, rows[0].result)]).source == "images"


def test_identical_runners_agree_exactly_and_dtype_is_cast_once() -> None:
    seen: list[np.dtype] = []

    def ref(batch: np.ndarray) -> np.ndarray:
        seen.append(batch.dtype)
        return _logits(batch)

    runs = Comparator.run({"a": ref, "b": _logits}, _batches(), where="x", dtype=np.float32)
    assert set(seen) == {np.dtype(np.float32)}
    (row, _) = Comparator.compare_accuracy(runs, "a", "b", where="x")
    assert row.result.argmax_agreement == 1.0 and row.result.max_abs_diff == 0.0


def test_a_runner_that_raises_is_one_line_naming_it() -> None:
    def broken(batch: np.ndarray) -> np.ndarray:
        raise RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : bad input\nstack trace here")

    with pytest.raises(ExportError) as e:
        Comparator.run({"ref": _logits, "ONNX Runtime": broken}, _batches(), where="out/m.onnx")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("out/m.onnx: ONNX Runtime failed on a 2x4x8x3 uint8 batch: ")
    assert "INVALID_ARGUMENT : bad input" in msg and "stack trace" not in msg
    # the error class is the check's; a SegpipeError a runner raises passes through as it is
    with pytest.raises(DataError, match="failed on"):
        Comparator.run({"x": broken}, _batches(), where="w", error=DataError)

    def refuses(batch: np.ndarray) -> np.ndarray:
        raise ConfigError("--device cuda: no GPU")

    with pytest.raises(ConfigError, match="^--device cuda: no GPU$"):
        Comparator.run({"x": refuses}, _batches(), where="w")


def test_outputs_of_other_shapes_are_one_line() -> None:
    runs = Comparator.run(
        {"PyTorch": _logits, "ONNX Runtime": lambda b: _logits(b)[:, :1]}, _batches(), where="m"
    )
    with pytest.raises(
        ExportError, match=r"^m: ONNX Runtime output shape \(3, 1, 4, 8\) differs from PyTorch's"
    ):
        Comparator.compare_accuracy(runs, "PyTorch", "ONNX Runtime", where="m")


def test_one_place_opens_onnxruntime_sessions() -> None:
    """Every session (runners, verification, the INT8 gate) comes from runtime/onnxruntime.py's
    ``open_session``: the options differ, the place does not."""
    root = Path(segpipe.__file__).parent
    calls = [
        (p.relative_to(root).as_posix(), n)
        for p in sorted(root.rglob("*.py"))
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\bInferenceSession\(", line)
    ]
    assert [path for path, _ in calls] == ["runtime/onnxruntime.py"], calls
