""" "More like this" and duplicates over the catalogue's embeddings (``vectors.VectorIndex``).

- ``similar``: a photo's nearest photos by cosine similarity (0-1) of their embeddings; the
  photo may be catalogued (its stored embedding) or any file (embedded on the fly by the model
  that made the catalogue's embeddings).
- ``duplicates``: groups of **exact** copies (same sha256) and, apart from them, groups of
  **near**-duplicates (embeddings at cosine >= ``threshold``: resized, re-compressed, cropped,
  edited copies, bursts). A near group holds one photo per distinct content (the keeper of its
  exact group stands for its copies). Each group names a suggested keeper and why: the most
  pixels, then the sharpest, then the oldest. wanwu never deletes a photo.

``DEFAULT_THRESHOLD`` = 0.85, measured (benchmarks/similar_quality.py, docs/library.md): on
imagenet-100 with six edited copies of each photo, precision 1.000 and recall 0.98 of the
same-picture pairs with no group mixing two originals; distinct portraits of people in suits
reach 0.78, the closest distinct photos seen; at 0.88 recall falls to 0.94.
"""

from __future__ import annotations

import os
import sqlite3
from typing import TYPE_CHECKING, Any

from ..errors import PhotoNotEmbeddedError

if TYPE_CHECKING:  # NumPy and the index on first use: the CLI's parser reads the defaults below
    import numpy as np

    from .vectors import VectorIndex

DEFAULT_THRESHOLD = 0.85
DEFAULT_COUNT = 12
# Sharpness within 5% is a tie (then the oldest wins): re-encoding one picture moves it by a few
# percent, which says nothing about which copy a person would keep.
SHARPNESS_TIE = 0.05


def _rows(conn: sqlite3.Connection, ids: list[int]) -> dict[int, sqlite3.Row]:
    out: dict[int, sqlite3.Row] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
            "SELECT p.id, p.path, p.sha256, p.width, p.height, p.taken, p.mtime_ns, p.size, e.sharpness "
            f"FROM photos p LEFT JOIN embeddings e ON e.photo_id = p.id WHERE p.id IN ({marks})",
            chunk,
        ):
            out[row["id"]] = row
    return out


def _item(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "path": row["path"], "width": row["width"], "height": row["height"]}


def index_for(conn: sqlite3.Connection, key: str) -> tuple[str, VectorIndex]:
    """The catalogue's model and its (cached) index; ``NoEmbeddingsError`` when it has none."""
    from .vectors import cached_index, catalogue_model

    model = catalogue_model(conn)
    return model, cached_index(conn, key, model)


def embedded_photo_id(conn: sqlite3.Connection, path: str) -> int | None:
    """The id of the catalogued photo at ``path`` when it has an embedding, else None."""
    row = conn.execute(
        "SELECT p.id FROM photos p JOIN embeddings e ON e.photo_id = p.id WHERE p.path = ?", (path,)
    ).fetchone()
    return None if row is None else row[0]


def similar_to_id(conn: sqlite3.Connection, key: str, photo_id: int, count: int = DEFAULT_COUNT) -> list[dict]:
    """The ``count`` photos most like catalogued photo ``photo_id``; ``PhotoNotEmbeddedError``
    when it has no embedding of the catalogue's model."""
    import numpy as np

    model, index = index_for(conn, key)
    pos = index.position(photo_id)
    if pos is None:
        raise PhotoNotEmbeddedError(
            f"photo {photo_id} has no embedding of {model} (not in the catalogue, failed, or tagged by "
            "another model); run `wanwu index` on its folder"
        )
    return _answer(conn, index, index.unit(np.array([pos]))[0], count, pos)


def similar_to_vector(conn: sqlite3.Connection, key: str, vector: np.ndarray, count: int = DEFAULT_COUNT) -> list[dict]:
    _, index = index_for(conn, key)
    return _answer(conn, index, vector, count, None)


def _answer(conn, index: VectorIndex, q: np.ndarray, count: int, exclude: int | None) -> list[dict]:
    pos, sims = index.nearest(q, count, exclude)
    ids = [int(index.ids[p]) for p in pos]
    rows = _rows(conn, ids)
    return [{**_item(rows[i]), "similarity": round(float(s), 4)} for i, s in zip(ids, sims) if i in rows]


