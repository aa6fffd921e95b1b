"""The incremental index at collection scale, without the model: a tree of N files (default
100,000, in folders of 500) whose catalogue rows already match, then ``Indexer.run`` on it —
the cost of an unchanged re-index (walk + stat + one SELECT per file) and the memory it needs,
and the same with 1% of the files moved (recognised by content hash, no inference).

    python benchmarks/library_scale.py [--files 100000]

Prints seconds, files/s and the peak Python memory of the run (tracemalloc; SQLite's own cache
is bounded by its page cache), so "nothing proportional to the tree beyond the file list" can
be checked. tracemalloc slows Python down: the times are upper bounds.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
import tracemalloc
from pathlib import Path


def _measured(run):
    """(result, seconds, peak MB of Python memory allocated during ``run``)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return result, seconds, peak


def main(n: int) -> None:
    from wanwu.library.catalogue import open_catalogue
    from wanwu.library.indexer import Indexer

    def no_model():
        raise AssertionError("an unchanged tree must not load the model")

    with tempfile.TemporaryDirectory(prefix="wanwu-scale-") as tmp:
        root = Path(tmp) / "photos"
        rows = []
        t0 = time.perf_counter()
        for i in range(n):
            folder = root / f"{i // 500:04d}"
            if i % 500 == 0:
                folder.mkdir(parents=True)
            path = folder / f"IMG_{i:06d}.jpg"
            data = i.to_bytes(8, "little")  # distinct content per file
            path.write_bytes(data)
            st = path.stat()
            rows.append((str(path), st.st_size, st.st_mtime_ns, hashlib.sha256(data).hexdigest()))
        conn = open_catalogue(Path(tmp) / "library.db")
        with conn:
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO photos (path, size, mtime_ns, sha256, tagger, indexed_at) VALUES (?, ?, ?, ?, 'bench', 0)",
                rows,
            )
            conn.executemany(
                "INSERT INTO tags VALUES ((SELECT id FROM photos WHERE path = ?), 0, 'n02123045', 0.9)",
                [(r[0],) for r in rows],
            )
            conn.execute("COMMIT")
        print(f"made {n} files and their catalogue rows in {time.perf_counter() - t0:.1f} s", flush=True)
        del rows

        s, dt, peak = _measured(lambda: Indexer(conn, "bench", no_model, embed=False).run([str(root)]))
        assert s.unchanged == n and s.classified == 0, s.line()
        print(f"unchanged re-index: {dt:.2f} s ({n / dt:,.0f} files/s), peak Python memory {peak:.1f} MB")

        moved = n // 100
        for i in range(moved):
            src = root / f"{i // 500:04d}" / f"IMG_{i:06d}.jpg"
            os.rename(src, src.with_name(f"renamed_{i:06d}.jpg"))
        s, dt, peak = _measured(lambda: Indexer(conn, "bench", no_model, embed=False).run([str(root)]))
        assert s.moved == moved and s.classified == 0, s.line()
        print(f"{moved} moved: {dt:.2f} s, no inference, peak Python memory {peak:.1f} MB")
        conn.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=100_000)
    main(ap.parse_args().files)
