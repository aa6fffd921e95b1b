"""People in the catalogue: the faces found in each photo, the persons they are grouped into,
and what the user says about them (a name, two persons that are one, a face or person to
forget). The faces' finding is ``wanwu.faces``; this module only reads and writes the tables
``faces`` and ``persons`` and the count ``photos.faces`` (docs/library.md).

- ``replace_faces``: a photo's faces as just found (the indexer, in its transaction). A new face
  where the photo had one before keeps that face's person, and one where a forgotten face was
  stays forgotten;
- ``find_missing_faces``: photos never looked at for faces (indexed before the extra was
  installed, copies, ``--ray``) are decoded once more, without the classifier;
- ``cluster_new_faces``: faces not yet compared join persons or make new ones
  (``wanwu.faces.cluster``: linear in the number of faces);
- ``persons``, ``name``, ``merge``, ``forget``, ``forget_all``: ``wanwu people``;
- ``people_tags``, ``matching_sql``: what search shows and finds (the "people / 人物" tag on
  every photo with faces, and each named person's name).

What is stored: a box, five landmarks and a 128-number descriptor per face, in the catalogue
file only. ``forget`` drops the descriptors it concerns; ``forget_all`` drops every face and
person (the face counts stay: they say only that a photo has faces).
"""

from __future__ import annotations

import sqlite3
import unicodedata
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from ..errors import PersonNameError, PersonNameTakenError, PersonNotFoundError
from ..faces import cluster
from .catalogue import transaction

if TYPE_CHECKING:
    from ..faces.detect import Face, FaceFinder

PEOPLE_LABEL = {"en": "people", "zh": "人物"}  # the tag of a photo with faces
# a query for these finds every photo with faces (besides the ImageNet classes of people)
PEOPLE_WORDS = frozenset({"people", "person", "persons", "face", "faces", "人物", "人", "人脸", "脸"})
SAME_FACE_IOU = 0.5  # a face found again where one was (re-indexing): the same face
MAX_NAME = 100  # characters in a person's name (the CLI and the API)


