"""Datasets in the original layout (``images/NAME.png`` + ``indexes/NAME_color_mask.png``), mask
decoding (class indices or RGB palette colours), class remapping, augmentation presets and the
bundled sample data."""

from segpipe.data.dataset import Sample, SegDataset, find_samples, read_image, sample_data_root
from segpipe.data.masks import MaskDecoder, load_class_map

__all__ = [
    "MaskDecoder",
    "Sample",
    "SegDataset",
    "find_samples",
    "load_class_map",
    "read_image",
    "sample_data_root",
]
