"""Pascal VOC segmentation: ``JPEGImages/NAME.jpg`` + ``SegmentationClass/NAME.png``.

Masks are palette-mode PNGs whose pixel values are the class indices (0 background .. 20
tvmonitor) and 255 the "void" border around objects (ignored). ``ImageSets/Segmentation/
{train,val}.txt`` give the splits; without them every mask with an image is one unsplit set.
Masks saved as RGB colours (the VOC palette) are decoded through that palette.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segpipe.data.formats._annotations import checked_samples, read_text
from segpipe.data.formats.base import ClassInfo, FormatReader, LabelledSample, as_index_array
from segpipe.data.maskio import read_mask_file
from segpipe.errors import DataError

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip


def voc_colormap(n: int = 256) -> np.ndarray:
    """The VOC devkit's colour map (``VOCcolormap.m``: bits of the index spread over R, G, B)."""
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


class VocReader(FormatReader):
    name = "voc"
    description = "Pascal VOC: JPEGImages/ + SegmentationClass/ palette PNGs (255 = ignore)"
    layout = "JPEGImages/, SegmentationClass/*.png, ImageSets/Segmentation/{train,val}.txt"
    index_masks = True

    @classmethod
    def detect(cls, root: Path) -> str | None:
        if (root / "JPEGImages").is_dir() and (root / "SegmentationClass").is_dir():
            sets = root / "ImageSets" / "Segmentation"
            return "JPEGImages/ and SegmentationClass/" + (
                " with ImageSets/Segmentation splits" if sets.is_dir() else ""
            )
        return None

    def _image_of(self, name: str) -> Path | None:
        for ext in (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG"):
            p = self.root / "JPEGImages" / f"{name}{ext}"
            if p.is_file():
                return p
        return None

    def samples(self) -> list[LabelledSample]:
        masks_dir = self.root / "SegmentationClass"
        sets = self.root / "ImageSets" / "Segmentation"
        lists = {s: sets / f"{s}.txt" for s in ("train", "val") if (sets / f"{s}.txt").is_file()}
        if lists:
            wanted: list[tuple[str, str | None]] = []
            listed_in: dict[str, Path] = {}
            for split, path in lists.items():
                # one name per line (names may hold spaces, as CVAT's VOC-style export writes them)
                names = [ln.strip() for ln in read_text(path).splitlines() if ln.strip()]
                wanted += [(n, split) for n in names]
                listed_in.update((n, path) for n in names if n not in listed_in)
        else:
            wanted = [(p.stem, None) for p in sorted(masks_dir.glob("*.png"))]
        out, missing, lacking = [], [], []
        for name, split in wanted:
            mask = masks_dir / f"{name}.png"
            image = self._image_of(name)
            if image is None or not mask.is_file():
                what = " and ".join(
                    w for w, gone in (("image", image is None), ("mask", not mask.is_file())) if gone
                )
                missing.append(f"{name!r} ({what})")
                lacking.append(name)
                continue
            out.append(LabelledSample(name, image, mask, split))
        where = str(masks_dir)
        if lists:  # the split files that list the missing names, not every split file
            where = ", ".join(dict.fromkeys(str(listed_in[n]) for n in lacking))
        return checked_samples(
            out,
            f"{masks_dir} holds no masks (NAME.png)",
            missing,
            f"name(s) listed in {where} lack a JPEGImages/NAME.jpg or SegmentationClass/NAME.png",
            by_name=False,
        )

    def classes(self) -> ClassInfo:
        cmap = voc_colormap(len(VOC_CLASSES))
        return ClassInfo(VOC_CLASSES, tuple(tuple(int(v) for v in c) for c in cmap), "Pascal VOC (built in)")

    def read_mask(self, sample: LabelledSample) -> np.ndarray:
        raw = read_mask_file(sample.label)  # palette PNG -> its indices
        if raw.ndim == 3:  # saved as colours: back to indices through the VOC colour map
            raw = self._from_colors(raw[:, :, :3], sample.label)
        labels = as_index_array(raw, sample.label)
        if self.ignore_index != 255 and labels.dtype == np.uint8:
            labels = labels.astype(np.uint16)
            labels[labels == 255] = self.ignore_index
        return labels

    def _from_colors(self, bgr: np.ndarray, path: Path | None) -> np.ndarray:
        cmap = voc_colormap(256).astype(np.uint32)
        keys = (cmap[:, 0] << 16) | (cmap[:, 1] << 8) | cmap[:, 2]
        rgb = bgr[:, :, ::-1].astype(np.uint32)
        px = (rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2]
        order = np.argsort(keys)
        pos = np.clip(np.searchsorted(keys[order], px), 0, 255)
        found = keys[order][pos] == px
        if not found.all():
            y, x = (int(v[0]) for v in np.nonzero(~found))
            raise DataError(
                f"{path}: colour {tuple(int(c) for c in rgb[y, x])} at pixel (x={x}, y={y}) is not a "
                "VOC palette colour"
            )
        return order[pos].astype(np.uint8)