# --- faces of a photo ---------------------------------------------------------------------
def replace_faces(conn: sqlite3.Connection, photo_id: int, faces: Sequence[Face]) -> None:
    """Store ``faces`` as the photo's faces (inside the caller's transaction)."""
    old = conn.execute(
        "SELECT id, x, y, w, h, person_id, forgotten FROM faces WHERE photo_id = ?", (photo_id,)
    ).fetchall()
    rows = []
    for face in faces:
        twin = max(old, key=lambda r: cluster.iou(face.box, (r["x"], r["y"], r["w"], r["h"])), default=None)
        if twin is not None and cluster.iou(face.box, (twin["x"], twin["y"], twin["w"], twin["h"])) < SAME_FACE_IOU:
            twin = None
        if twin is not None and twin["forgotten"]:
            continue  # forgotten stays forgotten: its row is kept below
        person = twin["person_id"] if twin is not None else None
        rows.append(
            (
                photo_id,
                *face.box,
                np.asarray(face.landmarks, dtype=np.float32).tobytes(),
                cluster.to_blob(face.descriptor),
                person,
                int(person is not None),
            )
        )
    conn.execute("DELETE FROM faces WHERE photo_id = ? AND forgotten = 0", (photo_id,))
    conn.executemany(
        "INSERT INTO faces (photo_id, x, y, w, h, landmarks, descriptor, person_id, clustered) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute("UPDATE photos SET faces = ? WHERE id = ?", (len(faces), photo_id))


def photos_without_faces(conn: sqlite3.Connection, roots: Sequence[str] = ()) -> list[tuple[int, str]]:
    """Photos classified but never looked at for faces, under ``roots`` (folders or files;
    none: everywhere): (id, path)."""
    import os

    wanted = [os.path.abspath(os.path.expanduser(r)) for r in roots]
    prefixes = tuple(p.rstrip(os.sep) + os.sep for p in wanted)
    return [
        (r[0], r[1])
        for r in conn.execute("SELECT id, path FROM photos WHERE faces IS NULL AND error_code IS NULL ORDER BY id")
        if not wanted or r[1] in wanted or r[1].startswith(prefixes)
    ]


def find_missing_faces(
    conn: sqlite3.Connection,
    finder: FaceFinder,
    todo: Sequence[tuple[int, str]],
    *,
    advance: Callable[[], None] = lambda: None,
    stopping: Callable[[], bool] = lambda: False,
    commit_every: int = 32,
) -> list[tuple[str, str]]:
    """Decode each photo of ``todo`` and store its faces; returns (path, reason) of the ones
    that could not be read (they keep ``faces`` NULL and are tried again next time)."""
    from ..errors import ImageInputError
    from ..imaging import load_image

    failures: list[tuple[str, str]] = []
    pending = 0
    try:
        for photo_id, path in todo:
            if stopping():
                break
            try:
                image = load_image(path, draft_size=finder.work_side).image
                found = finder.find(image)
            except (ImageInputError, OSError) as exc:
                failures.append((path, getattr(exc, "message", None) or str(exc)))
                advance()
                continue
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")
            replace_faces(conn, photo_id, found)
            pending += 1
            if pending >= commit_every:
                conn.execute("COMMIT")
                pending = 0
            advance()
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
    return failures


# --- clustering ---------------------------------------------------------------------------
class _Persons:
    """Every person's centroid in memory (persons x 128 float32: 5 MB for 10,000 persons)."""

    def __init__(self, conn: sqlite3.Connection):
        rows = conn.execute("SELECT id, centroid, forgotten FROM persons WHERE centroid IS NOT NULL").fetchall()
        counts = dict(
            conn.execute(
                "SELECT person_id, count(*) FROM faces WHERE person_id IS NOT NULL AND forgotten = 0 GROUP BY person_id"
            ).fetchall()
        )
        self.ids = [r["id"] for r in rows]
        self.forgotten = [bool(r["forgotten"]) for r in rows]
        self.counts = [counts.get(r["id"], 0) for r in rows]
        self.centroids = (
            np.stack([np.frombuffer(r["centroid"], dtype=np.float32) for r in rows])
            if rows
            else np.zeros((0, cluster.DIMENSIONS), dtype=np.float32)
        )

    def add(self, person_id: int, centroid: np.ndarray, count: int) -> None:
        self.ids.append(person_id)
        self.forgotten.append(False)
        self.counts.append(count)
        self.centroids = np.vstack([self.centroids, centroid[None].astype(np.float32)])

    def join(self, index: int, descriptors: np.ndarray) -> None:
        n = self.counts[index]
        self.centroids[index] = (self.centroids[index] * n + descriptors.sum(0)) / (n + len(descriptors))
        self.counts[index] = n + len(descriptors)


def cluster_new_faces(conn: sqlite3.Connection, *, batch: int = cluster.BATCH, pool: int = cluster.POOL) -> int:
    """Compare the faces not yet compared with the persons, in batches; returns how many new
    persons were made. Each batch is one transaction."""
    persons = _Persons(conn)
    made = 0
    while True:
        rows = conn.execute(
            "SELECT id, descriptor FROM faces WHERE clustered = 0 AND forgotten = 0 AND descriptor IS NOT NULL "
            "ORDER BY id LIMIT ?",
            (batch,),
        ).fetchall()
        if not rows:
            return made
        ids = [r["id"] for r in rows]
        points = cluster.from_blobs(r["descriptor"] for r in rows)
        conn.execute("BEGIN IMMEDIATE")
        try:
            index, distance = cluster.nearest(points, persons.centroids)
            close = distance <= cluster.MATCH_DISTANCE
            changed: set[int] = set()
            for k in np.unique(index[close]):
                members = np.nonzero(close & (index == k))[0]
                pid = persons.ids[k]
                if persons.forgotten[k]:  # a forgotten person's face is forgotten too
                    conn.executemany(
                        "UPDATE faces SET forgotten = 1, descriptor = NULL, landmarks = NULL, person_id = ?, "
                        "clustered = 1 WHERE id = ?",
                        [(pid, ids[m]) for m in members],
                    )
                    continue
                persons.join(int(k), points[members])
                changed.add(int(k))
                conn.executemany(
                    "UPDATE faces SET person_id = ?, clustered = 1 WHERE id = ?", [(pid, ids[m]) for m in members]
                )
            waiting = np.nonzero(~close)[0]
            made += _group_waiting(conn, persons, [ids[m] for m in waiting], points[waiting], pool, changed)
            conn.executemany(
                "UPDATE persons SET centroid = ? WHERE id = ?",
                [(persons.centroids[k].astype(np.float32).tobytes(), persons.ids[k]) for k in changed],
            )
            conn.executemany("UPDATE faces SET clustered = 1 WHERE id = ?", [(i,) for i in ids])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _group_waiting(
    conn: sqlite3.Connection, persons: _Persons, ids: list[int], points: np.ndarray, pool: int, changed: set[int]
) -> int:
    """New faces that joined nobody, with the latest ``pool`` faces still waiting: each linked
    group of two or more with a new face among them becomes a person."""
    if not ids:
        return 0
    old = conn.execute(
        "SELECT id, descriptor FROM faces WHERE clustered = 1 AND person_id IS NULL AND forgotten = 0 "
        "AND descriptor IS NOT NULL ORDER BY id DESC LIMIT ?",
        (pool,),
    ).fetchall()
    all_ids = ids + [r["id"] for r in old]
    all_points = np.vstack([points, cluster.from_blobs(r["descriptor"] for r in old)])
    labels = cluster.link(all_points, cluster.PAIR_DISTANCE)
    made = 0
    for label in np.unique(labels[: len(ids)]):
        members = np.nonzero(labels == label)[0]
        if len(members) < 2:
            continue
        centroid = all_points[members].mean(0)
        pid = conn.execute(
            "INSERT INTO persons (centroid) VALUES (?) RETURNING id", (centroid.astype(np.float32).tobytes(),)
        ).fetchone()[0]
        conn.executemany(
            "UPDATE faces SET person_id = ?, clustered = 1 WHERE id = ?", [(pid, all_ids[m]) for m in members]
        )
        persons.add(pid, centroid, len(members))
        made += 1
    return made


# --- what the user sees and says ----------------------------------------------------------
_SUMMARY = (
    "SELECT p.id, p.name, count(f.id) AS n, count(DISTINCT f.photo_id) AS photos FROM persons p "
    "JOIN faces f ON f.person_id = p.id AND f.forgotten = 0 WHERE p.forgotten = 0 {where}"
    "GROUP BY p.id ORDER BY p.name IS NULL, n DESC, p.id"
)


def _summary(conn: sqlite3.Connection, r: sqlite3.Row) -> dict:
    sample = conn.execute(
        "SELECT f.id, ph.path FROM faces f JOIN photos ph ON ph.id = f.photo_id WHERE f.person_id = ? "
        "AND f.forgotten = 0 ORDER BY f.w * f.h DESC LIMIT 1",
        (r["id"],),
    ).fetchone()
    return {
        "id": r["id"],
        "name": r["name"],
        "faces": r["n"],
        "photos": r["photos"],
        "sample": sample[1],
        "sample_face": sample[0],
    }


def persons(conn: sqlite3.Connection) -> list[dict]:
    """Every person (not forgotten) with faces: ``{id, name, faces, photos, sample,
    sample_face}`` (sample: the photo of its largest face, sample_face: that face's id), named
    first, then by number of faces. Faces that belong to nobody yet are counted as one entry
    with ``id`` None ("unnamed")."""
    out = [_summary(conn, r) for r in conn.execute(_SUMMARY.format(where=""))]
    waiting = conn.execute(
        "SELECT count(*), count(DISTINCT photo_id) FROM faces WHERE person_id IS NULL AND forgotten = 0"
    ).fetchone()
    if waiting[0]:
        sample = conn.execute(
            "SELECT f.id, ph.path FROM faces f JOIN photos ph ON ph.id = f.photo_id WHERE f.person_id IS NULL "
            "AND f.forgotten = 0 ORDER BY f.id DESC LIMIT 1"
        ).fetchone()
        out.append(
            {
                "id": None,
                "name": None,
                "faces": waiting[0],
                "photos": waiting[1],
                "sample": sample[1],
                "sample_face": sample[0],
            }
        )
    return out


def person(conn: sqlite3.Connection, pid: int) -> dict:
    """One person as ``persons`` lists them; ``PersonNotFoundError`` for a person without faces
    (forgotten, merged away, or never)."""
    row = conn.execute(_SUMMARY.format(where="AND p.id = ? "), (pid,)).fetchone()
    if row is None:
        raise PersonNotFoundError(f"no person {pid} (or no face of theirs is left)")
    return _summary(conn, row)


def faces_of(conn: sqlite3.Connection, person_id: int) -> list[dict]:
    """A person's faces: ``{face, photo, path, box}`` (box: left, top, width, height, 0-1)."""
    return [
        {"face": r["id"], "photo": r["photo_id"], "path": r["path"], "box": [r["x"], r["y"], r["w"], r["h"]]}
        for r in conn.execute(
            "SELECT f.id, f.photo_id, ph.path, f.x, f.y, f.w, f.h FROM faces f JOIN photos ph ON ph.id = f.photo_id "
            "WHERE f.person_id = ? AND f.forgotten = 0 ORDER BY ph.path",
            (person_id,),
        )
    ]


def person_id(conn: sqlite3.Connection, ref: str) -> int:
    """A person by number or by name (any case)."""
    ref = ref.strip()
    row = None
    if ref.isdigit():
        row = conn.execute("SELECT id FROM persons WHERE id = ? AND forgotten = 0", (int(ref),)).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT id FROM persons WHERE lower(name) = lower(?) AND forgotten = 0 ORDER BY id LIMIT 1", (ref,)
        ).fetchone()
    if row is None:
        raise PersonNotFoundError(f"no person {ref!r}; `wanwu people` lists them (number or name)")
    return int(row[0])


