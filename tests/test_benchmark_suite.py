"""``python -m benchmarks``: every benchmark script is wired into the suite (no figures measured)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_suite_lists_every_benchmark_with_a_run_function() -> None:
    cmd = [sys.executable, "-m", "benchmarks", "--list"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    for suite, module in (
        ("train", "bench_train"),
        ("visualize", "bench_visualize"),
        ("export", "bench_export"),
    ):
        assert f"{suite}: benchmarks.{module}.run (ready)" in r.stdout, r.stdout
    assert "gpu: " in r.stdout


def test_suite_rejects_an_unknown_suite() -> None:
    r = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "trian"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)  # fmt: skip
    assert r.returncode == 2 and "--only trian: use one of train, visualize, export, cpu, gpu" in r.stderr
