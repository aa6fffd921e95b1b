"""Read the catalogue: find photos by what is in them, show one photo with its tags, count
groups for facets. A query names classes or groups in English or Chinese, by synonym or wnid
(``wanwu.labels``); photos rank by their best matching tag's score. User-added tags match too
(by class, or a free keyword containing the query), and a tag the user removed never matches.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass
from typing import Iterator

from ..labels import LabelGroup
from . import names

DEFAULT_MIN_SCORE = 0.1  # tags below this are stored but not shown or matched (--min-score)
STREAM_CHUNK = 1000  # photos read at a time when search lists every match (limit=None)


@dataclass
class SearchPage:
    query: str
    total: int
    items: list[dict] | Iterator[dict]  # an iterator when every match was asked for (limit=None)
    wnids: tuple[str, ...]


def _tags(conn: sqlite3.Connection, photo_ids: list[int], lang: str, min_score: float) -> dict[int, list[dict]]:
    """Visible tags per photo: the model's above ``min_score`` not removed by the user, best
    first, then the user's own (``score`` None, ``user`` true)."""
    out: dict[int, list[dict]] = {i: [] for i in photo_ids}
    if not photo_ids:
        return out
    marks = ",".join("?" * len(photo_ids))
    removed = {
        (r[0], r[1])
        for r in conn.execute(
            f"SELECT photo_id, wnid FROM user_tags WHERE removed = 1 AND wnid IS NOT NULL AND photo_id IN ({marks})",
            photo_ids,
        )
    }
    removed_names = {
        (r[0], r[1].lower())
        for r in conn.execute(
            f"SELECT photo_id, name FROM user_tags WHERE removed = 1 AND photo_id IN ({marks})", photo_ids
        )
    }
    for pid, wnid, score in conn.execute(
        f"SELECT photo_id, wnid, score FROM tags WHERE photo_id IN ({marks}) AND score >= ? ORDER BY photo_id, rank",
        [*photo_ids, min_score],
    ):
        if (pid, wnid) in removed:
            continue
        label = names.label(wnid, lang)
        if (pid, label.lower()) in removed_names:
            continue
        out[pid].append({"wnid": wnid, "label": label, "score": round(score, 6)})
    for pid, name, wnid in conn.execute(
        f"SELECT photo_id, name, wnid FROM user_tags WHERE removed = 0 AND photo_id IN ({marks}) ORDER BY name",
        photo_ids,
    ):
        if any(t["wnid"] == wnid and wnid for t in out[pid]):
            continue
        out[pid].append({"wnid": wnid, "label": names.label(wnid, lang) if wnid else name, "score": None, "user": True})
    return out


def _photo_dict(row: sqlite3.Row, tags: list[dict]) -> dict:
    return {
        "id": row["id"],
        "path": row["path"],
        "width": row["width"],
        "height": row["height"],
        "taken": row["taken"],
        "camera": row["camera"],
        "tags": tags,
    }


def photos_by_id(
    conn: sqlite3.Connection, ids: list[int], lang: str = "en", min_score: float = DEFAULT_MIN_SCORE
) -> list[dict]:
    """Photos (with tags) in the order of ``ids``; unknown ids are left out."""
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    rows = {r["id"]: r for r in conn.execute(f"SELECT * FROM photos WHERE id IN ({marks})", ids)}
    tags = _tags(conn, [i for i in ids if i in rows], lang, min_score)
    return [_photo_dict(rows[i], tags[i]) for i in ids if i in rows]


def photo(
    conn: sqlite3.Connection, photo_id: int, lang: str = "en", min_score: float = DEFAULT_MIN_SCORE
) -> dict | None:
    found = photos_by_id(conn, [photo_id], lang, min_score)
    if not found:
        return None
    row = conn.execute("SELECT size, tagger, error, error_code FROM photos WHERE id = ?", (photo_id,)).fetchone()
    found[0].update(size=row["size"], tagger=row["tagger"], error=row["error"])
    return found[0]


def photo_path(conn: sqlite3.Connection, photo_id: int) -> str | None:
    row = conn.execute("SELECT path FROM photos WHERE id = ?", (photo_id,)).fetchone()
    return row["path"] if row else None


