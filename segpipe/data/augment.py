"""Augmentation presets (albumentations) and loading a user's pipeline from YAML.

Presets work on uint8 RGB images at any size and end at the training size. A YAML file is an
albumentations pipeline saved with ``albumentations.save(transform, path, data_format="yaml")``;
segpipe appends a final resize to the training size. Pipelines must not normalise or convert to
tensors: segpipe normalises on the device with the checkpoint's mean/std.
"""

from __future__ import annotations

from pathlib import Path

import albumentations as A
import cv2

from segpipe.errors import ConfigError, first_line

PRESETS = ("none", "light", "heavy")
_FORBIDDEN = ("Normalize", "ToTensorV2", "ToFloat")


def _resize(width: int, height: int) -> A.BasicTransform:
    return A.Resize(
        height=height, width=width, interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST
    )


def build_transform(
    augment: str, width: int, height: int, ignore_index: int = 255, seed: int | None = None
) -> A.Compose:
    """The training pipeline for ``augment`` (``none``, ``light``, ``heavy`` or a YAML path)."""
    name = str(augment)
    if name == "none":
        steps: list[A.BasicTransform] = [_resize(width, height)]
    elif name == "light":
        steps = [
            _resize(width, height),
            A.HorizontalFlip(p=0.5),
            A.Affine(
                scale=(0.9, 1.1),
                translate_percent=(-0.05, 0.05),
                rotate=(-10, 10),
                fill_mask=ignore_index,
                p=0.5,
            ),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.3),
        ]
    elif name == "heavy":
        steps = [
            A.RandomResizedCrop(
                size=(height, width),
                scale=(0.3, 1.0),
                ratio=(0.75, 1.33),
                mask_interpolation=cv2.INTER_NEAREST,
            ),
            A.HorizontalFlip(p=0.5),
            A.Affine(scale=(0.8, 1.2), rotate=(-15, 15), shear=(-5, 5), fill_mask=ignore_index, p=0.5),
            A.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05, p=0.5),
            A.OneOf([A.GaussianBlur(blur_limit=(3, 5)), A.MotionBlur(blur_limit=(3, 7))], p=0.2),
            A.GaussNoise(std_range=(0.02, 0.08), p=0.2),
            A.CoarseDropout(
                num_holes_range=(1, 4),
                hole_height_range=(0.05, 0.15),
                hole_width_range=(0.05, 0.15),
                fill_mask=ignore_index,
                p=0.2,
            ),
        ]
    else:
        path = Path(name)
        if not path.is_file():
            raise ConfigError(
                f"--augment {name!r}: not one of {', '.join(PRESETS)} and not an existing YAML file"
            )
        steps = [load_pipeline(path), _resize(width, height)]
    return A.Compose(steps, seed=seed)


def build_eval_transform(width: int, height: int) -> A.Compose:
    """Validation / evaluation: resize only."""
    return A.Compose([_resize(width, height)])


def load_pipeline(path: str | Path) -> A.BasicTransform:
    """An albumentations pipeline saved with ``A.save(..., data_format='yaml')``."""
    from segpipe.schema.options import check_yaml_file

    p = Path(path)
    check_yaml_file(p, "augmentation pipeline")  # bounded: aliases, size, nesting (one line)
    try:
        transform = A.load(str(p), data_format="yaml")
    except Exception as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        where = f" line {line + 1}" if line is not None else ""
        raise ConfigError(
            f"{p}{where}: not an albumentations pipeline ({first_line(e)})"
        ) from e
    names = {type(t).__name__ for t in _walk(transform)}
    bad = sorted(names & set(_FORBIDDEN))
    if bad:
        raise ConfigError(f"{p}: remove {', '.join(bad)}: segpipe normalises and converts to tensors itself")
    return transform


def _walk(t: object):
    yield t
    for child in getattr(t, "transforms", []) or []:
        yield from _walk(child)


def save_transform(transform: A.BasicTransform, path: str | Path) -> Path:
    """Save a pipeline with albumentations' own serialisation (YAML), e.g. into the run folder."""
    A.save(transform, str(path), data_format="yaml")
    return Path(path)