def face_ref(ref: str) -> int | None:
    """``face:42`` (or ``f42``) -> 42; anything else (a person) -> None."""
    ref = ref.strip().lower()
    digits = ref[5:] if ref.startswith("face:") else ref[1:] if ref.startswith("f") else ""
    return int(digits) if digits.isdigit() else None


def photos_with_faces(conn: sqlite3.Connection) -> list[int]:
    """Every photo with a face in the catalogue (what ``wanwu people --forget-all`` changes)."""
    return [r[0] for r in conn.execute("SELECT DISTINCT photo_id FROM faces")]


def photos_of(conn: sqlite3.Connection, refs: Sequence[str]) -> list[int]:
    """The photos of the faces and persons ``refs`` name (``face:12``, or a person's number or name)."""
    ids: set[int] = set()
    for ref in refs:
        face = face_ref(ref)
        if face is not None:
            ids.update(r[0] for r in conn.execute("SELECT photo_id FROM faces WHERE id = ?", (face,)))
        else:
            pid = person_id(conn, ref)
            ids.update(r[0] for r in conn.execute("SELECT photo_id FROM faces WHERE person_id = ?", (pid,)))
    return sorted(ids)


def photos_with_unclustered_faces(conn: sqlite3.Connection) -> list[int]:
    """Photos with faces not yet grouped into persons (``cluster_new_faces`` will group them)."""
    return [r[0] for r in conn.execute("SELECT DISTINCT photo_id FROM faces WHERE clustered = 0")]


