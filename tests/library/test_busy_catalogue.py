"""The catalogue shared between a running ``wanwu index`` and the user's ``wanwu tag``: the
indexer holds the write lock only while it writes a batch (never while it hashes, waits for
inference or writes sidecars), so a tag gets in within a second and never fails with
"database is locked"; and every multi-statement change is one transaction."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from wanwu.library import names, usertags
from wanwu.library.backend import LocalBackend
from wanwu.library.catalogue import open_catalogue, transaction
from wanwu.library.indexer import Indexer


def _can_write(db) -> bool:
    """Whether another connection gets the write lock right now (no waiting)."""
    other = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


def test_the_indexer_holds_no_write_lock_while_it_waits_for_inference_or_writes_sidecars(album, classifier, tmp_path):
    db = tmp_path / "library.db"
    conn = open_catalogue(db)
    free_while_classifying: list[bool] = []
    free_while_announcing: list[bool] = []

    class Watched(LocalBackend):
        def classify(self, paths):
            for answer in super().classify(paths):
                free_while_classifying.append(_can_write(db))
                yield answer

    def on_written(photo_id: int) -> None:  # where sidecars are written
        free_while_announcing.append(not conn.in_transaction and _can_write(db))

    summary = Indexer(conn, "t", lambda: Watched(classifier, 5, batch_size=2), on_written=on_written).run([str(album)])
    conn.close()
    assert summary.classified >= 8 and free_while_classifying and all(free_while_classifying)
    assert len(free_while_announcing) == summary.classified and all(free_while_announcing)


def test_tags_get_in_within_a_second_while_a_real_index_runs(tmp_path, photos):
    """A real ``wanwu index`` subprocess (960 photos, with sidecars) and meanwhile tags through the
    library and through ``wanwu tag`` processes: every one lands, none is refused. The
    index is then stopped with Ctrl-C (SIGINT), so the test takes the same time on any machine."""
    root, db = tmp_path / "many", tmp_path / "library.db"
    originals = tmp_path / "originals"
    originals.mkdir()
    sources = [shutil.copy(p, originals / p.name) for p in sorted(photos.values())]
    for i in range(960):
        src = sources[i % len(sources)]
        folder = root / f"roll{i % 6}"
        folder.mkdir(parents=True, exist_ok=True)
        os.link(src, folder / f"{i:04d}{os.path.splitext(src)[1]}")  # same bytes, no disk used
    index = subprocess.Popen(
        [sys.executable, "-m", "wanwu.cli", "index", str(root), "--db", str(db), "--write-xmp", "--batch-size", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        catalogued: list[str] = []
        while len(catalogued) < 12 and index.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            if db.exists():
                try:
                    reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                    catalogued = [r[0] for r in reader.execute("SELECT path FROM photos ORDER BY id")]
                    reader.close()
                except sqlite3.OperationalError:
                    pass  # not created yet
        assert index.poll() is None and len(catalogued) >= 12, "the index ended before the tags could race it"

        conn = open_catalogue(db)  # a writer connection, as `wanwu tag` opens it
        raced, tagged = 0, []
        for i in range(6):
            path, running = catalogued[2 * i], index.poll() is None
            outcome = usertags.apply(conn, path, [f"mine{i}"], [])  # default 5 s busy timeout: no lock-out
            assert outcome.ok, outcome.message
            tagged.append((path, f"mine{i}"))
            path = catalogued[2 * i + 1]
            cli = subprocess.run(
                [sys.executable, "-m", "wanwu.cli", "tag", path, "--db", str(db), "--add", f"cli{i}", "--write-xmp"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert cli.returncode == 0 and "locked" not in cli.stderr, cli.stderr
            tagged.append((path, f"cli{i}"))
            raced += running and index.poll() is None
        conn.close()
        index.send_signal(signal.SIGINT)
        out, err = index.communicate(timeout=120)
    finally:
        if index.poll() is None:
            index.kill()
            index.wait()
    assert index.returncode in (0, 130), err
    assert raced >= 3, f"only {raced} rounds of tags raced the index; the test proves little"
    check = sqlite3.connect(db)
    landed = set(check.execute("SELECT p.path, u.name FROM user_tags u JOIN photos p ON p.id = u.photo_id"))
    check.close()
    assert set(tagged) <= landed


class _FailsOnWrite:
    """A catalogue connection on which the n-th data-changing statement fails, as a full disk
    or an I/O error would make it fail between two statements."""

    def __init__(self, conn: sqlite3.Connection, n: int):
        self.conn, self.n, self.writes = conn, n, 0

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def execute(self, sql: str, *args):
        if sql.lstrip().split()[0].upper() in ("INSERT", "DELETE", "UPDATE"):
            self.writes += 1
            if self.writes == self.n:
                raise sqlite3.OperationalError("disk I/O error (simulated)")
        return self.conn.execute(sql, *args)


def test_a_tag_interrupted_between_statements_changes_nothing(album, index):
    index([album])
    conn = open_catalogue(index.db)
    path = str(album / "kitchen/coffee.png")
    (pid,) = conn.execute("SELECT id FROM photos WHERE path = ?", (path,)).fetchone()
    model_tag = names.label(conn.execute("SELECT wnid FROM tags WHERE photo_id = ? AND rank = 0", (pid,)).fetchone()[0])
    # writes: DELETE (an own tag of that name), INSERT (the model's tag marked removed), then the
    # addition's DELETE + INSERT: the third fails, after the removal and before the addition
    flaky = _FailsOnWrite(conn, 3)
    with pytest.raises(sqlite3.OperationalError, match="simulated"):
        usertags.apply(flaky, path, ["my coffee"], [model_tag])  # type: ignore[arg-type]
    assert flaky.writes == 3
    assert not conn.in_transaction
    assert conn.execute("SELECT count(*) FROM user_tags").fetchone()[0] == 0  # neither change
    outcome = usertags.apply(conn, path, ["my coffee"], [model_tag])  # and it works when nothing fails
    assert outcome.ok and {r[0] for r in conn.execute("SELECT name FROM user_tags")} == {"my coffee", model_tag}
    conn.close()


def test_transaction_commits_all_or_nothing(tmp_path):
    conn = open_catalogue(tmp_path / "library.db")
    with pytest.raises(RuntimeError), transaction(conn):
        conn.execute("INSERT INTO photos (path, size, mtime_ns, indexed_at) VALUES ('/a', 1, 1, 0)")
        raise RuntimeError("between two statements")
    assert not conn.in_transaction and conn.execute("SELECT count(*) FROM photos").fetchone()[0] == 0
    with transaction(conn):
        conn.execute("INSERT INTO photos (path, size, mtime_ns, indexed_at) VALUES ('/a', 1, 1, 0)")
        conn.execute("INSERT INTO photos (path, size, mtime_ns, indexed_at) VALUES ('/b', 1, 1, 0)")
    assert conn.execute("SELECT count(*) FROM photos").fetchone()[0] == 2
    conn.close()
