"""Steady benchmarks: warm-up until settled, interleaved rounds, the spread and the unsteady mark,
with fake runners whose every call takes a scripted time on a scripted clock (no real timing)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from segpipe import timing
from segpipe.benchmark import benchmark
from segpipe.modelinfo import ModelInfo
from segpipe.options import BenchmarkOptions
from segpipe.progress import RecordingReporter
from segpipe.runtime.base import Runner


class Clock:
    """A clock that only moves when a fake call says how long it took."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def spend(self, ms: float) -> None:
        self.t += ms / 1000.0


def test_warm_up_runs_until_the_timings_settle():
    clock = Clock()
    durations = iter([500, 300, 200, 120, 100, 100, 101, 99, 100, 100, 100, 100, 100, 100])
    calls = []

    def call():
        calls.append(1)
        clock.spend(next(durations))

    w = timing.warm_up(call, min_calls=2, clock=clock)
    # medians of windows of 3: 300 vs 100, 200 vs 100, 120 vs 100 (20% apart): not yet;
    # [120,100,100] vs [101,99,100] (100 and 100): settled after 9 calls
    assert w.settled and w.calls == len(calls) == 9
    assert timing.warm_up(call, 0, clock=clock) == timing.Warmup(0, True)


def test_warm_up_that_never_settles_says_so():
    clock = Clock()
    slow = itertools.cycle([100, 300])  # alternating: medians of windows of 3 never agree
    step = itertools.count(1)
    w = timing.warm_up(lambda: clock.spend(next(slow) * next(step)), min_calls=1, max_calls=12, clock=clock)
    assert not w.settled and w.calls == 12


def test_interleaved_rounds_rotate_and_share_a_slow_phase():
    clock = Clock()
    order: list[int] = []
    slow_rounds = {3}  # a burst of load during round 3 hits every candidate, not one of them

    def make(i: int, ms: float):
        def call():
            order.append(i)
            clock.spend(ms * (5 if (len(order) - 1) // 3 in slow_rounds else 1))

        return call

    times = timing.interleaved([make(0, 10), make(1, 20), make(2, 30)], rounds=6, clock=clock)
    assert order[:9] == [0, 1, 2, 1, 2, 0, 2, 0, 1]  # the order rotates each round
    assert [len(t) for t in times] == [6, 6, 6]
    for base, t in zip((10, 20, 30), times, strict=True):
        assert sorted(t)[:5] == [pytest.approx(base)] * 5 and max(t) == pytest.approx(5 * base)
        assert timing.latency_stats(t)["p50_ms"] == pytest.approx(base)


def test_spread_is_iqr_over_median_and_marks_wide_rows():
    steady = timing.latency_stats([100, 101, 99, 100, 102, 98, 100, 250])  # one outlier
    assert steady["p50_ms"] == pytest.approx(100) and timing.is_steady(steady)
    assert steady["p10_ms"] <= steady["p25_ms"] <= steady["p50_ms"] <= steady["p75_ms"] <= steady["p90_ms"]
    a = np.array([100, 101, 99, 100, 102, 98, 100, 250], dtype=float)
    q75, q25 = np.percentile(a, [75, 25])
    assert steady["spread"] == pytest.approx((q75 - q25) / np.median(a))
    swinging = timing.latency_stats([204, 1220, 210, 400, 950, 205, 600, 1100])  # the PyTorch row
    assert swinging["spread"] > timing.SPREAD_LIMIT and not timing.is_steady(swinging)


class FakeRunner(Runner):
    """A runner whose calls take scripted times on the scripted clock and predict class 0 (or 1)."""

    backend = "fake"

    def __init__(self, path, clock: Clock, durations, label: int = 0, precision: str = "fp32"):
        super().__init__(path)
        self.info = ModelInfo(arch="Unet", encoder="resnet18", num_classes=2, input_size=(32, 32),
                              precision=precision)  # fmt: skip
        self.clock, self.durations, self.label = clock, iter(durations), label

    def __call__(self, images):
        self.clock.spend(next(self.durations))
        out = np.zeros((len(images), 2, *images.shape[1:3]), dtype=np.float32)
        out[:, self.label] = 1.0
        return out


def test_benchmark_marks_an_unsteady_row_and_reports_the_spread(tmp_path, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(timing, "now", clock)
    files = {name: tmp_path / name for name in ("steady.onnx", "swinging.onnx", "int8.onnx")}
    for f in files.values():
        f.write_bytes(b"placeholder")
    swing = itertools.cycle([200, 1200, 210, 950, 205, 600])
    runners = {
        "steady.onnx": lambda p: FakeRunner(p, clock, itertools.repeat(100.0)),
        "swinging.onnx": lambda p: FakeRunner(p, clock, swing),
        "int8.onnx": lambda p: FakeRunner(p, clock, itertools.repeat(50.0), label=1, precision="int8"),
    }
    monkeypatch.setattr("segpipe.runtime.base.load_runner", lambda path, **kw: runners[Path(path).name](path))
    rec = RecordingReporter()
    report = tmp_path / "r.json"
    opts = BenchmarkOptions(models=tuple(files.values()), warmup=1, runs=12, report=report, device="cpu")
    result = benchmark(opts, rec)
    steady, swinging, int8 = result.models
    assert steady.steady and steady.p50_ms == pytest.approx(100) and steady.spread < 1e-9
    assert steady.warmup_calls == 6 and steady.settled  # two windows of 3 agree at once
    assert int8.steady and int8.p50_ms == pytest.approx(50)
    assert not swinging.steady and swinging.spread > timing.SPREAD_LIMIT
    assert swinging.latency_text() == "unsteady" and steady.latency_text() == "100.00"
    row = swinging.row()
    assert "unsteady" in row and "(too wide)" in row[5] and row[6] == "-"  # no plain figure
    assert (
        len(rec.warnings) == 1 and "swinging.onnx (fake)" in rec.warnings[0] and "unsteady" in rec.warnings[0]
    )
    # agreement with the first FP32 row, on the timed batch
    assert steady.agreement_text() == "reference" and int8.agreement == 0.0
    assert swinging.agreement == 1.0 and swinging.reference == "steady.onnx (fake)"
    data = json.loads(report.read_text())
    assert data["spread_limit"] == timing.SPREAD_LIMIT
    assert [m["steady"] for m in data["models"]] == [True, False, True]
    assert data["models"][1]["p10_ms"] < data["models"][1]["p90_ms"]
