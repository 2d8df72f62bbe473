"""The reader interface every label format implements (see :mod:`segpipe.data.formats`).

No torch here: ``segpipe data``, ``evaluate`` of ONNX / TensorRT models and ``visualize`` read data
sets through these readers without importing it.
"""

from __future__ import annotations

import functools
import operator
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from segpipe.data import safepaths
from segpipe.data.samples import SPLITS, LabelledSample
from segpipe.errors import ConfigError, DataError
from segpipe.progress import Reporter

#: ``LabelledSample`` and ``SPLITS`` are :mod:`segpipe.data.samples`'s, named here for the readers.
#: ``num_classes=DATA_CLASSES``: the class count the data itself gives (:func:`data_classes_count`).
DATA_CLASSES = "data"

__all__ = [
    "SPLITS",
    "ClassInfo",
    "FormatReader",
    "LabelledSample",
    "DATA_CLASSES",
    "as_index_array",
    "check_root",
    "class_names_or_default",
    "data_classes_count",
    "value_lut",
]


@dataclass(frozen=True)
class ClassInfo:
    """Class names and colours as a format ships them.

    Attributes:
        names: class names by id (0..K-1), or None when the data does not name its classes.
        colors: RGB colours by id, or None.
        source: where names (and colours) came from, in words printed to the user
            (``"Pascal VOC (built in)"``, ``"data/colors.csv"``, ``"data.yaml names"``).
    """

    names: tuple[str, ...] | None = None
    colors: tuple[tuple[int, int, int], ...] | None = None
    source: str = ""

    @property
    def num_classes(self) -> int | None:
        if self.names is not None:
            return len(self.names)
        return len(self.colors) if self.colors is not None else None


