"""Dataset layout, mask decoding, remapping and augmentation."""

from __future__ import annotations

import shutil
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import pytest

from segpipe.data.augment import build_transform, load_pipeline, save_transform
from segpipe.data.dataset import find_samples, load_pair, sample_data_root, scan_samples
from segpipe.data.formats import open_dataset
from segpipe.data.masks import MaskDecoder, load_class_map
from segpipe.data.torchdata import SegDataset
from segpipe.errors import ConfigError, DataError
from segpipe.palette import load_palette


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_find_samples_pairs_every_image(index_dataset: Path) -> None:
    samples = find_samples(index_dataset)
    assert len(samples) == 12
    for s in samples:
        assert s.label.name == f"{s.image.stem}_color_mask.png"


def test_subfolders_and_other_image_formats(tmp_path: Path, index_dataset: Path) -> None:
    root = _copy(index_dataset, tmp_path / "ds")
    (root / "images" / "sub").mkdir()
    (root / "indexes" / "sub").mkdir()
    img = cv2.imread(str(root / "images" / "sample_000.png"))
    cv2.imwrite(str(root / "images" / "sub" / "extra.bmp"), img)
    shutil.copy(
        root / "indexes" / "sample_000_color_mask.png", root / "indexes" / "sub" / "extra_color_mask.png"
    )
    names = {s.name for s in find_samples(root)}
    assert "sub/extra" in names and len(names) == 13


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        (lambda r: shutil.rmtree(r), "does not exist"),
        (lambda r: shutil.rmtree(r / "images"), "images is missing"),
        (lambda r: shutil.rmtree(r / "indexes"), "indexes is missing"),
        (lambda r: [p.unlink() for p in (r / "images").iterdir()], "holds no images"),
    ],
)
def test_layout_errors(tmp_path: Path, index_dataset: Path, setup, needle: str) -> None:
    root = _copy(index_dataset, tmp_path / "ds")
    setup(root)
    with pytest.raises(DataError, match=needle):
        find_samples(root)


def test_images_without_masks_are_named_and_counted(tmp_path: Path, index_dataset: Path) -> None:
    root = _copy(index_dataset, tmp_path / "ds")
    for i in range(5):
        (root / "indexes" / f"sample_{i:03d}_color_mask.png").unlink()
    with pytest.raises(DataError) as e:
        find_samples(root)
    msg = str(e.value)
    assert msg.startswith("5 image(s)") and "sample_000" in msg and "and 2 more" in msg and "\n" not in msg


def test_index_mask_decoding_and_value_check(index_dataset: Path) -> None:
    sample = find_samples(index_dataset)[0]
    image, mask = load_pair(sample, MaskDecoder(3))
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert mask.shape == (64, 64) and mask.max() < 3
    with pytest.raises(DataError, match=r"mask value 2 is >= --num-classes 2") as e:
        for s in find_samples(index_dataset):
            load_pair(s, MaskDecoder(2))
    assert "sample_" in str(e.value)


def test_color_masks_decode_through_palette(color_dataset: Path) -> None:
    palette = load_palette(color_dataset / "colors.csv")
    decoder = MaskDecoder(4, palette)
    raw = cv2.imread(str(find_samples(color_dataset)[0].label), cv2.IMREAD_UNCHANGED)
    labels = decoder.decode(raw)
    # every pixel's colour equals the palette colour of its decoded class
    np.testing.assert_array_equal(palette.array()[labels], cv2.cvtColor(raw, cv2.COLOR_BGR2RGB))
    assert len(np.unique(labels)) > 1


def test_unknown_colour_is_named(tmp_path: Path, color_dataset: Path) -> None:
    palette = load_palette(color_dataset / "colors.csv")
    mask = np.zeros((8, 8, 3), np.uint8)
    mask[2, 5] = (1, 2, 3)  # BGR on disk -> RGB (3, 2, 1)
    with pytest.raises(
        DataError, match=r"m.png: colour \(3, 2, 1\) at pixel \(x=5, y=2\) is not in the palette"
    ):
        MaskDecoder(4, palette).decode(mask, "m.png")


def test_gray_rgb_mask_is_read_as_indices() -> None:
    mask = np.full((4, 4, 3), 2, np.uint8)
    assert MaskDecoder(3).decode(mask).max() == 2


