"""The catalogue side of people without dlib (always runs): a face found again keeps its
person and a forgotten one stays forgotten, the photos still to look at for faces (by root),
names (one person per name, no '|'), and what search shows and finds."""

from __future__ import annotations

import numpy as np
import pytest

from wanwu.errors import ConfigError
from wanwu.library import people
from wanwu.library.catalogue import open_catalogue
from wanwu.library.search import search


class _F:
    def __init__(self, x, seed):
        self.box = (x, 0.2, 0.1, 0.1)
        self.landmarks = ((x, 0.25),) * 5
        self.descriptor = np.random.default_rng(seed).normal(0, 0.0625, 128).astype(np.float32)


@pytest.fixture
def conn(tmp_path):
    c = open_catalogue(tmp_path / "l.db")
    for i, path in enumerate(["/a/1.jpg", "/a/2.jpg", "/b/3.jpg", "/a/4.jpg"], 1):
        c.execute("INSERT INTO photos (id, path, size, mtime_ns, indexed_at) VALUES (?, ?, 1, 1, 0)", (i, path))
    yield c
    c.close()


def test_found_again_keeps_its_person_and_forgotten_stays_forgotten(conn):
    with conn:
        people.replace_faces(conn, 1, [_F(0.1, 1), _F(0.6, 2)])
        people.replace_faces(conn, 2, [_F(0.1, 1)])
    people.cluster_new_faces(conn)
    (pid,) = {r[0] for r in conn.execute("SELECT person_id FROM faces WHERE x = 0.1")}
    assert pid is not None
    other = conn.execute("SELECT id FROM faces WHERE x = 0.6").fetchone()[0]
    people.forget(conn, f"face:{other}")
    with conn:  # the photo indexed again (--force): the same two faces found
        people.replace_faces(conn, 1, [_F(0.1, 1), _F(0.6, 2)])
    rows = conn.execute(
        "SELECT x, person_id, forgotten, descriptor FROM faces WHERE photo_id = 1 ORDER BY x"
    ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [(0.1, pid, 0), (0.6, None, 1)] and rows[1][3] is None
    assert conn.execute("SELECT faces FROM photos WHERE id = 1").fetchone()[0] == 2


def test_photos_without_faces_under_the_roots_only(conn):
    with conn:
        people.replace_faces(conn, 1, [])
    assert people.photos_without_faces(conn) == [(2, "/a/2.jpg"), (3, "/b/3.jpg"), (4, "/a/4.jpg")]
    assert people.photos_without_faces(conn, ["/a"]) == [(2, "/a/2.jpg"), (4, "/a/4.jpg")]
    assert people.photos_without_faces(conn, ["/b/3.jpg"]) == [(3, "/b/3.jpg")]


def test_names_search_and_tags(conn):
    with conn:
        people.replace_faces(conn, 1, [_F(0.1, 1)])
        people.replace_faces(conn, 2, [_F(0.1, 1), _F(0.5, 7)])
        people.replace_faces(conn, 3, [_F(0.5, 7)])
        people.replace_faces(conn, 4, [])
    people.cluster_new_faces(conn)
    first, second = (r[0] for r in conn.execute("SELECT id FROM persons ORDER BY id"))
    people.name(conn, str(first), "  Grandma   Li ")
    assert people.person_id(conn, "grandma li") == first
    with pytest.raises(people.PersonNameTakenError, match="merge"):
        people.name(conn, str(second), "GRANDMA LI")
    with pytest.raises(ConfigError):
        people.name(conn, str(second), "a|b")
    with pytest.raises(people.PersonNotFoundError):
        people.person_id(conn, "999")
    page = search(conn, "grandma")
    assert [p["id"] for p in page.items] == [1, 2]
    tags = {p["id"]: [t["label"] for t in p["tags"]] for p in page.items}
    assert tags[1] == ["Grandma Li", "people"]
    assert {p["id"] for p in search(conn, "人物", limit=10).items} == {1, 2, 3}  # not 4: no faces
    assert people.merge(conn, "Grandma Li", str(second)) == first
    listed = people.persons(conn)
    assert [(p["name"], p["faces"], p["photos"]) for p in listed] == [("Grandma Li", 4, 3)]


def test_faces_travel_from_ray_workers_intact():
    from wanwu.library.ray_backend import _faces_blob, _faces_from_blob

    faces = [_F(0.1, 1), _F(0.5, 2)]
    back = _faces_from_blob(_faces_blob(faces))
    assert back is not None and len(back) == 2
    for a, b in zip(faces, back):
        assert np.allclose(a.box, b.box) and np.allclose(a.landmarks, b.landmarks)
        assert np.array_equal(a.descriptor, b.descriptor)
    assert _faces_from_blob(_faces_blob([])) == [] and _faces_from_blob(None) is None


def test_merge_is_all_or_nothing(conn, monkeypatch):
    """A merge that fails half-way (here: recomputing the centroid) leaves both persons and
    every face where they were, not faces moved to a person whose old self is deleted."""
    with conn:
        people.replace_faces(conn, 1, [_F(0.1, 1)])
        people.replace_faces(conn, 3, [_F(0.5, 99)])
    a = conn.execute("INSERT INTO persons (name) VALUES ('Ann')").lastrowid
    b = conn.execute("INSERT INTO persons (name) VALUES (NULL)").lastrowid
    conn.execute("UPDATE faces SET person_id = ? WHERE x = 0.1", (a,))
    conn.execute("UPDATE faces SET person_id = ? WHERE x = 0.5", (b,))
    before = conn.execute("SELECT id, person_id FROM faces ORDER BY id").fetchall()

    def broken(*_):
        raise OSError("disk full")

    monkeypatch.setattr(people, "_recentre", broken)
    with pytest.raises(OSError):
        people.merge(conn, str(a), str(b))
    assert conn.execute("SELECT id, person_id FROM faces ORDER BY id").fetchall() == before
    assert {r[0] for r in conn.execute("SELECT id FROM persons")} == {a, b}
    monkeypatch.undo()
    assert people.merge(conn, "Ann", str(b)) == a
    assert {r[0] for r in conn.execute("SELECT person_id FROM faces")} == {a}


def test_ray_workers_find_faces_with_the_drivers_detector(finder, monkeypatch):
    """A worker's environment may lack WANWU_FACE_DETECTOR: the driver's choice travels with
    the actor's arguments and wins over the worker's own setting."""
    from wanwu.library.ray_backend import _ClassifyActor

    monkeypatch.setenv("WANWU_FACE_DETECTOR", "blazeface")  # what the worker would read itself
    actor = _ClassifyActor({}, 5, 1, faces=True, face_detector="hog")
    assert actor.local.faces is not None and actor.local.faces.detector == "hog"