def search(
    conn: sqlite3.Connection,
    query: str,
    *,
    lang: str = "en",
    min_score: float = DEFAULT_MIN_SCORE,
    limit: int | None = 50,
    offset: int = 0,
) -> SearchPage:
    """Photos whose visible tags match ``query``, best score first. An empty query lists every
    photo that was classified (newest index first). ``limit=None``: every match from ``offset``
    on, as an iterator that reads ``STREAM_CHUNK`` photos at a time (memory stays flat)."""
    query = query.strip()
    if not query:
        total = conn.execute("SELECT count(*) FROM photos WHERE error_code IS NULL").fetchone()[0]
        ids = conn.execute(
            "SELECT id FROM photos WHERE error_code IS NULL ORDER BY taken DESC, path LIMIT ? OFFSET ?",
            (-1 if limit is None else limit, offset),  # SQLite: a negative LIMIT is none
        )
        return SearchPage(query, total, _items(conn, ids, lang, min_score, limit), ())
    wnids = names.find_wnids(query)
    marks = ",".join("?" * len(wnids)) or "NULL"
    hits = f"""
        SELECT t.photo_id AS pid, t.score AS score FROM tags t
         WHERE t.wnid IN ({marks}) AND t.score >= ?
           AND NOT EXISTS (SELECT 1 FROM user_tags u WHERE u.photo_id = t.photo_id AND u.removed = 1
                           AND u.wnid = t.wnid)
        UNION ALL
        SELECT u.photo_id, 1.0 FROM user_tags u
         WHERE u.removed = 0 AND (u.wnid IN ({marks}) OR instr(lower(u.name), lower(?)) > 0)
    """
    args = [*wnids, min_score, *wnids, query]
    total = conn.execute(f"SELECT count(DISTINCT pid) FROM ({hits})", args).fetchone()[0]
    ids = conn.execute(
        f"SELECT pid, max(score) AS best FROM ({hits}) GROUP BY pid ORDER BY best DESC, pid LIMIT ? OFFSET ?",
        [*args, -1 if limit is None else limit, offset],
    )
    return SearchPage(query, total, _items(conn, ids, lang, min_score, limit), wnids)


def _items(
    conn: sqlite3.Connection, ids: sqlite3.Cursor, lang: str, min_score: float, limit: int | None
) -> list[dict] | Iterator[dict]:
    """The photos of the ids ``ids`` yields (first column): a list, or with ``limit=None`` an
    iterator over them ``STREAM_CHUNK`` at a time, from the one query (no OFFSET re-runs)."""
    if limit is not None:
        return photos_by_id(conn, [r[0] for r in ids], lang, min_score)

    def stream() -> Iterator[dict]:
        while chunk := ids.fetchmany(STREAM_CHUNK):
            yield from photos_by_id(conn, [r[0] for r in chunk], lang, min_score)

    return stream()


def label_counts(conn: sqlite3.Connection, min_score: float = DEFAULT_MIN_SCORE) -> Counter:
    """wnid -> number of photos whose best tag it is (above ``min_score``, not removed by the user)."""
    return Counter(
        {
            r[0]: r[1]
            for r in conn.execute(
                "SELECT t.wnid, count(*) FROM tags t WHERE t.rank = 0 AND t.score >= ? AND NOT EXISTS (SELECT 1 FROM "
                "user_tags u WHERE u.photo_id = t.photo_id AND u.wnid = t.wnid AND u.removed = 1) GROUP BY t.wnid",
                (min_score,),
            )
        }
    )


def group_counts(
    conn: sqlite3.Connection, lang: str = "en", min_score: float = DEFAULT_MIN_SCORE, top: int = 12
) -> list[dict]:
    """The groups with most photos (by best tag), for facets: ``[{key, label, count}]``."""
    counts: Counter = Counter()
    meta: dict[str, LabelGroup] = {}
    for wnid, n in label_counts(conn, min_score).items():
        for g in names.groups(wnid):
            counts[g.key] += n
            meta[g.key] = g
    return [{"key": k, "label": names.group_label(meta[k], lang), "count": n} for k, n in counts.most_common(top)]
