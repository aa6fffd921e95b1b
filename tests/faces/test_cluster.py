"""Clustering on synthetic descriptors: people found whole and never mixed, faces arriving in
several runs join the persons already known, and no step compares more than a bounded batch of
faces with each other (the cost stays linear in the number of faces)."""

from __future__ import annotations

import numpy as np

from wanwu.faces import cluster
from wanwu.library import people
from wanwu.library.catalogue import open_catalogue


class _F:
    def __init__(self, d, x=0.4):
        self.box = (x, 0.3, 0.2, 0.2)
        self.landmarks = ((0.5, 0.4),) * 5
        self.descriptor = d


def _people(n_people: int, per: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors of ``n_people``: same person ~0.3 apart, different people ~1.0 (as dlib's)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 0.0625, (n_people, 128))
    who = np.repeat(np.arange(n_people), per)
    rng.shuffle(who)
    return (centres[who] + rng.normal(0, 0.019, (len(who), 128))).astype(np.float32), who


def _store(conn, descriptors) -> list[int]:
    conn.execute("BEGIN")
    photo_ids = []
    base = conn.execute("SELECT count(*) FROM photos").fetchone()[0]
    for i, d in enumerate(descriptors):
        pid = conn.execute(
            "INSERT INTO photos (path, size, mtime_ns, indexed_at) VALUES (?, 1, 1, 0) RETURNING id",
            (f"/p/{base + i}.jpg",),
        ).fetchone()[0]
        people.replace_faces(conn, pid, [_F(d)])
        photo_ids.append(pid)
    conn.execute("COMMIT")
    return photo_ids


def _clusters(conn) -> dict[int, int]:
    """photo id -> person id (faces waiting: absent)."""
    return dict(conn.execute("SELECT photo_id, person_id FROM faces WHERE person_id IS NOT NULL").fetchall())


def _check(assigned: dict[int, int], photo_ids, who) -> None:
    truth = dict(zip(photo_ids, who))
    by_person: dict[int, set[int]] = {}
    for photo, person in assigned.items():
        by_person.setdefault(person, set()).add(int(truth[photo]))
    assert all(len(s) == 1 for s in by_person.values()), "a person mixes two people"
    people_seen = [next(iter(s)) for s in by_person.values()]
    assert len(people_seen) == len(set(people_seen)), "one person split in two"


def test_people_found_whole_never_mixed_and_batches_bounded(tmp_path, monkeypatch):
    sizes = []
    real_link = cluster.link
    monkeypatch.setattr(
        cluster, "link", lambda points, t=cluster.PAIR_DISTANCE: sizes.append(len(points)) or real_link(points, t)
    )
    conn = open_catalogue(tmp_path / "l.db")
    d, who = _people(60, 40)  # 2,400 faces in batches of 300 with a pool of 200
    ids = _store(conn, d)
    made = people.cluster_new_faces(conn, batch=300, pool=200)
    assert made == 60
    assigned = _clusters(conn)
    assert len(assigned) == len(ids)  # 40 faces each: nobody left waiting
    _check(assigned, ids, who)
    assert sizes and max(sizes) <= 300 + 200  # never all faces against all faces


def test_faces_of_a_later_run_join_the_known_persons(tmp_path):
    conn = open_catalogue(tmp_path / "l.db")
    d, who = _people(10, 12, seed=1)
    first, later = slice(0, 60), slice(60, None)
    ids = _store(conn, d[first])
    people.cluster_new_faces(conn)
    before = conn.execute("SELECT count(*) FROM persons").fetchone()[0]
    ids += _store(conn, d[later])
    made = people.cluster_new_faces(conn)
    assert made == 10 - before  # only people never seen before become new persons
    _check(_clusters(conn), ids, who)


def test_a_forgotten_person_is_never_suggested_again(tmp_path):
    conn = open_catalogue(tmp_path / "l.db")
    d, who = _people(2, 10, seed=2)
    ids = _store(conn, d[:10])
    people.cluster_new_faces(conn)
    victim = _clusters(conn)[ids[0]]
    people.forget(conn, str(victim))
    assert (
        conn.execute("SELECT count(*) FROM faces WHERE person_id = ? AND descriptor IS NOT NULL", (victim,)).fetchone()[
            0
        ]
        == 0
    )
    ids2 = _store(conn, d[10:])
    people.cluster_new_faces(conn)
    theirs = [i for i, w in zip(ids2, who[10:]) if w == who[0]]
    rows = conn.execute(
        f"SELECT forgotten, descriptor FROM faces WHERE photo_id IN ({','.join('?' * len(theirs))})", theirs
    ).fetchall()
    assert rows and all(r[0] == 1 and r[1] is None for r in rows)
    assert all(p["id"] != victim for p in people.persons(conn))


def test_float16_storage_keeps_distances():
    d, _ = _people(5, 4, seed=3)
    back = cluster.from_blobs(cluster.to_blob(x) for x in d)
    exact = np.linalg.norm(d[:, None] - d[None], axis=2)
    stored = np.linalg.norm(back[:, None] - back[None], axis=2)
    assert np.abs(exact - stored).max() < 1e-3
