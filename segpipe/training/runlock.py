"""One training run per run folder at a time: an exclusive lock on ``RUN/.lock``.

The lock is an ``flock`` on the file, so the kernel drops it when its process ends in any way
(SIGKILL, a crash, a power cut on a local disk): a lock file left behind is stale by itself and
the next run takes it over. The file says who holds it (pid, host, start time) for the message a
second run gets. Without ``fcntl`` (Windows) or where the file system refuses locks, the pid and
host in the file decide: a lock of a process of this host that is gone is stale.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import time
from pathlib import Path

from segpipe.errors import SegpipeError

LOCK_NAME = ".lock"

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class RunFolderBusy(SegpipeError):
    """Another process trains into this run folder."""


class RunLock:
    """The lock of one run folder, held from :meth:`acquire` to :meth:`release` (or process end)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None
        self._created_dir = False

    @property
    def held(self) -> bool:
        return self._fd is not None

    def owner(self) -> str:
        """Who holds it, as the lock file says (``pid 123 on host gpu1 since 12:00:03``)."""
        try:
            fields = dict(
                line.split("=", 1)
                for line in self.path.read_text(encoding="utf-8").splitlines()
                if "=" in line
            )
        except (OSError, ValueError, UnicodeDecodeError):
            return "another process"
        since = fields.get("since", "")
        when = f" since {since}" if since else ""
        return f"pid {fields.get('pid', '?')} on host {fields.get('host', '?')}{when}"

    def _owner_gone(self) -> bool:
        """The lock file names a process of this host that no longer exists."""
        try:
            fields = dict(line.split("=", 1) for line in self.path.read_text(encoding="utf-8").splitlines())
            if fields.get("host") != socket.gethostname():
                return False
            os.kill(int(fields["pid"]), 0)
        except ProcessLookupError:
            return True
        except (OSError, ValueError, KeyError, UnicodeDecodeError):
            return False
        return False

    def acquire(self) -> bool:
        """Take the lock; False when another live process holds it."""
        if self.held:
            return True
        self._created_dir = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as e:
                    os.close(fd)
                    if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        self._forget_dir()
                        return False
                    if not self._fallback_free():  # ENOLCK: a file system without locks
                        self._forget_dir()
                        return False
                    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            elif not self._fallback_free():  # pragma: no cover - Windows
                os.close(fd)
                self._forget_dir()
                return False
            # the holder before us may have unlinked the file between our open and our lock
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        text = f"pid={os.getpid()}\nhost={socket.gethostname()}\nsince={stamp}\n"
        os.ftruncate(fd, 0)
        os.write(fd, text.encode())
        self._fd = fd
        return True

    def _fallback_free(self) -> bool:
        try:
            size = self.path.stat().st_size
        except OSError:
            return True
        return size == 0 or self._owner_gone()

    def _forget_dir(self) -> None:
        self._created_dir = False

    def release(self) -> None:
        """Drop the lock and its file; remove the folder when it was made for this run and is empty."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = None
        if self._created_dir:
            with contextlib.suppress(OSError):
                self.run_dir.rmdir()  # only when empty (bad input stopped the run before it wrote)

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_run_dir(run_dir: Path) -> RunLock:
    """The run folder's lock, held; a one-line :class:`RunFolderBusy` when another run holds it."""
    lock = RunLock(run_dir)
    try:
        ok = lock.acquire()
    except OSError as e:
        raise SegpipeError(f"cannot create the run folder {run_dir}: {e.strerror or e}") from e
    if not ok:
        raise RunFolderBusy(
            f"run folder {run_dir} is in use by another training run ({lock.owner()}); wait for it to "
            "end, or pick another --output-dir / --model-name"
        )
    return lock


def in_use(run_dir: Path) -> bool:
    """Another live process holds ``run_dir``'s lock (a probe: takes nothing, creates nothing)."""
    path = Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        if fcntl is None:  # pragma: no cover - Windows
            return not RunLock(run_dir)._fallback_free()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return True
            return not RunLock(run_dir)._fallback_free()
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
