"""Exact nearest neighbours over the catalogue's embeddings, in NumPy, in bounded memory.

``VectorIndex`` holds one model's int8 rows (1,280 bytes a photo) and, to make one query a
single small matrix-vector product, their projection on the collection's top ``k`` principal
directions (float32, ``k`` = 128: 512 bytes a photo). For unit vectors a, b split into the part
in that subspace (Pa) and the rest (Ra): a.b = Pa.Pb + Ra.Rb and |Ra.Rb| <= |Ra| |Rb| with
|Ra|^2 = 1 - |Pa|^2. So the projection gives a lower and an upper bound on every similarity;
only rows whose upper bound reaches the threshold (``pairs``) or the n-th best lower bound
(``nearest``) are scored exactly from the int8 rows. ``pairs`` is exact whatever the subspace
captures (near-duplicates sit far above the bulk of similarities, so few rows pass). ``nearest``
is exact when at most ``RESCORE`` rows pass; in a dense collection more do, and then the
``RESCORE`` rows with the best upper bounds are rescored (recall measured, docs/benchmarks.md).
The projection is fitted on at most ``FIT_ROWS`` rows (second moment, ``eigh``); small
collections skip it and score every row exactly.

``cached_index`` keeps one index per (catalogue, model) in memory and rebuilds it when the
catalogue's ``embeddings_version`` counter moved (every insert, update or delete bumps it).
Measured in docs/benchmarks.md (benchmarks/similar.py).
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from ..errors import NoEmbeddingsError

PROJECTED_DIMS = 128
FIT_ROWS = 20_000
EXACT_BELOW = 4_096  # fewer rows than this: no projection, every score exact at once
BLOCK = 4_096  # rows per side of one all-pairs tile: 64 MB of float32 scores
# "similar" rescores at most this many rows exactly. When the bound admits more (a dense
# collection: typical photos are all at cosine 0.3-0.5 of each other), the rows with the best
# projected upper bounds are rescored: recall@12 against brute force is measured in
# benchmarks/similar.py (docs/benchmarks.md).
RESCORE = 4_096
_EPS = 1e-4  # float32 rounding in the bounds
# ``linked`` keeps the all-pairs answer of an index for the next call (the gallery's duplicates
# review asks again after every click) while it holds at most this many pairs: 16 bytes a pair.
LINKED_KEPT = 2_000_000


@dataclass
class VectorIndex:
    ids: np.ndarray  # (n,) catalogue photo ids
    rows: np.ndarray  # (n, d) int8, as stored
    inv_norms: np.ndarray  # (n,) float32: rows * inv_norms are unit vectors
    basis: np.ndarray | None  # (d, k) float32 orthonormal columns, or None: exact only
    proj: np.ndarray  # (n, k) float32 (n, d with no basis)
    resid: np.ndarray  # (n,) float32 length of what the projection misses (0 with no basis)
    _linked: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    _linking: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def build(cls, ids: np.ndarray, rows: np.ndarray, dims: int = PROJECTED_DIMS) -> VectorIndex:
        rows = np.ascontiguousarray(rows, dtype=np.int8)
        n, d = rows.shape
        inv = np.zeros(n, np.float32)
        for i in range(0, n, BLOCK):
            block = rows[i : i + BLOCK].astype(np.float32)
            norms = np.sqrt(np.einsum("ij,ij->i", block, block))
            inv[i : i + BLOCK] = np.where(norms > 0, 1.0 / np.maximum(norms, 1e-12), 0.0)
        if n < EXACT_BELOW or dims >= d:
            proj = rows.astype(np.float32) * inv[:, None]
            return cls(np.asarray(ids, np.int64), rows, inv, None, proj, np.zeros(n, np.float32))
        step = max(1, n // FIT_ROWS)
        sample = rows[::step].astype(np.float32) * inv[::step, None]
        _, vecs = np.linalg.eigh(sample.T @ sample)
        basis = np.ascontiguousarray(vecs[:, ::-1][:, :dims], dtype=np.float32)
        proj = np.empty((n, dims), np.float32)
        for i in range(0, n, BLOCK):
            proj[i : i + BLOCK] = (rows[i : i + BLOCK].astype(np.float32) * inv[i : i + BLOCK, None]) @ basis
        resid = np.sqrt(np.maximum(0.0, 1.0 - np.einsum("ij,ij->i", proj, proj))).astype(np.float32)
        return cls(np.asarray(ids, np.int64), rows, inv, basis, proj, resid)

    def __len__(self) -> int:
        return len(self.ids)

    def unit(self, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx`` as float32 unit vectors."""
        return self.rows[idx].astype(np.float32) * self.inv_norms[idx, None]

    def position(self, photo_id: int) -> int | None:
        hit = np.flatnonzero(self.ids == photo_id)
        return int(hit[0]) if len(hit) else None

    def nearest(self, query: np.ndarray, n: int, exclude: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` rows most similar to the unit vector ``query`` (positions, cosines), best
        first; ``exclude`` (a position) is left out."""
        q = np.asarray(query, np.float32)
        if not len(self):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if self.basis is None:
            scores = self.proj @ q
            if exclude is not None:
                scores[exclude] = -np.inf
            cand = np.arange(len(self))
        else:
            qp = q @ self.basis
            rq = float(np.sqrt(max(0.0, 1.0 - float(qp @ qp))))
            approx = self.proj @ qp
            slack = self.resid * rq + _EPS
            lower = approx - slack
            if exclude is not None:
                lower[exclude] = -np.inf
            m = min(n, len(self) - (exclude is not None))
            if m <= 0:
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            tau = np.partition(lower, len(lower) - m)[len(lower) - m]
            upper = approx + slack
            if exclude is not None:
                upper[exclude] = -np.inf
            cand = np.flatnonzero(upper >= tau)
            if len(cand) > max(RESCORE, 8 * n):  # the bound lets too many through: best by projection
                keep = max(RESCORE, 8 * n)
                cand = np.argpartition(-upper, keep - 1)[:keep]
            scores = self.unit(cand) @ q
        if self.basis is None:
            order = np.argsort(-scores, kind="stable")[:n]
            order = order[np.isfinite(scores[order])]
            return order, np.clip(scores[order], 0.0, 1.0)
        order = np.argsort(-scores, kind="stable")[:n]
        return cand[order], np.clip(scores[order], 0.0, 1.0)

    def linked(self, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every pair at or above ``threshold`` as photo ids (a, b) and their cosines, computed
        once per index and threshold (the index itself is rebuilt when the catalogue changes);
        concurrent callers wait for one computation instead of each running it. An answer of
        more than ``LINKED_KEPT`` pairs is returned but not kept."""
        with self._linking:
            hit = self._linked.get(threshold)
            if hit is not None:
                return hit
            parts = [(self.ids[i], self.ids[j], s) for i, j, s in self.pairs(threshold)]
            found = (
                (
                    np.concatenate([p[0] for p in parts]),
                    np.concatenate([p[1] for p in parts]),
                    np.concatenate([p[2] for p in parts]),
                )
                if parts
                else (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
            )
            if len(found[0]) <= LINKED_KEPT:
                self._linked[threshold] = found
            return found

    def pairs(self, threshold: float, block: int = BLOCK) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Every pair of rows (i < j) with cosine >= ``threshold``, tile by tile: (i, j, cosine)
        arrays. Memory: one ``block`` x ``block`` tile of scores at a time."""
        n = len(self)
        for i0 in range(0, n, block):
            a = self.proj[i0 : i0 + block]
            for j0 in range(i0, n, block):
                s = a @ self.proj[j0 : j0 + block].T
                if self.basis is None:
                    hit = s >= threshold
                else:  # one scalar bound for the tile, then each pair's own
                    ra, rb = self.resid[i0 : i0 + block], self.resid[j0 : j0 + block]
                    hit = s >= threshold - float(ra.max()) * float(rb.max()) - _EPS
                if i0 == j0:
                    hit = np.triu(hit, 1)
                ii, jj = np.nonzero(hit)
                if self.basis is not None and len(ii):
                    keep = s[ii, jj] + ra[ii] * rb[jj] + _EPS >= threshold
                    ii, jj = ii[keep], jj[keep]
                if not len(ii):
                    continue
                ii, jj = ii + i0, jj + j0
                if self.basis is None:
                    exact = s[ii - i0, jj - j0]
                else:
                    exact = np.einsum("ij,ij->i", self.unit(ii), self.unit(jj))
                keep = exact >= threshold
                yield ii[keep], jj[keep], np.minimum(exact[keep], 1.0)


def catalogue_model(conn: sqlite3.Connection) -> str:
    """The tagger whose embeddings the catalogue holds most of: the space queries run in."""
    row = conn.execute(
        "SELECT model, count(*) AS n FROM embeddings GROUP BY model ORDER BY n DESC, model LIMIT 1"
    ).fetchone()
    if row is None:
        raise NoEmbeddingsError(
            "the catalogue has no embeddings yet: run `wanwu index` on your photo folders "
            "(photos indexed before get them with one pass each)"
        )
    return row[0]


def version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT n FROM embeddings_version").fetchone()[0])


def load_index(conn: sqlite3.Connection, model: str) -> VectorIndex:
    ids, rows = [], []
    for photo_id, blob in conn.execute(
        "SELECT photo_id, vector FROM embeddings WHERE model = ? ORDER BY photo_id", (model,)
    ):
        ids.append(photo_id)
        rows.append(np.frombuffer(blob, np.int8))
    if not rows:
        return VectorIndex.build(np.zeros(0, np.int64), np.zeros((0, 1), np.int8))
    return VectorIndex.build(np.array(ids, np.int64), np.stack(rows))


_cache: dict[tuple[str, str], tuple[int, VectorIndex]] = {}
_lock = threading.Lock()


def cached_index(conn: sqlite3.Connection, key: str, model: str) -> VectorIndex:
    """The index of ``model``'s embeddings in the catalogue ``key`` (its path), built once and
    rebuilt only when the catalogue's embeddings changed since."""
    now = version(conn)
    with _lock:
        hit = _cache.get((key, model))
        if hit is not None and hit[0] == now:
            return hit[1]
    built = load_index(conn, model)
    with _lock:
        _cache[(key, model)] = (now, built)
    return built
