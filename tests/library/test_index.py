"""``Indexer`` on a generated tree of real photos: the first index, the incremental rules
(unchanged, touched, changed, moved, copied, deleted, another model, --force), user tags that
survive, the catalogue's schema and lock, and that the photos themselves are never written."""

from __future__ import annotations

import os
import shutil
import sqlite3

import pytest
from album_tree import CATS, CORRUPT, LAYOUT, digest_tree

from wanwu.library import catalogue, usertags
from wanwu.library.catalogue import LibraryBusyError, open_catalogue, writer_lock
from wanwu.library.search import photo, search

VISIBLE = [rel for rel in LAYOUT if not rel.startswith(".")]


def _rows(db):
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return {r["path"]: r for r in conn.execute("SELECT * FROM photos")}, conn.execute(
            "SELECT p.path, t.wnid FROM tags t JOIN photos p ON p.id = t.photo_id WHERE t.rank = 0"
        ).fetchall()
    finally:
        conn.close()


def test_first_index_tags_every_photo_and_records_the_corrupt_file(album, index):
    before = digest_tree(album)
    summary, _ = index([album])
    assert (summary.new, summary.failed, summary.classified) == (len(VISIBLE), 1, len(VISIBLE) + 1)
    rows, top1 = _rows(index.db)
    assert set(rows) == {str(album / rel) for rel in [*VISIBLE, CORRUPT]}  # no hidden folder, no .txt
    broken = rows[str(album / CORRUPT)]
    assert broken["error_code"] and "broken.jpg" in broken["error"]
    top = dict(top1)
    assert top[str(album / "cats/chelsea.png")] in CATS
    assert top[str(album / "kitchen/coffee.png")] == "n07920052"  # espresso
    assert top[str(album / "cats/2024/chelsea-again.png")] == top[str(album / "cats/chelsea.png")]
    chelsea = rows[str(album / "cats/chelsea.png")]
    assert (chelsea["width"], chelsea["height"]) == (451, 300)
    assert len(chelsea["sha256"]) == 64 and chelsea["tagger"] == "test/fp32/abc"
    assert digest_tree(album) == before  # the photos were only read


def test_unchanged_tree_reindexes_without_the_model(album, index):
    index([album])
    summary, made = index([album])
    assert made == []  # the model was not even loaded
    assert summary.unchanged == len(VISIBLE) and summary.classified == 0
    assert summary.failed == summary.still_failing == 1  # the corrupt file: not retried, still failing


def test_changed_moved_copied_deleted(album, index, photos):
    index([album])
    rows, _ = _rows(index.db)
    rocket_id = rows[str(album / "space/rocket.jpg")]["id"]
    conn = open_catalogue(index.db)
    usertags.apply(conn, str(album / "space/rocket.jpg"), ["my rocket"], [])
    conn.close()

    shutil.move(album / "space/rocket.jpg", album / "travel/rocket-renamed.jpg")  # moved
    shutil.copy(album / "kitchen/coffee.png", album / "bikes/coffee-copy.png")  # copied
    os.remove(album / "people/grace_hopper.jpg")  # deleted
    shutil.copy(photos["astronaut.png"], album / "bikes/motorcycle.png")  # changed content
    os.utime(album / "travel/flower.jpg")  # touched: new mtime, same bytes

    summary, made = index([album])
    assert (summary.moved, summary.copied, summary.deleted, summary.changed) == (1, 1, 1, 1)
    assert summary.classified == 1  # only the changed photo went through the model
    rows, top1 = _rows(index.db)
    moved = rows[str(album / "travel/rocket-renamed.jpg")]
    assert moved["id"] == rocket_id and str(album / "space/rocket.jpg") not in rows
    assert str(album / "people/grace_hopper.jpg") not in rows
    top = dict(top1)
    assert top[str(album / "bikes/coffee-copy.png")] == top[str(album / "kitchen/coffee.png")]
    assert top[str(album / "bikes/motorcycle.png")] not in ("n03785016", "n03791053")  # no longer a moped
    conn = open_catalogue(index.db, readonly=True)
    tags = photo(conn, rocket_id)["tags"]
    conn.close()
    assert any(t.get("user") and t["label"] == "my rocket" for t in tags)  # survived the move
    summary, made = index([album])
    assert made == [] and summary.unchanged == len(rows) - 1 and summary.still_failing == 1


def test_another_model_retags_and_force_retags_everything(album, index):
    index([album])
    summary, _ = index([album], tagger="other/int8/def")
    assert summary.retagged == len(VISIBLE)
    assert summary.failed == summary.still_failing == 1  # the corrupt file is not retried, and still counts
    summary, _ = index([album], tagger="other/int8/def", force=True)
    assert summary.retagged == len(VISIBLE) and summary.failed == 1


def test_indexing_a_subfolder_keeps_the_rest(album, index):
    index([album])
    summary, _ = index([album / "cats"])
    rows, _ = _rows(index.db)
    assert summary.deleted == 0 and len(rows) == len(VISIBLE) + 1


def test_stop_request_keeps_a_consistent_catalogue_and_resumes(album, index, classifier):
    from wanwu.library.backend import LocalBackend
    from wanwu.library.indexer import Indexer

    conn = open_catalogue(index.db)
    indexer = None

    def make():
        return LocalBackend(classifier, top_k=5, batch_size=1)

    def stop_after_first(photo_id):
        indexer.request_stop()

    indexer = Indexer(conn, "test/fp32/abc", make, on_written=stop_after_first, commit_every=1)
    first = indexer.run([str(album)])
    conn.close()
    assert first.interrupted and 1 <= first.classified < len(VISIBLE)
    summary, _ = index([album])
    rows, _ = _rows(index.db)
    assert len(rows) == len(VISIBLE) + 1  # no duplicates, nothing lost
    assert summary.unchanged == first.classified and summary.new + summary.failed == len(rows) - first.classified


