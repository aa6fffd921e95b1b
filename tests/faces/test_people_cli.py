"""People from the command line on ../shared/faces: ``wanwu index`` (first without faces, as a
collection indexed before the extra, then with: faces found without re-classifying), every
person's photos in one cluster and none mixing two people, ``wanwu people`` list / name / merge
/ forget / --forget-all, and ``wanwu search NAME``. Plus faces at index time in one pass on the
album (grace_hopper.jpg), and the one-line hint without the extra."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from faces_data import PEOPLE

from wanwu.cli import main


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def library(tmp_path_factory, shared_faces, finder):
    """../shared/faces copied, indexed with --no-faces, then again with faces."""
    root = tmp_path_factory.mktemp("faces") / "Pictures"
    shutil.copytree(shared_faces, root, ignore=shutil.ignore_patterns("*.md", "*.txt"))
    db = root.parent / "library.db"
    assert main(["index", str(root), "--db", str(db), "--quiet", "--no-faces"]) == 0
    return root, db


def _faces(db, root) -> dict[str, list[sqlite3.Row]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    out: dict[str, list] = {}
    for r in conn.execute(
        "SELECT p.path, f.x, f.w, f.h, f.person_id FROM faces f JOIN photos p ON p.id = f.photo_id WHERE f.forgotten = 0"
    ):
        out.setdefault(str(__import__("pathlib").Path(r["path"]).relative_to(root)), []).append(r)
    conn.close()
    return out


def test_index_without_faces_then_with_faces_does_not_reclassify(library, capsys):
    root, db = library
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM photos WHERE faces IS NOT NULL").fetchone()[0] == 0  # --no-faces
    conn.close()
    code, out, err = run(capsys, "index", root, "--db", db, "--json", "--quiet")
    assert code == 0, err
    assert json.loads(out)["classified"] == 0  # the classifier did not run again
    assert "faces:" in err and "new person(s)" in err
    faces = _faces(db, root)
    for rel, who in PEOPLE.items():
        n = len(faces.get(rel, []))
        assert n >= 2 if rel == "groups/obama_and_biden.jpg" else n == len(who), (rel, n)


def test_every_person_in_one_cluster_and_no_cluster_mixes_two(library):
    root, db = library
    person_of: dict[int, set[str]] = {}
    seen: dict[str, set] = {}
    for rel, rows in _faces(db, root).items():
        rows = sorted(sorted(rows, key=lambda r: -r["w"] * r["h"])[: len(PEOPLE[rel])], key=lambda r: r["x"])
        for row, who in zip(rows, PEOPLE[rel]):
            seen.setdefault(who, set()).add(row["person_id"])
            if row["person_id"] is not None:
                person_of.setdefault(row["person_id"], set()).add(who)
    assert all(len(names) == 1 for names in person_of.values()), person_of
    for who, persons in seen.items():
        assert len(persons) == 1, (who, persons)  # one cluster (or, seen once, waiting)
    assert seen["rose"] == {None}  # in one photo only: waits in "unnamed"
    assert all(None not in seen[w] for w in ("obama", "biden", "kit", "alex"))


def test_name_search_merge_forget(library, capsys):
    root, db = library
    code, out, _ = run(capsys, "people", "--db", db, "--format", "json")
    listed = json.loads(out)
    assert code == 0 and len([p for p in listed if p["id"] is not None]) == 4
    obama = next(p for p in listed if p["id"] is not None and "obama" in p["sample"])
    assert obama["photos"] == 9  # 3 portraits, 4 sizes of one photo, 2 group photos

    code, out, _ = run(capsys, "people", "name", obama["id"], "奥巴马", "--db", db)
    assert code == 0 and "奥巴马" in out
    code, out, err = run(capsys, "search", "奥巴马", "--db", db, "--format", "json", "--limit", "50")
    hits = json.loads(out)
    assert code == 0 and len(hits) == 9
    assert all(any(t["label"] == "奥巴马" for t in h["tags"]) for h in hits)
    assert all(any(t["label"] == "people" and t["faces"] >= 1 for t in h["tags"]) for h in hits)
    code, out, _ = run(capsys, "search", "人物", "--db", db, "--format", "paths", "--limit", "100")
    assert len(out.splitlines()) == len(PEOPLE)  # every photo has faces

    # two persons are one: Biden's person merged into Obama's keeps the name and both photos
    biden = next(p for p in listed if p["id"] is not None and "biden" in p["sample"])
    code, _, err = run(capsys, "people", "name", biden["id"], "奥巴马", "--db", db)
    assert code != 0 and "merge" in err  # a name is one person's
    assert run(capsys, "people", "merge", "奥巴马", biden["id"], "--db", db)[0] == 0
    after = json.loads(run(capsys, "people", "--db", db, "--format", "json")[1])
    merged = next(p for p in after if p["name"] == "奥巴马")
    assert merged["photos"] == 9 + 2  # Biden's two portraits join (the group photos were counted already)

    # forget one face, then the person: the name finds nothing, descriptors gone
    faces = json.loads(run(capsys, "people", "show", "奥巴马", "--db", db, "--format", "json")[1])
    code, out, _ = run(capsys, "people", "forget", f"face:{faces[0]['face']}", "--db", db)
    assert code == 0 and "forgot face" in out
    assert run(capsys, "people", "forget", "奥巴马", "--db", db)[0] == 0
    assert run(capsys, "search", "奥巴马", "--db", db)[0] == 1
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM faces WHERE forgotten = 1 AND descriptor IS NOT NULL").fetchone()[0] == 0
    conn.close()
    code, _, err = run(capsys, "people", "forget", "nobody", "--db", db)
    assert code == 1 and "no person 'nobody'" in err

    # indexing again suggests none of them again (the photos are unchanged: nothing to find)
    assert run(capsys, "index", root, "--db", db, "--quiet")[0] == 0
    assert all(p["name"] != "奥巴马" for p in json.loads(run(capsys, "people", "--db", db, "--format", "json")[1]))


def test_forget_all_deletes_every_descriptor(tmp_path, shared_faces, finder, capsys):
    root = tmp_path / "p"
    shutil.copytree(shared_faces / "obama", root)
    db = tmp_path / "l.db"
    assert main(["index", str(root), "--db", str(db), "--quiet"]) == 0
    code, out, _ = run(capsys, "people", "--forget-all", "--db", db)
    assert code == 0 and "3 face(s)" in out
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM faces").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM persons").fetchone()[0] == 0
    conn.close()
    assert run(capsys, "people", "--db", db)[0] == 1  # nothing to list


def test_faces_found_in_the_same_decode_as_the_tags(tmp_path, photos, classifier, finder):
    from wanwu.library.backend import LocalBackend
    from wanwu.library.catalogue import open_catalogue
    from wanwu.library.indexer import Indexer
    from wanwu.library.search import search

    album = tmp_path / "album"
    album.mkdir()
    for name in ("grace_hopper.jpg", "chelsea.png", "coffee.png"):
        shutil.copy(photos[name], album / name)
    conn = open_catalogue(tmp_path / "l.db")
    made = []

    def make():
        made.append(LocalBackend(classifier, top_k=5, batch_size=2, faces=finder))
        return made[-1]

    summary = Indexer(conn, "t/fp32/x", make).run([str(album)])
    assert summary.classified == 3
    counts = dict(conn.execute("SELECT path, faces FROM photos").fetchall())
    assert counts == {str(album / "grace_hopper.jpg"): 1, str(album / "chelsea.png"): 0, str(album / "coffee.png"): 0}
    hits = [h["path"] for h in search(conn, "people").items]
    assert hits == [str(album / "grace_hopper.jpg")]
    conn.close()


def test_without_the_extra_one_line_says_how(monkeypatch, tmp_path, chelsea, capsys):
    import wanwu.faces as faces

    monkeypatch.setattr(faces, "faces_available", lambda: False)
    code, out, err = run(capsys, "index", chelsea, "--db", tmp_path / "l.db", "--quiet")
    assert code == 0 and "pip install 'wanwu-tagger[faces]'" in err
    assert len([line for line in err.splitlines() if "wanwu-tagger[faces]" in line]) == 1
    code, out, err = run(capsys, "index", chelsea, "--db", tmp_path / "l.db", "--quiet", "--no-faces")
    assert "wanwu-tagger[faces]" not in err
