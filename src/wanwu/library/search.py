"""Read the catalogue: find photos by what is in them, show one photo with its tags, count
groups for facets. A photo's model tag is what ``wanwu.tag_policy`` decides from its stored
top-k (a class, a label group, or nothing), at ``confidence`` (None: calibrated for the model
that tagged it); the raw top-k is never shown here. A query names classes or groups in English
or Chinese, by synonym or wnid (``wanwu.labels``); a tag matches when every class it stands for
is named ("dog" finds a photo tagged "retriever"); photos rank by their matching tag's score.
User-added tags match too (by class, or a free keyword containing the query), and so do the
keywords other apps wrote (``keywords``: a keyword or its hierarchy containing the query); a tag
the user removed never matches; so do a named person's name and, for "people"/"人物", every photo
with faces (``people``).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass
from itertools import islice
from typing import Iterator

from ..labels import LabelGroup, resolve_group
from ..tag_policy import Tag, policy_for_tagger
from . import names
from .people import matching_sql, people_tags

STREAM_CHUNK = 1000  # photos read at a time when search lists every match (limit=None)


@dataclass
class SearchPage:
    query: str
    total: int
    items: list[dict] | Iterator[dict]  # an iterator when every match was asked for (limit=None)
    wnids: tuple[str, ...]


def _removed(conn: sqlite3.Connection, photo_ids: list[int]) -> tuple[set, set]:
    """(photo_id, wnid) and (photo_id, lower-case name) pairs the user removed."""
    marks = ",".join("?" * len(photo_ids))
    by_wnid, by_name = set(), set()
    for pid, wnid, name in conn.execute(
        f"SELECT photo_id, wnid, name FROM user_tags WHERE removed = 1 AND photo_id IN ({marks})", photo_ids
    ):
        by_name.add((pid, name.lower()))
        if wnid is not None:
            by_wnid.add((pid, wnid))
    return by_wnid, by_name


def _decide(
    pid: int, tagger: str | None, scores: list, confidence: float | None, removed: set, faces_found: bool
) -> Tag | None:
    """The policy's tag of one photo; classes the user removed are not it, so they count for nothing.
    On a photo with faces (``photos.faces`` > 0) a sensitive class is never a tag (issue 27)."""
    kept = [(w, p) for w, p in scores if (pid, w) not in removed]
    return policy_for_tagger(tagger, confidence).decide(kept, faces_found=faces_found)


def _model_tags(conn: sqlite3.Connection, photo_ids: list[int], confidence: float | None) -> dict[int, Tag | None]:
    out: dict[int, Tag | None] = dict.fromkeys(photo_ids)
    if not photo_ids:
        return out
    marks = ",".join("?" * len(photo_ids))
    removed, _ = _removed(conn, photo_ids)
    rows: dict[int, tuple[str | None, list]] = {}
    with_faces = {r[0] for r in conn.execute(f"SELECT id FROM photos WHERE faces > 0 AND id IN ({marks})", photo_ids)}
    for pid, tagger, wnid, score in conn.execute(
        f"SELECT t.photo_id, p.tagger, t.wnid, t.score FROM tags t JOIN photos p ON p.id = t.photo_id "
        f"WHERE t.photo_id IN ({marks}) ORDER BY t.photo_id, t.rank",
        photo_ids,
    ):
        rows.setdefault(pid, (tagger, []))[1].append((wnid, score))
    for pid, (tagger, scores) in rows.items():
        out[pid] = _decide(pid, tagger, scores, confidence, removed, pid in with_faces)
    return out


def _tags(conn: sqlite3.Connection, photo_ids: list[int], lang: str, confidence: float | None) -> dict[int, list[dict]]:
    """Visible tags per photo: the policy's tag (a class or a group, ``wnid`` or ``group`` set)
    unless the user removed it, then the user's own (``score`` None, ``user`` true)."""
    out: dict[int, list[dict]] = {i: [] for i in photo_ids}
    if not photo_ids:
        return out
    marks = ",".join("?" * len(photo_ids))
    _, removed_names = _removed(conn, photo_ids)
    for pid, tag in _model_tags(conn, photo_ids, confidence).items():
        if tag is None or (pid, tag.label(lang).lower()) in removed_names:
            continue
        out[pid].append(
            {
                "wnid": tag.wnid,
                "group": tag.group.key if tag.group else None,
                "label": tag.label(lang),
                "score": round(tag.score, 6),
            }
        )
    for pid, name, wnid in conn.execute(
        f"SELECT photo_id, name, wnid FROM user_tags WHERE removed = 0 AND photo_id IN ({marks}) ORDER BY name",
        photo_ids,
    ):
        if any(t["wnid"] == wnid and wnid for t in out[pid]):
            continue
        out[pid].append({"wnid": wnid, "label": names.label(wnid, lang) if wnid else name, "score": None, "user": True})
    for pid, kw in keyword_tags(conn, photo_ids):  # other apps' keywords: the user's too
        if not any(t["label"].lower() == kw["label"].lower() for t in out[pid]):
            out[pid].append(kw)
    for pid, extra in people_tags(conn, photo_ids, lang).items():  # named persons first; "people" last
        out[pid] = [t for t in extra if t.get("person")] + out[pid] + [t for t in extra if not t.get("person")]
    return out


