"""Steady latency figures: warm up until the timings settle, time candidates in interleaved rounds,
report the spread, and say when it is too wide to trust.

Used by ``segpipe benchmark`` and the scripts in ``benchmarks/``. On a shared or throttling machine
one slow phase (another process, a frequency drop) lands on whichever candidate runs then; timing
the candidates one call each per round, in an order that rotates, spreads such phases over all of
them, and the median with its interquartile range says how far a figure can be trusted.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Warm-up is over when the median of the last WINDOW calls is within SETTLE_TOLERANCE of the
#: median of the WINDOW before them.
WINDOW = 3
SETTLE_TOLERANCE = 0.10
#: A figure whose interquartile range exceeds this fraction of its median is marked unsteady.
SPREAD_LIMIT = 0.25


def now() -> float:
    """Seconds, monotonic: what every timing here reads (tests replace it with a scripted clock)."""
    return time.perf_counter()


def latency_stats(samples_ms: Sequence[float] | np.ndarray) -> dict[str, float]:
    """mean, std, min, the 10/25/50/75/90/99th percentiles (linear interpolation) and ``spread``
    (interquartile range over median) of latencies in ms."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no latency samples")
    p10, p25, p50, p75, p90, p99 = np.percentile(a, [10, 25, 50, 75, 90, 99])
    return {
        "mean_ms": float(a.mean()),
        "std_ms": float(a.std()),
        "min_ms": float(a.min()),
        "p10_ms": float(p10),
        "p25_ms": float(p25),
        "p50_ms": float(p50),
        "p75_ms": float(p75),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "spread": float((p75 - p25) / p50) if p50 > 0 else 0.0,
    }


def is_steady(stats: dict[str, float], limit: float = SPREAD_LIMIT) -> bool:
    """True when the interquartile range is at most ``limit`` of the median."""
    return stats["spread"] <= limit


@dataclass
class Warmup:
    """How a candidate's warm-up went."""

    calls: int
    #: True when the last two windows agreed before the cap was reached (or none was asked for).
    settled: bool


def warm_up(
    call: Callable[[], Any],
    min_calls: int,
    max_calls: int | None = None,
    clock: Callable[[], float] | None = None,
) -> Warmup:
    """Call ``call`` at least ``min_calls`` times and until two successive windows of
    :data:`WINDOW` calls have medians within :data:`SETTLE_TOLERANCE` (at most ``max_calls``,
    default ``max(20, 4 * min_calls)``). ``min_calls == 0``: no warm-up at all."""
    if min_calls <= 0:
        return Warmup(0, True)
    read = clock or now
    cap = max(min_calls, max_calls if max_calls is not None else max(20, 4 * min_calls))
    times: list[float] = []
    while len(times) < cap:
        start = read()
        call()
        times.append(read() - start)
        if len(times) >= max(min_calls, 2 * WINDOW):
            before = statistics.median(times[-2 * WINDOW : -WINDOW])
            last = statistics.median(times[-WINDOW:])
            if abs(last - before) <= SETTLE_TOLERANCE * max(last, before, 1e-12):
                return Warmup(len(times), True)
    return Warmup(len(times), False)


def interleaved(
    calls: Sequence[Callable[[], Any]],
    rounds: int,
    clock: Callable[[], float] | None = None,
    on_call: Callable[[int, float], None] | None = None,
) -> list[list[float]]:
    """Time every call once per round for ``rounds`` rounds; the order rotates each round so no
    candidate always follows the same one. Returns each call's latencies in ms.
    ``on_call(index, ms)`` is told of each timed call (progress)."""
    read = clock or now
    times: list[list[float]] = [[] for _ in calls]
    n = len(calls)
    for r in range(rounds):
        for k in range(n):
            i = (r + k) % n
            start = read()
            calls[i]()
            ms = (read() - start) * 1000.0
            times[i].append(ms)
            if on_call is not None:
                on_call(i, ms)
    return times