class FormatReader:
    """One label format: finds the samples of a data root and turns each annotation into a class map.

    Subclasses set :attr:`name`, :attr:`description`, :attr:`layout` and implement :meth:`detect`,
    :meth:`samples`, :meth:`classes` and :meth:`read_mask`. Conventions of the format (ignore value,
    id mappings, reduce-zero-label default) live in the reader, never in the training loop.

    Common options (every reader takes them; see :func:`segpipe.data.formats.open_dataset`):

    * ``ignore_index`` (255): the value :meth:`read_mask` writes for pixels to ignore;
    * ``reduce_zero_label`` (None: the format's default, :attr:`reduce_zero_default`): MMSegmentation's
      convention, 0 -> ignore, every other value minus 1; only for formats with
      :attr:`index_masks`;
    * ``class_map`` (``{raw: new}``, applied after reduce-zero-label) and ``num_classes`` (values
      must then be below it or the ignore value: checked by :meth:`load_mask`; given when the
      reader is built, never set afterwards: :data:`DATA_CLASSES` for the data's own count);
    * ``reporter``: warnings (left-out files...) go there; ``limit``: how messages name the class
      count (``--num-classes N`` by default; ``evaluate`` names the model).

    Format-specific options are listed in :attr:`options` (name -> default); others are refused.

    A data folder is input, never a way out: every list of samples a reader returns passes
    :meth:`confine` (wrapped around each subclass's :meth:`samples`), which refuses an image or
    label outside the data root (links followed) or that is not a regular file, and sanitises the
    sample names outputs are built from (:mod:`segpipe.data.safepaths`).
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("samples")
        if own is not None and not getattr(own, "_confined", False):

            @functools.wraps(own)
            def samples(self: FormatReader) -> list[LabelledSample]:
                return self.confine(own(self))

            samples._confined = True  # type: ignore[attr-defined]
            cls.samples = samples  # type: ignore[method-assign]
        own_classes = cls.__dict__.get("classes")
        if own_classes is not None and not getattr(own_classes, "_confined", False):

            @functools.wraps(own_classes)
            def classes(self: FormatReader) -> ClassInfo:
                info = own_classes(self)
                if (info.num_classes or 0) > safepaths.MAX_CLASSES:
                    safepaths.check_class_count(info.num_classes, f"{safepaths.shown(self.root)} ({info.source})")
                return info

            classes._confined = True  # type: ignore[attr-defined]
            cls.classes = classes  # type: ignore[method-assign]

    #: Registry name, also the ``--format`` value.
    name: ClassVar[str] = ""
    #: One line: what the format is (``"Pascal VOC: JPEGImages/ + SegmentationClass/ P-mode PNGs"``).
    description: ClassVar[str] = ""
    #: What a folder must hold to be read as this format (used when detection finds nothing).
    layout: ClassVar[str] = ""
    #: Masks hold class indices as such (``--reduce-zero-label`` applies).
    index_masks: ClassVar[bool] = False
    #: Default of ``reduce_zero_label`` (True for ADE20K).
    reduce_zero_default: ClassVar[bool] = False
    #: A weak detection (a layout many formats share): a specific format wins over it.
    generic: ClassVar[bool] = False
    #: Format-specific options and their defaults.
    options: ClassVar[dict[str, Any]] = {}
    #: Why this reader was chosen (set by :func:`~segpipe.data.formats.open_dataset`: the detection
    #: reason, or ``--format``).
    detected: str = ""
    #: Set by ``segpipe data`` before reading: what the reader refuses about the data as a whole is
    #: kept for :meth:`data_problems` (and reported) instead of raised.
    survey: bool = False
    #: Formats this one is a special case of: when both detect a folder, this one wins (a CVAT
    #: export is a VOC layout plus the labelmap.txt that gives its colours).
    refines: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        root: str | Path,
        *,
        ignore_index: int = 255,
        reduce_zero_label: bool | None = None,
        class_map: dict[int, int] | None = None,
        num_classes: int | str | None = None,
        reporter: Reporter | None = None,
        limit: str | None = None,
        outside_root: bool = False,
        **options: Any,
    ) -> None:
        self.root = Path(root)
        check_root(self.root)
        #: Paths the data names may lie outside the root (the user's opt-in, see
        #: :func:`segpipe.data.safepaths.inside`; never set from a data file).
        self.outside_root = bool(outside_root) or safepaths.outside_allowed()
        self._confined: set[tuple[str, str, str]] = set()
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ConfigError(
                f"--{unknown[0].replace('_', '-')} does not apply to the {self.name} format"
                + (
                    f" (it takes {', '.join('--' + o.replace('_', '-') for o in self.options)})"
                    if self.options
                    else ""
                )
            )
        self.opts: dict[str, Any] = {**self.options, **options}
        self.ignore_index = ignore_index
        rzl = self.reduce_zero_default if reduce_zero_label is None else bool(reduce_zero_label)
        if rzl and not self.index_masks:
            raise ConfigError(f"--reduce-zero-label applies to index masks; the {self.name} format has none")
        self.reduce_zero_label = rzl
        self.class_map = class_map
        if num_classes is not None and num_classes != DATA_CLASSES:
            num_classes = operator.index(num_classes)  # an int (numpy's too); a typo: TypeError
        self._num_classes = num_classes
        #: How messages name the class count (default ``--num-classes N``).
        self.limit = limit
        self.reporter = reporter or Reporter()
        self._lut: np.ndarray | None = value_lut(rzl, class_map, ignore_index)
        self._checker: Any = None

    @property
    def num_classes(self) -> int | None:
        """The class count masks are checked against (None: not checked), as the reader was built
        with it; :data:`DATA_CLASSES` is the count the data gives (None when it names no classes),
        read once, on first use."""
        if self._num_classes == DATA_CLASSES:
            self._num_classes = data_classes_count(self.classes(), self.root)
        return self._num_classes  # type: ignore[return-value]

    # ---- what each format implements ---------------------------------------------------------
    @classmethod
    def detect(cls, root: Path) -> str | None:
        """A short reason when ``root`` looks like this format (``"JPEGImages/ and
        SegmentationClass/"``), else None. Cheap: looks at names, reads at most a small file."""
        raise NotImplementedError

    def samples(self) -> list[LabelledSample]:
        """Every labelled image, sorted by name, with :attr:`LabelledSample.split` set when the
        format ships splits. One-line :class:`DataError` when there is none."""
        raise NotImplementedError

    def classes(self) -> ClassInfo:
        """Class names/colours as the data ships them (``ClassInfo()`` when it names none)."""
        return ClassInfo()

    def read_mask(self, sample: LabelledSample) -> np.ndarray:
        """H×W uint8 (uint16 above 255 classes) class indices with the format's conventions
        applied (``ignore_index`` for ignored pixels), before reduce-zero-label and the class map.
        One-line :class:`DataError` naming the file on any problem."""
        raise NotImplementedError

    # ---- shared ----------------------------------------------------------------------------------
    def inside(self, name: str | os.PathLike[str], where: str, base: Path | None = None) -> Path:
        """``name`` (as a label file gives it) joined to ``base`` (default: the root), refused in one
        line naming ``where`` unless it resolves inside the data root (see :attr:`outside_root`)."""
        return safepaths.inside(self.root, name, where, base, self.outside_root)

    def confine(self, samples: list[LabelledSample]) -> list[LabelledSample]:
        """``samples`` checked: image and label resolve inside the data root (links followed) and
        are regular files (a FIFO, device or folder is one line, never opened); names made safe to
        build output paths from (no ``..``, absolute part or control character; one line when two
        samples end up with the same name)."""
        return safepaths.confine_samples(self.root, samples, self.outside_root, self._confined)

    def set_ignore_index(self, value: int) -> None:
        """Change the value written for ignored pixels (``segpipe data`` picks 65535 above 255
        classes once it knows the count)."""
        self.ignore_index = int(value)
        self._lut = value_lut(self.reduce_zero_label, self.class_map, self.ignore_index)
        self._checker = None

    def read_image(self, sample: LabelledSample) -> np.ndarray:
        """RGB uint8 H×W×3."""
        from segpipe.data.dataset import read_image

        return read_image(sample.image)

    def image_size(self, sample: LabelledSample) -> tuple[int, int]:
        """(width, height) of the image, read from its header (Pillow, no decoding)."""
        from segpipe.imagesize import check_image_file, declared_size

        safepaths.check_regular(sample.image, "image", safepaths.shown(sample.label or sample.image))
        check_image_file(sample.image)
        size = declared_size(sample.image)
        if size is None:
            raise DataError(f"cannot read image {safepaths.shown(sample.image)}: not an image Pillow reads")
        return size

    def data_problems(self) -> list[str]:
        """What this reader refuses about the data as a whole (a COCO export whose annotations are
        boxes only), one line each, found while :attr:`survey` is set instead of raised."""
        return []

    def notes(self) -> list[str]:
        """What reading masks so far found worth saying (pixels crowds made ignore...), one line
        each; ``segpipe data`` prints them after its scan."""
        return []

    def embedded_image(self, sample: LabelledSample) -> bytes | None:
        """The encoded picture when the label file holds it (LabelMe's ``imageData``), else None:
        the picture is the file ``sample.image`` (``--export-masks`` copies one or the other)."""
        return None

    def load_mask(self, sample: LabelledSample) -> np.ndarray:
        """:meth:`read_mask`, then reduce-zero-label and the class map, then checked against
        ``num_classes`` (one line naming the file and the value)."""
        labels = self.read_mask(sample)
        if self._lut is not None:
            labels = self._lut[labels]
        if self.num_classes is not None:
            labels = self.checker().decode(labels, sample.label or sample.image)
        elif (
            labels.dtype != np.uint8
            and self.ignore_index <= 255
            and (labels.size == 0 or labels.max() <= 255)
        ):
            labels = labels.astype(np.uint8)
        return labels

    def checker(self) -> Any:
        """The :class:`~segpipe.data.masks.MaskDecoder` that checks class ids (index masks only)."""
        if self._checker is None:
            from segpipe.data.masks import MaskDecoder

            self._checker = MaskDecoder(
                self.num_classes or 1, None, None, self.ignore_index, "index", self.limit
            )
        return self._checker

    def load(self, sample: LabelledSample) -> tuple[np.ndarray, np.ndarray]:
        """(RGB image, checked class map) of one sample, the same size or one line saying so."""
        image = self.read_image(sample)
        mask = self.load_mask(sample)
        if image.shape[:2] != mask.shape[:2]:
            raise DataError(
                f"{sample.label}: mask is {mask.shape[1]}x{mask.shape[0]} but image {sample.image} is "
                f"{image.shape[1]}x{image.shape[0]} (W x H)"
            )
        return image, mask

    def splits(self) -> dict[str | None, list[LabelledSample]]:
        """The samples grouped by split (``None``: the format ships no split)."""
        out: dict[str | None, list[LabelledSample]] = {}
        for s in self.samples():
            out.setdefault(s.split, []).append(s)
        return out

    def __getstate__(self) -> dict[str, Any]:
        """Picklable for loader workers started by spawn: no reporter (its console and progress bar
        stay in the main process) and no lazily built decoders (rebuilt where used)."""
        state = self.__dict__.copy()
        state["reporter"] = Reporter()
        for key in ("_checker", "_decoder"):
            if key in state:
                state[key] = None
        return state

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"


def check_root(root: Path) -> None:
    """One line when the data root is not a folder: missing, a file, a FIFO, a device."""
    try:
        st = os.stat(root)
    except OSError as e:
        raise DataError(f"data root {safepaths.shown(root)} does not exist ({e.strerror or e})") from None
    if stat.S_ISREG(st.st_mode):
        raise DataError(f"data root {safepaths.shown(root)} is a file, not a folder")
    if not stat.S_ISDIR(st.st_mode):
        raise DataError(f"data root {safepaths.shown(root)} is {safepaths.kind_of(st.st_mode)}, not a folder")


def data_classes_count(info: ClassInfo, root: str | Path) -> int | None:
    """The class count the data itself gives (format names/colours, else DATA_ROOT/colors.csv)."""
    if info.num_classes is not None:
        return info.num_classes
    from segpipe.palette import load_palette

    beside = Path(root) / "colors.csv"
    return len(load_palette(beside)) if beside.is_file() else None


def value_lut(
    reduce_zero_label: bool, class_map: dict[int, int] | None, ignore_index: int
) -> np.ndarray | None:
    """One 65536-entry lookup table doing reduce-zero-label (0 -> ignore, v -> v - 1, ignore stays)
    then the class map; None when there is nothing to do."""
    if not reduce_zero_label and not class_map:
        return None
    lut = np.arange(65536, dtype=np.uint16)
    if reduce_zero_label:
        lut = lut - 1
        lut[0] = ignore_index
        lut[ignore_index] = ignore_index
    if class_map:
        remap = np.arange(65536, dtype=np.uint16)
        for src, dst in class_map.items():
            remap[src] = dst
        lut = remap[lut]
    return lut


def as_index_array(values: np.ndarray, path: str | Path) -> np.ndarray:
    """A decoded mask as uint8/uint16 class indices; one line when it holds something else."""
    if values.ndim != 2:
        raise DataError(f"{path}: expected a single-channel mask of class indices, got shape {values.shape}")
    if values.dtype in (np.uint8, np.uint16):
        return values
    if np.issubdtype(values.dtype, np.integer) and (
        values.size == 0 or (values.min() >= 0 and values.max() <= 65535)
    ):
        return values.astype(np.uint16)
    raise DataError(f"{path}: mask values must be integers within 0..65535, got {values.dtype}")


def class_names_or_default(names: Sequence[str] | None, n: int) -> tuple[str, ...]:
    """``names`` when given for ``n`` classes, else ``class_0..class_{n-1}``."""
    if names is not None and len(names) == n:
        return tuple(names)
    return tuple(f"class_{i}" for i in range(n))