def test_schema_is_versioned_and_migrated(tmp_path):
    db = tmp_path / "x.db"
    conn = open_catalogue(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == catalogue.SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(catalogue.LibraryError, match="newer"):
        open_catalogue(db)


def test_readers_need_an_existing_catalogue(tmp_path):
    with pytest.raises(catalogue.LibraryError, match="wanwu index"):
        open_catalogue(tmp_path / "none.db", readonly=True)
    assert not (tmp_path / "none.db").exists()


def test_default_path_follows_xdg_and_env(tmp_path, monkeypatch):
    monkeypatch.delenv("WANWU_LIBRARY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert catalogue.default_db_path() == tmp_path / "data" / "wanwu" / "library.db"
    monkeypatch.setenv("WANWU_LIBRARY", str(tmp_path / "mine.db"))
    assert catalogue.default_db_path() == tmp_path / "mine.db"


def test_one_writer_at_a_time(tmp_path):
    db = tmp_path / "library.db"
    with writer_lock(db), pytest.raises(LibraryBusyError, match=f"pid {os.getpid()}"), writer_lock(db):
        pass
    with writer_lock(db):  # released
        pass


def test_search_ranks_by_score_and_user_corrections(album, index):
    index([album])
    conn = open_catalogue(index.db)
    page = search(conn, "espresso")
    assert [p["path"] for p in page.items] == [str(album / "kitchen/coffee.png")]
    page = search(conn, "cat")  # tagged tabby, or "cat" where the model hesitates between cat breeds
    assert {p["path"] for p in page.items} == {
        str(album / "cats/chelsea.png"),
        str(album / "cats/2024/chelsea-again.png"),
    }
    usertags.apply(conn, str(album / "kitchen/coffee.png"), [], ["espresso"])
    assert search(conn, "espresso").total == 0  # removed by the user
    usertags.apply(conn, str(album / "travel/flower.jpg"), ["holiday", "espresso"], [])
    assert [p["path"] for p in search(conn, "holiday").items] == [str(album / "travel/flower.jpg")]
    assert [p["path"] for p in search(conn, "espresso").items] == [str(album / "travel/flower.jpg")]
    assert search(conn, "").total == len(VISIBLE)  # every classified photo
    conn.close()


def test_search_by_group_and_in_chinese(tmp_path):
    conn = open_catalogue(tmp_path / "dogs.db")
    with conn:
        for i, (wnid, score) in enumerate([("n02099601", 0.95), ("n02085620", 0.8), ("n02123045", 0.9)]):
            conn.execute(
                "INSERT INTO photos (id, path, size, mtime_ns, sha256, tagger, indexed_at) "
                "VALUES (?, ?, 1, 1, 'x', 't', 0)",
                (i + 1, f"/photos/{i}.jpg"),
            )
            conn.execute("INSERT INTO tags VALUES (?, 0, ?, ?)", (i + 1, wnid, score))
    for query in ("dog", "狗", "Dog", "golden retriever", "金毛寻回犬", "n02099601"):
        page = search(conn, query, lang="zh")
        assert page.items[0]["path"] == "/photos/0.jpg", query  # the best-scoring dog first
    assert [p["path"] for p in search(conn, "狗").items] == ["/photos/0.jpg", "/photos/1.jpg"]
    assert search(conn, "狗", lang="zh").items[0]["tags"][0]["label"] == "金毛寻回犬"
    assert search(conn, "cat").total == 1 and search(conn, "猫").total == 1
    conn.close()


def test_heic_photos_are_indexed_with_the_extra(album, index):
    pillow_heif = pytest.importorskip("pillow_heif", reason="needs the wanwu-tagger[heif] extra")
    from PIL import Image

    heic = album / "phone/IMG_0001.HEIC"
    heic.parent.mkdir()
    pillow_heif.from_pillow(Image.open(album / "cats/chelsea.png").convert("RGB")).save(heic, quality=90)
    summary, _ = index([album])
    rows, top1 = _rows(index.db)
    assert str(heic) in rows and rows[str(heic)]["error_code"] is None
    assert dict(top1)[str(heic)] in CATS


def test_a_file_that_is_not_a_catalogue_is_a_clear_error(tmp_path):
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not sqlite at all" * 100)
    for readonly in (True, False):
        with pytest.raises(catalogue.LibraryError, match="not a usable wanwu catalogue"):
            open_catalogue(bad, readonly=readonly)
    assert bad.read_bytes().startswith(b"\xff\xd8")


def test_exif_date_and_camera_are_recorded(album, index):
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS R6"
    exif.get_ifd(0x8769)[0x9003] = "2024:05:01 10:20:30"
    Image.open(album / "kitchen/coffee.png").convert("RGB").save(album / "kitchen/shot.jpg", "JPEG", exif=exif)
    index([album])
    rows, _ = _rows(index.db)
    shot = rows[str(album / "kitchen/shot.jpg")]
    assert (shot["taken"], shot["camera"]) == ("2024-05-01T10:20:30", "Canon EOS R6")
    assert rows[str(album / "kitchen/coffee.png")]["taken"] is None
