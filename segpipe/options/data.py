"""Options of ``segpipe data`` (look at a labelled data set; no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segpipe.options import flags as F
from segpipe.options.base import ClassCount, IgnoreIndex, check_fields


@dataclass(frozen=True)
class DataOptions:
    """Everything ``segpipe data`` needs: the data set, how to read it, and where to export it."""

    # one declaration a line or two (segpipe.options.declare), kept so by the formatter:
    # fmt: off
    #: The data set folder, any label format (also ``segpipe data DIR``).
    data_root: Path = F.DATA_ROOT(argument=True, help="The data set folder, any label format.")
    format: str = F.FORMAT()
    #: Class names, one per class; default the data set's.
    class_names: tuple[str, ...] | None = F.CLASS_NAMES(help="Comma-separated class names.")
    #: Class count; default the data set's.
    num_classes: ClassCount | None = F.NUM_CLASSES(help="Class count (default: the data's).", panel=F.DATA_PANEL)
    colors: Path | None = F.COLORS(help="Palette CSV id,name,r,g,b.")
    reduce_zero_label: bool | None = F.REDUCE_ZERO_LABEL()
    crowds: str = F.CROWDS()
    #: Mask value of ignored pixels; default 255 (65535 above 255 classes).
    ignore_index: IgnoreIndex | None = F.IGNORE_INDEX(help="Mask value of ignored pixels "
        "(written as such by --export-masks). Default: 255 (65535 above 255 classes).")
    images_dir: str = F.IMAGES_DIR()
    masks_dir: str = F.MASKS_DIR()
    mask_suffix: str = F.MASK_SUFFIX()
    #: Write the seed layout (images/, indexes/, colors.csv) to this new folder.
    export_masks: Path | None = F.OUTPUT_PANEL.flag("--export-masks", None,
        "Write the seed layout (images/, indexes/ index masks, colors.csv) to this new folder.", metavar="DIR")
    # fmt: on

    def __post_init__(self) -> None:
        check_fields(self)
        F.check_data_flags(self)
