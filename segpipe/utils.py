"""Small helpers shared by every stage: atomic writes, device selection, sizes."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from segpipe.errors import ConfigError, SegpipeError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    A crash (or an exception) in the ``with`` block never leaves a truncated file at ``path``:
    either the old file stays or the complete new one replaces it (``os.replace`` is atomic on
    POSIX and Windows when both names are on the same file system, which a sibling always is).
    """
    target = Path(path)
    ensure_dir(target.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


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