def test_class_map_remaps_and_ignores(tmp_path: Path) -> None:
    cmap = tmp_path / "map.txt"
    cmap.write_text("# merge 2 into 1, drop 3\n2,1\n3, ignore\n")
    rules = load_class_map(cmap)
    assert rules == {2: 1, 3: 255}
    out = MaskDecoder(2, class_map=rules).decode(np.array([[0, 1, 2, 3]], np.uint8))
    assert out.tolist() == [[0, 1, 1, 255]]


def test_class_map_malformed_line_is_named(tmp_path: Path) -> None:
    cmap = tmp_path / "map.txt"
    cmap.write_text("1,0\n2,x\n")
    with pytest.raises(ConfigError, match=r"map.txt line 2: .*'2,x'"):
        load_class_map(cmap)


def test_size_mismatch_and_corrupt_files(tmp_path: Path, index_dataset: Path) -> None:
    root = _copy(index_dataset, tmp_path / "ds")
    s = find_samples(root)[0]
    cv2.imwrite(str(s.label), np.zeros((32, 64), np.uint8))
    with pytest.raises(DataError, match=r"mask is 64x32 but image .* is 64x64"):
        load_pair(s, MaskDecoder(3))
    s2 = find_samples(root)[1]
    s2.image.write_bytes(b"not a png")
    with pytest.raises(DataError, match=f"cannot read image {s2.image}"):
        load_pair(s2, MaskDecoder(3))


def test_scan_counts_pixels_and_fails_on_first_bad_file(index_dataset: Path) -> None:
    reader = open_dataset(index_dataset, "seed", num_classes=3)
    stats = scan_samples(reader.samples(), reader)
    assert stats.count == 12 and stats.class_pixels.sum() == 12 * 64 * 64
    assert 0.3 < stats.majority_fraction < 1.0
    with pytest.raises(DataError, match="is empty"):
        scan_samples([], reader)


@pytest.mark.parametrize("preset", ["none", "light", "heavy"])
def test_augmentation_keeps_image_and_mask_aligned(preset: str) -> None:
    # image = colour of the mask's class, so any misalignment shows up as a mismatch
    mask = np.zeros((80, 96), np.uint8)
    cv2.rectangle(mask, (20, 10), (70, 50), 1, -1)
    image = np.where(mask[..., None] == 1, 200, 20).astype(np.uint8).repeat(3, axis=2)
    tf = build_transform(preset, 64, 48, seed=3)
    for _ in range(5):
        out = tf(image=image, mask=mask)
        img, m = out["image"], out["mask"]
        assert img.shape == (48, 64, 3) and m.shape == (48, 64)
        assert set(np.unique(m)) <= {0, 1, 255}  # nearest neighbour: no blended labels
        if preset == "none":
            inside = m == 1
            assert img[inside].mean() > 150 and img[m == 0].mean() < 60


def test_yaml_pipeline_round_trip(tmp_path: Path) -> None:
    path = save_transform(A.Compose([A.HorizontalFlip(p=1.0)]), tmp_path / "aug.yaml")
    tf = build_transform(str(path), 32, 32)
    img = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    np.testing.assert_array_equal(tf(image=img, mask=img[..., 0])["image"], img[:, ::-1])
    bad = save_transform(A.Compose([A.Normalize()]), tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="remove Normalize"):
        load_pipeline(bad)
    (tmp_path / "broken.yaml").write_text("transform: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_pipeline(tmp_path / "broken.yaml")


def test_dataset_items_are_uint8_hwc(index_dataset: Path) -> None:
    reader = open_dataset(index_dataset, "seed", num_classes=3)
    ds = SegDataset(reader.samples(), reader, build_transform("light", 32, 32, seed=0))
    image, mask = ds[0]
    assert image.shape == (32, 32, 3) and str(image.dtype) == "torch.uint8"
    assert mask.shape == (32, 32)


def test_bundled_sample_data_is_small_and_valid() -> None:
    root = sample_data_root()
    files = [p for p in root.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 1_000_000
    samples = find_samples(root)
    assert len(samples) >= 24
    stats = scan_samples(samples, open_dataset(root, "seed", num_classes=4))
    assert (stats.class_pixels > 0).all()