def photos_with_faces_indexed_since(conn: sqlite3.Connection, since: float) -> list[int]:
    """Photos with faces whose catalogue row was written at ``since`` (a time.time()) or later."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT f.photo_id FROM faces f JOIN photos p ON p.id = f.photo_id WHERE p.indexed_at >= ?",
            (since,),
        )
    ]


def face_counts(conn: sqlite3.Connection) -> tuple[int, int]:
    """(faces, photos with a face), forgotten faces left out."""
    faces, photos = conn.execute("SELECT count(*), count(DISTINCT photo_id) FROM faces WHERE forgotten = 0").fetchone()
    return faces, photos


def _recentre(conn: sqlite3.Connection, pid: int) -> None:
    """A person's centroid from its faces again (after a face left it); a person without faces
    left goes, unless named (its name and centroid keep finding its next faces)."""
    rows = conn.execute(
        "SELECT descriptor FROM faces WHERE person_id = ? AND forgotten = 0 AND descriptor IS NOT NULL", (pid,)
    ).fetchall()
    if rows:
        centroid = cluster.from_blobs(r[0] for r in rows).mean(0).astype(np.float32)
        conn.execute("UPDATE persons SET centroid = ? WHERE id = ?", (centroid.tobytes(), pid))
    else:
        conn.execute("DELETE FROM persons WHERE id = ? AND name IS NULL AND forgotten = 0", (pid,))


def clean_name(new_name: str) -> str:
    """A person's name as stored: spaces collapsed; ``PersonNameError`` when it is empty, longer
    than ``MAX_NAME``, or has '|' (it separates keyword levels) or control characters."""
    new_name = " ".join(new_name.split())
    if not new_name or "|" in new_name:
        raise PersonNameError(f"{new_name!r}: a name must not be empty nor contain '|' (it separates keyword levels)")
    if len(new_name) > MAX_NAME:
        raise PersonNameError(f"a name of {len(new_name)} characters: at most {MAX_NAME}")
    if any(unicodedata.category(c) == "Cc" for c in new_name):
        raise PersonNameError(f"{new_name!r}: a name must not contain control characters")
    return new_name


def name(conn: sqlite3.Connection, ref: str, new_name: str) -> int:
    """Name a person (or rename); returns its id."""
    new_name = clean_name(new_name)
    pid = person_id(conn, ref)
    other = conn.execute(
        "SELECT id FROM persons WHERE lower(name) = lower(?) AND id != ? AND forgotten = 0", (new_name, pid)
    ).fetchone()
    if other is not None:
        raise PersonNameTakenError(
            f"person {other[0]} is already called {new_name!r}; if they are one, `wanwu people merge {other[0]} {pid}`"
        )
    with transaction(conn):
        conn.execute("UPDATE persons SET name = ? WHERE id = ?", (new_name, pid))
    return pid


def merge(conn: sqlite3.Connection, into_ref: str, other_ref: str) -> int:
    """Make ``other`` part of ``into`` (its faces move; ``into`` keeps its name, or takes the
    other's if it had none); returns the id kept."""
    keep, gone = person_id(conn, into_ref), person_id(conn, other_ref)
    if keep == gone:
        return keep
    with transaction(conn):
        names = dict(conn.execute("SELECT id, name FROM persons WHERE id IN (?, ?)", (keep, gone)).fetchall())
        conn.execute("UPDATE faces SET person_id = ? WHERE person_id = ?", (keep, gone))
        conn.execute("DELETE FROM persons WHERE id = ?", (gone,))
        if names.get(keep) is None and names.get(gone) is not None:
            conn.execute("UPDATE persons SET name = ? WHERE id = ?", (names[gone], keep))
        _recentre(conn, keep)
    return keep


def forget(conn: sqlite3.Connection, ref: str) -> str:
    """Forget a face (``face:ID``) or a person (number or name): descriptors dropped, never
    suggested again. A forgotten person keeps only its centroid, so that its future faces are
    recognised and forgotten at once. Returns what was done, in words."""
    fid = face_ref(ref)
    if fid is not None:
        row = conn.execute("SELECT person_id FROM faces WHERE id = ? AND forgotten = 0", (fid,)).fetchone()
        if row is None:
            raise PersonNotFoundError(f"no face {fid}; `wanwu people show PERSON` lists a person's faces")
        with transaction(conn):
            conn.execute(
                "UPDATE faces SET forgotten = 1, descriptor = NULL, landmarks = NULL, person_id = NULL WHERE id = ?",
                (fid,),
            )
            if row[0] is not None:
                _recentre(conn, row[0])
        return f"forgot face {fid}"
    pid = person_id(conn, ref)
    with transaction(conn):
        n = conn.execute(
            "UPDATE faces SET forgotten = 1, descriptor = NULL, landmarks = NULL WHERE person_id = ? AND forgotten = 0",
            (pid,),
        ).rowcount
        conn.execute("UPDATE persons SET forgotten = 1, name = NULL WHERE id = ?", (pid,))
    return f"forgot person {pid} ({n} face(s))"


def forget_all(conn: sqlite3.Connection) -> int:
    """Delete every face and person (descriptors, boxes, names); returns the faces deleted. The
    photos' face counts stay, so the next ``wanwu index`` does not look for them again."""
    with transaction(conn):
        n = conn.execute("DELETE FROM faces").rowcount
        conn.execute("DELETE FROM persons")
    conn.execute("VACUUM")  # the deleted descriptors leave the file too
    return n


# --- names other apps gave (their XMP face regions: xmp_regions.named_faces) ----------------
def names_from_other_apps(conn: sqlite3.Connection, photo_ids: Sequence[int]) -> list[str]:
    """Read the face names other apps wrote into the sidecars of ``photo_ids`` (after their
    faces were clustered): a named region over a face wanwu found (IoU >= ``SAME_REGION_IOU``)
    names that face's person when unnamed, or joins the face or its unnamed person to the
    person already called so; a person the user named otherwise keeps the user's name. Regions
    over no face wanwu found are ignored. Returns the names that disagreed with the user's
    (the caller says so in one line)."""
    from .xmp_regions import SAME_REGION_IOU, named_faces

    disagreed: list[str] = []
    for photo_id in photo_ids:
        row = conn.execute("SELECT path, width, height FROM photos WHERE id = ?", (photo_id,)).fetchone()
        if row is None or not row["width"] or not row["height"]:
            continue
        named = named_faces(row["path"], (row["width"], row["height"]))
        if not named:
            continue
        faces = _faces_named(conn, photo_id)
        for region in named:
            try:
                given = clean_name(region.name)
            except PersonNameError:
                continue
            face = max(faces, key=lambda f: cluster.iou(region.box, (f["x"], f["y"], f["w"], f["h"])), default=None)
            if face is None or cluster.iou(region.box, (face["x"], face["y"], face["w"], face["h"])) < SAME_REGION_IOU:
                continue
            if face["name"] is not None:
                if face["name"].lower() != given.lower():
                    disagreed.append(f"{given!r} (called {face['name']!r} here)")
                continue
            with transaction(conn):
                _give_name(conn, face, given)
            faces = _faces_named(conn, photo_id)  # the next region sees this name
    return disagreed


def _faces_named(conn: sqlite3.Connection, photo_id: int) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT f.id, f.x, f.y, f.w, f.h, f.person_id, f.descriptor, p.name FROM faces f "
        "LEFT JOIN persons p ON p.id = f.person_id WHERE f.photo_id = ? AND f.forgotten = 0",
        (photo_id,),
    ).fetchall()


