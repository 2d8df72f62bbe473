"""The one sample type: what every reader lists and every dataset reads (no torch, no OpenCV).

The seed layout's :func:`segpipe.data.dataset.find_samples`, every format reader
(:meth:`segpipe.data.formats.FormatReader.samples`), the torch dataset, the held-out split and
``evaluate`` / ``visualize`` all pass :class:`LabelledSample` around.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Split names readers use (a format's own names, e.g. ADE20K's ``training``, map onto these).
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class LabelledSample:
    """One image and the file that holds its annotation.

    Attributes:
        name: unique, readable name (relative path without suffix), used for outputs and messages.
        image: the image file.
        label: the file holding the annotation (mask PNG, YOLO txt, COCO/LabelMe json...); None for an
            image without annotation (a format may list such images as all-background).
        split: ``train``/``val``/``test`` when the format ships splits, else None.
        key: anything the reader needs to find the annotation inside ``label`` (a COCO image id...).
    """

    name: str
    image: Path
    label: Path | None
    split: str | None = None
    key: Any = None
