"""Class names and colours of a data set: from the user, the data, or nowhere (then said once).

Names, in order of precedence: ``--class-names``; the format's own (VOC and Cityscapes built in, a
dataset YAML's ``names``, COCO categories, the seed layout's ``colors.csv``...); a ``colors.csv`` in
DATA_ROOT; else ``class_0..class_{n-1}`` with one line saying how to name them. Colours: ``--colors``,
the format's, ``DATA_ROOT/colors.csv``, else segpipe's shipped palette (colours only, never its names).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from segpipe.data.formats.base import ClassInfo
from segpipe.errors import DataError
from segpipe.palette import Palette, fit_palette, load_palette
from segpipe.schema import has_controls, shown

NAME_HINT = (
    "the data names no classes: they are called class_0..class_{last}; name them with "
    "--class-names a,b,c or a colors.csv (id,name,r,g,b) in {root}"
)


@dataclass(frozen=True)
class ResolvedClasses:
    """What a command uses: names and palette (same length), where names came from, and the
    line to tell the user when they came from nowhere (None otherwise)."""

    names: tuple[str, ...]
    palette: Palette
    source: str
    hint: str | None = None
    #: A warning when the palette had to be extended with generated colours.
    palette_warning: str | None = None


def resolve_classes(
    num_classes: int,
    info: ClassInfo,
    root: str | Path,
    class_names: Sequence[str] | None = None,
    colors: str | Path | None = None,
) -> ResolvedClasses:
    """Names and colours for ``num_classes`` classes by the precedence in the module docstring."""
    beside = Path(root) / "colors.csv"
    data_pal = load_palette(beside) if beside.is_file() else None
    user_pal = load_palette(colors) if colors is not None else None
    hint = None
    if class_names:
        names, source = tuple(class_names), "--class-names"
    elif info.names is not None and len(info.names) == num_classes:
        names, source = tuple(info.names), info.source
    elif user_pal is not None and len(user_pal) == num_classes:
        names, source = user_pal.names, f"--colors {colors}"
    elif data_pal is not None and len(data_pal) == num_classes:
        names, source = data_pal.names, str(beside)
    else:
        names = tuple(f"class_{i}" for i in range(num_classes))
        source = "none"
        hint = NAME_HINT.format(last=num_classes - 1, root=root)
        if info.names is not None or data_pal is not None:
            given = info.names if info.names is not None else data_pal.names  # type: ignore[union-attr]
            where = info.source if info.names is not None else str(beside)
            hint = (
                f"{where} names {len(given)} classes but there are {num_classes}: they are called "
                f"class_0..class_{num_classes - 1}; name them with --class-names a,b,c"
            )
    where = source if source.startswith("--") else f"{root}, {source}"
    _check_names(names, where)
    if hint is None:
        hint = _repeated(names, where)
    if user_pal is not None:
        pal = user_pal
    elif info.colors is not None:
        pal = Palette(tuple(f"class_{i}" for i in range(len(info.colors))), info.colors, info.source)
    elif data_pal is not None:
        pal = data_pal
    else:
        pal = load_palette(None)
    pal, warning = fit_palette(pal, num_classes)
    return ResolvedClasses(names, Palette(names, pal.colors, pal.source, pal.dropped), source, hint, warning)


#: The longest class name the model description takes (segpipe.schema.files.Name).
MAX_NAME = 200


def _check_names(names: Sequence[str], source: str) -> None:
    """Names the checkpoint and ONNX metadata will accept, refused here, before training, naming
    where they came from (a data set's YAML, labelmap, categories): not after the first epoch."""
    for i, name in enumerate(names):
        problem = None
        if has_controls(name):
            problem = "control characters (ESC, CR, newline, ...) are not allowed"
        elif len(name) > MAX_NAME:
            problem = f"longer than {MAX_NAME} characters"
        if problem:
            hint = "" if source.startswith("--") else " (rename it, or give --class-names)"
            raise DataError(f"{source}: class {i} name {shown(name)}: {problem}{hint}")


def _repeated(names: Sequence[str], where: str) -> str | None:
    """A warning when two classes share a name (COCO categories may): pictures, tables and a
    ``name,weight`` class-weights file could not tell them apart."""
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in first:
            return (
                f"{where}: classes {first[name]} and {i} are both called {shown(name)}; "
                "give --class-names to tell them apart"
            )
        first[name] = i
    return None
