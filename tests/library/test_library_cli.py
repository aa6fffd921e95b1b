"""The library commands as a user runs them: real ``wanwu`` processes on a generated tree of
real photos — a real SIGINT to a running ``wanwu index`` and the resume, XMP sidecars read back
with exiv2 (photos byte-identical), search formats, export, tags, the writer lock."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from album_tree import CORRUPT, LAYOUT, digest_tree

VISIBLE = [rel for rel in LAYOUT if not rel.startswith(".")]


def wanwu(*args, check=None, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "wanwu.cli", *map(str, args)], capture_output=True, text=True, timeout=600, **kw
    )
    if check is not None:
        assert proc.returncode == check, proc.stderr
    return proc


@pytest.fixture
def db(tmp_path):
    return tmp_path / "catalogue" / "library.db"


def test_index_then_search_in_every_format(album, db):
    first = wanwu("index", album, "--db", db, check=1)  # the corrupt file fails: exit 1, listed
    assert f"{len(VISIBLE)} new" in first.stdout and "1 failed" in first.stdout
    assert str(album / CORRUPT) in first.stderr
    again = json.loads(wanwu("index", album, "--db", db, "--json", check=1).stdout)  # it still fails
    assert again["unchanged"] == len(VISIBLE) and again["failed"] == again["still_failing"] == 1

    paths = wanwu("search", "espresso", "--db", db, "--format", "paths", check=0).stdout.splitlines()
    assert paths == [str(album / "kitchen/coffee.png")]
    items = json.loads(wanwu("search", "cat", "--db", db, "--format", "json", check=0).stdout)
    assert {i["path"] for i in items} == {str(album / "cats/chelsea.png"), str(album / "cats/2024/chelsea-again.png")}
    assert all({"wnid", "label", "score"} <= set(t) for i in items for t in i["tags"])
    zh = json.loads(
        wanwu("search", "猫", "--db", db, "--lang", "zh", "--format", "jsonl", check=0).stdout.splitlines()[0]
    )
    assert any("猫" in t["label"] for t in zh["tags"])
    rows = list(
        csv.DictReader(
            io.StringIO(
                wanwu("search", "palace", "--db", db, "--format", "csv", "--tag-confidence", "0.3", check=0).stdout
            )
        )
    )
    assert rows and rows[0]["path"] == str(album / "travel/2019/summer/china.jpg")
    nothing = wanwu("search", "golden retriever", "--db", db)
    assert nothing.returncode == 1 and nothing.stdout == ""
    assert wanwu("search", "cat", "--db", db, "--lang", "fr").returncode == 2


def test_library_summary_and_exports(album, db, tmp_path):
    wanwu("index", album, "--db", db)
    info = json.loads(wanwu("library", "--db", db, "--format", "json", check=0).stdout)
    assert (info["photos"], info["failed"]) == (len(VISIBLE) + 1, 1)
    assert any(g["label"] == "cat" and g["count"] >= 2 for g in info["groups"])
    assert list(info["models"].values()) == [len(VISIBLE)]
    table = wanwu("library", "--db", db, check=0).stdout
    assert "photos" in table and "groups" in table

    jsonl = tmp_path / "all.jsonl"
    wanwu("library", "--db", db, "--export", jsonl, check=0)
    photos = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(photos) == len(VISIBLE) + 1 and any(p["error"] for p in photos)
    out_csv = tmp_path / "all.csv"
    wanwu("library", "--db", db, "--export", out_csv, check=0)
    assert {r["path"] for r in csv.DictReader(out_csv.open())} == {p["path"] for p in photos}
    pq = pytest.importorskip("pyarrow.parquet")
    parquet = tmp_path / "all.parquet"
    wanwu("library", "--db", db, "--export", parquet, check=0)
    table = pq.read_table(parquet)
    assert table.num_rows == len(photos) and "tags" in table.column_names
    assert wanwu("library", "--db", db, "--export", tmp_path / "x.xlsx").returncode == 2
    unwritable = wanwu("library", "--db", db, "--export", tmp_path / "no" / "such" / "x.jsonl")
    assert unwritable.returncode == 1 and unwritable.stderr.endswith("No such file or directory\n")
    assert "Traceback" not in unwritable.stderr
    assert "wanwu index" in wanwu("library", "--db", tmp_path / "none.db").stderr


def test_xmp_sidecars_merge_and_never_touch_the_photo(album, db):
    pyexiv2 = pytest.importorskip("pyexiv2")
    before = digest_tree(album)
    coffee = album / "kitchen/coffee.png"
    own = album / "space/rocket.jpg.xmp"  # a sidecar the user's photo manager already wrote
    own.write_text(
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:lr="http://ns.adobe.com/lightroom/1.0/" xmp:Rating="4">'
        "<dc:subject><rdf:Bag><rdf:li>holiday 2019</rdf:li><rdf:li>missile</rdf:li></rdf:Bag></dc:subject>"
        "<lr:hierarchicalSubject><rdf:Bag><rdf:li>places|Florida</rdf:li><rdf:li>wanwu|old|stale</rdf:li>"
        "</rdf:Bag></lr:hierarchicalSubject></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    (album / "travel/flower.jpg.xmp").write_text("<not xml")
    proc = wanwu("index", album, "--db", db, "--write-xmp")
    flower = album / "travel/flower.jpg"
    assert f"wanwu: sidecar: {flower}: {flower}.xmp left alone: not a valid XMP file" in proc.stderr
    assert (album / "travel/flower.jpg.xmp").read_text() == "<not xml"  # left alone

    xmp = pyexiv2.Image(str(coffee) + ".xmp").read_xmp()
    assert "espresso" in xmp["Xmp.dc.subject"]
    assert "wanwu|drink|espresso" in xmp["Xmp.lr.hierarchicalSubject"]
    assert "wanwu/drink/espresso" in xmp["Xmp.digiKam.TagsList"]
    merged = pyexiv2.Image(str(own)).read_xmp()
    assert merged["Xmp.xmp.Rating"] == "4"
    assert {"holiday 2019", "missile"} <= set(merged["Xmp.dc.subject"])  # the user's keywords kept
    assert "places|Florida" in merged["Xmp.lr.hierarchicalSubject"]
    assert "wanwu|old|stale" not in merged["Xmp.lr.hierarchicalSubject"]  # old wanwu keywords replaced
    assert any(k.startswith("wanwu|") for k in merged["Xmp.lr.hierarchicalSubject"])

    wanwu("tag", coffee, "--db", db, "--add", "morning", "--remove", "espresso", "--write-xmp", check=0)
    again = pyexiv2.Image(str(coffee) + ".xmp").read_xmp()
    assert "morning" in again["Xmp.dc.subject"] and "espresso" not in again["Xmp.dc.subject"]
    assert "wanwu|morning" in again["Xmp.lr.hierarchicalSubject"]
    wanwu("index", album, "--db", db, "--force", "--write-xmp", "--xmp-name", "stem", "--lang", "zh")
    zh = pyexiv2.Image(str(album / "kitchen/coffee.xmp")).read_xmp()
    assert "morning" in zh["Xmp.dc.subject"] and "意式浓缩咖啡" not in zh["Xmp.dc.subject"]  # the user's say stays
    assert digest_tree(album) == before  # not one photo byte changed


def test_tags_survive_reindexing(album, db):
    wanwu("index", album, "--db", db)
    photo = album / "people/grace_hopper.jpg"
    out = wanwu("tag", photo, "--db", db, "--add", "golden retriever", "--add", "grandma", check=0).stdout
    assert "+golden retriever" in out and "+grandma" in out
    assert wanwu("tag", album / "nope.jpg", "--db", db, "--add", "x").returncode == 1
    assert wanwu("tag", photo, "--db", db).returncode == 2
    wanwu("index", album, "--db", db, "--force")
    assert wanwu("search", "dog", "--db", db, "--format", "paths", check=0).stdout.split() == [str(photo)]
    assert wanwu("search", "grandma", "--db", db, "--format", "paths", check=0).stdout.split() == [str(photo)]


def test_one_writer_at_a_time(album, db):
    from wanwu.library.catalogue import writer_lock

    with writer_lock(db):
        proc = wanwu("index", album, "--db", db)
    # its own status (75, "try again later"), not 1 ("some files failed"): nothing was done
    assert proc.returncode == 75 and f"pid {os.getpid()}" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "wait for it to finish" in proc.stderr
    assert "75 try again later" in wanwu("index", "--help", check=0).stdout


def test_sigint_stops_quickly_and_the_next_run_resumes(tmp_path, photos, db):
    """A real Ctrl-C to a real ``wanwu index``: it stops soon with a consistent catalogue, and the
    next run classifies only what was left, without duplicates."""
    root = tmp_path / "many"
    sources = sorted(photos.values())
    n = 240
    for i in range(n):
        folder = root / f"roll{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(sources[i % len(sources)], folder / f"{i:04d}{sources[i % len(sources)].suffix}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wanwu.cli", "index", str(root), "--db", str(db), "--batch-size", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if db.exists():
            try:
                conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                done = conn.execute("SELECT count(*) FROM photos").fetchone()[0]
                conn.close()
            except sqlite3.OperationalError:
                continue
            if done >= 16:
                break
    assert proc.poll() is None, f"finished before it could be interrupted: {proc.communicate()}"
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    stopped_after = time.monotonic() - sent
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    print(f"stopped {stopped_after:.2f} s after SIGINT")
    assert stopped_after < 10, stopped_after  # ~2 s asked; generous on a shared machine

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    kept = conn.execute("SELECT count(*) FROM photos").fetchone()[0]
    assert conn.execute("SELECT count(*) FROM photos WHERE id NOT IN (SELECT photo_id FROM tags)").fetchone()[0] == 0
    conn.close()
    assert 16 <= kept < n

    resumed = json.loads(wanwu("index", root, "--db", db, "--json", check=0).stdout)
    # the rest are copies of photos already tagged: recognised by content, not classified again
    assert resumed["new"] + resumed["copied"] == n - kept and resumed["copied"] > 0
    assert resumed["unchanged"] == kept and resumed["failed"] == 0
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*), count(DISTINCT path) FROM photos").fetchone() == (n, n)
    conn.close()


def test_failures_stay_visible_until_fixed(album, db, photos):
    """Issue 26 item 6: a re-index does not say "0 failed" (exit 0) while files still fail, and
    `wanwu library --failed` names them with the reason until they are replaced by good photos."""
    bad = album / "kitchen/empty.jpg"
    bad.write_bytes(b"")
    wanwu("index", album, "--db", db, check=1)
    again = wanwu("index", album, "--db", db, check=1)
    assert "2 failed (2 unchanged since an earlier run)" in again.stdout and "0 classified" in again.stdout
    assert "wanwu library --failed" in again.stderr
    listed = wanwu("library", "--db", db, "--failed", check=1)
    lines = listed.stdout.splitlines()
    assert [line.split(" ")[0].rstrip(":") for line in lines] == sorted([str(album / CORRUPT), str(bad)])
    assert "damaged" in lines[1] and "empty" in lines[0] and "2 file(s) failed" in listed.stderr
    rows = json.loads(wanwu("library", "--db", db, "--failed", "--format", "json", check=1).stdout)
    assert {r["path"] for r in rows} == {str(album / CORRUPT), str(bad)} and all(r["code"] and r["error"] for r in rows)
    paths0 = wanwu("library", "--db", db, "--failed", "--format", "paths0", check=1).stdout
    assert paths0.split("\0")[:-1] == sorted([str(album / CORRUPT), str(bad)])
    assert "--failed lists them" in wanwu("library", "--db", db, check=0).stdout

    shutil.copy(photos["coffee.png"], bad)  # fixed: a good photo in its place
    (album / CORRUPT).unlink()  # and the other one gone
    fixed = json.loads(wanwu("index", album, "--db", db, "--json", check=0).stdout)
    assert fixed["failed"] == 0 and fixed["classified"] == 1 and fixed["deleted"] == 1
    assert wanwu("library", "--db", db, "--failed", check=0).stdout == ""
    assert json.loads(wanwu("library", "--db", db, "--failed", "--format", "json", check=0).stdout) == []


def test_the_catalogue_inside_the_photo_folder_is_not_indexed(album):
    """wanwu's own files (the catalogue, its WAL, lock and thumbnails) are never photos."""
    db = album / "library.db"
    wanwu("index", album, "--db", db)
    thumbs = album / "library-thumbnails" / "ab"
    thumbs.mkdir(parents=True)
    shutil.copy(album / "kitchen/coffee.png", thumbs / "abc.jpg")
    again = json.loads(wanwu("index", album, "--db", db, "--json").stdout)
    assert again["new"] == 0 and again["unchanged"] == len(VISIBLE) and again["still_failing"] == 1


