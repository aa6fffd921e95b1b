"""Scale of "more like this" and of the duplicate finder (``wanwu.library.vectors``) on synthetic
embeddings: 100,000 and 1,000,000 int8 vectors of 1,280 numbers shaped like real pooled features
(non-negative, a few directions carry most of the energy, distinct photos at cosine ~0.3) with
1% planted near-copies (cosine ~0.95).

Prints, per size: building the in-memory index (from int8 rows; at 100,000 also from a real
SQLite catalogue), a "similar" query's p50/p95 and how many rows it scored exactly, all
near-duplicate pairs at the default threshold (time, pairs, planted pairs found) and the peak
memory of each step (tracemalloc: NumPy's allocations included). Not a test: figures to read.

    python benchmarks/similar.py [--sizes 100000 1000000] [--queries 50] [--pairs-up-to 100000]
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

DIMS = 1280
LATENT = 48


def synthetic(n: int, seed: int = 0, block: int = 50_000) -> tuple[np.ndarray, np.ndarray]:
    """(n, DIMS) int8 rows as the catalogue stores them, and the planted (copy, original) pairs."""
    from wanwu.library.embeddings import normalized, quantize

    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((LATENT, DIMS)).astype(np.float32)
    bias = np.abs(rng.standard_normal(DIMS)).astype(np.float32) * 1.5  # the all-positive common part
    rows = np.empty((n, DIMS), np.int8)
    for i in range(0, n, block):
        m = min(block, n - i)
        z = rng.standard_normal((m, LATENT)).astype(np.float32)
        x = np.maximum(z @ mixing + bias + 0.8 * rng.standard_normal((m, DIMS)).astype(np.float32), 0)
        rows[i : i + m] = quantize(normalized(x))
    copies = np.arange(1, n, 100)
    originals = copies - 1
    base = rows[originals].astype(np.float32)
    noisy = np.maximum(base + 14.0 * rng.standard_normal(base.shape).astype(np.float32), 0)
    rows[copies] = quantize(normalized(noisy))
    return rows, np.stack([originals, copies], axis=1)


def measured(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return out, seconds, peak


def from_catalogue(rows: np.ndarray) -> float:
    """Seconds to load a catalogue's embeddings into an index (SQLite read + build)."""
    from wanwu.library.catalogue import open_catalogue
    from wanwu.library.vectors import load_index

    with tempfile.TemporaryDirectory(prefix="wanwu-similar-") as tmp:
        conn = open_catalogue(Path(tmp) / "library.db")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO photos (id, path, size, mtime_ns, sha256, tagger, indexed_at) VALUES (?, ?, 1, 0, ?, 'b', 0)",
            ((i + 1, f"/p/{i}.jpg", f"{i:064x}") for i in range(len(rows))),
        )
        conn.executemany(
            "INSERT INTO embeddings (photo_id, model, vector) VALUES (?, 'b', ?)",
            ((i + 1, rows[i].tobytes()) for i in range(len(rows))),
        )
        conn.execute("COMMIT")
        t0 = time.perf_counter()
        load_index(conn, "b")
        seconds = time.perf_counter() - t0
        conn.close()
    return seconds


def run(n: int, queries: int, pairs: bool, threshold: float, recall_queries: int = 20) -> None:
    from wanwu.library.vectors import VectorIndex

    t0 = time.perf_counter()
    rows, planted = synthetic(n)
    print(f"\n## {n:,} vectors (made in {time.perf_counter() - t0:.1f} s; int8 rows {rows.nbytes / 1e6:.0f} MB)")
    index, build_s, build_peak = measured(lambda: VectorIndex.build(np.arange(n) + 1, rows))
    captured = float(np.mean(1 - index.resid**2))
    print(f"- index build: {build_s:.1f} s, peak {build_peak:.0f} MB; projection keeps {captured:.0%} of the energy")
    if n <= 100_000:
        print(f"- load from a SQLite catalogue (read + build): {from_catalogue(rows):.1f} s")
    rng = np.random.default_rng(1)
    times, hits = [], []
    for k, q in enumerate(rng.choice(n, size=queries, replace=False)):
        vec = index.unit(np.array([q]))[0]
        t = time.perf_counter()
        pos, _ = index.nearest(vec, 12, exclude=int(q))
        times.append(time.perf_counter() - t)
        if k < recall_queries:  # brute force over every row, block by block
            exact = np.concatenate([index.unit(np.arange(i, min(n, i + 8192))) @ vec for i in range(0, n, 8192)])
            exact[q] = -np.inf
            want = set(np.argpartition(-exact, 11)[:12].tolist())
            hits.append(len(want & set(pos.tolist())) / 12)
    ms = np.array(times) * 1e3
    print(
        f"- similar (n=12): p50 {np.median(ms):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms over {queries} queries; "
        f"recall@12 against brute force {np.mean(hits):.3f} ({len(hits)} queries)"
    )
    if pairs:

        def all_pairs():
            found = 0
            hits = set()
            for ii, jj, _ in index.pairs(threshold):
                found += len(ii)
                hits.update(zip(ii.tolist(), jj.tolist()))
            return found, hits

        (found, hits), pairs_s, pairs_peak = measured(all_pairs)
        got = sum((int(a), int(b)) in hits for a, b in planted)
        print(
            f"- all near-duplicate pairs at {threshold}: {pairs_s:.1f} s, peak {pairs_peak:.0f} MB beyond the index; "
            f"{found} pairs, {got}/{len(planted)} planted copies found"
        )
    print(f"- process peak RSS so far: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB")


def main() -> None:
    from wanwu.library.similar import DEFAULT_THRESHOLD

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--pairs-up-to", type=int, default=100_000, help="all-pairs only for sizes up to this")
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    args = ap.parse_args()
    for n in args.sizes:
        run(n, args.queries, n <= args.pairs_up_to, args.threshold)
    sqlite3.connect(":memory:").close()


if __name__ == "__main__":
    main()
