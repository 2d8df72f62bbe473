"""``segpipe evaluate``: mIoU, per-class IoU and pixel accuracy of any model file on a data set.

The data set is read with the training code (same layout, mask decoding, class map, ignore index),
the model with any runner (``.pth``, ``.onnx``, ``.engine``), so the PyTorch, ONNX and TensorRT
versions of one model can be put side by side on the same data. Predictions go through the shared
inference pipeline and are scored at each mask's own resolution.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segpipe import __version__
from segpipe.data.build import open_reader
from segpipe.data.formats import ClassInfo, LabelledSample, resolve_format
from segpipe.data.heldout import select_for_model
from segpipe.data.masks import load_class_map
from segpipe.errors import DataError
from segpipe.metrics import ConfusionMatrix
from segpipe.modelinfo import ModelInfo
from segpipe.options import EvaluateOptions
from segpipe.palette import Palette, load_palette
from segpipe.progress import Reporter
from segpipe.runtime.base import Runner
from segpipe.runtime.pipeline import network_size, open_runner, predict
from segpipe.utils import atomic_path, atomic_write_text
from segpipe.video import VIDEO_EXTS


@dataclass
class EvalResult:
    """The figures of one evaluation."""

    model: Path
    backend: str
    data_root: Path
    size: tuple[int, int]
    images: int
    class_names: tuple[str, ...]
    confusion: ConfusionMatrix
    seconds: float = 0.0
    #: Sliding window / test-time augmentation used ("" for plain resizing).
    inference: str = ""
    #: What the user must know to read the figures (e.g. the model's classes are not the data set's).
    warnings: list[str] = field(default_factory=list)
    #: Which images were read, said to the model (held out by training, ...); "" when nothing to say.
    selection: str = ""

    @property
    def iou(self) -> np.ndarray:
        """Per-class IoU (NaN for a class absent from both ground truth and predictions)."""
        return self.confusion.iou()

    @property
    def miou(self) -> float:
        return self.confusion.miou()

    @property
    def pixel_accuracy(self) -> float:
        return self.confusion.pixel_accuracy()

    def rows(self) -> list[list[Any]]:
        """One row per class: id, name, IoU, accuracy (recall), ground-truth pixels."""
        acc = self.confusion.class_accuracy()
        gt = self.confusion.matrix.sum(1)
        return [
            [i, name, _num(self.iou[i]), _num(acc[i]), int(gt[i])] for i, name in enumerate(self.class_names)
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (NaN becomes null)."""
        return {
            "model": str(self.model),
            "backend": self.backend,
            "data_root": str(self.data_root),
            "size": list(self.size),
            "images": self.images,
            "pixels": self.confusion.pixels,
            "miou": _num(self.miou),
            "pixel_accuracy": _num(self.pixel_accuracy),
            "mean_accuracy": _num(
                float(np.nanmean(self.confusion.class_accuracy()))
                if np.isfinite(self.confusion.class_accuracy()).any()
                else float("nan")
            ),
            "classes": [
                dict(zip(("id", "name", "iou", "accuracy", "pixels"), r, strict=True)) for r in self.rows()
            ],
            "confusion_matrix": self.confusion.matrix.tolist(),
            "ignore_index": self.confusion.ignore_index,
            "seconds": round(self.seconds, 3),
            "inference": self.inference or "resize",
            "warnings": list(self.warnings),
            "images_from": self.selection or None,
            "segpipe_version": __version__,
        }


def _num(v: float) -> float | None:
    return None if v is None or math.isnan(float(v)) else float(v)


def model_palette_or_default(opts: EvaluateOptions, info: ModelInfo) -> Palette:
    """The model's colours (without a class map, they are the training classes), else segpipe's."""
    if info.colors and opts.class_map is None:
        return Palette(
            info.class_names or tuple(f"class_{i}" for i in range(len(info.colors))),
            info.colors,
            f"of the model {opts.model}",
        )
    return load_palette(None)


def class_mismatch(info: ModelInfo, palette: Palette, model: str | Path, colours: bool = True) -> str | None:
    """A warning when a data set's palette (``--colors`` or ``DATA_ROOT/colors.csv``) describes other
    classes than the model's: another count, or another name or colour for the same id.
    ``colours=False``: the data set names its classes without colours (the palette's are the model's),
    so only names are compared and no colour is said to be the data set's."""
    problems = []
    if len(palette) != info.num_classes:
        problems.append(f"{len(palette)} classes in the data set, {info.num_classes} in the model")
    default = {f"class_{i}" for i in range(max(len(palette), info.num_classes))}
    for i in range(min(len(palette), info.num_classes)):
        ours = palette.names[i], tuple(palette.colors[i])
        model_name = info.class_names[i] if i < len(info.class_names) else None
        model_rgb = tuple(info.colors[i]) if i < len(info.colors) else None
        name_differs = (
            model_name is not None
            and model_name not in default
            and ours[0] not in default
            and model_name.strip().lower() != ours[0].strip().lower()
        )
        colour_differs = colours and model_rgb is not None and model_rgb != ours[1]
        if name_differs or colour_differs:
            shown = f"{ours[0]!r} {ours[1]}" if colours else repr(ours[0])
            problems.append(
                f"class {i} is {shown} in the data set but "
                f"{model_name or f'class_{i}'!r} {model_rgb or ''}".rstrip()
                + " in the model"
            )
            break
    if not problems:
        return None
    return (
        f"the model's classes are not the data set's ({palette.source}): {'; '.join(problems)}; "
        f"so the figures may compare different classes (model {model}); map the data set's classes with "
        "--class-map, or evaluate a model trained on this data set"
    )