def _give_name(conn: sqlite3.Connection, face: sqlite3.Row, given: str) -> None:
    """An unnamed face's person (or the face alone) gets the name ``given``: joins the person
    already called so, else is called so."""
    named = conn.execute(
        "SELECT id FROM persons WHERE lower(name) = lower(?) AND forgotten = 0 ORDER BY id LIMIT 1", (given,)
    ).fetchone()
    pid = face["person_id"]
    if named is not None and pid is not None:  # its unnamed person is that person too
        conn.execute("UPDATE faces SET person_id = ? WHERE person_id = ?", (named[0], pid))
        conn.execute("DELETE FROM persons WHERE id = ?", (pid,))
        _recentre(conn, named[0])
    elif named is not None:
        conn.execute("UPDATE faces SET person_id = ? WHERE id = ?", (named[0], face["id"]))
        _recentre(conn, named[0])
    elif pid is not None:
        conn.execute("UPDATE persons SET name = ? WHERE id = ?", (given, pid))
    elif face["descriptor"] is not None:  # a face waiting alone: a person of its own, named
        centroid = cluster.from_blobs([face["descriptor"]])[0]
        new = conn.execute(
            "INSERT INTO persons (name, centroid) VALUES (?, ?) RETURNING id", (given, centroid.tobytes())
        ).fetchone()[0]
        conn.execute("UPDATE faces SET person_id = ? WHERE id = ?", (new, face["id"]))


