"""Reproducible sampling: what a run sees depends only on (seed, epoch, step), never on how often it
was stopped, how many loader workers it used or whether they persisted between epochs.

* :class:`EpochSampler` wraps torch's :class:`~torch.utils.data.DistributedSampler` (one shard
  per rank, shuffled from ``seed + epoch``) and can start part-way into an epoch, which is how a
  run interrupted in the middle of an epoch resumes exactly.
* It yields ``(index, epoch)`` keys; :class:`SeededDataset` seeds the augmentation of each image
  from ``(seed, epoch, index)`` before reading it. The seed travels with the index to whichever
  worker process reads it, so persistent workers need no re-seeding between epochs.
* :func:`step_seed` seeds mix-up and dropout per (seed, epoch, step, rank).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler


def _mix(*values: int) -> int:
    """A 32-bit seed from several integers (numpy's SeedSequence: well spread, platform-stable)."""
    return int(np.random.SeedSequence([int(v) % (2**63) for v in values]).generate_state(1)[0])


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The augmentation seed of image ``index`` in ``epoch``."""
    return _mix(seed, 1, epoch, index)


def step_seed(seed: int, epoch: int, step: int, rank: int = 0) -> int:
    """The seed of mix-up and of the model's own randomness (dropout) at one step of one rank."""
    return _mix(seed, 2, epoch, step, rank)


class EpochSampler(Sampler[tuple[int, int]]):
    """This rank's share of a shuffled epoch, as ``(index, epoch)`` keys.

    ``drop_last`` (of torch's DistributedSampler) drops the few images that would not divide
    evenly over the ranks, so the ranks' shares are disjoint and equally long (every rank runs the
    same number of steps). Call :meth:`set_epoch` before each epoch.
    """

    def __init__(
        self, dataset: Dataset, rank: int = 0, world_size: int = 1, seed: int = 0, shuffle: bool = True
    ) -> None:
        self.inner = DistributedSampler(
            dataset,
            num_replicas=world_size,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=world_size > 1 and len(dataset) >= world_size,  # type: ignore[arg-type]
        )
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Shuffle for ``epoch`` and leave out this rank's first ``skip`` samples (mid-epoch resume)."""
        self.inner.set_epoch(epoch)
        self.epoch, self.skip = epoch, skip

    @property
    def shard_length(self) -> int:
        """Samples of this rank in a whole epoch."""
        return len(self.inner)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for i, index in enumerate(self.inner):
            if i >= self.skip:
                yield index, self.epoch

    def __len__(self) -> int:
        return max(0, len(self.inner) - self.skip)


class SeededDataset(Dataset):
    """Reads ``dataset[index]`` for an ``(index, epoch)`` key after seeding the augmentation (and
    numpy's, Python's and torch's global generators, for datasets of the user's own) from
    ``(seed, epoch, index)``. Plain integer keys read with epoch 0."""

    def __init__(self, dataset: Dataset, seed: int, transform: Any = None) -> None:
        self.dataset = dataset
        self.seed = seed
        self.transform = transform if transform is not None else getattr(dataset, "transform", None)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: int | tuple[int, int]) -> Any:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        s = sample_seed(self.seed, epoch, index)
        np.random.seed(s)
        random.seed(s)
        torch.manual_seed(s)
        if hasattr(self.dataset, "reseed"):
            self.dataset.reseed(s)
        elif self.transform is not None and hasattr(self.transform, "set_random_seed"):
            self.transform.set_random_seed(s)
        return self.dataset[index]
