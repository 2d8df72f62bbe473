"""Lazy imports: heavy optional dependencies (tensorrt, cuda-python, modelopt, openvino), and a
package's public names (:func:`lazy_exports`).

They are imported inside the function that needs them, through :func:`require`, which raises a
:class:`~segpipe.errors.DependencyError` naming the install command. Nothing is ever installed at
run time.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from segpipe.errors import DependencyError

INSTALL_HINTS = {
    "tensorrt": 'pip install "segpipe[trt]" --extra-index-url https://pypi.nvidia.com '
    "(TensorRT wheels come from NVIDIA's package index; a CUDA GPU and driver are needed)",
    "cuda": 'pip install "segpipe[trt]" (cuda-python)',
    "modelopt": "pip install nvidia-modelopt --extra-index-url https://pypi.nvidia.com",
    "onnxruntime": "pip install onnxruntime (or onnxruntime-gpu for the CUDA provider)",
    "openvino": 'pip install "segpipe[openvino]" (or pip install openvino)',
    "tritonclient": 'pip install "segpipe[triton]" (tritonclient)',
    "grpc": 'pip install "segpipe[triton]" (grpcio)',
    "pytriton": 'pip install "segpipe[pytriton]" (nvidia-pytriton: Linux, numpy < 2)',
}


def require(module: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise a one-line DependencyError saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.split(".")[0]
        hint = INSTALL_HINTS.get(top, f"pip install {top}")
        what = f" (needed for {purpose})" if purpose else ""
        raise DependencyError(f"python package '{module}' is not installed{what}: {hint}") from e


def available(module: str) -> bool:
    """True when ``module`` can be imported (without raising)."""
    try:
        importlib.import_module(module)
    except Exception:
        return False
    return True


def lazy_exports(
    package: str, modules: dict[str, tuple[str, ...]]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__all__``, ``__getattr__`` and ``__dir__`` re-exporting the public names of
    ``modules`` (module -> its names; a module without a dot is a submodule of ``package``) on first
    use (PEP 562), so importing the package imports none of them:
    ``__all__, __getattr__, __dir__ = lazy_exports(__name__, {...})``."""
    namespace = sys.modules[package].__dict__
    where = {name: m if "." in m else f"{package}.{m}" for m, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *where})

    return sorted(where), __getattr__, __dir__
