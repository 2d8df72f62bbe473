"""Labelled data: one reader per label format (:mod:`segpipe.data.formats`: seed layout, VOC,
Cityscapes, ADE20K, COCO, LabelMe, CVAT, ... detected or named with ``--format``), the paths they
may open (:mod:`~segpipe.data.safepaths`), mask decoding (class indices or RGB palette colours),
class remapping, the torch datasets over a reader, augmentation presets and the bundled sample data.

The names below are imported on first use (PEP 562), so ``segpipe.data.dataset`` and
``segpipe.data.masks`` stay importable without torch.
"""

from __future__ import annotations

from segpipe._optional import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "segpipe.data.dataset": ("find_samples", "read_image", "sample_data_root"),
        "segpipe.data.masks": ("MaskDecoder", "load_class_map"),
        "segpipe.data.samples": ("LabelledSample",),
        "segpipe.data.torchdata": ("SegDataset",),
    },
)
