"""Group face descriptors by person, in NumPy, without ever comparing all faces with all faces.

A new face joins the nearest known person when its distance (Euclidean, 128-d) to that
person's centroid (the mean of its faces) is at most ``MATCH_DISTANCE``. The others wait,
"unnamed"; they are compared with each other in batches of at most ``BATCH`` new faces plus
the latest ``POOL`` faces still waiting, and each group of two or more faces closer than
``PAIR_DISTANCE`` (linked pairwise) becomes a new person. Cost per batch: ``BATCH x persons``
plus ``(BATCH + POOL)^2`` distances, so time grows linearly with the number of faces and
memory stays bounded (``CHUNK`` rows of distances at a time).

Thresholds, measured on ../shared/faces (18 faces of 6 people, descriptors from
``FaceFinder``): same person 0.06-0.43 apart (the same photo at 240p-1080p: <= 0.14),
different people 0.71 and more. dlib's usual 0.6 sits in that gap; a centroid averages out a
face's noise, so a face is closer to its person's centroid than to that person's other faces,
and two single faces must be closer (0.5, as in dlib's own clustering example) to start a
person: single-link grouping chains, and a wrong new person is worse than a face left waiting.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

DIMENSIONS = 128
MATCH_DISTANCE = 0.6
PAIR_DISTANCE = 0.5
BATCH = 1000
POOL = 1000
CHUNK = 1024  # rows of a distance matrix held at once

BLOB_DTYPE = np.float16  # 256 bytes a face; distances change by < 0.001 (tests/faces/test_cluster.py)


def to_blob(descriptor: np.ndarray) -> bytes:
    """A descriptor as stored in the catalogue (float16, 256 bytes)."""
    return np.asarray(descriptor, dtype=BLOB_DTYPE).tobytes()


def from_blobs(blobs: Iterable[bytes]) -> np.ndarray:
    """Stored descriptors -> (n, 128) float32."""
    rows = [np.frombuffer(b, dtype=BLOB_DTYPE) for b in blobs]
    if not rows:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    return np.stack(rows).astype(np.float32)


def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def nearest(points: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each point, the index of its nearest centroid and the distance to it (chunked)."""
    n = len(points)
    index = np.full(n, -1, dtype=np.int64)
    distance = np.full(n, np.inf, dtype=np.float32)
    if n == 0 or len(centroids) == 0:
        return index, distance
    for start in range(0, n, CHUNK):
        d = _sq_distances(points[start : start + CHUNK], centroids)
        best = d.argmin(1)
        index[start : start + CHUNK] = best
        distance[start : start + CHUNK] = np.sqrt(d[np.arange(len(best)), best])
    return index, distance


def link(points: np.ndarray, threshold: float = PAIR_DISTANCE) -> np.ndarray:
    """Connected components of the points closer than ``threshold`` pairwise: a label per
    point (equal labels, same group). Quadratic: call it on a bounded batch."""
    n = len(points)
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    limit = threshold * threshold
    for start in range(0, n, CHUNK):
        d = _sq_distances(points[start : start + CHUNK], points)
        rows, cols = np.nonzero(d <= limit)
        for r, c in zip(rows + start, cols):
            if c > r:
                a, b = root(int(r)), root(int(c))
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return np.array([root(i) for i in range(n)])


def iou_with(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of ``box`` (4,) with each of ``boxes`` (K, 4), as left, top,
    right, bottom (any one unit); 0 where neither has an area."""
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = w * h
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes (left, top, width, height; any one unit)."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return float(iou_with(np.array([ax, ay, ax + aw, ay + ah]), np.array([[bx, by, bx + bw, by + bh]]))[0])
