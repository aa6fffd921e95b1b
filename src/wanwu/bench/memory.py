"""Cold start and memory of a fresh serving process (``probe.py``): process start to first
answer, with a warm ONNX cache (the normal case) and with an empty one (a temporary
``WANWU_CACHE_DIR``: the ONNX graph is built, and quantized for int8, first); and the peak RSS
of the process after serving N images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import WanwuError
from .variants import ModelWeights, Variant


def run_probe(
    variant: Variant,
    weights: ModelWeights,
    photos: list[Path],
    images: int = 100,
    cache_dir: str | None = None,
    timeout: float = 600,
) -> dict:
    """One fresh process: seconds from start to first answer (and to import / model loaded),
    peak RSS (MB) after ``images`` images."""
    cmd = [
        sys.executable,
        "-m",
        "wanwu.bench.probe",
        "--model",
        variant.model,
        "--engine",
        variant.engine,
        "--precision",
        variant.precision,
        "--threads",
        str(variant.threads),
        "--images",
        str(images),
    ]
    if weights.path is not None:
        cmd += ["--weights", str(weights.path)]
    cmd += [str(p) for p in photos]
    env = dict(os.environ)
    if cache_dir is not None:
        env["WANWU_CACHE_DIR"] = cache_dir
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    events = {}
    for line in proc.stdout.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        events[e.get("event")] = e
    if proc.returncode != 0 or "done" not in events:
        detail = events.get("error", {}).get("message") or proc.stderr.strip().splitlines()[-1:] or ["?"]
        raise WanwuError(f"memory probe for {variant.key} failed: {detail}")
    return {
        "import_s": events["imported"]["t"] - start,
        "load_s": events["loaded"]["t"] - start,
        "first_answer_s": events["first_answer"]["t"] - start,
        "peak_rss_mb": events["done"]["peak_rss_mb"],
        "torch_imported": events["done"]["torch_imported"],
    }


def measure_memory(
    variant: Variant, weights: ModelWeights, photos: list[Path], images: int = 100, repeats: int = 3, cold: bool = False
) -> dict:
    """Median over ``repeats`` fresh processes. ``cold``: each with an empty temporary cache."""
    if not cold:  # untimed: fills the ONNX cache (first time only) and the OS file cache
        run_probe(variant, weights, photos, 1)
    runs = []
    for _ in range(repeats):
        if cold:
            with tempfile.TemporaryDirectory(prefix="wanwu-cold-cache-") as tmp:
                runs.append(run_probe(variant, weights, photos, images, cache_dir=tmp))
        else:
            runs.append(run_probe(variant, weights, photos, images))
    out = {k: float(np.median([r[k] for r in runs])) for k in ("import_s", "load_s", "first_answer_s", "peak_rss_mb")}
    out.update(repeats=repeats, images=images, cold_cache=cold, torch_imported=any(r["torch_imported"] for r in runs))
    return out