def data_classes_palette(opts: EvaluateOptions, info: ModelInfo, data: ClassInfo) -> Palette | None:
    """The data set's own classes to hold against the model's: ``--colors``, else the names (and
    colours) the data ships (format names, ``DATA_ROOT/colors.csv``); None when it names none."""
    if opts.colors is not None:
        return load_palette(opts.colors)
    if data.names is None:
        return None
    n = len(data.names)
    colors = data.colors if data.colors is not None and len(data.colors) == n else None
    if colors is None:  # names only (a YAML, COCO categories): colours are not compared
        colors = tuple(tuple(info.colors[i]) if i < len(info.colors) else (0, 0, 0) for i in range(n))
    return Palette(tuple(data.names), colors, data.source)  # type: ignore[arg-type]


def evaluate(
    opts: EvaluateOptions, reporter: Reporter | None = None, runner: Runner | None = None
) -> EvalResult:
    """Score ``opts.model`` on the data set at ``opts.data_root``; nothing is written here.

    ``runner``: an already open runner to use instead of opening ``opts.model`` (left open).
    """
    reporter = reporter or Reporter()
    start = time.perf_counter()
    if Path(opts.data_root).suffix.lower() in VIDEO_EXTS:
        raise DataError(
            f"--data-root {opts.data_root} is a video: evaluate scores images against their masks "
            "(segpipe visualize reads videos)"
        )
    spec = opts.spec
    layout = {"images_dir": opts.images_dir, "masks_dir": opts.masks_dir, "mask_suffix": opts.mask_suffix}
    resolve_format(opts.data_root, opts.format, **layout)  # a wrong folder fails before the model loads
    warnings: list[str] = []
    owned = runner is None
    runner = open_runner(opts, reporter) if runner is None else runner
    with runner if owned else contextlib.nullcontext(runner):
        info = runner.info
        size = network_size(runner, opts.size)
        ignore = info.ignore_index if opts.ignore_index is None else opts.ignore_index
        class_map = load_class_map(opts.class_map, ignore) if opts.class_map is not None else None
        limit = (
            f"--num-classes {opts.num_classes}"
            if opts.num_classes is not None
            else f"{info.num_classes}, the class count of {opts.model}"
        )
        reader = open_reader(
            opts,
            ignore_index=ignore,
            class_map=class_map,
            num_classes=info.num_classes,
            limit=limit,
            reporter=reporter,
            default_palette=model_palette_or_default(opts, info),
        )
        samples, caution, selection = select_for_model(
            reader.samples(), opts.split, Path(opts.data_root), info.data_split, opts.model
        )
        if selection and caution:
            reporter.warn(selection)
            warnings.append(selection)
        elif selection:
            reporter.info(selection)
        data = reader.classes()
        palette = data_classes_palette(opts, info, data)
        colours = opts.colors is not None or (
            data.colors is not None and data.names is not None and len(data.colors) == len(data.names)
        )
        mismatch = (
            class_mismatch(info, palette, opts.model, colours) if palette and class_map is None else None
        )
        if mismatch:
            warnings.append(mismatch)
            reporter.warn(mismatch)
        cm = ConfusionMatrix(info.num_classes, ignore)

        def load(sample: LabelledSample) -> tuple[np.ndarray, np.ndarray]:
            return reader.load(sample)

        with reporter.task(f"Evaluating ({runner.backend})", total=len(samples)) as task:
            for pred in predict(
                runner,
                samples,
                size,
                load=load,
                batch_size=opts.batch_size,
                workers=opts.workers,
                spec=spec,
            ):
                if pred.error is not None:
                    raise pred.error  # bad data: one line naming the file, nothing written
                cm.update(pred.labels, pred.extra)
                task.advance()
    names = (
        info.class_names
        if len(info.class_names) == info.num_classes
        else tuple(f"class_{i}" for i in range(info.num_classes))
    )
    return EvalResult(
        Path(opts.model),
        runner.backend,
        Path(opts.data_root),
        size,
        len(samples),
        tuple(names),
        cm,
        time.perf_counter() - start,
        spec.describe(),
        warnings,
        selection or "",
    )


def write_report(result: EvalResult, path: str | Path) -> Path:
    """The figures as JSON, written atomically."""
    return atomic_write_text(path, json.dumps(result.to_dict(), indent=2) + "\n")


def plot_confusion(result: EvalResult, path: str | Path) -> Path:
    """Draw the row-normalised confusion matrix (ground truth rows, predictions columns) as PNG."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    norm = result.confusion.normalized()
    k = len(norm)
    side = min(4 + 0.45 * k, 30)
    fig = Figure(figsize=(side + 1.5, side))
    ax = fig.subplots()
    try:
        im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(k), result.class_names, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(k), result.class_names, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("ground truth")
        ax.set_title(
            f"{result.model.name} ({result.backend}): mIoU {100 * result.miou:.1f}%\n"
            "rows normalised: each row sums to 1 over the predictions"
        )
        if k <= 30:
            for i in range(k):
                for j in range(k):
                    if norm[i, j] >= 0.005:
                        ax.text(
                            j,
                            i,
                            f"{norm[i, j]:.2f}",
                            ha="center",
                            va="center",
                            fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black",
                        )
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120)
    finally:
        fig.clear()
    return Path(path)
