"""What does Ray cost and give on one machine? The classify step of `wanwu index`, with and without Ray.

    python benchmarks/ray_index.py --photos ../shared/imagenet-100 --copies 3

Copies the photos N times into a temp tree (distinct paths, same pixels), then classifies
the tree (a) on one machine the way `wanwu index` does without --ray (`Classifier.classify_iter`)
and (b) through `RayBackend` on a private local Ray node (127.0.0.1 only, --num-cpus CPUs) with
1 and 2 actors and a few batch sizes. Reports per run: wall time of the job (actor start-up
included), the steady rate (first result to last), and Ray's per-photo overhead against (a).
Rounds interleave the variants so machine noise hits all alike; medians are printed.
The machine may be shared: compare the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path


def make_tree(photos: Path, copies: int, root: Path) -> list[str]:
    from wanwu.imaging import IMAGE_EXTENSIONS

    sources = sorted(p for p in photos.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    out = []
    for c in range(copies):
        d = root / f"copy{c}"
        d.mkdir(parents=True)
        for p in sources:
            shutil.copy(p, d / p.name)
            out.append(str(d / p.name))
    return out


def timed(results) -> dict:
    """Consume (path, result) pairs: wall time, time to first, steady rate after the first."""
    t0 = time.perf_counter()
    first = None
    n = failed = 0
    for _path, r in results:
        n += 1
        failed += not r.ok
        if first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    steady = (n - 1) / (end - first) if n > 1 and end > first else float("nan")
    return {"photos": n, "failed": failed, "wall_s": end - t0, "first_s": (first or end) - t0,
            "photos_per_s": n / (end - t0), "steady_photos_per_s": steady}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, default=Path("../shared/imagenet-100"))
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--num-cpus", type=int, default=2)
    ap.add_argument("--batch-sizes", default="4,16,64", help="Ray batch sizes tried with 2 actors")
    ap.add_argument("--json", type=Path, help="also write the medians here")
    args = ap.parse_args(argv)

    from wanwu.library.ray_backend import DEFAULT_BATCH_SIZE, RayBackend, connect
    from wanwu.pipeline import Classifier

    tmp = Path(tempfile.mkdtemp(prefix="wanwu-raybench-", dir="/tmp"))
    try:
        paths = make_tree(args.photos, args.copies, tmp / "tree")
        print(f"{len(paths)} photos from {args.photos} x{args.copies}; {os.cpu_count()} CPUs here", file=sys.stderr)
        clf = Classifier()  # default threads, as `wanwu index` runs it
        t = time.perf_counter()
        connect("local", num_cpus=args.num_cpus, temp_dir=str(tmp / "ray"))
        print(f"ray node up in {time.perf_counter() - t:.1f} s", file=sys.stderr)

        def plain():
            return ((p, r) for p, r in zip(paths, clf.classify_iter(paths, top_k=5)))

        variants = {"plain (no Ray)": plain}
        for actors in (1, 2):
            variants[f"ray {actors} actor(s), batch {DEFAULT_BATCH_SIZE}"] = (
                lambda a=actors: RayBackend(top_k=5, actors=a, batch_size=DEFAULT_BATCH_SIZE).classify(paths)
            )
        for bs in (int(b) for b in args.batch_sizes.split(",")):
            if bs != DEFAULT_BATCH_SIZE:
                variants[f"ray 2 actor(s), batch {bs}"] = lambda b=bs: RayBackend(top_k=5, actors=2, batch_size=b).classify(paths)

        list(variants[f"ray 2 actor(s), batch {DEFAULT_BATCH_SIZE}"]())  # warm-up: worker processes, imports, ONNX cache
        runs: dict[str, list[dict]] = {k: [] for k in variants}
        for rnd in range(args.rounds):
            for name, make in variants.items():
                runs[name].append(timed(make()))
                print(f"round {rnd + 1} {name}: {runs[name][-1]['photos_per_s']:.1f} photos/s", file=sys.stderr)

        med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in runs.items()}
        base = med["plain (no Ray)"]
        print(f"| variant | job photos/s | steady photos/s | first result s | vs plain | overhead ms/photo |")
        print("|---|---|---|---|---|---|")
        for name, m in med.items():
            over = (m["wall_s"] - base["wall_s"]) / m["photos"] * 1e3
            print(f"| {name} | {m['photos_per_s']:.1f} | {m['steady_photos_per_s']:.1f} | {m['first_s']:.2f} "
                  f"| {m['photos_per_s'] / base['photos_per_s']:.2f}x | {over:+.1f} |")
        if args.json:
            args.json.write_text(json.dumps({"photos": len(paths), "cpus": os.cpu_count(), "medians": med}, indent=2))
        import ray

        ray.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
