"""Inference throughput (images/s) against batch size and thread count, interleaved: in each of
``rounds`` rounds every (batch size, variant) point runs a short time slice in turn; the result
is the median of its rounds. Inputs are real photos, decoded and preprocessed once beforehand, so this
measures the engine (the batched part of the pipeline), not the decoder."""

from __future__ import annotations

import sys
import time
from typing import Callable

import numpy as np
from tqdm import tqdm

from .stats import SETTLE_S


def make_batch(inputs: np.ndarray, size: int) -> np.ndarray:
    """``size`` inputs, cycling through the given ones."""
    idx = np.arange(size) % len(inputs)
    return np.ascontiguousarray(inputs[idx])


def measure_throughput(
    runners: dict[str, tuple[Callable[[np.ndarray], np.ndarray], np.ndarray, list[int]]],
    min_time: float = 1.0,
    rounds: int = 5,
    progress: bool = True,
) -> dict[str, dict[int, dict]]:
    """``runners``: key -> (run(batch) -> logits, model inputs (N,3,H,W), batch sizes to try).
    Returns key -> batch size -> {"img_s": median over rounds, "rounds": [...], "ms_per_batch"}.

    Each round visits every (batch size, variant) point for a time slice of ``min_time / rounds``
    (at least one call), so a burst of load from elsewhere spoils one round of many points rather
    than every round of one point, and the median drops it."""
    points = [(key, b) for key, (_, _, sizes) in runners.items() for b in sorted(sizes)]
    batches = {(key, b): make_batch(runners[key][1], b) for key, b in points}
    slice_s = max(min_time / rounds, 0.05)
    rates: dict[tuple[str, int], list[float]] = {p: [] for p in points}
    with tqdm(
        total=len(points) * (rounds + 1),
        desc="throughput",
        unit="slice",
        file=sys.stderr,
        disable=not progress or None,
        leave=False,
    ) as bar:
        for key, b in points:  # warm-up: the first call at a new shape is slow
            runners[key][0](batches[key, b])
            bar.update(1)
        for _ in range(rounds):
            for b in sorted({b for _, b in points}):
                for key in runners:
                    if (key, b) not in rates:
                        continue
                    run, batch = runners[key][0], batches[key, b]
                    time.sleep(SETTLE_S)
                    calls, start = 0, time.perf_counter()
                    while True:
                        run(batch)
                        calls += 1
                        elapsed = time.perf_counter() - start
                        if elapsed >= slice_s:
                            break
                    rates[key, b].append(calls * b / elapsed)
                    bar.update(1)
    results: dict[str, dict[int, dict]] = {key: {} for key in runners}
    for (key, b), r in rates.items():
        med = float(np.median(r))
        results[key][b] = {"img_s": med, "ms_per_batch": b / med * 1e3, "rounds": [round(x, 2) for x in r]}
    return results
