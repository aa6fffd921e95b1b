"""A fresh process that serves N images and reports when it answered first and its peak RSS.
Run by ``memory.py`` as ``python -m wanwu.bench.probe``; prints one JSON object per line."""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time


def _emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def peak_rss_mb() -> float:
    """This process's peak resident set size. Linux: VmHWM (ru_maxrss would carry over the
    parent's peak across fork + exec); elsewhere ru_maxrss."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)  # bytes on macOS, KiB on Linux


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wanwu.bench.probe")
    p.add_argument("--model", required=True)
    p.add_argument("--engine", required=True)
    p.add_argument("--precision", default=None, help="default: the Classifier's")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--weights", default=None)
    p.add_argument("--images", type=int, default=100, help="images to serve (cycling through the photos)")
    p.add_argument("photos", nargs="+")
    args = p.parse_args(argv)

    from wanwu.pipeline import Classifier  # the import is part of the cold start
    from wanwu.pipeline.defaults import DEFAULT_PRECISION, DEFAULT_TOP_K

    _emit(event="imported", t=time.time())
    clf = Classifier(
        args.model,
        args.engine,
        weights=args.weights,
        precision=args.precision or DEFAULT_PRECISION,
        threads=args.threads,
    )
    _emit(event="loaded", t=time.time())
    for i in range(args.images):
        result = clf.classify_one(args.photos[i % len(args.photos)], top_k=DEFAULT_TOP_K)
        if result.error is not None:
            _emit(event="error", message=result.error.message)
            return 1
        if i == 0:
            _emit(event="first_answer", t=time.time(), label=result.predictions[0].label)
    _emit(
        event="done",
        t=time.time(),
        images=args.images,
        peak_rss_mb=peak_rss_mb(),
        torch_imported="torch" in sys.modules,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
