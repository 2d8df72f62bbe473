"""What figures were measured on: CPU, core count, library versions and GPU, without importing
torch where the run did not (ONNX / TensorRT benchmarks stay torch-free)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import platform
import shutil
import subprocess
import sys
from typing import Any


def machine_info() -> dict[str, Any]:
    """What the figures were measured on: CPU, core count, library versions, GPU when present."""
    import os

    from segpipe.runtime.cpu import cpu_summary

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        # what INT8 speed and accuracy on a CPU depend on (segpipe.runtime.cpu)
        "cpu": cpu_summary(),
        "python": platform.python_version(),
    }
    torch = sys.modules.get("torch")  # loaded by .pth models only: ONNX / TensorRT runs stay torch-free
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    else:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            info["torch"] = importlib.metadata.version("torch")
        gpu = _gpu_name()
        if gpu:
            info["gpu"] = gpu
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:  # pragma: no cover
        pass
    return info


def _gpu_name() -> str | None:
    """The first GPU's name from ``nvidia-smi`` (None without one), for runs that load no torch."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name", "--format=csv,noheader", "-i", "0"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    name = out.stdout.strip().splitlines()[0].strip() if out.returncode == 0 and out.stdout.strip() else ""
    return name or None
