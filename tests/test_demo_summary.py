"""``segpipe demo``'s summary names the backend that really ran each evaluation: ``--runtime auto``
runs the ONNX model on OpenVINO where it is installed, and the line said "ONNX Runtime" regardless."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from segpipe.demo import BACKEND_TITLES, heldout_line
from segpipe.runtime.base import RUNTIMES


@pytest.mark.parametrize(("backend", "title"), [("openvino", "OpenVINO"), ("onnxruntime", "ONNX Runtime")])
def test_heldout_line_names_the_backend_that_ran(backend: str, title: str) -> None:
    ev = SimpleNamespace(backend="pytorch", miou=0.86041)
    ev_onnx = SimpleNamespace(backend=backend, miou=0.86039)
    line = heldout_line(ev, ev_onnx)
    assert line.startswith(f"held-out mIoU: PyTorch 0.8604, {title} 0.8604")
    other = "ONNX Runtime" if backend == "openvino" else "OpenVINO"
    assert other not in line


def test_every_runtime_has_a_title() -> None:
    """A backend added to runtime/ is named in the summary, not printed as its internal key."""
    assert set(RUNTIMES) <= set(BACKEND_TITLES)


def test_says_once_drops_a_repeated_note_and_passes_the_rest() -> None:
    from segpipe.progress import RecordingReporter, SaysOnce

    rec = RecordingReporter()
    once = SaysOnce(rec, "/x/heldout is not the data set")
    for model in ("a.pth", "a.onnx", "a.int8.onnx"):
        once.info(f"/x/heldout is not the data set {model} trained on: reading all 16 images")
        once.info(f"evaluated {model}")
    once.warn("careful")
    assert rec.infos == [
        "/x/heldout is not the data set a.pth trained on: reading all 16 images",
        "evaluated a.pth",
        "evaluated a.onnx",
        "evaluated a.int8.onnx",
    ]
    assert rec.warnings == ["careful"]


def test_an_interrupted_demo_names_no_flag_demo_lacks(tmp_path, monkeypatch) -> None:
    """SIGTERM during the demo's training said "run the same command with --resume", and
    `segpipe demo --resume` is "No such option": the demo's line names commands that exist."""
    import segpipe.training
    from segpipe.demo import train_step
    from segpipe.training.guard import TrainingInterrupted, resume_hint

    last = tmp_path / "train" / "last.pth"
    hint = resume_hint(last, last.parent / "options.yaml", None, "--resume")

    def stopped(opts, reporter):
        raise TrainingInterrupted(
            f"interrupted by SIGTERM at epoch 1, step 3 of 4; saved {last}; {hint}", 143, last
        )

    monkeypatch.setattr(segpipe.training, "train", stopped)
    with pytest.raises(TrainingInterrupted) as info:
        train_step(tmp_path / "data", tmp_path, 1, "cpu", None, lambda kind, value: None)
    msg = str(info.value)
    assert info.value.exit_code == 143 and info.value.last_path == last
    assert "--resume" not in msg.replace("has no --resume", "")
    assert msg.startswith(f"interrupted by SIGTERM at epoch 1, step 3 of 4; saved {last}; segpipe demo")
    assert f"segpipe train --model {last} --config {last.parent / 'options.yaml'}" in msg
    assert "\n" not in msg
