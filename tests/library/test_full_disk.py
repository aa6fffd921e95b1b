"""A full disk under the catalogue or the thumbnail cache: one line on stderr naming the disk
and the catalogue, exit status 74 (``EXIT_DISK_FULL``), nothing committed lost, the next run
goes on; the server answers 507 ``disk_full`` for a thumbnail it cannot cache (not "410 photo
gone, re-run wanwu index") and logs where. Simulated with SQLite's own page limit and OS
errors, and for real on a small tmpfs where the test may mount one."""

from __future__ import annotations

import errno
import io
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout

import pytest
from album_tree import LAYOUT

from wanwu.cli import library as library_cli
from wanwu.cli import main
from wanwu.errors import EXIT_DISK_FULL
from wanwu.library.catalogue import open_catalogue

VISIBLE = [rel for rel in LAYOUT if not rel.startswith(".")]


def run(*argv) -> tuple[int, str]:
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        rc = main([*map(str, argv)])
    return rc, err.getvalue()


def _one_line_about(err: str, db) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    line = lines[0]
    assert line.startswith("wanwu: error: not enough space on the disk mounted at ")
    assert f"for the catalogue {db}" in line and "nothing committed was lost" in line
    return line


def _count(db) -> int:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return conn.execute("SELECT count(*) FROM photos").fetchone()[0]
    finally:
        conn.close()


def _copies(folder, photo, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        shutil.copy(photo, folder / f"copy{i:03d}{photo.suffix}")


def test_a_full_catalogue_is_one_line_and_exit_74_and_keeps_what_was_committed(album, tmp_path, monkeypatch, chelsea):
    """SQLite's SQLITE_FULL for real, from ``PRAGMA max_page_count`` (the catalogue may not grow):
    60 copies of a catalogued photo (no inference) do not fit."""
    db = tmp_path / "library.db"
    assert run("index", album / "cats", "--db", db, "-q")[0] == 0
    _copies(album / "more", chelsea, 60)

    def no_room(db_path, **kw):
        conn = open_catalogue(db_path, **kw)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn

    with monkeypatch.context() as m:
        m.setattr(library_cli, "open_catalogue", no_room)
        rc, err = run("index", album, "--db", db, "-q")
        assert rc == EXIT_DISK_FULL == 74
        _one_line_about(err, db)
        assert _count(db) == 2  # the two cats committed before; the failed batch rolled back

        rc, err = run("tag", album / "cats/chelsea.png", "--db", db, "--add", "x" * 20000)  # a tag needing a page
        assert rc == EXIT_DISK_FULL
        _one_line_about(err, db)
    rc, err = run("index", album, "--db", db, "-q")  # space again: the run goes on
    assert rc == 1 and _count(db) == len(VISIBLE) + 1 + 60  # 1: the corrupt photo


# slow tier: a real tmpfs (root) filled up by real processes; the full catalogue above checks the
# one line and exit 74 of `wanwu index` faster, this one adds the mount point and `wanwu tag`
@pytest.mark.slow
def test_a_really_full_disk(tmpfs, album, chelsea):
    """The catalogue on a 2 MB tmpfs: once filled (a real ENOSPC, which SQLite reports as "disk is
    full" or, opening, as "disk I/O error"), `wanwu index` and `wanwu tag` say so in one line and
    exit 74; once space is freed, the next run goes on."""
    disk = tmpfs("2m")
    db = disk / "library.db"
    wanwu = [sys.executable, "-m", "wanwu.cli"]
    first = subprocess.run([*wanwu, "index", album / "cats", "--db", db, "-q"], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    _copies(album / "more", chelsea, 300)
    filler = disk / "filler"
    with open(filler, "wb") as f:  # leave 40 KB: the catalogue opens, then cannot grow
        f.write(b"\0" * (shutil.disk_usage(disk).free - 40 * 1024))
    proc = subprocess.run([*wanwu, "index", album, "--db", db, "-q"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 74, proc.stderr
    assert f"mounted at {disk}" in _one_line_about(proc.stderr, db)
    committed = _count(db)
    assert 2 <= committed < 2 + 300
    with open(filler, "ab", buffering=0) as f:  # now every byte
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    tag = [*wanwu, "tag", album / "cats/chelsea.png", "--add", "holiday", "--db", db]
    proc = subprocess.run(tag, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 74, proc.stderr
    assert f"mounted at {disk} (0 B free)" in _one_line_about(proc.stderr, db)
    os.remove(filler)
    assert _count(db) == committed
    again = subprocess.run([*wanwu, "index", album, "--db", db, "-q"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 1 and _count(db) == len(VISIBLE) + 1 + 300  # 1: the corrupt photo


@pytest.fixture
def served(album, index, app_clients):
    from wanwu.server.config import ServerConfig

    index([album])
    client = app_clients(ServerConfig.from_env(library=str(index.db)))
    items = client.get("/api/v1/library/search", params={"q": "", "limit": 200}).json()["items"]
    return client, items, index.db


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (errno.ENOSPC, 507, "disk_full"),
        (errno.EDQUOT, 507, "disk_full"),
        (errno.EACCES, 500, "thumbnail_cache_unwritable"),
    ],
)
def test_a_thumbnail_cache_that_cannot_be_written_is_the_servers_problem(
    served, monkeypatch, caplog, error, status, code
):
    client, items, db = served

    def refuse(path, data, **kw):
        raise OSError(error, os.strerror(error), str(path))

    monkeypatch.setattr("wanwu.library.thumbnails.write_atomic", refuse)
    monkeypatch.setattr("wanwu.server.library_routes._last_logged", {})
    with caplog.at_level(logging.ERROR):
        answers = [client.get(item["thumbnail_url"]) for item in items if item["tags"]]
    assert {r.status_code for r in answers} == {status}
    body = answers[0].json()["error"]
    assert body["code"] == code and "re-run wanwu index" not in body["message"]
    assert str(db.parent) not in body["message"]  # no server paths in answers; the log has them
    cache = str(db.with_name("library-thumbnails"))
    said = [r.getMessage() for r in caplog.records if cache in r.getMessage()]
    assert len(said) == 1, said  # once, not once per thumbnail
    if status == 507:
        assert "no space left on the disk mounted at" in said[0]


def test_a_gone_photo_is_still_410(served):
    client, items, _ = served
    item = next(i for i in items if i["tags"])
    os.remove(item["path"])
    r = client.get(item["thumbnail_url"])
    assert r.status_code == 410 and r.json()["error"]["code"] == "photo_gone"
