"""A dataset class for the distributed and robustness tests, used through ``--dataset
train_helpers:LoggedDataset`` (with ``tests/`` on PYTHONPATH).

It reads the original layout with segpipe's own dataset and, driven by environment variables:

* ``SEGPIPE_TEST_LOG``: appends ``rank split name`` for every sample it reads (which rank saw what);
* ``SEGPIPE_TEST_DELAY``: sleeps that many seconds per sample (a run slow enough to signal);
* ``SEGPIPE_TEST_CRASH``: ``RANK:N`` -- on that rank, in the first attempt of a torch elastic job,
  the process dies (exit code 3) at its N-th training sample.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from segpipe.data.formats import open_dataset
from segpipe.data.torchdata import SegDataset
from segpipe.palette import load_palette


class LoggedDataset(torch.utils.data.Dataset):
    """``LoggedDataset(root=, split=, transform=)``: segpipe's dataset of ``root``, 3 classes."""

    def __init__(self, root: Path, split: str, transform: Any) -> None:
        self.split = split
        self.transform = transform
        reader = open_dataset(root, "seed", num_classes=3, palette=load_palette(None))
        self.inner = SegDataset(reader.samples(), reader, transform)
        self.reads = 0

    def __len__(self) -> int:
        return len(self.inner)

    def reseed(self, seed: int) -> None:
        self.inner.reseed(seed)

    def __getitem__(self, index: int) -> Any:
        rank = os.environ.get("RANK", "0")
        self.reads += 1
        crash = os.environ.get("SEGPIPE_TEST_CRASH")
        if crash and self.split == "train" and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0":
            crash_rank, after = crash.split(":")
            if rank == crash_rank and self.reads >= int(after):
                os._exit(3)
        log = os.environ.get("SEGPIPE_TEST_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(f"{rank} {self.split} {self.inner.samples[index].name}\n")
        delay = float(os.environ.get("SEGPIPE_TEST_DELAY", "0"))
        if delay:
            time.sleep(delay)
        return self.inner[index]
