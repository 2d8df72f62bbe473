"""The torch side of the dataset: :class:`SegDataset` (a ``torch.utils.data.Dataset`` over the
samples a format reader lists) and the loader workers' seeding.

The dataset returns ``(image, mask)``: ``image`` a uint8 tensor H×W×3 (RGB), ``mask`` a uint8/int16
tensor H×W of class ids. Normalisation and the NCHW permute happen on the device in the training
loop (cheaper than in the workers, and the permuted batch is channels-last for free).

Kept apart from :mod:`segpipe.data.dataset` so that reading images and masks needs no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from segpipe.data.formats.base import FormatReader
from segpipe.data.samples import LabelledSample


class SegDataset(Dataset):
    """Pairs of (image uint8 H×W×3, mask H×W) after the albumentations ``transform``.

    ``reader``: the format reader (:class:`~segpipe.data.formats.FormatReader`) the ``samples``
    come from; its :meth:`~segpipe.data.formats.FormatReader.load` reads each pair.

    ``transform`` gets ``image=`` and ``mask=`` (same geometric augmentation; masks use nearest
    neighbour). :meth:`reseed` makes the random augmentation reproducible per epoch and worker.
    """

    def __init__(
        self,
        samples: Sequence[LabelledSample],
        reader: FormatReader,
        transform: Callable[..., Any] | None = None,
    ):
        self.samples = list(samples)
        self.reader = reader
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def reseed(self, seed: int) -> None:
        """Seed the augmentation pipeline's own random generators."""
        if self.transform is not None and hasattr(self.transform, "set_random_seed"):
            self.transform.set_random_seed(seed)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The raw (untransformed) image and mask of sample ``index``."""
        return self.reader.load(self.samples[index])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.load(index)
        if self.transform is not None:
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        mask_t = torch.from_numpy(np.ascontiguousarray(mask))
        if mask_t.dtype == torch.uint16:
            mask_t = mask_t.to(torch.int32)
        return torch.from_numpy(np.ascontiguousarray(image)), mask_t


def worker_init_fn(worker_id: int) -> None:
    """Seed numpy, random and the augmentation in each loader worker from torch's worker seed.

    torch gives every worker ``base_seed + worker_id``, with ``base_seed`` drawn from the loader's
    generator, which the training loop seeds per epoch: augmentation is reproducible on resume.
    """
    import random

    seed = torch.initial_seed() % (2**32)
    np.random.seed(seed)
    random.seed(seed)
    info = torch.utils.data.get_worker_info()
    dataset = info.dataset if info is not None else None
    while dataset is not None and not hasattr(dataset, "reseed"):
        dataset = getattr(dataset, "dataset", None)  # torch Subset
    if dataset is not None:
        dataset.reseed(seed)
