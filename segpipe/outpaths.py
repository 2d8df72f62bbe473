"""Output paths, checked before any work starts: a folder where a file goes (or the reverse), an
unwritable folder, or an output that would land on one of the command's inputs is one line."""

from __future__ import annotations

import os
from pathlib import Path

from segpipe.errors import ConfigError


def _existing_ancestor(p: Path) -> Path:
    """``p`` itself or its nearest ancestor that exists (``.`` for a relative path at worst)."""
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def _check_writable_folder(folder: Path, flag: str, shown: Path, default: bool = False) -> None:
    """One line when ``folder`` (to be created if missing) cannot be: a file on the way, or the
    nearest existing folder not writable."""
    anc = _existing_ancestor(folder)
    if os.path.lexists(anc) and not anc.is_dir():
        raise ConfigError(f"{flag} {shown}: {anc} is a file, not a folder")
    if not os.access(anc, os.W_OK | os.X_OK):
        where = Path.cwd() if str(anc) == "." else anc
        if default:
            raise ConfigError(
                f"cannot write {shown} ({flag} default): folder {where} is not writable; pass {flag} "
                "with a writable folder"
            )
        raise ConfigError(f"{flag} {shown}: folder {where} is not writable")


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """``a`` and ``b`` name the same file (through links and ``..``); False when either is missing."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def check_output_file(
    path: str | os.PathLike[str],
    flag: str,
    inputs: tuple[str | os.PathLike[str] | None, ...] = (),
    example: str = "NAME",
) -> Path:
    """One-line :class:`ConfigError` when ``path`` cannot be written as a file: it is a folder, a
    file stands where its folder should be, that folder is not writable, or it is one of
    ``inputs`` (segpipe never writes over what it reads). Call it before any work starts."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{flag} {p} is a folder; give the file to write (e.g. {p / example})")
    _check_writable_folder(p.parent, flag, p)
    for src in inputs:
        if src is not None and same_file(p, src):
            raise ConfigError(
                f"{flag} {p} is the input {src}: writing it would destroy it; name another file"
            )
    return p


def check_output_dir(path: str | os.PathLike[str], flag: str, default: bool = False) -> Path:
    """One-line :class:`ConfigError` when ``path`` cannot be used as an output folder: it is a
    file, a file stands on its way, or it (or the nearest existing folder above it) is not
    writable. ``default``: the folder was not given (the message says to pass ``flag``)."""
    p = Path(path)
    if os.path.lexists(p) and not p.is_dir():
        raise ConfigError(f"{flag} {p} is a file, not a folder; give a folder")
    _check_writable_folder(p, flag, p, default)
    return p


def check_not_over_inputs(
    out_dir: str | os.PathLike[str], inputs: str | os.PathLike[str], flag: str, allow: str
) -> None:
    """One line when the output folder ``out_dir`` is the input folder ``inputs`` or lies inside
    it: outputs mixed with the inputs are read back as inputs next time and may bear an input's
    name. ``allow`` names the flag that permits it. (One input file: only its own name is kept
    from being written over, which the writer checks.)"""
    src = Path(inputs).resolve()
    if not src.is_dir():
        return
    out = Path(out_dir).resolve()
    if out == src or src in out.parents:
        how = "is" if out == src else "lies inside"
        raise ConfigError(
            f"{flag} {out_dir} {how} the input folder {inputs}: choose another folder, or pass "
            f"{allow} to write there (an input file is never written over)"
        )
