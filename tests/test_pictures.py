"""Pictures worth opening (issue 19): overlays that leave the background as the photo and carry a
legend, one legend per run, side-by-side pictures large enough to see, loss curves with plain
decimal tick labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from segpipe.palette import Palette, boundaries, colorize, overlay
from segpipe.pictures import (
    SIDE_GAP,
    SIDE_MIN_WIDTH,
    SIDE_TITLE,
    draw_legend,
    share_text,
    side_by_side,
    with_legend,
)

PALETTE = Palette(("background", "road", "car"), ((0, 0, 0), (200, 40, 40), (40, 40, 220)))


def _scene(h: int = 40, w: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.integers(60, 255, (h, w, 3), dtype=np.uint8)
    labels = np.zeros((h, w), np.uint8)
    labels[10:30, 5:25] = 1
    labels[15:35, 35:55] = 2
    return image, labels


def test_overlay_leaves_the_background_as_the_photo() -> None:
    image, labels = _scene()
    mask = colorize(labels, PALETTE)
    out = overlay(image, mask, 0.5, labels, background=0)
    bg = labels == 0
    np.testing.assert_array_equal(out[bg], image[bg])  # not darkened by the black background colour
    fg = ~bg
    expected = np.clip(image[fg] * 0.5 + mask[fg] * 0.5 + 0.5, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(out[fg], expected)
    # the old behaviour, on request: the background blended too (the photo darkened)
    blended = overlay(image, mask, 0.5, labels, background=None)
    assert blended[bg].mean() < image[bg].mean() - 40


def test_overlay_outline_draws_region_edges_in_the_class_colour() -> None:
    image, labels = _scene()
    mask = colorize(labels, PALETTE)
    out = overlay(image, mask, 0.3, labels, background=0, outline=True)
    edge = boundaries(labels) & (labels != 0)
    assert edge.sum() > 50
    np.testing.assert_array_equal(out[edge], mask[edge])  # full opacity on the outline
    assert (out[12:28, 8:22] != mask[12:28, 8:22]).any()  # inside: blended, not painted over
    np.testing.assert_array_equal(out[labels == 0], image[labels == 0])


def test_overlay_picture_has_its_legend_beside_the_photo() -> None:
    image, labels = _scene()
    legend = draw_legend(PALETTE, np.bincount(labels.ravel(), minlength=3))
    pic = with_legend(overlay(image, colorize(labels, PALETTE), 0.5, labels, background=0), legend)
    h, w = labels.shape
    assert pic.shape[1] == w + SIDE_GAP + legend.shape[1]
    region = pic[: legend.shape[0], w + SIDE_GAP :]
    np.testing.assert_array_equal(region, legend)
    # the legend shows the class colours as swatches
    for color in PALETTE.colors[1:]:
        assert (region == np.array(color, np.uint8)).all(axis=2).sum() > 100


@pytest.mark.parametrize(("w", "h"), [(64, 48), (128, 128), (1000, 500)])
def test_side_by_side_is_large_enough_to_see(w: int, h: int) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    labels = (np.arange(w)[None, :] * 3 // w).repeat(h, 0).astype(np.uint8)
    mask = colorize(labels, PALETTE)
    legend = draw_legend(PALETTE, np.bincount(labels.ravel(), minlength=3))
    side = side_by_side(image, mask, legend)
    assert side.shape[1] >= SIDE_MIN_WIDTH
    k = (side.shape[1] - 2 * SIDE_GAP - legend.shape[1]) // (2 * w)
    assert k >= 1 and side.shape[1] == 2 * w * k + 2 * SIDE_GAP + legend.shape[1]
    if w >= SIDE_MIN_WIDTH // 2:
        assert k == 1  # large images keep their own pixels
    # the mask is scaled by nearest neighbour: its colours stay the palette's
    panel = side[SIDE_TITLE : SIDE_TITLE + h * k, w * k + SIDE_GAP : 2 * w * k + SIDE_GAP]
    colours = {tuple(c) for c in panel.reshape(-1, 3)}
    assert colours <= {tuple(c) for c in PALETTE.colors}


def test_visualize_writes_one_legend_per_run(tmp_path) -> None:
    import cv2
    from inference_helpers import export_onnx, make_checkpoint

    from segpipe.options import VisualizeOptions
    from segpipe.visualize import visualize

    _, model, info = make_checkpoint(tmp_path / "m.pth", seed=1)
    models = {"onnx": export_onnx(model, info, tmp_path / "m.onnx")}
    (tmp_path / "in").mkdir()
    for i in range(4):
        image, _ = _scene(32, 40)
        cv2.imwrite(str(tmp_path / "in" / f"img{i}.png"), np.roll(image, i, axis=1))
    out = tmp_path / "out"
    visualize(VisualizeOptions(images=tmp_path / "in", model=models["onnx"], output_dir=out, overlay=0.5))
    assert [p.name for p in out.glob("*legend*")] == ["legend.png"]
    assert len(list(out.glob("*_overlay.png"))) == 4
    per = tmp_path / "per"
    visualize(
        VisualizeOptions(images=tmp_path / "in", model=models["onnx"], output_dir=per, legend_per_image=True)
    )
    assert len(list(per.glob("*_legend.png"))) == 4 and (per / "legend.png").is_file()


@pytest.mark.parametrize(
    "losses",
    [
        [(0.95, 0.9), (0.85, 0.82), (0.8, 0.78)],  # a short run: under a decade
        [(1.2, 453.0), (0.9, 1545.0), (0.7, 3.1), (0.5, 0.6)],  # the early BatchNorm spike
    ],
)
def test_loss_curve_ticks_are_plain_decimals(losses: list[tuple[float, float]]) -> None:
    from segpipe.training.runlog import _pyplot, curves_figure

    history = [
        {"epoch": i + 1, "train_loss": t, "val_loss": v, "miou": 0.1 * (i + 1)}
        for i, (t, v) in enumerate(losses)
    ]
    fig = curves_figure(history)
    try:
        fig.canvas.draw()
        ax = fig.axes[0]
        low, high = ax.get_ylim()
        labels = [t.get_text() for t in ax.get_yticklabels() + ax.get_yticklabels(minor=True)]
        shown = [
            (t.get_text(), t.get_position()[1])
            for t in ax.get_yticklabels() + ax.get_yticklabels(minor=True)
            if t.get_text() and low <= t.get_position()[1] <= high
        ]
        assert len(shown) >= 2, labels  # the axis is labelled ...
        for text, value in shown:  # ... in plain decimals that read as the value they mark
            assert "10^" not in text and "times" not in text and "$" not in text, text
            assert math.isclose(float(text), value, rel_tol=0.01), (text, value)
    finally:
        _pyplot().close(fig)


def test_early_validation_loss_is_explained_once() -> None:
    from segpipe.training.outputs import early_val_loss_note

    assert "BatchNorm" in early_val_loss_note({"epoch": 1, "train_loss": 1.2, "val_loss": 453.0})
    assert early_val_loss_note({"epoch": 2, "train_loss": 0.9, "val_loss": 1.1}) is None
    assert early_val_loss_note({"epoch": 30, "train_loss": 0.1, "val_loss": 5.0}) is None
    assert early_val_loss_note({"epoch": 1, "train_loss": 0.9, "val_loss": math.nan}) is None


def test_video_frames_leave_the_background_as_the_frame() -> None:
    from segpipe.video import render_frame

    image, labels = _scene(120, 160)
    frame, _ = render_frame(image, labels, PALETTE, 0.5, 255, draw_legend, background=0)
    legend_h, legend_w = draw_legend(PALETTE, np.bincount(labels.ravel(), minlength=3)).shape[:2]
    outside = labels == 0
    outside[: 8 + legend_h, : 8 + legend_w] = False  # the legend sits in the top-left corner
    np.testing.assert_array_equal(frame[outside], image[outside])


def test_one_legend_style_the_undrawn_background_struck_through() -> None:
    """legend.png and an overlay's legend draw the background's swatch alike (its mask colour, the
    same frame); the overlay, which leaves it as the photo, strikes it through and says so."""
    counts = [50, 30, 20]
    plain = draw_legend(PALETTE, counts)
    clear = draw_legend(PALETTE, counts, clear=0)
    corner = (slice(4 + 4, 4 + 8), slice(8, 12))  # top-left of the first swatch, off the stroke
    assert (plain[corner] == PALETTE.colors[0]).all()
    assert (clear[corner] == PALETTE.colors[0]).all()  # the same colour as in legend.png
    frame = (slice(4 + 3, 4 + 22 - 2), slice(6, 27))
    np.testing.assert_array_equal(plain[4 + 3, 6:27], clear[4 + 3, 6:27])  # the same grey frame
    swatch0 = clear[frame]
    assert (swatch0 == 255).all(axis=2).sum() > 10  # the white stroke across it
    assert not (plain[frame] == 255).all(axis=2).any()  # legend.png's is not struck
    row1 = (slice(4 + 22 + 5, 4 + 44 - 5), slice(8, 25))
    np.testing.assert_array_equal(clear[row1], plain[row1])  # drawn classes: identical rows
    assert (clear[row1] == PALETTE.colors[1]).all()
    assert clear.shape[1] > plain.shape[1]  # room for "(not drawn)"


@pytest.mark.parametrize(("w", "h", "names"), [(96, 96, 3), (128, 128, 21), (60, 40, 2), (1200, 600, 3)])
def test_overlay_picture_is_scaled_like_side_by_side(w: int, h: int, names: int) -> None:
    """A 96-128 px overlay is no longer a thumbnail beside a larger legend: it is scaled up by the
    side-by-side rule (whole factor, at least 900 px in all), and is never narrower than its legend;
    the mask's class edges stay sharp (nearest neighbour)."""
    from segpipe.pictures import overlay_picture, overlay_scale

    rng = np.random.default_rng(2)
    palette = Palette(
        tuple(f"a long class name {i}" for i in range(names)),
        tuple((i * 11, 200 - i * 9, 90) for i in range(names)),
    )
    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    labels = (np.arange(w)[None, :] * names // w).repeat(h, 0).astype(np.uint8)
    legend = draw_legend(palette, np.bincount(labels.ravel(), minlength=names), clear=0)
    pic = overlay_picture(image, colorize(labels, palette), labels, legend, 1.0, background=0)
    k = overlay_scale(w, legend.shape[1])
    assert pic.shape == (max(h * k, legend.shape[0]), w * k + SIDE_GAP + legend.shape[1], 3)
    assert w * k >= legend.shape[1] and pic.shape[1] >= SIDE_MIN_WIDTH or k == 1
    smaller = w * (k - 1)  # the next smaller factor would break one of the two
    assert k == 1 or smaller < legend.shape[1] or smaller + SIDE_GAP + legend.shape[1] < SIDE_MIN_WIDTH
    # alpha 1: the drawn classes are the mask, pixel blocks of k x k, the background the photo
    drawn = np.repeat(np.repeat(labels != 0, k, 0), k, 1)
    big = np.repeat(np.repeat(colorize(labels, palette), k, 0), k, 1)
    np.testing.assert_array_equal(pic[: h * k, : w * k][drawn], big[drawn])
    if k == 1:
        np.testing.assert_array_equal(pic[:h, :w][~drawn], image[~drawn])


def test_legend_share_of_a_present_class_is_never_zero(monkeypatch):
    """A class with a few pixels in a large picture (the demo's overlay: a disc's edge) read
    "0.0%" beside its swatch; it reads "<0.1%", and other shares keep one decimal."""
    assert share_text(3, 100_000) == "<0.1%"
    assert share_text(0, 100_000) == "0.0%"
    assert share_text(50, 100_000) == "0.1%"
    assert share_text(6_500, 100_000) == "6.5%"
    import segpipe.pictures as pictures

    seen = []
    monkeypatch.setattr(pictures, "share_text", lambda c, t: seen.append((c, t)) or share_text(c, t))
    draw_legend(PALETTE, [99_997, 3, 0])
    assert seen == [(99_997, 100_000), (3, 100_000)]  # every row's share goes through it
