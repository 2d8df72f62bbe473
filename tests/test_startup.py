"""Startup: ``segpipe --help`` / ``--version`` / ``COMMAND --help`` import no heavy library, and the
commands that run ONNX models work where torch cannot be imported at all.

Each check runs in a fresh interpreter (a subprocess): the test process itself has torch loaded.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from segpipe.cli.app import COMMANDS, SUMMARIES

#: Never imported for help or version (torch and onnx: the brief; the rest: seconds of startup).
HEAVY = (
    "torch",
    "onnx",
    "onnxruntime",
    "albumentations",
    "cv2",
    "segmentation_models_pytorch",
    "timm",
    "matplotlib",
    "tensorrt",
    "openvino",
)

#: Installed first in the child: any import of torch fails there, as on a machine without it.
BLOCK_TORCH = textwrap.dedent(
    """
    import sys

    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"torch is not installed here (blocked import of {name})")
            return None

    sys.meta_path.insert(0, _NoTorch())
    """
)


def _python(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, check=False
    )


def _heavy_after(args_list: list[list[str]]) -> list[dict]:
    """Run ``segpipe ARGS`` for each ARGS in one child; per run: exit code, heavy modules loaded."""
    code = textwrap.dedent(
        f"""
        import io, json, sys, contextlib
        from segpipe.cli.app import app
        import typer.main

        rows = []
        for args in {args_list!r}:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                try:
                    code = typer.main.get_command(app).main(args, prog_name="segpipe", standalone_mode=False)
                except SystemExit as e:
                    code = e.code
            heavy = [m for m in {HEAVY!r} if m in sys.modules]
            rows.append({{"args": args, "code": code or 0, "heavy": heavy, "out": out.getvalue()}})
        print(json.dumps(rows))
        """
    )
    r = _python(code)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_help_and_version_import_no_heavy_library() -> None:
    for row in _heavy_after([["--help"], ["--version"]]):
        assert row["code"] == 0
        assert row["heavy"] == [], f"segpipe {' '.join(row['args'])} imported {row['heavy']}"


def test_console_script_help_does_not_import_torch() -> None:
    """The real entry point (``python -m segpipe --help``), checked from inside the child."""
    code = (
        "import runpy, sys\n"
        "sys.argv = ['segpipe', '--help']\n"
        "try:\n    runpy.run_module('segpipe', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('TORCH', 'torch' in sys.modules, 'onnx' in sys.modules)\n"
    )
    r = _python(code)
    assert r.returncode == 0, r.stderr
    assert "export-onnx" in r.stdout and "build-trt" in r.stdout
    assert r.stdout.strip().splitlines()[-1] == "TORCH False False"


def test_every_command_help_imports_no_heavy_library() -> None:
    rows = _heavy_after([[name, "--help"] for name, _ in COMMANDS])
    assert len(rows) == len(COMMANDS)
    for (name, _), row in zip(COMMANDS, rows, strict=True):
        assert row["code"] == 0, f"segpipe {name} --help exited {row['code']}"
        assert "Usage" in row["out"] and "--help" in row["out"], row["out"]
        assert row["heavy"] == [], f"segpipe {name} --help imported {row['heavy']}"


def test_help_lists_every_command_with_the_summary_of_its_docstring() -> None:
    """The listing is drawn without importing the commands: its lines must stay the docstrings'."""
    import importlib

    from typer.testing import CliRunner

    from segpipe.cli.app import app

    listing = " ".join(CliRunner().invoke(app, ["--help"]).output.replace("│", " ").split())
    for name, target in COMMANDS:
        module, func = target.split(":")
        doc = inspect.getdoc(getattr(importlib.import_module(module), func)) or ""
        first = " ".join(doc.split("\n\n")[0].split())
        assert SUMMARIES.get(name) == first, (
            f"segpipe.cli.app.SUMMARIES[{name!r}] must be the first paragraph of {target}'s docstring"
        )
        assert name in listing
        assert " ".join(first.split()[:4]) in listing


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import ENCODER
    from inference_helpers import export_onnx, tiny_info, tiny_model

    info = tiny_info().replace(arch="Unet", encoder=ENCODER)  # the suite's small encoder (a 9 MB file)
    return export_onnx(tiny_model(info), info, tmp_path_factory.mktemp("startup") / "tiny.onnx")


def _engine_with_sidecar(folder: Path, onnx_path: Path) -> Path:
    """An engine file (opaque bytes: ``info`` reads only its sidecar) and the sidecar build-trt writes."""
    import onnx

    from segpipe.tensorrt.shapes import ProfileShape
    from segpipe.tensorrt.sidecar import engine_sidecar, write_sidecar

    engine = folder / "m.engine"
    engine.write_bytes(b"\x00" * 1000)
    sidecar = engine_sidecar(
        engine_path=engine,
        onnx_path=onnx_path,
        metadata={p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props},
        tensorrt_version="10.13.0",
        gpu_name="NVIDIA H100",
        compute_capability="9.0",
        precision="fp16",
        onnx_precision="fp16",
        fp16_method="as-is",
        strongly_typed=True,
        profile={"input_1": ProfileShape((1, 64, 64, 3), (1, 64, 64, 3), (1, 64, 64, 3))},
    )
    write_sidecar(engine, sidecar)
    return engine


def test_onnx_and_engine_commands_run_where_torch_cannot_be_imported(
    tiny_onnx: Path, index_dataset: Path, tmp_path: Path
) -> None:
    images = index_dataset / "images"
    engine = _engine_with_sidecar(tmp_path, tiny_onnx)
    runs = [
        ["info", str(tiny_onnx)],
        ["info", str(engine)],
        [
            "visualize",
            "-i",
            str(images),
            "-m",
            str(tiny_onnx),
            "-o",
            str(tmp_path / "vis"),
            "--device",
            "cpu",
        ],
        ["evaluate", "--data-root", str(index_dataset), "-m", str(tiny_onnx), "--device", "cpu"],
        [
            "benchmark",
            "-m",
            str(tiny_onnx),
            "--warmup",
            "1",
            "--runs",
            "1",
            "--device",
            "cpu",
            "--threads",
            "1",
        ],
    ]
    code = BLOCK_TORCH + textwrap.dedent(
        f"""
        import typer.main
        from segpipe.cli.app import app

        for args in {runs!r}:
            try:
                code = typer.main.get_command(app).main(args, prog_name="segpipe", standalone_mode=False)
            except SystemExit as e:
                code = e.code
            print("RESULT", args[0], code or 0, "torch" in sys.modules, flush=True)
        """
    )
    r = _python(code, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    results = [ln.split()[1:] for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    assert results == [[run[0], "0", "False"] for run in runs], r.stdout + r.stderr
    assert r.stdout.count("sky") >= 2  # info printed the class names of the ONNX model and the engine
    assert "NVIDIA H100" in r.stdout
    assert len(list((tmp_path / "vis").glob("*.png"))) >= len(list(images.iterdir()))
    assert "mIoU" in r.stdout and "tiny.onnx" in r.stdout
