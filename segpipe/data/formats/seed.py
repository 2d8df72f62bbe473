"""The seed layout: ``images/NAME.ext`` + ``indexes/NAME_color_mask.png`` (index or colour masks).

Index masks (single channel, palette-mode PNGs as their indices, or equal channels) are class ids;
colour masks go through a palette (``--colors``, else ``DATA_ROOT/colors.csv``). Folder names and
the mask suffix are options (``--images-dir``, ``--masks-dir``, ``--mask-suffix``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from segpipe.data.dataset import IMAGE_EXTS, find_samples, read_mask_raw
from segpipe.data.formats.base import ClassInfo, FormatReader, LabelledSample
from segpipe.palette import Palette, load_palette


def data_palette(root: str | Path) -> Palette | None:
    """``DATA_ROOT/colors.csv`` when there is one (the data set's own names and colours)."""
    beside = Path(root) / "colors.csv"
    return load_palette(beside) if beside.is_file() else None


class SeedReader(FormatReader):
    name = "seed"
    description = "segpipe's layout: images/NAME.ext + indexes/NAME_color_mask.png"
    layout = "images/ and indexes/NAME_color_mask.png (index or colour masks, colors.csv)"
    index_masks = True
    generic = True
    #: ``palette``: decodes colour masks (``--colors``; default ``DATA_ROOT/colors.csv``, else
    #: ``default_palette``, else segpipe's shipped palette: its colours only, never its names).
    options = {
        "images_dir": "images",
        "masks_dir": "indexes",
        "mask_suffix": "_color_mask",
        "mask_type": "auto",
        "palette": None,
        "default_palette": None,
    }

    def __init__(self, root: str | Path, **kw: Any) -> None:
        super().__init__(root, **kw)
        self._decoder: Any = None

    @classmethod
    def detect(cls, root: Path) -> str | None:
        images, masks = root / cls.options["images_dir"], root / cls.options["masks_dir"]
        if images.is_dir() and masks.is_dir():
            return "images/ and indexes/ (segpipe's layout)"
        return None

    def samples(self) -> list[LabelledSample]:
        return find_samples(
            self.root,
            self.opts["images_dir"],
            self.opts["masks_dir"],
            self.opts["mask_suffix"],
            reporter=self.reporter,
        )

    def palette(self) -> Palette | None:
        """``--colors`` when given, else ``DATA_ROOT/colors.csv``, else None."""
        given = self.opts.get("palette")
        if given is not None:
            return given
        return data_palette(self.root)

    def classes(self) -> ClassInfo:
        pal = self.palette()
        if pal is None:
            return ClassInfo()
        return ClassInfo(pal.names, pal.colors, pal.source)

    def decoder(self) -> Any:
        if self._decoder is None:
            from segpipe.data.masks import MaskDecoder

            pal = self.palette() or self.opts.get("default_palette") or load_palette(None)
            num = self.num_classes
            if num is None:  # nothing to check against: every value but the ignore one is a class
                num = len(pal) if pal is not None and self.opts["mask_type"] == "color" else self.ignore_index
            self._decoder = MaskDecoder(
                num, pal, None, self.ignore_index, self.opts["mask_type"], self.limit, value_lut=self._lut
            )
        return self._decoder

    def read_mask(self, sample: LabelledSample) -> np.ndarray:
        dec = self.decoder()
        return dec.decode(read_mask_raw(sample.label, dec.mask_type == "color"), sample.label)

    def load_mask(self, sample: LabelledSample) -> np.ndarray:
        return self.read_mask(sample)  # the decoder maps and checks


__all__ = ["IMAGE_EXTS", "SeedReader", "data_palette"]
