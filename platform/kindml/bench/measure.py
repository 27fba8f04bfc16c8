"""Timing and its statistics.

Discipline (the same for every variant):

- **warm-up**: ``warmup`` untimed calls per (variant, batch) — first calls pay
  for allocations, kernel selection, TensorRT engine builds;
- **blocks**: a timed *repeat* is a block of ``k`` back-to-back calls, ``k``
  chosen from the warm-up so a block lasts at least ``min_block_ms`` (a 20 µs
  call timed alone is mostly timer noise); every call is timed on its own;
- **interleaving**: the repeats of all variants of one model and batch take
  turns (variant A block 1, B block 1, ..., A block 2, ...), with the starting
  variant rotated each round, so a burst of load from another process hits
  every variant alike instead of one;
- **statistics**: ``p50_ms`` / ``p99_ms`` are percentiles of the per-call
  latencies (linear interpolation; with few calls p99 approaches the max);
  ``cv`` is the coefficient of variation (std / mean) of the block means;
  ``throughput_per_s = batch × 1000 / p50_ms`` (median-based, robust to a
  foreign burst; the mean-based figure is kept as ``throughput_mean_per_s``);
  a measurement whose ``cv`` exceeds the threshold is flagged ``noisy``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Stats:
    batch: int
    calls: int
    repeats: int
    calls_per_repeat: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    cv: float
    noisy: bool
    throughput_per_s: float
    throughput_mean_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "throughput_per_s": self.throughput_per_s,
            "throughput_mean_per_s": self.throughput_mean_per_s,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms,
            "min_ms": self.min_ms,
            "cv": self.cv,
            "noisy": self.noisy,
            "calls": self.calls,
            "repeats": self.repeats,
            "calls_per_repeat": self.calls_per_repeat,
        }


def percentile(values: Sequence[float], q: float) -> float:
    if len(values) == 0:
        raise ValueError("no samples")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q, method="linear"))


def coefficient_of_variation(values: Sequence[float]) -> float:
    """Sample std / mean (0.0 for fewer than two values or a zero mean)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size < 2:
        return 0.0
    mean = float(arr.mean())
    if mean == 0.0:
        return 0.0
    return float(arr.std(ddof=1) / mean)


def summarize(batch: int, blocks: Sequence[Sequence[float]], cv_threshold: float) -> Stats:
    """Statistics of timed blocks (each a list of per-call latencies in ms)."""
    blocks = [list(b) for b in blocks if len(b)]
    if not blocks:
        raise ValueError("no timed blocks")
    calls = [x for b in blocks for x in b]
    p50 = percentile(calls, 50)
    mean = float(np.mean(calls))
    cv = coefficient_of_variation([float(np.mean(b)) for b in blocks])
    return Stats(
        batch=batch,
        calls=len(calls),
        repeats=len(blocks),
        calls_per_repeat=max(len(b) for b in blocks),
        p50_ms=round(p50, 6),
        p99_ms=round(percentile(calls, 99), 6),
        mean_ms=round(mean, 6),
        min_ms=round(min(calls), 6),
        cv=round(cv, 6),
        noisy=bool(cv > cv_threshold),
        throughput_per_s=round(throughput(batch, p50), 3),
        throughput_mean_per_s=round(throughput(batch, mean), 3),
    )


def throughput(batch: int, latency_ms: float) -> float:
    return batch * 1000.0 / latency_ms if latency_ms > 0 else math.inf


def speedup(throughput_value: float | None, baseline_throughput: float | None) -> float | None:
    if not throughput_value or not baseline_throughput or not math.isfinite(throughput_value) or not math.isfinite(baseline_throughput):
        return None
    return round(throughput_value / baseline_throughput, 4)


def calls_per_block(warmup_ms: Sequence[float], min_block_ms: float, max_calls: int) -> int:
    """How many calls make a block of at least ``min_block_ms`` (from the fastest warm-up call)."""
    fastest = min(warmup_ms) if warmup_ms else 0.0
    if fastest <= 0:
        return max_calls
    return int(min(max_calls, max(1, math.ceil(min_block_ms / fastest))))


@dataclass
class Timer:
    """Times one zero-argument callable per variant; ``sync`` waits for a device (CUDA) if needed."""

    fn: Callable[[], Any]
    sync: Callable[[], None] | None = None
    warmup_ms: list[float] = field(default_factory=list)
    blocks: list[list[float]] = field(default_factory=list)
    k: int = 1

    def _call(self) -> float:
        t0 = time.perf_counter_ns()
        self.fn()
        if self.sync is not None:
            self.sync()
        return (time.perf_counter_ns() - t0) / 1e6

    def warm(self, n: int) -> None:
        self.warmup_ms = [self._call() for _ in range(max(1, n))]

    def block(self) -> None:
        self.blocks.append([self._call() for _ in range(self.k)])


def measure_interleaved(
    timers: dict[str, Timer],
    batch: int,
    warmup: int,
    repeats: int,
    min_block_ms: float,
    max_calls: int,
    cv_threshold: float,
    on_block: Callable[[], None] | None = None,
) -> dict[str, Stats]:
    """Warm every timer, then run ``repeats`` rounds of one block per timer (rotating start)."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    names = list(timers)
    for name in names:
        t = timers[name]
        t.blocks = []
        t.warm(warmup)
        t.k = calls_per_block(t.warmup_ms, min_block_ms, max_calls)
    for r in range(repeats):
        shift = r % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            timers[name].block()
            if on_block is not None:
                on_block()
    return {name: summarize(batch, timers[name].blocks, cv_threshold) for name in names}
