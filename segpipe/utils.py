"""Small helpers shared by every stage: atomic writes, device selection, sizes."""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import shutil
import signal
import socket
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from segpipe.errors import ConfigError, SegpipeError

#: Temporary files of the atomic writes in progress in this process (removed on SIGTERM/SIGHUP).
_LIVE_TEMPS: set[Path] = set()
_CLEANUP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))
#: Below this much free space a failed write is put down to a full disk.
_FULL_BYTES = 16 * 2**20


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:16] or "host"


def _umask() -> int:
    """The process's umask, read without changing it where /proc says it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode(target: Path) -> int:
    """The mode an ordinary ``open(target, "w")`` leaves: the existing file's, else 0666 less the
    umask (mkstemp's temporary files are 0600 whatever the umask)."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _remove(f: Path) -> None:
    """Remove a file or a folder tree; nothing raised."""
    if f.is_dir() and not f.is_symlink():
        shutil.rmtree(f, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            f.unlink()


def remove_temp_files(paths: set[Path] | list[Path] | None = None) -> None:
    """Remove temporary files and folders (default: all of this process's in progress), with
    anything a writer put beside them under the same name (``NAME.tmp.data`` of ONNX external data)."""
    for tmp in list(_LIVE_TEMPS if paths is None else paths):
        for f in [tmp, *tmp.parent.glob(glob.escape(tmp.name) + ".*")]:
            _remove(f)


def die_cleanly(signum: int, frame: Any) -> None:
    """Signal handler: remove the temporary files of atomic writes in progress, then end the process
    by the same signal with its default action (exit status 128 + signal, as if not handled)."""
    remove_temp_files()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


#: How many ``_cleanup_on_signals`` blocks are open (the handlers go when the last one closes).
_SIGNAL_USERS = [0]
#: The signals whose handler those blocks installed (and so restore).
_INSTALLED: set[int] = set()
_SIGNAL_LOCK = threading.Lock()


@contextlib.contextmanager
def _cleanup_on_signals() -> Iterator[None]:
    """While temporary files exist: SIGTERM/SIGHUP left at their default action (which would leave
    them behind) remove them first (SIGINT raises KeyboardInterrupt, whose way out removes them
    already). Blocks may nest or overlap (a video writer open across other writes): the handlers
    are installed by the first and restored by the last. Handlers can only be set from the main
    thread; a block opened in another thread counts, and relies on one the main thread opened."""
    with _SIGNAL_LOCK:
        if _SIGNAL_USERS[0] == 0 and threading.current_thread() is threading.main_thread():
            for s in _CLEANUP_SIGNALS:
                if signal.getsignal(s) == signal.SIG_DFL:
                    signal.signal(s, die_cleanly)
                    _INSTALLED.add(s)
        _SIGNAL_USERS[0] += 1
    try:
        yield
    finally:
        with _SIGNAL_LOCK:
            _SIGNAL_USERS[0] -= 1
            if _SIGNAL_USERS[0] == 0 and threading.current_thread() is threading.main_thread():
                for s in list(_INSTALLED):
                    if signal.getsignal(s) == die_cleanly:
                        signal.signal(s, signal.SIG_DFL)
                    _INSTALLED.discard(s)


@contextlib.contextmanager
def removed_on_signals(path: str | os.PathLike[str]) -> Iterator[Path]:
    """While the block runs, ``path`` (a file or folder the caller creates, and anything named
    ``PATH.*``) is removed if SIGTERM/SIGHUP end the process. Leaving the block keeps it: the
    caller decides (an exporter's log is kept when the export fails, removed when it succeeds)."""
    p = Path(path)
    _LIVE_TEMPS.add(p)
    try:
        with _cleanup_on_signals():
            yield p
    finally:
        _LIVE_TEMPS.discard(p)


@contextlib.contextmanager
def temp_dir_beside(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A scratch folder ``.NAME.HOST-PID-XXXX.tmp`` beside ``path`` (same file system, so its
    files can be renamed onto ``path``), removed on every way out: an exception, Ctrl-C, SIGTERM,
    SIGHUP; what a SIGKILL left is removed by the next write of ``path``."""
    target = Path(path)
    ensure_dir(target.parent)
    _remove_stale_temps(target)
    with _cleanup_on_signals():
        work = _new_temp(
            target, lambda prefix: tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=target.parent)
        )
        try:
            yield work
        finally:
            _remove(work)
            _LIVE_TEMPS.discard(work)


@contextlib.contextmanager
def tempdir_default(folder: str | os.PathLike[str]) -> Iterator[None]:
    """Make ``folder`` the default of :mod:`tempfile` in the block, so that libraries creating their
    own temporary files (ONNX Runtime's quantizer: ``ort.quant.*``) create them where we clean."""
    saved = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield
    finally:
        tempfile.tempdir = saved


def _remove_stale_temps(target: Path) -> None:
    """Drop temporary files an earlier write of ``target`` left when it was killed (SIGKILL, power
    loss): those of processes of this host that are gone (another process's write in progress is
    left alone)."""
    host = _host_tag()
    pattern = re.compile(re.escape(f".{target.name}.{host}-") + r"(\d+)-[^/]*\.tmp(\..*)?$")
    for f in target.parent.glob(glob.escape(f".{target.name}.{host}-") + "*.tmp*"):
        m = pattern.match(f.name)
        if m is None or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            _remove(f)
        except OSError:
            pass  # alive (another user's process)


class DiskFullError(SegpipeError):
    """A write failed because the disk (or quota) is full; the previous file is unchanged."""


def disk_full_error(target: Path, exc: BaseException) -> DiskFullError | None:
    """A one-line error when ``exc`` (from writing ``target``) came from a full disk, else None."""
    if isinstance(exc, OSError) and exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    if not isinstance(exc, OSError):  # torch.save / onnx report a short write as RuntimeError
        try:
            free = shutil.disk_usage(target.parent).free
        except OSError:
            return None
        if free >= _FULL_BYTES:
            return None
    try:
        free_text = f"{shutil.disk_usage(target.parent).free / 2**20:.1f} MiB free"
    except OSError:
        free_text = "no space left"
    kept = "the previous file is unchanged" if target.exists() else "nothing was written there"
    return DiskFullError(f"cannot write {target}: the disk is full ({free_text}); {kept}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    A crash (or an exception) in the ``with`` block never leaves a truncated file at ``path``:
    either the old file stays or the complete new one replaces it (``os.replace`` is atomic on
    POSIX and Windows when both names are on the same file system, which a sibling always is).
    The file gets the mode an ordinary ``open()`` would give (umask applied). The temporary file
    (``.NAME.HOST-PID-XXXX.tmp``, and anything the writer put beside it under that name) is removed
    on every way out: an exception, Ctrl-C, SIGTERM or SIGHUP; what a SIGKILL left is removed by
    the next write of ``path``. A full disk raises :class:`DiskFullError` (one line).
    ``keep_suffix``: the temporary name ends in ``.tmp.EXT`` (writers that pick the format from
    the extension, such as OpenCV's video writer).
    """
    target = Path(path)
    ensure_dir(target.parent)
    _remove_stale_temps(target)
    suffix = ".tmp" + (target.suffix if keep_suffix else "")
    with _cleanup_on_signals():
        tmp = _new_temp(target, lambda prefix: _mkstemp(prefix, suffix, target.parent))
        try:
            try:
                yield tmp
                os.chmod(tmp, new_file_mode(target))
                os.replace(tmp, target)
            except (OSError, RuntimeError) as e:
                full = disk_full_error(target, e)
                if full is None:
                    raise
                raise full from e
        finally:
            remove_temp_files({tmp})
            _LIVE_TEMPS.discard(tmp)


def _mkstemp(prefix: str, suffix: str, folder: Path) -> str:
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    os.close(fd)
    return name


def _new_temp(target: Path, make: Any) -> Path:
    """``make(prefix)`` creates the temporary file or folder beside ``target`` and it is registered
    for removal, with SIGTERM/SIGHUP held off in between (a signal arriving just then would
    otherwise find a file on disk that the cleanup does not know yet); one line when it fails."""
    held = threading.current_thread() is threading.main_thread() and hasattr(signal, "pthread_sigmask")
    if held:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, set(_CLEANUP_SIGNALS))
    try:
        tmp = Path(make(f".{target.name}.{_host_tag()}-{os.getpid()}-"))
        _LIVE_TEMPS.add(tmp)
        return tmp
    except OSError as e:
        raise (disk_full_error(target, e) or SegpipeError(f"cannot write {target}: {e.strerror or e}")) from e
    finally:
        if held:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def ensure_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and parents) if needed; one-line error when it cannot be created or written."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SegpipeError(f"cannot create folder {p}: {e.strerror or e}") from e
    if not os.access(p, os.W_OK):
        raise SegpipeError(f"folder {p} is not writable")
    return p


def file_size_mb(path: str | os.PathLike[str]) -> float:
    """Size of a file in MB (10**6 bytes)."""
    return Path(path).stat().st_size / 1e6


def resolve_device(spec: str = "auto"):
    """Turn ``auto | cpu | cuda | cuda:N`` into a ``torch.device``; one-line error when unavailable."""
    import torch

    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {spec}: CUDA is not available on this machine; use --device cpu")
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) are visible")
        return dev
    raise ConfigError(f"--device {spec!r} is not one of auto, cpu, cuda, cuda:N")


def under_elastic() -> bool:
    """Started by torchrun or segpipe's launcher (torch elastic): the variables it sets. The one
    rule, for the training processes (:mod:`segpipe.training.distributed`) and the CLI's error
    handler (without importing torch)."""
    return "TORCHELASTIC_RUN_ID" in os.environ or ("WORLD_SIZE" in os.environ and "LOCAL_RANK" in os.environ)


def process_rank() -> int:
    """This process's rank in a run torch elastic started (:func:`under_elastic`), else 0 (also for
    a ``RANK`` that is not a number: a message must still be printed)."""
    try:
        return int(os.environ.get("RANK", 0)) if under_elastic() else 0
    except ValueError:
        return 0


def check_divisible(width: int, height: int, stride: int, what: str = "--size") -> None:
    """Raise a one-line error when W or H is not a multiple of ``stride``, naming valid sizes."""
    bad = [(name, v) for name, v in (("width", width), ("height", height)) if v <= 0 or v % stride]
    if not bad:
        return

    def near(v: int) -> str:
        lo = (max(v, 0) // stride) * stride
        hi = lo + stride
        return f"{lo} or {hi}" if lo > 0 else str(hi)

    detail = ", ".join(f"{name} {v} (try {near(v)})" for name, v in bad)
    raise ConfigError(
        f"{what} {width} {height}: width and height must be multiples of the model's output stride "
        f"{stride}: {detail}"
    )
