"""``wanwu index`` throughput against ``wanwu classify`` on the same files, in one process with
one classifier, so the ratio is fair on a shared machine (the absolute photos/s are not).

Makes two sets of JPEGs with ``index_throughput.make_set`` (from ../shared/imagenet-100, else
scikit-image's photos): 500x375 (ImageNet-sized) and 4000x3000 (12 MP, a phone camera), then for
each set, alternating runs: ``Classifier.classify_iter`` (what ``wanwu classify`` runs), a first
``Indexer`` run on a new catalogue (hash + EXIF + classify + SQLite writes), and an unchanged
re-index (stat only). ``index_throughput.py`` measures ``wanwu index`` against the machine's limit.

    python benchmarks/library_index.py [--small 240] [--large 24] [--rounds 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from index_throughput import make_set  # the one place benchmarks make photo sets


def run(small: int, large: int, rounds: int) -> None:
    from wanwu.library.backend import LocalBackend
    from wanwu.library.catalogue import open_catalogue
    from wanwu.library.indexer import Indexer
    from wanwu.pipeline import Classifier

    clf = Classifier()
    with tempfile.TemporaryDirectory(prefix="wanwu-bench-library-") as tmp:
        sets = {
            "500x375": make_set(Path(tmp) / "small", small, (500, 375)),
            "12 MP (4000x3000)": make_set(Path(tmp) / "large", large, (4000, 3000)),
        }
        print(
            "| photos | n | classify photos/s | index photos/s | index / classify | unchanged re-index s (x faster) |"
        )
        print("|---|---|---|---|---|---|")
        for name, paths in sets.items():
            folder = str(Path(paths[0]).parent)
            best = {"classify": 1e9, "index": 1e9, "reindex": 1e9}
            for r in range(rounds):
                t0 = time.perf_counter()
                for _ in clf.classify_iter(paths, top_k=5, batch_size=8):
                    pass
                best["classify"] = min(best["classify"], time.perf_counter() - t0)

                db = Path(tmp) / f"{name[:3]}-{r}.db"
                conn = open_catalogue(db)
                t0 = time.perf_counter()
                s = Indexer(conn, "bench", lambda: LocalBackend(clf, top_k=5, batch_size=8)).run([folder])
                best["index"] = min(best["index"], time.perf_counter() - t0)
                assert s.new == len(paths), s
                t0 = time.perf_counter()
                s = Indexer(conn, "bench", lambda: LocalBackend(clf, top_k=5)).run([folder])
                best["reindex"] = min(best["reindex"], time.perf_counter() - t0)
                assert s.unchanged == len(paths) and s.classified == 0
                conn.close()
            n = len(paths)
            c, i, u = n / best["classify"], n / best["index"], best["reindex"]
            print(
                f"| {name} | {n} | {c:.1f} | {i:.1f} | {i / c:.2f} | {u:.3f} ({best['index'] / u:.0f}x) |", flush=True
            )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", type=int, default=240)
    ap.add_argument("--large", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    run(a.small, a.large, a.rounds)
