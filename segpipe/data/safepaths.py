"""A data folder is input, never a way out (ARCHITECTURE.md convention 15): the one place every reader and
every command checks the paths, files and sizes a data folder hands it.

* :func:`inside` -- a path a label file names (COCO ``file_name``, a VOC/CVAT split-list line, an
  Ultralytics list entry, a LabelMe ``imagePath``...) resolved against the data root, symlinks
  followed, and refused unless it stays inside the root. The one opt-in: the environment variable
  ``SEGPIPE_DATA_OUTSIDE_ROOT=1`` (typed by the user, never read from a data file: convention 12),
  or the reader option ``outside_root=True``, for data sets whose own config points elsewhere (an
  Ultralytics ``path:`` to a shared image folder).
* :func:`check_regular` / :func:`open_regular` / :func:`read_regular` -- nothing is opened that is not
  a regular file: a FIFO, a device, a socket or a folder is one line, and never blocks (``os.stat``
  first, then ``open`` with ``O_NONBLOCK`` and ``fstat`` on the opened descriptor, so a file swapped
  for a FIFO in between is caught too).
* :func:`safe_relname` / :func:`output_path` -- every output path derives from a sanitised relative
  name (no ``..``, no absolute part, no NUL/newline/ESC/control character, valid UTF-8) and is checked
  to stay inside the output folder.
* :func:`shown` -- a name as messages print it: one line, control characters and undecodable bytes
  escaped, so a file name cannot forge output lines or terminal escapes.
* Bounds checked before a C decoder sees the input: :func:`check_class_count` (up to
  :data:`MAX_CLASSES`), :func:`check_polygon` (coordinates and outline length before pycocotools'
  ``frPyObjects``/OpenCV's ``fillPoly``), :func:`label_bytes_limit` for label files.

No torch here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import stat
from pathlib import Path
from typing import IO, Any

import numpy as np

from segpipe.errors import DataError

#: Environment variable that lets paths named by a data folder lie outside its root.
OUTSIDE_ENV = "SEGPIPE_DATA_OUTSIDE_ROOT"
#: Most classes a data set may have (class maps are 16-bit; 65535 stays free to mark ignored pixels).
MAX_CLASSES = 65535
#: How far outside the image (in image sizes) a polygon coordinate may lie before it is refused.
COORD_MARGIN = 1.0
#: Longest outline a polygon may have, in pixels (pycocotools rasterises at 5x, 8 bytes a point).
MAX_OUTLINE = 4_000_000


# ---- messages ---------------------------------------------------------------------------------------
def shown(value: object) -> str:
    """``value`` (a str, bytes or path) as one printable line: control characters (newline, ESC,
    NUL...), backslashes and bytes that are not UTF-8 escaped (``\\n``, ``\\x1b``, ``\\udcff``)."""
    text = os.fsdecode(value) if isinstance(value, (bytes, os.PathLike)) else str(value)
    if text.isascii() and text.isprintable() and "\\" not in text:  # nothing to escape (most paths)
        return text
    out = []
    for ch in text:
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif o < 32 or o == 127 or 0x80 <= o < 0xA0:
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch, f"\\x{o:02x}"))
        elif 0xD800 <= o <= 0xDFFF or o in (0x2028, 0x2029, 0x85):
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    return "".join(out)


# ---- regular files only -------------------------------------------------------------------------------
def kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def check_regular(path: str | os.PathLike[str], what: str = "file", where: str = "") -> os.stat_result:
    """``os.stat`` of ``path`` (links followed; never opens it) or one :class:`DataError` line when it
    is missing or not a regular file. ``where``: the label file and entry that named it."""
    p = os.fspath(path)
    prefix = f"{where}: " if where else ""
    if "\x00" in p:
        raise DataError(f"{prefix}{what} {shown(p)} holds a NUL character")
    try:
        st = os.stat(p)
    except OSError as e:
        raise DataError(f"{prefix}cannot read {what} {shown(p)}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{prefix}{what} {shown(p)} is {kind_of(st.st_mode)}, not a regular file")
    return st


def is_regular(path: str | os.PathLike[str]) -> bool:
    """``path`` is a regular file (links followed); never blocks, never raises."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def open_regular(path: str | os.PathLike[str], what: str = "file", where: str = "") -> IO[bytes]:
    """``path`` opened for binary reading, refused in one line unless it is a regular file. Opened
    with ``O_NONBLOCK`` (a FIFO put there after the check does not block) and checked again with
    ``fstat`` on the descriptor, then switched back to blocking reads."""
    check_regular(path, what, where)
    prefix = f"{where}: " if where else ""
    flags = (
        os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    )
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise DataError(f"{prefix}cannot read {what} {shown(path)}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DataError(f"{prefix}{what} {shown(path)} is {kind_of(st.st_mode)}, not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(
    path: str | os.PathLike[str], what: str = "file", limit: int | None = None, where: str = ""
) -> bytes:
    """The bytes of a regular file, refused in one line over ``limit`` bytes (checked on the size
    before reading, and on what is read, should the file grow meanwhile)."""
    prefix = f"{where}: " if where else ""
    with open_regular(path, what, where) as f:
        if limit is not None:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise DataError(f"{prefix}{what} {shown(path)} is {size} bytes, over the limit of {limit}")
        try:
            data = f.read() if limit is None else f.read(limit + 1)
        except OSError as e:
            raise DataError(f"{prefix}cannot read {what} {shown(path)}: {e.strerror or e}") from None
    if limit is not None and len(data) > limit:
        raise DataError(f"{prefix}{what} {shown(path)} is over the limit of {limit} bytes")
    return data


# ---- paths a data folder names ------------------------------------------------------------------------
def outside_allowed() -> bool:
    """The user allowed paths outside the data root (``SEGPIPE_DATA_OUTSIDE_ROOT=1``)."""
    return os.environ.get(OUTSIDE_ENV, "").strip().lower() in ("1", "yes", "true", "on")


def _real(p: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.fspath(p))


def is_within(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """``path`` resolves (links followed) to ``folder`` or below it."""
    return within_real(_real(path), _real(folder))


def within_real(rp: str, rf: str) -> bool:
    """Resolved path ``rp`` is resolved folder ``rf`` or below it."""
    return rp == rf or rp.startswith(rf.rstrip(os.sep) + os.sep)


def inside(
    root: str | os.PathLike[str],
    name: str | os.PathLike[str],
    where: str,
    base: str | os.PathLike[str] | None = None,
    allow_outside: bool = False,
) -> Path:
    """``name`` (as a label file gives it) joined to ``base`` (default ``root``), refused in one line
    naming ``where`` (the file and the entry) and the value when it holds a NUL or resolves, links
    followed, outside ``root`` (unless ``allow_outside`` or :data:`OUTSIDE_ENV`). Returns the joined
    path (not resolved: messages show what the data set wrote)."""
    text = os.fspath(name)
    if "\x00" in text:
        raise DataError(f"{where} {shown(text)} holds a NUL character")
    p = Path(base if base is not None else root) / text
    if not (allow_outside or outside_allowed()) and not is_within(p, root):
        raise DataError(
            f"{where} {shown(text)} resolves outside the data root {shown(root)} "
            f"(refused; set {OUTSIDE_ENV}=1 to allow it)"
        )
    return p


def confine_samples(
    root: Path, samples: list[Any], outside_root: bool, seen: set[tuple[str, str, str]]
) -> list[Any]:
    """``samples`` (:class:`~segpipe.data.formats.base.LabelledSample`) checked: image and label
    resolve inside ``root`` (links followed; unless ``outside_root``) and are regular files (a FIFO,
    device or folder is one line, never opened); names made safe to build output paths from (no
    ``..``, absolute part or control character; one line when two samples end up with the same
    name). ``seen``: the samples already checked (skipped)."""
    out: list[Any] = []
    names: dict[str, Any] = {}
    real_root = _real(root).rstrip(os.sep) + os.sep
    folders: dict[str, str] = {}  # folder -> its real path (a data set has few folders, many files)

    def check(p: Path, what: str, where: str) -> None:
        text = os.fspath(p)
        if "\x00" in text:
            raise DataError(f"{where}: {what} {shown(text)} holds a NUL character")
        folder, name = os.path.split(text)
        if folder not in folders:
            folders[folder] = _real(folder or ".")
        full = os.path.join(folders[folder], name)
        try:
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode) or name in ("", ".", ".."):
                full, st = _real(full), os.stat(full)
        except OSError as e:
            raise DataError(f"{where}: cannot read {what} {shown(text)}: {e.strerror or e}") from None
        if not outside_root and not (full + os.sep).startswith(real_root):
            raise DataError(
                f"{where}: {what} {shown(text)} resolves outside the data root {shown(root)} "
                f"(refused; set {OUTSIDE_ENV}=1 to allow it)"
            )
        if not stat.S_ISREG(st.st_mode):
            raise DataError(f"{where}: {what} {shown(text)} is {kind_of(st.st_mode)}, not a regular file")

    for s in samples:
        key = (s.name, os.fspath(s.image), os.fspath(s.label) if s.label is not None else "")
        if key not in seen:
            where = f"{shown(s.label or s.image)}: sample {shown(s.name)}"
            check(s.image, "image", where)
            if s.label is not None:
                check(s.label, "label", where)
            seen.add(key)
        clean = safe_relname(s.name)
        if clean != s.name:
            s = dataclasses.replace(s, name=clean)
        other = names.get(clean)
        if other is not None and other is not s:
            raise DataError(
                f"{shown(s.image)} and {shown(other.image)} both give the sample name {shown(clean)}"
            )
        names[clean] = s
        out.append(s)
    return out


# ---- output names -------------------------------------------------------------------------------------
def _clean_part(part: str) -> str:
    raw = os.fsencode(part)
    text = raw.decode("utf-8", "replace")
    text = "".join(
        "_" if (ord(c) < 32 or ord(c) == 127 or 0x80 <= ord(c) < 0xA0 or c == "\ufffd") else c for c in text
    )
    return text.strip() or "_"


def safe_relname(name: str | os.PathLike[str]) -> str:
    """``name`` as a relative output name: separators ``/`` and ``\\``, no empty, ``.`` or ``..``
    part, no leading ``/``, control characters and bytes that are not UTF-8 replaced by ``_``.
    Names that are already clean come back unchanged."""
    text = os.fspath(name).replace("\\", "/")
    if text.isascii() and text.isprintable():  # the common case, checked without a loop per character
        quick = text.split("/")
        if all(p not in ("", ".", "..") and p == p.strip() for p in quick):
            return text
    parts = [_clean_part(p) for p in text.split("/") if p not in ("", ".", "..")]
    parts = [p if p not in (".", "..") else "_" for p in parts]
    return "/".join(parts) or "_"


def output_path(out: str | os.PathLike[str], relname: str, suffix: str = "") -> Path:
    """``out / safe_relname(relname) + suffix``, checked to stay inside ``out`` (links followed)."""
    p = Path(out) / (safe_relname(relname) + suffix)
    if not is_within(p, out):
        raise DataError(f"output name {shown(relname)} would leave the output folder {shown(out)}")
    return p


# ---- bounds -------------------------------------------------------------------------------------------
def check_class_count(n: int, where: str) -> int:
    """``n`` classes, or one line when it is not 1..:data:`MAX_CLASSES`."""
    if not isinstance(n, int) or not 1 <= n <= MAX_CLASSES:
        raise DataError(f"{where}: {n!r} classes, over the limit of {MAX_CLASSES} (class maps are 16-bit)")
    return n


def check_polygon(coords: Any, width: int, height: int, where: str) -> np.ndarray:
    """Flat ``x1 y1 x2 y2 ...`` pixel coordinates as float64 N×2, refused in one line when one is not
    finite, lies more than :data:`COORD_MARGIN` image sizes outside the image, or the outline is
    longer than :data:`MAX_OUTLINE` pixels (what makes pycocotools' rasteriser run out of its
    buffers: a coordinate of 1e9 kills the process)."""
    pts = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    if not np.isfinite(pts).all():
        raise DataError(f"{where}: polygon with a non-finite coordinate")
    lo_x, hi_x = -COORD_MARGIN * width, (1 + COORD_MARGIN) * width
    lo_y, hi_y = -COORD_MARGIN * height, (1 + COORD_MARGIN) * height
    bad = (pts[:, 0] < lo_x) | (pts[:, 0] > hi_x) | (pts[:, 1] < lo_y) | (pts[:, 1] > hi_y)
    if bad.any():
        x, y = pts[int(np.argmax(bad))]
        raise DataError(
            f"{where}: polygon point ({x:g}, {y:g}) lies far outside the {width}x{height} image "
            f"(allowed: x {lo_x:g}..{hi_x:g}, y {lo_y:g}..{hi_y:g})"
        )
    if len(pts) > 1:
        d = np.abs(np.diff(np.vstack([pts, pts[:1]]), axis=0)).max(axis=1).sum()
        if d > MAX_OUTLINE:
            raise DataError(f"{where}: polygon outline of {d:.0f} pixels, over the limit of {MAX_OUTLINE}")
    return pts


def check_label_bytes(path: str | os.PathLike[str], env: str, default_mb: float, what: str) -> None:
    """One line when the label file ``path`` is not a regular file or is larger than ``env``
    megabytes (default ``default_mb``), checked on its size before a byte is parsed."""
    size = check_regular(path, "label file").st_size
    limit = label_bytes_limit(env, default_mb)
    if size > limit:
        raise DataError(
            f"{shown(path)} is {size / 2**20:.1f} MB, over the {limit / 2**20:g} MB limit for {what} "
            f"(raise it with {env}=MB)"
        )


def label_bytes_limit(env: str, default_mb: float) -> int:
    """The byte limit for a label file: environment variable ``env`` (MB) if set, else ``default_mb``."""
    return int(env_number(env, default_mb) * 2**20)


def env_number(env: str, default: float) -> float:
    """The positive, finite number environment variable ``env`` holds (``default`` when it is unset
    or blank): a bound the user may raise; one line naming the variable and the value otherwise."""
    raw = os.environ.get(env, "").strip()
    try:
        value = float(raw) if raw else float(default)
    except ValueError:
        raise DataError(f"environment variable {env}={raw!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise DataError(f"environment variable {env}={raw!r} must be > 0")
    return value


def chmod_like_mkdir(path: str | os.PathLike[str]) -> None:
    """Give a folder made by ``mkdtemp`` (mode 700) the mode ``mkdir`` would: 777 less the umask."""
    from segpipe.utils import _umask

    with contextlib.suppress(OSError):
        os.chmod(path, 0o777 & ~_umask())