def embed_file(path: str, model: str) -> np.ndarray:
    """One file's embedding by the catalogue's model (``model/precision/weights`` tagger): a
    ``Classifier`` of that model and precision, checked to have the same weights."""
    from ..errors import ConfigError
    from ..pipeline import Classifier
    from .backend import tagger_name
    from .embeddings import pooled

    name, precision, _ = (model.split("/") + ["", ""])[:3]
    clf = Classifier(model=name, precision=precision or "fp32")
    if tagger_name(clf.model_name, precision, clf.weights.sha256) != model:
        raise ConfigError(f"the catalogue's embeddings come from {model}; its weights are not the ones installed")
    with open(path, "rb") as f:
        data = f.read()
    features = clf.runner.feature_map(data, os.path.basename(path))  # ImageInputError for a bad file
    return pooled(features[None])[0]


# --- duplicates ----------------------------------------------------------------------------
def _keeper(rows: list[sqlite3.Row]) -> tuple[sqlite3.Row, str]:
    """Most pixels, then sharpest, then oldest (date taken, else file time); and why."""

    def pixels(r) -> int:
        return (r["width"] or 0) * (r["height"] or 0)

    def sharp(r) -> float:
        return r["sharpness"] if r["sharpness"] is not None else -1.0

    def age(r) -> tuple:
        return (r["taken"] is None, r["taken"] or "", r["mtime_ns"], r["path"])

    most = max(pixels(r) for r in rows)
    top = [r for r in rows if pixels(r) == most]
    if len(top) == 1:
        return top[0], f"most pixels ({top[0]['width']}x{top[0]['height']})"
    best = max(sharp(r) for r in top)
    sharpest = [r for r in top if sharp(r) >= best - abs(best) * SHARPNESS_TIE]
    if len(sharpest) == 1:
        k = sharpest[0]
        return k, f"most pixels ({k['width']}x{k['height']}), then sharpest"
    k = min(sharpest, key=age)
    return k, f"same pixels and sharpness; oldest ({k['taken'] or 'file time'})"


def _group(kind: str, rows: list[sqlite3.Row], sims: dict[int, float] | None = None) -> dict:
    keeper, why = _keeper(rows)
    photos = []
    for r in sorted(rows, key=lambda r: (r["id"] != keeper["id"], r["path"])):
        item = {**_item(r), "sha256": r["sha256"], "taken": r["taken"], "sharpness": r["sharpness"]}
        if sims is not None:
            item["similarity"] = round(sims.get(r["id"], 1.0), 4)
        photos.append(item)
    return {"kind": kind, "keeper": keeper["id"], "reason": why, "photos": photos}


def duplicates(conn: sqlite3.Connection, key: str, threshold: float = DEFAULT_THRESHOLD) -> dict:
    """``{"exact": [group], "near": [group], "threshold": t}``; near groups need embeddings (none
    yet: only exact groups, ``near`` empty and ``embeddings`` false)."""
    from .vectors import NoEmbeddingsError

    exact_groups: list[dict] = []
    stand_in: dict[int, int] = {}  # photo id -> the keeper of its exact group
    shas = [
        r[0]
        for r in conn.execute(
            "SELECT sha256 FROM photos WHERE sha256 IS NOT NULL AND error_code IS NULL "
            "GROUP BY sha256 HAVING count(*) > 1"
        )
    ]
    for sha in shas:
        ids = [r[0] for r in conn.execute("SELECT id FROM photos WHERE sha256 = ? AND error_code IS NULL", (sha,))]
        rows = list(_rows(conn, ids).values())
        group = _group("exact", rows)
        exact_groups.append(group)
        for i in ids:
            stand_in[i] = group["keeper"]
    try:
        _, index = index_for(conn, key)
    except NoEmbeddingsError:
        return {"threshold": threshold, "embeddings": False, "exact": exact_groups, "near": []}
    parent: dict[int, int] = {}

    def find(a: int) -> int:
        parent.setdefault(a, a)
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    best: dict[int, float] = {}
    first, second, sims = index.linked(threshold)
    for i, j, s in zip(first.tolist(), second.tolist(), sims.tolist()):
        a, b = stand_in.get(i, i), stand_in.get(j, j)
        if a == b:
            continue  # exact copies: their own group
        parent[find(a)] = find(b)
        best[a] = max(best.get(a, 0.0), s)
        best[b] = max(best.get(b, 0.0), s)
    members: dict[int, list[int]] = {}
    for a in parent:
        members.setdefault(find(a), []).append(a)
    near = []
    for ids in members.values():
        rows = list(_rows(conn, ids).values())
        if len(rows) > 1:
            near.append(_group("near", rows, best))
    near.sort(key=lambda g: (-len(g["photos"]), g["photos"][0]["path"]))
    exact_groups.sort(key=lambda g: (-len(g["photos"]), g["photos"][0]["path"]))
    return {"threshold": threshold, "embeddings": True, "exact": exact_groups, "near": near}
