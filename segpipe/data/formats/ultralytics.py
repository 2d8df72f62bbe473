"""Ultralytics semantic-segmentation datasets: index-mask PNGs next to the images + a dataset YAML.

Layout (as https://docs.ultralytics.com/datasets/semantic/ documents it)::

    DATA_ROOT/data.yaml            path, train, val, (test), masks_dir, names, (label_mapping)
    DATA_ROOT/images/train/NAME.jpg
    DATA_ROOT/images/val/NAME.jpg
    DATA_ROOT/masks/train/NAME.png single-channel class indices, 255 = ignore
    DATA_ROOT/masks/val/NAME.png

Conventions, as Ultralytics applies them:

* ``train``/``val``/``test`` name image folders (or ``.txt`` lists of image paths, or lists of
  either) relative to ``path``; the split each sample comes from is kept (train / val / test).
* A mask is found by replacing the last ``images`` folder of the image path with ``masks_dir``
  (default ``masks``) and the suffix with ``.png`` (else ``.bmp``/``.tif``/``.tiff``).
* Pixel values are class ids ``0..len(names)-1``; 255 is ignore. ``label_mapping`` (optional,
  ``raw: train_id`` or ``raw: ignore_label``) is applied first; unmapped values stay as they are.
  Any other value is refused, naming the file and the value.
* ``names`` is a dict ``{0: name, ...}`` (ids 0..N-1, each once) or a list; it names the classes.
* ``path``: an absolute folder or one relative to the YAML's folder; when it does not exist there
  (Ultralytics would look under its own datasets folder), the YAML's folder is the dataset root.
* A YAML without ``masks_dir`` and without a ``masks/`` folder is Ultralytics' polygon-label
  variant: :mod:`segpipe.data.formats.yolo` reads it.

No torch here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segpipe.data.formats._annotations import (
    IMAGE_EXTS,
    check_indices,
    checked_samples,
    list_images,
    read_index_png,
    read_text,
)
from segpipe.data.formats.base import ClassInfo, FormatReader, LabelledSample
from segpipe.data.safepaths import OUTSIDE_ENV, check_regular, inside, is_within, outside_allowed
from segpipe.errors import DataError, some

IGNORE = 255
MASK_EXTS = (".png", ".PNG", ".bmp", ".tif", ".tiff")
SPLITS = ("train", "val", "test")
#: Most classes a YAML may name, and most image files a list (.txt) may hold.
MAX_CLASSES = 65535
MAX_LIST_LINES = 10_000_000
#: Largest YAML detection parses (a dataset YAML is a few kB).
DETECT_BYTES = 1 << 20


@dataclass(frozen=True)
class UltralyticsConfig:
    """A dataset YAML, validated."""

    file: Path
    root: Path
    splits: dict[str, list[str]]
    names: list[str]
    masks_dir: str | None
    label_mapping: dict[int, int] = field(default_factory=dict)
    #: Set when ``path`` named a folder that does not exist (the YAML's folder is read instead).
    path_note: str | None = None


def find_yamls(root: Path) -> list[Path]:
    """The dataset YAMLs in ``root`` (``*.yaml``/``*.yml``, not recursive), ``data.yaml`` first."""
    if root.is_file():
        return [root] if root.suffix.lower() in (".yaml", ".yml") else []
    if not root.is_dir():
        return []
    found = sorted(p for p in root.iterdir() if p.suffix.lower() in (".yaml", ".yml") and p.is_file())
    return sorted(found, key=lambda p: (p.stem.lower() != "data", p.name))


def _parse_names(raw: object, problems: list[str]) -> list[str]:
    if isinstance(raw, list):
        items = list(enumerate(raw))
    elif isinstance(raw, dict):
        items = []
        for k, v in raw.items():
            if isinstance(k, bool) or not isinstance(k, int):
                problems.append(f"names: key {k!r} is not an integer class id")
                continue
            items.append((k, v))
        ids = sorted(k for k, _ in items)
        if ids != list(range(len(ids))):
            problems.append(f"names: class ids must be 0..{len(ids) - 1}, each once; got {some(ids, 8)}")
        items.sort()
    else:
        problems.append(f"names: expected a mapping {{0: name}} or a list, got {type(raw).__name__}")
        return []
    if not items:
        problems.append("names: holds no classes")
    if len(items) > MAX_CLASSES:
        problems.append(f"names: {len(items)} classes, over the limit of {MAX_CLASSES}")
        return []
    names = []
    for k, v in items:
        if not isinstance(v, (str, int, float)) or isinstance(v, bool) or not str(v).strip():
            problems.append(f"names: class {k} has no usable name ({v!r})")
        names.append(str(v).strip())
    return names


def _parse_mapping(raw: object, problems: list[str]) -> dict[int, int]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(f"label_mapping: expected a mapping raw: train_id, got {type(raw).__name__}")
        return {}
    out: dict[int, int] = {}
    for k, v in raw.items():
        if isinstance(k, bool) or not isinstance(k, int) or not -1 <= k <= 65535:
            problems.append(f"label_mapping: key {k!r} is not a pixel value -1..65535")
            continue
        if v == "ignore_label":
            v = IGNORE
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 65535:
            problems.append(f"label_mapping: {k}: {v!r} is not a class id nor ignore_label")
            continue
        if k >= 0:
            out[k] = v
    return out


def _as_list(key: str, raw: object, problems: list[str]) -> list[str]:
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    if not items or not all(isinstance(i, str) and i.strip() for i in items):
        problems.append(f"{key}: expected a folder, a .txt list or a list of them, got {raw!r}")
        return []
    return [str(i).strip() for i in items]


def load_config(path: Path, splits_required: bool = True) -> UltralyticsConfig:
    """Read and validate a dataset YAML (``yaml.safe_load``); every problem found goes into one
    line naming the file and the fields. ``splits_required=False`` (the YOLO reader) accepts a YAML
    giving neither ``train`` nor ``val`` (``splits`` then empty: the folders are found as without one)."""
    from segpipe.schema.options import parse_yaml

    # bounded: a few hundred bytes of nested aliases must not expand to gigabytes
    data = parse_yaml(read_text(path), path, DataError)
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a mapping with path, train, val and names")
    problems: list[str] = []
    names = _parse_names(data.get("names"), problems) if "names" in data else []
    if "names" not in data:
        problems.append("names: missing (the class names, {0: name, ...})")
    splits = {s: _as_list(s, data.get(s), problems) for s in SPLITS}
    if splits_required and not splits["train"] and not splits["val"]:
        problems.append("train/val: neither is given (image folders relative to path)")
    masks_dir = data.get("masks_dir")
    if masks_dir is not None and (
        not isinstance(masks_dir, str)
        or not masks_dir.strip()
        or any(c in masks_dir for c in "/\\\x00")
        or masks_dir.strip() in (".", "..")
    ):
        problems.append(f"masks_dir: expected a folder name like 'masks', got {masks_dir!r}")
    mapping = _parse_mapping(data.get("label_mapping"), problems)
    raw_root = data.get("path")
    if raw_root is not None and not isinstance(raw_root, str):
        problems.append(f"path: expected a folder, got {raw_root!r}")
        raw_root = None
    if problems:
        raise DataError(f"{path}: " + "; ".join(problems))
    root, note = path.parent, None
    if raw_root:
        cand = Path(raw_root).expanduser()
        cand = cand if cand.is_absolute() else path.parent / cand
        if cand.is_dir() and not is_within(cand, path.parent) and not outside_allowed():
            raise DataError(
                f"{path}: path {raw_root!r} lies outside the data root {path.parent} (refused; set "
                f"{OUTSIDE_ENV}=1 to read images from there)"
            )
        if cand.is_dir():
            root = cand
        else:
            note = f"{path}: path {raw_root!r} is not a folder here; reading train/val relative to {root}"
    return UltralyticsConfig(path, root, splits, names, masks_dir, mapping, note)


def split_images(cfg: UltralyticsConfig, entry: str, split: str) -> list[Path]:
    where = Path(entry).expanduser()
    where = where if where.is_absolute() else cfg.root / where
    if where.is_dir():
        images = list_images(where)
        if not images:
            raise DataError(f"{cfg.file} {split}: {where} holds no images ({', '.join(IMAGE_EXTS)})")
        return images
    if where.suffix.lower() == ".txt" and where.is_file():
        lines = [ln.strip() for ln in read_text(where).splitlines() if ln.strip()]
        if len(lines) > MAX_LIST_LINES:
            raise DataError(f"{where}: {len(lines)} lines, over the limit of {MAX_LIST_LINES}")
        # every line stays inside the data set's folder (links followed), unless the user allowed
        # otherwise (SEGPIPE_DATA_OUTSIDE_ROOT=1)
        return [
            inside(cfg.root, ln, f"{where} line {i}: image", base=where.parent)
            for i, ln in enumerate(lines, 1)
        ]
    if (
        where.exists()
    ):  # a FIFO, socket or device (or a file that is no .txt list): said so, not "does not exist"
        check_regular(where, "image list", f"{cfg.file} {split}")
        raise DataError(f"{cfg.file} {split}: {where} is neither a folder of images nor a .txt list of them")
    raise DataError(f"{cfg.file} {split}: {where} does not exist (resolved against path {cfg.root})")


def mask_for(image: Path, masks_dir: str) -> Path | None:
    """The mask of ``image``: its last ``images`` folder replaced by ``masks_dir``, suffix .png
    (or another mask suffix); None when the path has no ``images`` folder or no mask exists."""
    parts = list(image.parts)
    idx = max((i for i, p in enumerate(parts[:-1]) if p == "images"), default=None)
    if idx is None:
        return None
    parts[idx] = masks_dir
    base = Path(*parts).with_suffix("")
    for ext in MASK_EXTS:
        cand = base.with_name(base.name + ext)
        if cand.is_file():
            return cand
    return None


def list_samples(cfg: UltralyticsConfig) -> list[tuple[str, Path, Path, str]]:
    """``(name, image, mask, split)`` for every image of every split; one line listing the images
    that have no mask."""
    masks_dir = cfg.masks_dir or "masks"
    out: list[tuple[str, Path, Path, str]] = []
    missing: list[str] = []
    for split, entries in cfg.splits.items():
        for entry in entries:
            for img in split_images(cfg, entry, split):
                mask = mask_for(img, masks_dir)
                if mask is None:
                    missing.append(str(img))
                    continue
                name = sample_name(img, cfg.root)
                out.append((name, img, mask, split))
    return checked_samples(
        out,
        f"{cfg.file}: the train/val folders hold no images",
        missing,
        "image(s) have no mask (the image path with its 'images' folder replaced by "
        f"'{masks_dir}', suffix .png)",
        by_name=False,
    )


def read_mask(
    path: Path, cfg: UltralyticsConfig, ignore_index: int = IGNORE, check: bool = True
) -> np.ndarray:
    """The mask at ``path`` as class ids: ``label_mapping`` applied, 255 written as
    ``ignore_index``, values checked against ``names`` (unless ``check`` is False)."""
    raw = read_index_png(path)
    if not cfg.label_mapping and ignore_index == IGNORE:
        return check_indices(raw, len(cfg.names), IGNORE, path) if check else raw
    lut = np.arange(65536, dtype=np.uint16)
    for k, v in cfg.label_mapping.items():
        lut[k] = v
    lut[lut == IGNORE] = ignore_index
    out = lut[raw]
    if ignore_index <= 255 and out.max(initial=0) <= 255:
        out = out.astype(np.uint8)
    return check_indices(out, len(cfg.names), ignore_index, path) if check else out


def sample_name(image: Path, root: Path) -> str:
    """``train/NAME`` for ``ROOT/images/train/NAME.jpg`` (the path below ``images/``, else below the
    root, else the file name), without suffix."""
    for base in (root / "images", root):
        try:
            return str(image.relative_to(base).with_suffix(""))
        except ValueError:
            continue
    return image.stem


def usable_config(root: Path, want_masks: bool) -> tuple[UltralyticsConfig, Path] | None:
    """The first dataset YAML of ``root`` that loads (a small file: detection reads no more than
    :data:`DETECT_BYTES`), with masks (``want_masks``) or without."""
    for yml in find_yamls(root):
        try:
            if yml.stat().st_size > DETECT_BYTES:
                continue
            cfg = load_config(yml)
        except (DataError, OSError):
            continue
        has_masks = cfg.masks_dir is not None or (
            (cfg.root / "masks").is_dir() and (cfg.root / "images").is_dir()
        )
        if has_masks == want_masks:
            return cfg, yml
    return None


def detect_reason(root: Path) -> tuple[str, Path] | None:
    """``(reason, yaml)`` when ``root`` looks like an Ultralytics semantic dataset, else None."""
    for yml in find_yamls(root):
        try:
            if yml.stat().st_size > DETECT_BYTES:
                continue
            cfg = load_config(yml)
        except DataError:
            if (root / "masks").is_dir() and (root / "images").is_dir():  # the reader then says why
                return f"{yml.name} (unreadable) with images/ and masks/ folders", yml
            continue
        if cfg.masks_dir is not None:
            return f"{yml.name} names masks_dir: {cfg.masks_dir}", yml
        if (cfg.root / "masks").is_dir() and (cfg.root / "images").is_dir():
            return f"{yml.name} with images/ and masks/ folders", yml
    return None


class UltralyticsReader(FormatReader):
    """Ultralytics semantic segmentation: images + single-channel index masks + a dataset YAML."""

    name = "ultralytics"
    description = "Ultralytics semantic: images/{train,val} + masks/{train,val} index PNGs + dataset YAML"
    layout = "a dataset YAML (names, masks_dir) with images/{train,val}/ and masks/{train,val}/"
    index_masks = True

    def __init__(self, root: str | Path, **kw: object) -> None:
        super().__init__(root, **kw)  # type: ignore[arg-type]
        self._samples: list[LabelledSample] | None = None

    @classmethod
    def detect(cls, root: Path) -> str | None:
        found = detect_reason(root)
        return found[0] if found else None

    def config(self) -> UltralyticsConfig:
        """The dataset YAML: ``data.yaml``, else the only YAML in the data root with masks."""
        return self._cfg

    @functools.cached_property
    def _cfg(self) -> UltralyticsConfig:
        found = detect_reason(self.root)
        if found is None:
            yamls = find_yamls(self.root)
            if not yamls:
                raise DataError(
                    f"{self.root}: no dataset YAML (path, train, val, masks_dir, names) in the data root"
                )
            load_config(yamls[0])  # raises the YAML's own problems
            raise DataError(
                f"{yamls[0]}: no masks_dir and no masks/ folder beside images/ (polygon labels: "
                "use --format yolo)"
            )
        cfg = load_config(found[1])
        if cfg.path_note:
            self.reporter.info(cfg.path_note)
        return cfg

    def samples(self) -> list[LabelledSample]:
        if self._samples is None:
            found = list_samples(self.config())
            self._samples = sorted(
                (LabelledSample(n, img, mask, split) for n, img, mask, split in found), key=lambda s: s.name
            )
        return list(self._samples)

    def classes(self) -> ClassInfo:
        cfg = self.config()
        return ClassInfo(tuple(cfg.names), None, f"{cfg.file.name} names")

    def read_mask(self, sample: LabelledSample) -> np.ndarray:
        assert sample.label is not None
        return read_mask(
            sample.label,
            self.config(),
            self.ignore_index,
            check=not (self.class_map or self.reduce_zero_label),
        )