def test_index_removes_thumbnails_of_photos_gone_from_the_catalogue(album, db):
    """A deleted photo's thumbnail and rendition go with it on the next index; the photos still
    catalogued keep theirs, and a file being written is left alone."""
    from collections import Counter

    from wanwu.library.catalogue import thumbnails_dir
    from wanwu.library.thumbnails import thumbnail

    wanwu("index", album, "--db", db)
    conn = sqlite3.connect(db)
    rows = dict(conn.execute("SELECT path, sha256 FROM photos WHERE error_code IS NULL").fetchall())
    conn.close()
    cache = thumbnails_dir(db)
    made = {path: thumbnail(cache, path, sha) for path, sha in rows.items()}
    copies = Counter(rows.values())
    gone = next(p for p in sorted(rows) if copies[rows[p]] == 1)  # a photo without a copy elsewhere
    rendition = cache / "view" / f"{rows[gone]}.jpg"  # as the server makes them for TIFF, HEIC...
    rendition.parent.mkdir(parents=True, exist_ok=True)
    rendition.write_bytes(made[gone].read_bytes())
    being_written = cache / "view" / ".tmp-1234.jpg"
    being_written.write_bytes(b"partial")

    os.remove(gone)
    second = wanwu("index", album, "--db", db)
    assert not made[gone].exists() and not rendition.exists()
    assert all(made[p].exists() for p in rows if p != gone)
    assert being_written.exists()
    assert "removed 2 cached thumbnail(s)" in second.stderr, second.stderr
    assert "removed" not in wanwu("index", album, "--db", db).stderr  # nothing more to remove


