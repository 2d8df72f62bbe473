"""``segpipe visualize`` on video files: frames in, the same frames out, at the source frame rate."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
from inference_helpers import COLORS, export_onnx, make_checkpoint
from typer.testing import CliRunner

from segpipe.data.synthetic import make_sample
from segpipe.options import VisualizeOptions
from segpipe.palette import Palette
from segpipe.video import paste_legend, render_frame
from segpipe.visualize import draw_legend, visualize


def write_video(path: Path, frames: int = 10, size: tuple[int, int] = (64, 48), fps: float = 12.0) -> Path:
    """A generated video: a synthetic scene drifting right, one pixel column per frame."""
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, size)
    assert writer.isOpened()
    scene, _ = make_sample(np.random.default_rng(0), size[0] + frames, size[1], 3)
    for i in range(frames):
        writer.write(cv2.cvtColor(np.ascontiguousarray(scene[:, i : i + size[0]]), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def read_video(path: Path) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames, fps


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("video_model")
    pth, net, info = make_checkpoint(d / "m.pth", seed=1)
    return export_onnx(net, info, d / "m.onnx", dynamic=False)


def invoke(command: str, *args: object):
    from segpipe.cli.evaluate import evaluate_command
    from segpipe.cli.visualize import visualize_command

    app = typer.Typer()
    app.command("visualize")(visualize_command)
    app.command("evaluate")(evaluate_command)
    return CliRunner().invoke(app, [command, *map(str, args)])


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_ten_frames_in_ten_frames_out(model, tmp_path, suffix):
    src = write_video(tmp_path / f"clip{suffix}")
    out = tmp_path / "out"
    res = invoke("visualize", "-i", src, "-m", model, "-o", out, "--overlay", 0.6, "--batch-size", 3)
    assert res.exit_code == 0, res.output
    assert "10 frame(s) of 1 video(s)" in res.output and "frames/s" in res.output
    written = out / f"clip_overlay{suffix}"
    frames, fps = read_video(written)
    assert len(frames) == 10
    assert frames[0].shape == (48, 64, 3)
    assert fps == pytest.approx(12.0, abs=0.01)
    assert (out / "legend.png").is_file()
    assert not list(out.glob(".*"))  # the temporary file was renamed


def test_folder_of_videos_with_tiling(model, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    write_video(folder / "a.mp4", frames=4, size=(96, 64))
    write_video(folder / "b.avi", frames=3)
    out = tmp_path / "out"
    result = visualize(VisualizeOptions(images=folder, model=model, output_dir=out, tile=(0, 0), overlap=0.5))
    assert [p.name for p in result.videos] == ["a_overlay.mp4", "b_overlay.avi"]
    assert result.frames == 7 and result.images == 0
    assert [len(read_video(p)[0]) for p in result.videos] == [4, 3]
    assert read_video(result.videos[0])[0][0].shape == (64, 96, 3)


def test_frame_drawing_has_the_overlay_and_the_legend():
    palette = Palette(("ground", "thing", "sky"), COLORS)
    image = np.full((300, 400, 3), 128, np.uint8)
    labels = np.zeros((300, 400), np.uint8)
    labels[150:, :] = 2
    frame, counts = render_frame(image, labels, palette, 0.5, 255, draw_legend)
    assert counts.tolist() == [400 * 150, 0, 400 * 150]
    legend = draw_legend(palette, counts)
    np.testing.assert_array_equal(frame[8 : 8 + legend.shape[0], 8 : 8 + legend.shape[1]], legend)
    blended = (np.array(COLORS[2]) * 0.5 + 128 * 0.5).round()
    np.testing.assert_allclose(frame[-1, -1], blended, atol=1)
    # a legend larger than the frame is shrunk to half of it
    small = paste_legend(np.zeros((20, 20, 3), np.uint8), np.full((50, 50, 3), 255, np.uint8))
    assert small[8:18, 8:18].min() == 255 and small[:8].max() == 0 and small[18:].max() == 0


def test_evaluate_refuses_a_video_and_bad_video_is_one_line(model, tmp_path):
    src = write_video(tmp_path / "clip.mp4", frames=2)
    res = invoke("evaluate", "--data-root", src, "-m", model)
    assert res.exit_code == 1 and "is a video" in res.output and "Traceback" not in res.output
    bad = tmp_path / "broken.mov"
    bad.write_bytes(b"not a video")
    res = invoke("visualize", "-i", bad, "-m", model, "-o", tmp_path / "o")
    assert res.exit_code == 1 and "cannot open this video" in res.output
