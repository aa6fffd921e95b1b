"""What does Ray cost and give on one machine? The classify step of `wanwu index`, with and without Ray.

    python benchmarks/ray_index.py --photos ../shared/imagenet-100 --copies 3

Copies the photos N times into a temp tree (distinct paths, same pixels), then classifies
the tree (a) on one machine as `wanwu index` does without --ray (`LocalBackend`) and (b)
through `RayBackend` on a private local Ray node (127.0.0.1 only, --num-cpus CPUs) with 1 and
2 actors and a few batch sizes. Reports per run: wall time of the job (actor start-up
included), the steady rate (first result to last), and Ray's per-photo overhead against (a).
Rounds interleave the variants so machine noise hits all alike; medians are printed.
Then the catalogue's insert rate: the real `Indexer` writing --inserts photos from a backend
that answers instantly (walk, plan and SQLite writes only: the single writer's ceiling).
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
    """Consume the backend's answers: wall time, time to the first answer (Ray: actor start-up),
    and the steady rate: answers after the first arrival over the time after it (results
    come in blocks, so the first block's photos are counted with the start-up)."""
    t0 = time.perf_counter()
    arrivals = []
    failed = 0
    for c in results:
        arrivals.append(time.perf_counter())
        failed += not c.result.ok
    n, end = len(arrivals), arrivals[-1] if arrivals else time.perf_counter()
    first = arrivals[0] if arrivals else end
    after = sum(1 for a in arrivals if a > first + 1e-3)
    steady = after / (end - first) if after and end > first else float("nan")
    return {
        "photos": n,
        "failed": failed,
        "wall_s": end - t0,
        "first_s": first - t0,
        "photos_per_s": n / (end - t0),
        "steady_photos_per_s": steady,
    }


class _NoOp:
    """An actor that answers every path with a fixed row, doing no work: what is left is Ray's."""

    def __init__(self, row: dict):
        self.row = row

    def __call__(self, batch):
        import pyarrow as pa

        from wanwu.library.ray_backend import _result_schema

        rows = [{**self.row, "path": p} for p in batch.column("path").to_pylist()]
        return pa.Table.from_pylist(rows, schema=_result_schema())


def ray_cost_per_photo(paths: list[str], clf, actors: int, batch_size: int) -> dict:
    """Ray's own cost per photo: the same pipeline as ``RayBackend`` (from_items -> actor pool
    -> Arrow rows -> driver) around an actor that does nothing, and the driver's row -> result."""
    import ray

    from wanwu.library.backend import Classified, FileFacts
    from wanwu.library.ray_backend import _error_classes, _from_row, _to_row
    from wanwu.pipeline.results import ImageResult

    row = _to_row(Classified("x", ImageResult("x", clf.classify(_any_photo(), top_k=5), 500, 375), FileFacts("0" * 64)))
    ds = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=max(1, len(paths) // batch_size))
    ds = ds.map_batches(
        _NoOp,
        fn_constructor_kwargs={"row": row},
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=1,
    )
    arrivals = []
    rows = []
    t0 = time.perf_counter()
    for table in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        got = table.to_pylist()
        rows.extend(got)
        arrivals.extend([time.perf_counter()] * len(got))
    first = arrivals[0]
    after = sum(1 for a in arrivals if a > first + 1e-3)
    errors = _error_classes()
    t = time.perf_counter()
    for r in rows:
        _from_row(r, errors)
    driver_ms = (time.perf_counter() - t) / len(rows) * 1e3
    return {
        "photos": len(rows),
        "first_s": first - t0,
        "ray_ms_per_photo": (arrivals[-1] - first) / max(1, after) * 1e3,
        "driver_ms_per_photo": driver_ms,
    }


def insert_rate(root: Path, n: int, clf) -> float:
    """Photos/s the real ``Indexer`` records when classification costs nothing: ``n`` tiny
    distinct files, each answered at once with a real result's top-5 and facts."""
    from wanwu.library.backend import Classified, FileFacts
    from wanwu.library.catalogue import open_catalogue
    from wanwu.library.indexer import Indexer
    from wanwu.pipeline.results import ImageResult

    tree = root / "tree"
    for i in range(n):
        d = tree / f"{i // 1000:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i}.jpg").write_bytes(i.to_bytes(4, "little"))
    predictions = clf.classify(_any_photo(), top_k=5)

    class Instant:
        def classify(self, paths):
            for p in paths:
                yield Classified(p, ImageResult(p, predictions, 500, 375), FileFacts(p.rjust(64, "0")[-64:]))

        def close(self):
            pass

    conn = open_catalogue(root / "library.db")
    t = time.perf_counter()
    summary = Indexer(conn, "bench/fp32/0", Instant).run([str(tree)])
    seconds = time.perf_counter() - t
    conn.close()
    assert summary.new == n, summary
    return n / seconds


def _any_photo():
    import skimage

    return str(Path(skimage.__file__).parent / "data" / "chelsea.png")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, default=Path("../shared/imagenet-100"))
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="0: only Ray's own cost and the insert rate")
    ap.add_argument("--num-cpus", type=int, default=2)
    ap.add_argument("--batch-sizes", default="4,16,64", help="Ray batch sizes tried with 2 actors")
    ap.add_argument("--inserts", type=int, default=20000, help="photos for the catalogue insert-rate run")
    ap.add_argument("--json", type=Path, help="also write the medians here")
    args = ap.parse_args(argv)

    from wanwu.library.backend import LocalBackend
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
            local = LocalBackend(clf, 5)  # what `wanwu index` makes without --ray
            yield from local.classify(paths)
            local.close()

        variants = {"plain (no Ray)": plain}
        for actors in (1, 2):
            variants[f"ray {actors} actor(s), batch {DEFAULT_BATCH_SIZE}"] = lambda a=actors: RayBackend(
                top_k=5, actors=a, batch_size=DEFAULT_BATCH_SIZE
            ).classify(paths)
        for bs in (int(b) for b in args.batch_sizes.split(",") if b):
            if bs != DEFAULT_BATCH_SIZE:
                variants[f"ray 2 actor(s), batch {bs}"] = lambda b=bs: RayBackend(
                    top_k=5, actors=2, batch_size=b
                ).classify(paths)

        med: dict = {}
        if args.rounds:
            list(
                variants[f"ray 2 actor(s), batch {DEFAULT_BATCH_SIZE}"]()
            )  # warm-up: worker processes, imports, ONNX cache
            runs: dict[str, list[dict]] = {k: [] for k in variants}
            for rnd in range(args.rounds):
                for name, make in variants.items():
                    runs[name].append(timed(make()))
                    print(f"round {rnd + 1} {name}: {runs[name][-1]['photos_per_s']:.1f} photos/s", file=sys.stderr)

            med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in runs.items()}
            base = med["plain (no Ray)"]
            print(
                f"{len(paths)} photos; medians of {args.rounds} rounds; load average {os.getloadavg()[0]:.1f} "
                f"on {os.cpu_count()} CPUs at the end\n"
            )
            print(
                "| variant | job photos/s | job vs plain | first result s | steady photos/s | steady vs plain "
                "| ms/photo steady |"
            )
            print("|---|---|---|---|---|---|---|")
            for name, m in med.items():
                print(
                    f"| {name} | {m['photos_per_s']:.1f} | {m['photos_per_s'] / base['photos_per_s']:.2f}x "
                    f"| {m['first_s']:.2f} | {m['steady_photos_per_s']:.1f} "
                    f"| {m['steady_photos_per_s'] / base['steady_photos_per_s']:.2f}x | {1e3 / m['steady_photos_per_s']:.1f} |"
                )
        import ray

        many = paths * max(1, 4000 // len(paths))
        cost = ray_cost_per_photo(many, clf, 2, DEFAULT_BATCH_SIZE)
        print(
            f"\nRay's own cost ({cost['photos']} photos through a no-op actor pool of 2, batch "
            f"{DEFAULT_BATCH_SIZE}): {cost['ray_ms_per_photo']:.2f} ms/photo in the pipeline, "
            f"{cost['driver_ms_per_photo']:.3f} ms/photo on the driver (row -> result); "
            f"first block after {cost['first_s']:.1f} s"
        )
        ray.shutdown()
        rate = insert_rate(tmp / "inserts", args.inserts, clf)
        print(f"\ncatalogue insert rate (Indexer, instant backend, {args.inserts} photos): {rate:.0f} photos/s")
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "photos": len(paths),
                        "cpus": os.cpu_count(),
                        "medians": med,
                        "catalogue_inserts_per_s": rate,
                        "ray_cost": cost,
                    },
                    indent=2,
                )
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
