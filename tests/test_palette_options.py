"""Palette CSV, options validation and --config files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segpipe.errors import ConfigError
from segpipe.options import TrainOptions, load_config, parse_loss
from segpipe.palette import colorize, default_palette_path, fit_palette, load_palette, overlay

REPO = Path(__file__).resolve().parents[1]


def test_default_palette_has_21_distinct_colours_and_matches_repo_copy() -> None:
    pal = load_palette()
    assert len(pal) >= 21 and len(set(pal.colors)) == len(pal.colors)
    assert default_palette_path().read_bytes() == (REPO / "colors.csv").read_bytes()
    assert (REPO / "colors.csv").read_text().splitlines()[0] == "id,name,r,g,b"


def test_malformed_palette_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "c.csv"
    p.write_text("id,name,r,g,b\n0,bg,0,0,0\n1,car,12,x,3\n")
    with pytest.raises(ConfigError, match=r"c.csv line 3"):
        load_palette(p)
    p.write_text("idx,label\n")
    with pytest.raises(ConfigError, match="line 1: header"):
        load_palette(p)


def test_fit_palette_extends_with_distinct_colours() -> None:
    pal, warning = fit_palette(load_palette(), 40)
    assert len(pal) == 40 and len(set(pal.colors)) == 40
    assert warning and "21 colours for 40 classes" in warning
    assert fit_palette(load_palette(), 5)[1] is None


def test_colorize_and_overlay() -> None:
    pal = load_palette()
    labels = np.array([[0, 1], [2, 255]])
    rgb = colorize(labels, pal)
    assert tuple(rgb[0, 1]) == pal.colors[1] and tuple(rgb[1, 0]) == pal.colors[2]
    assert tuple(rgb[1, 1]) == (224, 224, 192)  # the ignore index: VOC's void colour, not black like class 0
    img = np.full((2, 2, 3), 100, np.uint8)
    assert not np.array_equal(overlay(img, rgb, 0.5), rgb)


def test_options_validate_with_one_line_errors() -> None:
    with pytest.raises(ConfigError, match=r"--mode foo"):
        TrainOptions(data_root=Path("."), mode="foo")
    with pytest.raises(ConfigError, match=r"--loss .ce\+bogus."):
        TrainOptions(data_root=Path("."), loss="ce+bogus")
    with pytest.raises(ConfigError, match=r"--class-names"):
        TrainOptions(data_root=Path("."), num_classes=3, class_names=("a", "b"))
    assert parse_loss("cross-entropy+dice") == ("ce", "dice")
    assert TrainOptions(data_root="x", size=[64, 32]).size == (64, 32)


def test_config_file_keys_types_and_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data-root: /data\nepochs: 3\nsize: [128, 64]\nclass_names: a,b\n")
    values = load_config(cfg)
    assert values == {"data_root": Path("/data"), "epochs": 3, "size": (128, 64), "class_names": ("a", "b")}
    cfg.write_text("epochs: 3\nepoch: 4\n")
    with pytest.raises(ConfigError, match=r"c.yaml line 2: unknown option 'epoch'; close matches: epochs"):
        load_config(cfg)
    cfg.write_text("epochs: 3\nsize: [1, 2\nlr: 1\n")
    with pytest.raises(ConfigError, match=r"c.yaml line \d+: malformed YAML"):
        load_config(cfg)