def keyword_tags(conn: sqlite3.Connection, photo_ids: list[int]) -> Iterator[tuple[int, dict]]:
    """The keywords other apps wrote (``keywords``: sidecars, the photo's own XMP/IPTC) as
    visible tags: the user's (``user`` true, ``score`` None), with their ``source`` and, for a
    hierarchy's leaf, its ``hierarchy`` (``Places|China|北京``). Never written back as wanwu's."""
    marks = ",".join("?" * len(photo_ids))
    for pid, name, path, source in conn.execute(
        f"SELECT photo_id, name, path, source FROM keywords WHERE photo_id IN ({marks}) ORDER BY source DESC, name",
        photo_ids,
    ):
        yield pid, {"wnid": None, "label": name, "score": None, "user": True, "source": source, "hierarchy": path}


def members(tag: dict) -> tuple[str, ...]:
    """The classes a visible tag stands for: its class, or every class of its group."""
    if tag.get("group"):
        return resolve_group(tag["group"]).wnids
    return (tag["wnid"],) if tag.get("wnid") else ()


def _photo_dict(row: sqlite3.Row, tags: list[dict]) -> dict:
    return {
        "id": row["id"],
        "path": row["path"],
        "width": row["width"],
        "height": row["height"],
        "taken": row["taken"],
        "camera": row["camera"],
        "latitude": row["latitude"],
        "longitude": row["longitude"],
        "tags": tags,
    }


def photos_by_id(
    conn: sqlite3.Connection, ids: list[int], lang: str = "en", confidence: float | None = None
) -> list[dict]:
    """Photos (with tags) in the order of ``ids``; unknown ids are left out."""
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    rows = {r["id"]: r for r in conn.execute(f"SELECT * FROM photos WHERE id IN ({marks})", ids)}
    tags = _tags(conn, [i for i in ids if i in rows], lang, confidence)
    return [_photo_dict(rows[i], tags[i]) for i in ids if i in rows]


def photo(conn: sqlite3.Connection, photo_id: int, lang: str = "en", confidence: float | None = None) -> dict | None:
    found = photos_by_id(conn, [photo_id], lang, confidence)
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
    confidence: float | None = None,
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
        return SearchPage(query, total, _items(conn, (r[0] for r in ids), lang, confidence, limit), ())
    wnids = names.find_wnids(query)
    wanted = set(wnids)
    marks = ",".join("?" * len(wnids)) or "NULL"
    best: dict[int, float] = {}
    # a photo can only be tagged with a class or group of the query if one of them is in its top-k
    candidates = [r[0] for r in conn.execute(f"SELECT DISTINCT photo_id FROM tags WHERE wnid IN ({marks})", wnids)]
    for start in range(0, len(candidates), 500):
        chunk = candidates[start : start + 500]
        for pid, tags in _tags(conn, chunk, lang, confidence).items():
            for t in tags:
                if not t.get("user") and members(t) and set(members(t)) <= wanted:
                    best[pid] = max(best.get(pid, 0.0), t["score"])
    people_sql, people_args = matching_sql(query, wnids)  # named persons; every photo with faces for "people"
    for pid, _score in conn.execute(
        f"SELECT photo_id, 1.0 FROM user_tags WHERE removed = 0 AND (wnid IN ({marks}) OR instr(lower(name), lower(?)) > 0)"
        " UNION ALL SELECT photo_id, 1.0 FROM keywords WHERE instr(lower(name), lower(?)) > 0"
        " OR instr(lower(coalesce(path, '')), lower(?)) > 0"
        f" UNION ALL {people_sql}",
        [*wnids, query, query, query, *people_args],
    ):
        best[pid] = 1.0
    ranked = sorted(best, key=lambda pid: (-best[pid], pid))
    page = ranked[offset:] if limit is None else ranked[offset : offset + limit]
    return SearchPage(query, len(ranked), _items(conn, iter(page), lang, confidence, limit), wnids)


def _items(
    conn: sqlite3.Connection, ids: Iterator[int], lang: str, confidence: float | None, limit: int | None
) -> list[dict] | Iterator[dict]:
    """The photos of ``ids``: a list, or with ``limit=None`` an iterator over them
    ``STREAM_CHUNK`` at a time (every match of a broad query is never held at once)."""
    if limit is not None:
        return photos_by_id(conn, list(ids), lang, confidence)

    def stream() -> Iterator[dict]:
        while chunk := list(islice(ids, STREAM_CHUNK)):
            yield from photos_by_id(conn, chunk, lang, confidence)

    return stream()


def headline_tags(conn: sqlite3.Connection, confidence: float | None = None) -> Iterator[Tag]:
    """Every photo's model tag (the policy's, user removals applied), a page of photos at a time."""
    last = 0
    while True:
        ids = [r[0] for r in conn.execute("SELECT id FROM photos WHERE id > ? ORDER BY id LIMIT 500", (last,))]
        if not ids:
            return
        yield from (t for t in _model_tags(conn, ids, confidence).values() if t is not None)
        last = ids[-1]


def label_counts(conn: sqlite3.Connection, confidence: float | None = None) -> Counter:
    """wnid -> number of photos whose tag is that class (groups are counted by ``group_counts``)."""
    return Counter(t.wnid for t in headline_tags(conn, confidence) if t.wnid)


def group_counts(
    conn: sqlite3.Connection, lang: str = "en", confidence: float | None = None, top: int = 12
) -> list[dict]:
    """The groups with most photos (tagged with the group, a narrower one or one of its classes),
    for facets: ``[{key, label, count}]``."""
    counts: Counter = Counter()
    meta: dict[str, LabelGroup] = {}
    for tag in headline_tags(conn, confidence):
        for g in ((tag.group,) if tag.group else ()) + tag.groups:
            counts[g.key] += 1
            meta[g.key] = g
    return [{"key": k, "label": names.group_label(meta[k], lang), "count": n} for k, n in counts.most_common(top)]