# --- search -------------------------------------------------------------------------------
def people_label(lang: str) -> str:
    return PEOPLE_LABEL.get(lang, PEOPLE_LABEL["en"])


def is_people_query(query: str, wnids: Sequence[str] = ()) -> bool:
    """``people``, ``人物``, ``faces``... or a query naming the same classes as ``people``."""
    from . import names

    q = query.strip().lower()
    return (
        q in PEOPLE_WORDS or q == PEOPLE_LABEL["zh"] or (bool(wnids) and set(wnids) == set(names.find_wnids("people")))
    )


def matching_sql(query: str, wnids: Sequence[str] = ()) -> tuple[str, list]:
    """A ``SELECT photo_id, score`` for search's union: photos whose named persons' names
    contain ``query``, and every photo with faces for a people query."""
    sql = (
        "SELECT f.photo_id, 1.0 FROM faces f JOIN persons p ON p.id = f.person_id WHERE f.forgotten = 0 "
        "AND p.forgotten = 0 AND p.name IS NOT NULL AND instr(lower(p.name), lower(?)) > 0"
    )
    args: list = [query]
    if is_people_query(query, wnids):
        sql += " UNION ALL SELECT id, 1.0 FROM photos WHERE faces > 0"
    return sql, args


def people_tags(conn: sqlite3.Connection, photo_ids: Sequence[int], lang: str) -> dict[int, list[dict]]:
    """Tags search shows for faces: ``people`` (``人物``) with the count, then each named
    person's name (``person``: its id)."""
    out: dict[int, list[dict]] = {}
    if not photo_ids:
        return out
    marks = ",".join("?" * len(photo_ids))
    for pid, n in conn.execute(f"SELECT id, faces FROM photos WHERE faces > 0 AND id IN ({marks})", list(photo_ids)):
        out.setdefault(pid, []).append({"wnid": None, "label": people_label(lang), "score": None, "faces": n})
    for pid, person, person_name in conn.execute(
        f"SELECT DISTINCT f.photo_id, p.id, p.name FROM faces f JOIN persons p ON p.id = f.person_id "
        f"WHERE f.forgotten = 0 AND p.forgotten = 0 AND p.name IS NOT NULL AND f.photo_id IN ({marks}) ORDER BY p.name",
        list(photo_ids),
    ):
        out.setdefault(pid, []).append({"wnid": None, "label": person_name, "score": None, "person": person})
    return out
