"""Datumaro's common semantic segmentation (OpenVINO accuracy checker's format)::

    DATA_ROOT/dataset_meta.json    {"label_map": {"0": "Void", "1": "Animal", ...},
                                    "segmentation_colors": [[0, 0, 0], [64, 128, 64], ...],
                                    "background_label": "0"}   (or {"labels": ["Void", ...]})
    DATA_ROOT/images/NAME.png      the images (sub-folders allowed)
    DATA_ROOT/masks/NAME.png       colour masks (decoded through segmentation_colors) or
                                   single-channel / palette masks of class indices

or one such folder per split (``train/dataset_meta.json``, ``train/images``, ``train/masks``,
``val/...``), as datumaro's ``common_semantic_segmentation`` importer reads them. Classes are the
``dataset_meta.json`` labels in datumaro's order (``labels``, then ``label_map``), with their
colours (the VOC colour map where none is given). A mask is a sample; a mask without an image is
left out with one warning. Names pair as they are, else without the prefix all images (masks)
share (``image_0001.png`` + ``gt_0001.png``: datumaro's ``--image-prefix`` / ``--mask-prefix``). No torch here.
"""

from __future__ import annotations

import os
from pathlib import Path

from segpipe.data.formats._annotations import checked_samples, list_images
from segpipe.data.formats._labelmaps import LabelMap, LabelMapReader, read_dataset_meta
from segpipe.data.formats.base import SPLITS, LabelledSample
from segpipe.data.safepaths import is_regular
from segpipe.errors import DataError

META = "dataset_meta.json"
_SPLIT = {"training": "train", "validation": "val", "valid": "val", "testing": "test"}


def is_dataset(folder: Path) -> bool:
    return is_regular(folder / META) and (folder / "images").is_dir() and (folder / "masks").is_dir()


def subset_dirs(root: Path) -> list[Path]:
    """The folders holding ``dataset_meta.json``, ``images/`` and ``masks/``: the root, else its
    sub-folders (one per split)."""
    if is_dataset(root):
        return [root]
    try:
        return sorted(m.parent for m in root.glob(f"*/{META}") if is_dataset(m.parent))
    except OSError:
        return []


def _key(path: Path, folder: Path, cut: int) -> str:
    rel = path.relative_to(folder).with_suffix("")
    return str(rel.parent / rel.name[cut:])


def prefixes(images: list[str], masks: list[str]) -> tuple[int, int]:
    """Lengths of the name prefixes to drop: 0, 0 when the names match as they are, else the
    prefix every image name shares and the one every mask name shares (up to a separator)."""
    if not images or not masks or set(masks) & set(images):
        return 0, 0

    def common(names: list[str]) -> int:
        p = os.path.commonprefix(names)
        cut = max(p.rfind(c) for c in "_-.") + 1
        return cut if cut < min(len(n) for n in names) else 0

    return common(images), common(masks)


class CommonSemSegReader(LabelMapReader):
    """dataset_meta.json + images/ + masks/ (datumaro common_semantic_segmentation)."""

    name = "common_semantic_segmentation"
    description = "Datumaro common semantic segmentation: dataset_meta.json labels/colours + masks/"
    layout = "dataset_meta.json, images/NAME.png and masks/NAME.png (or SPLIT/ folders holding them)"

    @classmethod
    def detect(cls, root: Path) -> str | None:
        found = subset_dirs(root)
        if not found:
            return None
        where = "" if found == [root] else f" in {', '.join(p.name + '/' for p in found)}"
        return f"dataset_meta.json with images/ and masks/{where} (datumaro common semantic segmentation)"

    def read_labels(self) -> tuple[LabelMap, str]:
        dirs = subset_dirs(self.root)
        if not dirs:
            raise DataError(f"{self.root}: no dataset_meta.json beside images/ and masks/")
        maps = [(d / META, read_dataset_meta(d / META)) for d in dirs]
        first_path, first = maps[0]
        for path, other in maps[1:]:
            if other != first:
                raise DataError(f"{path}: labels differ from those of {first_path}")
        return first, META

    def samples(self) -> list[LabelledSample]:
        self.labels()
        out, orphans = [], []
        dirs = subset_dirs(self.root)
        for d in dirs:
            split = None
            if d != self.root:
                split = d.name.lower() if d.name.lower() in SPLITS else _SPLIT.get(d.name.lower())
            image_files, masks = list_images(d / "images"), list_images(d / "masks")
            # datumaro's --image-prefix / --mask-prefix (image_0001.png + gt_0001.png): a prefix all
            # images (masks) share is dropped when the names do not match as they are
            cut_i, cut_m = prefixes([p.stem for p in image_files], [p.stem for p in masks])
            images = {_key(p, d / "images", cut_i): p for p in image_files}
            by_stem: dict[str, Path] = {}
            for key, p in images.items():
                by_stem.setdefault(Path(key).name, p)
            for mask in masks:
                key = _key(mask, d / "masks", cut_m)
                image = images.get(key) or by_stem.get(Path(key).name)
                if image is None:
                    orphans.append(str(mask.relative_to(self.root)))
                    continue
                name = key if d == self.root else f"{d.name}/{key}"
                out.append(LabelledSample(name, image, mask, split))
        return checked_samples(
            out,
            f"{self.root}: no masks/NAME.png with an images/NAME image",
            orphans,
            "mask(s) have no image under images/ and are left out",
            self.reporter,
        )
