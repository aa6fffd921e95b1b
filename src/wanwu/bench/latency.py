"""Single-image latency, end to end (encoded bytes -> top-k) and per stage, interleaved across
variants: p50/p90/p99 over ``runs`` runs after ``warmup`` runs."""

from __future__ import annotations

import sys

from tqdm import tqdm

from ..pipeline.defaults import DEFAULT_TOP_K
from .stats import interleave, summarize

STAGES = ("decode", "preprocess", "inference", "postprocess", "total")


def measure_latency(
    classifiers: dict,  # key -> Classifier
    photos: list[bytes],
    runs: int = 100,
    warmup: int = 10,
    block: int = 5,
    top_k: int = DEFAULT_TOP_K,
    progress: bool = True,
) -> dict[str, dict]:
    """key -> {stage: {p50, p90, p99, mean, min, n}} over ``runs`` single-image calls of
    ``Classifier.classify_one`` on encoded bytes, cycling through ``photos``."""
    samples: dict[str, dict[str, list[float]]] = {key: {stage: [] for stage in STAGES} for key in classifiers}

    def call_for(key, clf):
        def call(i: int) -> None:
            result = clf.classify_one(photos[abs(i) % len(photos)], top_k=top_k, name="bench")
            if result.error is not None:
                raise result.error
            if i >= 0:
                for stage in STAGES:
                    samples[key][stage].append(result.timing_ms[stage])

        return call

    calls = {key: call_for(key, clf) for key, clf in classifiers.items()}
    with tqdm(
        total=runs * len(calls), desc="latency", unit="run", file=sys.stderr, disable=not progress or None, leave=False
    ) as bar:
        interleave(calls, runs, warmup, block, progress=bar.update)
    return {key: {stage: summarize(v) for stage, v in stages.items()} for key, stages in samples.items()}


def measure_forward(
    runners: dict,  # key -> (run(batch) -> logits, batch)
    runs: int = 100,
    warmup: int = 10,
    block: int = 5,
    progress: bool = True,
    desc: str = "forward",
) -> dict[str, dict]:
    """key -> summary (ms) of the bare inference call alone, interleaved across keys."""
    import time

    samples: dict[str, list[float]] = {key: [] for key in runners}

    def call_for(key, run, batch):
        def call(i: int) -> None:
            t0 = time.perf_counter()
            run(batch)
            if i >= 0:
                samples[key].append((time.perf_counter() - t0) * 1e3)

        return call

    calls = {key: call_for(key, run, batch) for key, (run, batch) in runners.items()}
    with tqdm(
        total=runs * len(calls), desc=desc, unit="run", file=sys.stderr, disable=not progress or None, leave=False
    ) as bar:
        interleave(calls, runs, warmup, block, progress=bar.update)
    return {key: summarize(v) for key, v in samples.items()}