def _catalogue_of_cats(db, n: int, *, names=None) -> list[str]:
    """A catalogue of ``n`` photos tagged tabby (made through SQL, no model: fast), best score
    first; returns their paths in the order search ranks them."""
    from wanwu.library.catalogue import open_catalogue

    conn = open_catalogue(db)
    paths = [f"/photos/{i:05d}.jpg" for i in range(n)]
    for i, name in (names or {}).items():
        paths[i] = name
    conn.execute("BEGIN")
    for i, path in enumerate(paths):
        pid = conn.execute(
            "INSERT INTO photos (path, size, mtime_ns, sha256, tagger, indexed_at) VALUES (?, 1, 1, ?, 't', 0)",
            (path, f"{i:064x}"),
        ).lastrowid
        conn.execute("INSERT INTO tags VALUES (?, 0, 'n02123045', ?)", (pid, 0.9 - i * 1e-5))
    conn.execute("COMMIT")
    conn.close()
    return paths


def test_machine_formats_list_every_match_and_the_table_says_how_many_more(db):
    """`--format paths | xargs cp` used to copy the first 50 of 105 cats: every format but the
    table lists every match (streamed 1000 at a time) unless --limit says otherwise."""
    n = 2105
    paths = _catalogue_of_cats(db, n, names={7: "/photos/two\nlines.jpg", 1500: "/photos/tab\tand ünïcode 猫.jpg"})

    out = subprocess.run(
        [sys.executable, "-m", "wanwu.cli", "search", "cat", "--db", str(db), "--format", "paths0"],
        capture_output=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.endswith(b"\0") and out.stdout[:-1].split(b"\0") == [p.encode() for p in paths]
    assert out.stderr == b""
    lines = wanwu("search", "cat", "--db", db, "--format", "paths", check=0)
    assert lines.stdout == "".join(p + "\n" for p in paths)
    assert "1 path(s) above contain a newline" in lines.stderr and "--format paths0" in lines.stderr
    items = json.loads(wanwu("search", "cat", "--db", db, "--format", "json", check=0).stdout)
    assert [i["path"] for i in items] == paths and len({i["id"] for i in items}) == n
    jsonl = wanwu("search", "cat", "--db", db, "--format", "jsonl", check=0).stdout.splitlines()
    assert [json.loads(line)["path"] for line in jsonl] == paths
    rows = list(csv.DictReader(io.StringIO(wanwu("search", "cat", "--db", db, "--format", "csv", check=0).stdout)))
    assert [r["path"] for r in rows] == paths

    limited = wanwu("search", "cat", "--db", db, "--format", "paths0", "--limit", "10", "--offset", "5", check=0)
    assert limited.stdout.split("\0")[:-1] == paths[5:15]
    assert f"{n} photo(s) match 'cat'; listed 10 (--limit 10), {n - 15} more" in limited.stderr
    assert json.loads(wanwu("search", "cat", "--db", db, "-f", "json", "--offset", str(n)).stdout) == []

    table = wanwu("search", "cat", "--db", db, check=0)
    assert table.stdout.count("\n    ") == 50  # the table keeps its page
    assert f"{n} photo(s) match 'cat'; showing 1-50; {n - 50} more: --offset 50 for the next page, " in table.stderr
    assert f"--limit {n} for all" in table.stderr
    last = wanwu("search", "cat", "--db", db, "--offset", str(n - 5), check=0)
    assert last.stdout.count("\n    ") == 5 and f"showing {n - 4}-{n}" in last.stderr and "more" not in last.stderr
    assert wanwu("search", "cat", "--db", db, "--offset", "-1").returncode == 2


def test_every_match_comes_from_one_snapshot_while_an_index_commits(db, monkeypatch, capsys):
    """Every match is read in chunks from one query in one read transaction: photos committed
    meanwhile (ranked first) change nothing in the listing, which neither repeats nor skips."""
    from wanwu.library import search as search_module

    paths = _catalogue_of_cats(db, 25)
    monkeypatch.setattr(search_module, "STREAM_CHUNK", 10)
    real = search_module.photos_by_id
    chunks = []

    def read_then_commit(conn, ids, *args):
        chunks.append(len(ids))
        writer = sqlite3.connect(db)
        pid = writer.execute(
            "INSERT INTO photos (path, size, mtime_ns, sha256, tagger, indexed_at) VALUES (?, 1, 1, 'x', 't', 0)",
            (f"/photos/new-{len(chunks)}.jpg",),
        ).lastrowid
        writer.execute("INSERT INTO tags VALUES (?, 0, 'n02123045', 0.99)", (pid,))
        writer.commit()
        writer.close()
        return real(conn, ids, *args)

    monkeypatch.setattr(search_module, "photos_by_id", read_then_commit)
    from wanwu.cli import main

    assert main(["search", "cat", "--db", str(db), "--format", "jsonl"]) == 0
    got = [json.loads(line)["path"] for line in capsys.readouterr().out.splitlines()]
    assert chunks == [10, 10, 5] and got == paths
    assert main(["search", "cat", "--db", str(db), "--format", "paths"]) == 0  # now it sees them
    assert len(capsys.readouterr().out.splitlines()) == 25 + 3


def test_paths0_copies_a_photo_whose_name_has_a_newline(tmp_path, photos, db):
    """The docs' recipe, `wanwu search … --format paths0 | xargs -0 cp -t DIR`, on real files
    indexed by a real `wanwu index`: a newline in a name is just a character."""
    folder = tmp_path / "pics"
    folder.mkdir()
    odd = folder / "my\ncat.png"
    shutil.copy(photos["chelsea.png"], odd)
    shutil.copy(photos["chelsea.png"], folder / "plain cat.png")
    wanwu("index", folder, "--db", db, check=0)
    dest = tmp_path / "cats"
    dest.mkdir()
    recipe = subprocess.run(
        f'"{sys.executable}" -m wanwu.cli search cat --db "{db}" --format paths0 | xargs -0 cp -t "{dest}"',
        shell=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert recipe.returncode == 0, recipe.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["my\ncat.png", "plain cat.png"]
    assert (dest / "my\ncat.png").read_bytes() == odd.read_bytes()
