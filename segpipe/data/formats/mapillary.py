"""Mapillary Vistas: ``config*.json`` + ``SPLIT/images/*.jpg`` + ``SPLIT/VERSION/labels/*.png``.

Layouts (the v2.0 download holds both label versions; the older v1.x download the flat one)::

    DATA_ROOT/config_v2.0.json           124 labels: [{"name": "animal--bird", "color": [165, 42, 42],
    DATA_ROOT/config_v1.2.json           66 labels     "readable": "Bird", "evaluate": true, ...}, ...]
    DATA_ROOT/config.json                (v1.x)
    DATA_ROOT/training/images/NAME.jpg   (``validation``, ``testing``; datumaro's ``train``/``val`` too)
    DATA_ROOT/training/v2.0/labels/NAME.png   8-bit palette PNGs of label indices
    DATA_ROOT/training/v1.2/labels/NAME.png
    DATA_ROOT/training/labels/NAME.png   (v1.x)

The label values are indices into the config's ``labels`` list: the classes are those labels in
order, with their ``name`` (as datumaro names them) and ``color``; nothing is remapped or ignored
(the last label, "unlabeled", is a class as in the config; map it with ``--class-map`` to ignore
it). With both versions present v2.0 is read (datumaro's default) and the detection reason says
so; a label PNG saved as colours is decoded through the config's colours. ``testing`` (no labels)
is left out. No torch here.
"""

from __future__ import annotations

import functools
from pathlib import Path

from segpipe.data.formats._annotations import checked_samples, find_image, list_images, read_json
from segpipe.data.formats._labelmaps import LabelMap, LabelMapReader, _checked, _rgb
from segpipe.data.formats.base import LabelledSample
from segpipe.data.safepaths import is_regular
from segpipe.errors import DataError

#: (config file, label folder under SPLIT/), newest first.
VERSIONS = (
    ("config_v2.0.json", "v2.0/labels"),
    ("config_v1.2.json", "v1.2/labels"),
    ("config.json", "labels"),
)
SPLIT_OF = {"training": "train", "train": "train", "validation": "val", "val": "val"}


def find_version(root: Path) -> tuple[Path, str, list[Path]] | None:
    """(config, label folder, split folders holding it) of the newest version present."""
    try:
        splits = sorted(p for p in root.iterdir() if p.name.lower() in SPLIT_OF and p.is_dir())
    except OSError:
        return None
    for config, labels in VERSIONS:
        if is_regular(root / config):
            have = [s for s in splits if (s / labels).is_dir() and (s / "images").is_dir()]
            if have:
                return root / config, labels, have
    return None


def read_config(path: Path) -> LabelMap:
    data = read_json(path)
    labels = data.get("labels") if isinstance(data, dict) else None
    if not isinstance(labels, list):
        raise DataError(f"{path}: expected an object with a 'labels' list (Mapillary Vistas config)")
    pairs: LabelMap = []
    for i, lab in enumerate(labels):
        where = f"{path} labels[{i}]"
        if not isinstance(lab, dict) or not isinstance(lab.get("name"), str):
            raise DataError(f"{where}: expected an object with 'name' and 'color'")
        pairs.append((lab["name"], _rgb(lab.get("color"), where)))
    return _checked(pairs, path)


class MapillaryReader(LabelMapReader):
    """Mapillary Vistas v1.x / v1.2 / v2.0 label PNGs, classes from the config JSON."""

    name = "mapillary_vistas"
    description = "Mapillary Vistas v1.2/v2.0: config*.json labels + SPLIT/VERSION/labels/*.png indices"
    layout = "config_v2.0.json / config_v1.2.json / config.json with training/images/ and training/v2.0/labels/ (or v1.2/labels/, labels/)"

    @classmethod
    def detect(cls, root: Path) -> str | None:
        found = find_version(root)
        if found is None:
            return None
        config, labels, splits = found
        return (
            f"{config.name} with {splits[0].name}/images/ and {splits[0].name}/{labels}/ (Mapillary Vistas)"
        )

    @functools.cached_property
    def _version(self) -> tuple[Path, str, list[Path]]:
        found = find_version(self.root)
        if found is None:
            raise DataError(
                f"{self.root}: no Mapillary Vistas config (config_v2.0.json, config_v1.2.json, config.json) "
                "beside training/images and training/VERSION/labels"
            )
        return found

    def read_labels(self) -> tuple[LabelMap, str]:
        return read_config(self._version[0]), self._version[0].name

    def samples(self) -> list[LabelledSample]:
        self.labels()  # a broken config is said first
        _, labels, splits = self._version
        out, missing = [], []
        for split_dir in splits:
            split = SPLIT_OF[split_dir.name.lower()]
            for label in list_images(split_dir / labels):
                rel = label.relative_to(split_dir / labels).with_suffix("")
                image = find_image(split_dir / "images" / rel.parent, rel.name)
                if image is None:
                    missing.append(str(label.relative_to(self.root)))
                    continue
                out.append(LabelledSample(f"{split_dir.name}/{rel}", image, label, split))
        return checked_samples(
            out,
            f"{self.root}: no label PNG with an image under {', '.join(s.name for s in splits)}",
            missing,
            "label PNG(s) have no image in SPLIT/images/ and are left out",
            self.reporter,
        )
