"""``segpipe demo``'s summary names the backend that really ran each evaluation: ``--runtime auto``
runs the ONNX model on OpenVINO where it is installed, and the line said "ONNX Runtime" regardless."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from segpipe.cli.demo import BACKEND_TITLES, heldout_line
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
