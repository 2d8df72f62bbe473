"""NVIDIA's real TensorRT Python bindings and cuda-python, fetched once and importable on a CPU machine.

``tensorrt-cu12-bindings`` wheels (about 1.2 MB each, on the ordinary package index) hold the
compiled module ``tensorrt_bindings/tensorrt.so``. It needs nine C entry points from
``libnvinfer.so.N``, ``libnvinfer_plugin.so.N`` and ``libnvonnxparser.so.N``
(``nm -D --undefined-only``); :data:`STUB_C` defines them (returning null / 0), compiled with the
system C compiler into those three sonames and put on ``LD_LIBRARY_PATH`` it lets the real module
import. Objects the libraries create cannot be made (the stubs return null), but every class,
method signature (pybind11 ``__doc__``), property and enum member is NVIDIA's compiled one.

Everything is cached under ``$SEGPIPE_TEST_CACHE`` (default ``~/.cache/segpipe-test``)/``trt``:
``wheels/`` (downloaded with ``pip download --no-deps --only-binary=:all:``), ``bindings/VERSION/``
(unpacked), ``stubs/MAJOR/`` (compiled), ``cuda/VERSION/`` (cuda-bindings 12.x unpacked; 13.x is the
one installed in the environment). :func:`prepare_tensorrt` and :func:`prepare_cuda` raise
:class:`Unavailable` with the reason when the compiler or the index is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

#: TensorRT versions checked: oldest 10.x, 10.3 (JetPack 6, Jetson Orin), newest 10.x, 11.0, newest 11.x.
TENSORRT_VERSIONS = ("10.0.1", "10.3.0", "10.16.1.11", "11.0.0.114", "11.4.0.106")
#: cuda-bindings 12.x checked besides the 13.x of the environment (it still has ``cuda.cudart``).
CUDA12_VERSION = "12.9.6"

STUB_C = """
void *createInferBuilder_INTERNAL(void *logger, int version) { return 0; }
void *createInferRuntime_INTERNAL(void *logger, int version) { return 0; }
void *createInferRefitter_INTERNAL(void *engine, void *logger, int version) { return 0; }
void *createNvOnnxParser_INTERNAL(void *network, void *logger, int version) { return 0; }
void *createNvOnnxParserRefitter_INTERNAL(void *refitter, void *logger, int version) { return 0; }
void *getPluginRegistry(void) { return 0; }
void *getBuilderPluginRegistry(int kind) { return 0; }
int initLibNvInferPlugins(void *logger, const char *ns) { return 0; }
int getNvOnnxParserVersion(void) { return 0; }
"""
STUB_LIBS = ("nvinfer", "nvinfer_plugin", "nvonnxparser")


class Unavailable(Exception):
    """The bindings cannot be prepared here (no C compiler, no package index); the reason is the text."""


def cache_dir() -> Path:
    root = os.environ.get("SEGPIPE_TEST_CACHE") or Path.home() / ".cache" / "segpipe-test"
    return Path(root) / "trt"


def _download(requirement: str, pattern: str) -> Path:
    wheels = cache_dir() / "wheels"
    found = sorted(wheels.glob(pattern))
    if found:
        return found[0]
    wheels.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
    proc = subprocess.run([*cmd, "-d", str(wheels), requirement], capture_output=True, text=True, timeout=300)
    found = sorted(wheels.glob(pattern))
    if proc.returncode != 0 or not found:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise Unavailable(f"cannot download {requirement} from the package index: {last}")
    return found[0]


def _unpack(wheel: Path, target: Path) -> Path:
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".unpack-"))
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp)
    try:
        tmp.rename(target)  # atomic: a parallel run either sees nothing or the whole folder
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _stubs(major: int) -> Path:
    target = cache_dir() / "stubs" / str(major)
    if all((target / f"lib{name}.so.{major}").is_file() for name in STUB_LIBS):
        return target
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise Unavailable("no C compiler (gcc/cc) to build the stub TensorRT libraries")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".stubs-"))
    (tmp / "stub.c").write_text(STUB_C)
    for name in STUB_LIBS:
        soname = f"lib{name}.so.{major}"
        cmd = [cc, "-shared", "-fPIC", "-o", str(tmp / soname), str(tmp / "stub.c"), f"-Wl,-soname,{soname}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise Unavailable(f"{cc} cannot build {soname}: {proc.stderr.strip()[:200]}")
    try:
        tmp.rename(target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def prepare_tensorrt(version: str) -> dict[str, str]:
    """Environment variables under which ``import tensorrt_bindings`` gives TensorRT ``version``."""
    wheel = _download(f"tensorrt-cu12-bindings=={version}", f"tensorrt_cu12_bindings-{version}-*.whl")
    site = _unpack(wheel, cache_dir() / "bindings" / version)
    stubs = _stubs(int(version.split(".")[0]))
    return {"SEGPIPE_TRT_BINDINGS": str(site), "LD_LIBRARY_PATH": str(stubs)}


def prepare_cuda(version: str) -> str:
    """A folder whose ``cuda/`` package is cuda-bindings ``version`` (put it first on ``sys.path``)."""
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    wheel = _download(f"cuda-bindings=={version}", f"cuda_bindings-{version}-{tag}-*.whl")
    return str(_unpack(wheel, cache_dir() / "cuda" / version))
