"""Data building in one place (segpipe/data/build.py): readers built with their class count, never
patched afterwards; build_data gives train everything it reads in one call."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from segpipe.data.build import build_data, open_reader
from segpipe.data.formats import DATA_CLASSES, open_dataset
from segpipe.errors import ConfigError, DataError
from segpipe.options import TrainOptions
from segpipe.progress import RecordingReporter


def test_a_reader_takes_its_class_count_when_built_and_never_afterwards(
    index_dataset: Path, color_dataset: Path
) -> None:
    given = open_dataset(index_dataset, num_classes=2)
    assert given.num_classes == 2
    with pytest.raises(AttributeError):
        given.num_classes = 3  # type: ignore[misc]
    with pytest.raises(DataError, match=r"mask value 2 is >= --num-classes 2"):
        for s in given.samples():
            given.load(s)  # the synthetic masks hold classes 0..2
    assert open_dataset(index_dataset, num_classes=DATA_CLASSES).num_classes is None  # no names
    derived = open_dataset(color_dataset, num_classes=DATA_CLASSES)
    assert derived.num_classes == 4  # DATA_ROOT/colors.csv names four classes
    assert open_dataset(index_dataset, num_classes=np.int64(3)).num_classes == 3
    with pytest.raises(TypeError):
        open_dataset(index_dataset, num_classes="3")


def test_build_data_gives_train_everything_in_one_call(color_dataset: Path) -> None:
    rec = RecordingReporter()
    data = build_data(TrainOptions(data_root=color_dataset, size=(32, 32), val_fraction=0.25, seed=3), rec)
    assert data.num_classes == 4 and data.reader is not None and data.reader.num_classes == 4
    assert data.val_reader is data.reader and len(data.names) == len(data.palette.colors) == 4
    assert len(data.train) + len(data.val) == 12 and len(data.val) == 3  # type: ignore[arg-type]
    assert data.split is not None and data.split["kind"] == "fraction" and data.split["val"] == 3
    assert data.stats is not None and data.stats.count == 12
    assert 0 < int(data.train_pixels.sum()) < int(data.stats.class_pixels.sum())  # type: ignore[union-attr]
    image, mask = data.train[0]
    assert tuple(image.shape) == (32, 32, 3) and tuple(mask.shape) == (32, 32)
    assert any("4 classes, names from" in line for line in rec.infos)


def test_build_data_val_root_reader_has_the_same_count(index_dataset: Path, tmp_path: Path) -> None:
    val_root = tmp_path / "val"
    shutil.copytree(index_dataset, val_root)
    data = build_data(TrainOptions(data_root=index_dataset, val_root=val_root, num_classes=3), scan=False)
    assert data.val_reader is not data.reader and data.val_reader.num_classes == 3  # type: ignore[union-attr]
    assert data.split["kind"] == "val_root" and data.stats is None  # type: ignore[index]
    assert len(data.train) == len(data.val) == 12  # type: ignore[arg-type]


def test_a_class_beyond_the_data_count_is_one_line_naming_the_mask(color_dataset: Path, tmp_path: Path) -> None:
    root = tmp_path / "d"
    shutil.copytree(color_dataset, root)
    mask = next(iter(sorted((root / "indexes").glob("*.png"))))
    cv2.imwrite(str(mask), np.full((64, 64), 7, np.uint8))
    with pytest.raises(DataError, match=rf"{mask.name}: mask value 7 is >= --num-classes 4"):
        build_data(TrainOptions(data_root=root))


def test_no_class_count_anywhere_is_one_line(index_dataset: Path) -> None:
    with pytest.raises(ConfigError, match="--num-classes is required"):
        build_data(TrainOptions(data_root=index_dataset))
    reader = open_reader(TrainOptions(data_root=index_dataset, num_classes=3), num_classes=3)
    assert reader.num_classes == 3 and len(reader.samples()) == 12


def test_the_format_registry_is_declared_once_and_names_its_readers() -> None:
    """One table (options/formats.py) gives --format's help, its check and the readers."""
    from segpipe.data.formats import FORMATS as REGISTRY
    from segpipe.data.formats import available_formats, reader_class
    from segpipe.options.flags import FORMAT
    from segpipe.options.formats import FORMATS, check_format

    assert REGISTRY is FORMATS and available_formats() == list(FORMATS)  # every reader is installed here
    assert all(reader_class(name).name == name for name in FORMATS)  # type: ignore[union-attr]
    assert ", ".join(FORMATS) in FORMAT.help
    with pytest.raises(ConfigError, match="--format nope: use auto or one of " + ", ".join(FORMATS)):
        check_format("nope")
