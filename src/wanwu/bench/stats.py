"""Summaries of repeated timings, and interleaved measurement (the machine is shared and noisy:
variants are compared in one run, in alternating blocks, never one after the other)."""

from __future__ import annotations

import time
from typing import Callable, Mapping, Sequence

import numpy as np

# Pause between blocks of different variants: after a call, ONNX Runtime's (and OpenMP's, TBB's)
# worker threads spin for a while and slow the next engine down (by up to ~40% in a test here).
SETTLE_S = 0.02


def summarize(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/mean/min of a list of milliseconds."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        return {"n": 0}
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {
        "n": int(a.size),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "mean": float(a.mean()),
        "min": float(a.min()),
    }


def interleave(
    calls: Mapping[str, Callable[[int], object]],
    runs: int,
    warmup: int,
    block: int = 5,
    progress: Callable[[int], None] | None = None,
    settle: float = SETTLE_S,
) -> None:
    """Call every ``calls[key](i)`` ``warmup`` times, then ``runs`` times in alternating blocks
    of ``block`` calls per key, so slow drifts of the machine's load hit all keys alike.
    Each call records its own timing (``i`` is the run index; negative during warm-up).
    Before each block the process sleeps ``settle`` seconds, so the spinning worker threads of
    the previous engine are idle and do not slow the next one down."""
    for call in calls.values():
        for i in range(warmup):
            call(-1 - i)
    done = 0
    while done < runs:
        n = min(block, runs - done)
        for call in calls.values():
            time.sleep(settle)
            for i in range(done, done + n):
                call(i)
            if progress:
                progress(n)
        done += n


def ratio(baseline: float | None, value: float | None, higher_is_better: bool = False) -> float | None:
    """How many times better ``value`` is than ``baseline`` (>1 = better)."""
    if not baseline or not value:
        return None
    return value / baseline if higher_is_better else baseline / value
