"""``Indexer``: bring the catalogue up to date with photo folders, doing as little as possible.

The incremental rules (docs/library.md):

1. walk: one ``stat`` per file. A photo whose path, size and mtime match its row and whose
   tags come from the current tagger is unchanged: nothing is read.
2. resolve, without inference: a changed file (other size/mtime) whose content hash equals
   the stored one only gets its stat updated; a new path whose hash equals a catalogued photo
   that has vanished is a move (the row keeps its id, tags and user tags, only the path
   changes); equal to a photo still present, it is a copy (tags and embedding copied). Files are hashed here
   only when a catalogued photo has the same size.
3. delete: catalogued photos under the walked roots that were not seen leave the catalogue
   (only after a complete walk).
4. classify the rest (new, changed, tagged by another model, tagged without an embedding, or
   everything with ``force``)
   through the ``ClassifyBackend`` (the only step that differs with ``--ray``), writing results
   in batches of ``commit_every`` or every ``commit_seconds``.

Writes are queued and written in short transactions (``BEGIN IMMEDIATE`` ... ``COMMIT``, a
batch of ``commit_every`` results or ``commit_seconds``): the write lock is held only while a
batch is written, never while the indexer hashes files or waits for inference, so ``wanwu tag``
gets in between two batches. ``on_written`` (sidecars) runs after its batch is committed, outside
any transaction.

A stop request (``request_stop``; the CLI calls it on SIGINT/SIGTERM) ends the run at the next
result: the queued batch is committed, so the catalogue is consistent and the next run goes on
from there. Files that failed keep their row (with the reason) and are retried when they change.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol, Sequence

from ..atomic import is_disk_full
from ..errors import ImageInputError
from ..walk import SkipReport
from .backend import Classified, ClassifyBackend, file_sha256
from .catalogue import record_roots, transaction
from .embeddings import encode
from .files import db_text
from .metadata import Embedded, read_embedded, sidecar_keywords
from .walker import FileEntry, walk
from .xmp import Keyword, sidecar_stamp

# the summary line shows photos/s only for runs that classified at least this many photos: below
# it the rate measures starting the model and one file's luck (one non-photo read "400.5 photos/s")
RATE_MIN_PHOTOS = 10


@dataclass
class IndexSummary:
    new: int = 0
    changed: int = 0
    retagged: int = 0  # tagged by another model (or --force) before
    embedded: int = 0  # tagged before embeddings were stored: their one forward pass now
    moved: int = 0
    copied: int = 0
    deleted: int = 0
    failed: int = 0  # failed in this run, or failed before and unchanged since (``still_failing``)
    still_failing: int = 0  # unchanged files that failed in an earlier run: not retried, still counted
    unchanged: int = 0
    keywords_read: int = 0  # photos whose sidecar keywords were (re)read: their sidecars changed
    metadata_read: int = 0  # photos catalogued before GPS and keywords were kept: read now, no model
    classified: int = 0  # files that went through the model
    seconds: float = 0.0
    classify_seconds: float = 0.0
    interrupted: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)  # those of this run
    sidecar_problems: list[tuple[str, str]] = field(default_factory=list)  # (photo, why its sidecar was not read)
    skipped: SkipReport = field(default_factory=SkipReport)

    @property
    def rate(self) -> float:
        return self.classified / self.classify_seconds if self.classify_seconds > 0 else 0.0

    def line(self) -> str:
        parts = [
            f"{getattr(self, k)} {k}"
            for k in ("new", "changed", "retagged", "moved", "copied", "deleted", "failed", "unchanged")
        ]
        if self.embedded:
            parts.insert(3, f"{self.embedded} embedded")
        if self.still_failing:
            parts[parts.index(f"{self.failed} failed")] += f" ({self.still_failing} unchanged since an earlier run)"
        for n, what in ((self.keywords_read, "sidecar(s) read"), (self.metadata_read, "metadata read")):
            if n:
                parts.append(f"{n} {what}")
        rate = f", {self.rate:.1f} photos/s" if self.classified - self.failed >= RATE_MIN_PHOTOS else ""
        return f"{', '.join(parts)} in {self.seconds:.1f} s ({self.classified} classified{rate})"

    def to_dict(self) -> dict:
        keys: tuple[str, ...] = ("new", "changed", "retagged", "embedded", "moved", "copied", "deleted")
        keys += ("failed", "still_failing", "unchanged", "classified", "keywords_read", "metadata_read")
        out: dict = {k: getattr(self, k) for k in keys}
        out.update(
            seconds=round(self.seconds, 3),
            photos_per_second=round(self.rate, 2),
            interrupted=self.interrupted,
            failures=[{"path": p, "error": e} for p, e in self.failures],
            sidecar_problems=[e for _, e in self.sidecar_problems],
            skipped=self.skipped.lines(),
        )
        return out


@dataclass
class _Todo:
    entry: FileEntry
    kind: str  # new | changed | retagged | embedded
    photo_id: int | None = None
    sha256: str | None = None


class ProgressSink(Protocol):
    """What the indexer reports as it goes (the CLI draws a bar on stderr; tests pass nothing)."""

    def scanning(self, seen: int) -> None: ...

    def start(self, total: int) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def close(self) -> None: ...


class Progress:
    """The ``ProgressSink`` that reports nowhere."""

    def scanning(self, seen: int) -> None: ...

    def start(self, total: int) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def close(self) -> None: ...


class Indexer:
    def __init__(
        self,
        conn: sqlite3.Connection,
        tagger: str,
        make_backend: Callable[[], ClassifyBackend],
        *,
        force: bool = False,
        exclude: Iterable[str] = (),
        commit_every: int = 64,
        commit_seconds: float = 1.0,
        on_written: Callable[[int], None] | None = None,
        progress: ProgressSink | None = None,
        embed: bool = True,
    ):
        self.conn = conn
        self.tagger = tagger
        self.make_backend = make_backend
        self.force = force
        self.exclude = set(exclude)
        self.commit_every = commit_every
        self.commit_seconds = commit_seconds
        self.on_written = on_written  # called with a photo id after its row is final (sidecars)
        self.progress: ProgressSink = progress or Progress()
        self.embed = embed  # photos tagged by this tagger without its embedding are run once more
        self._stop = threading.Event()
        self._backend: ClassifyBackend | None = None
        self._ops: list[Callable[[sqlite3.Connection], int | None]] = []
        self._last_commit = time.monotonic()
        self.folders: set[str] = set()  # the folders walked (stale temporary files are looked for there)
        self._sidecars: list[str] = []  # photos whose sidecars changed: their keywords are read again

    def request_stop(self) -> None:
        """Finish the current result, commit, and return (safe to call from a signal handler)."""
        self._stop.set()
        backend = self._backend
        if backend is not None and hasattr(backend, "stop"):
            backend.stop()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- writes: queued, then written in one short transaction ---------------------------
    def _queue(self, op: Callable[[sqlite3.Connection], int | None]) -> None:
        """Queue one photo's writes (``op`` returns the id to announce to ``on_written``)."""
        self._ops.append(op)
        if len(self._ops) >= self.commit_every or time.monotonic() - self._last_commit >= self.commit_seconds:
            self._flush()

    def _flush(self) -> None:
        """Write the queued changes in one transaction, then announce them (sidecars)."""
        self._last_commit = time.monotonic()
        if not self._ops:
            return
        with transaction(self.conn) as c:
            ids = [op(c) for op in self._ops]
        self._ops.clear()
        if self.on_written is not None:
            for photo_id in ids:
                if photo_id is not None:
                    self.on_written(photo_id)

    # -- the run ----------------------------------------------------------------------------
    def run(self, roots: Sequence[str]) -> IndexSummary:
        s = IndexSummary()
        t0 = time.monotonic()
        try:
            with transaction(self.conn) as c:
                record_roots(c, roots)  # what the server may serve from (docs/library.md)
            todo, walked = self._scan(roots, s)
            if walked and not self.stopping:
                todo = self._resolve(todo, s)
            if walked and not self.stopping:
                self._delete_missing(s)
            self._flush()
            if todo and not self.stopping:
                self._classify(todo, s)
            self._flush()
            if walked and not self.stopping:
                self._read_metadata(s)
            if not self.stopping:
                self._read_sidecars(s)
            self._flush()
        except BaseException as exc:
            if self._ops and not is_disk_full(exc):
                try:  # a second Ctrl-C, say: what is queued is consistent, keep it
                    self._flush()
                except (sqlite3.Error, OSError):
                    pass
            raise
        finally:
            self._ops.clear()
            for table in ("seen", "missing"):
                try:
                    self.conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
                except sqlite3.Error:
                    pass
            self.progress.close()
        s.interrupted = self.stopping
        s.seconds = time.monotonic() - t0
        return s

    def _scan(self, roots: Sequence[str], s: IndexSummary) -> tuple[list[_Todo], bool]:
        """Walk and compare with the catalogue. Returns what needs work and whether the walk ended."""
        c = self.conn
        c.execute("CREATE TEMP TABLE IF NOT EXISTS seen (path TEXT PRIMARY KEY) WITHOUT ROWID")
        c.execute("DELETE FROM temp.seen")
        todo: list[_Todo] = []
        seen: list[tuple[str | bytes]] = []
        n = 0
        for entry in walk(roots, self.exclude, s.skipped):
            if self.stopping:
                return todo, False
            n += 1
            if n % 500 == 0:
                self.progress.scanning(n)
            seen.append((db_text(entry.path),))
            self.folders.add(os.path.dirname(entry.path))
            if len(seen) >= 1000:
                c.executemany("INSERT OR IGNORE INTO temp.seen VALUES (CAST(? AS TEXT))", seen)
                seen.clear()
            row = c.execute(
                "SELECT id, size, mtime_ns, sha256, tagger, error_code, sidecar_stamp, "
                "(SELECT model FROM embeddings WHERE photo_id = photos.id) AS embedded_by "
                "FROM photos WHERE path = CAST(? AS TEXT)",
                (db_text(entry.path),),
            ).fetchone()
            stamp = sidecar_stamp(entry.path)
            if stamp != ((row["sidecar_stamp"] or "") if row is not None else ""):
                self._sidecars.append(entry.path)
            if row is None:
                todo.append(_Todo(entry, "new"))
            elif self.force:
                todo.append(_Todo(entry, "retagged", row["id"], row["sha256"]))
            elif row["size"] != entry.size or row["mtime_ns"] != entry.mtime_ns:
                todo.append(_Todo(entry, "changed", row["id"], row["sha256"]))
            elif row["tagger"] != self.tagger and row["error_code"] is None:
                todo.append(_Todo(entry, "retagged", row["id"], row["sha256"]))
            elif self.embed and row["error_code"] is None and row["embedded_by"] != self.tagger:
                todo.append(_Todo(entry, "embedded", row["id"], row["sha256"]))
            elif row["error_code"] is not None:  # retried when it changes; until then it still fails
                s.failed += 1
                s.still_failing += 1
            else:
                s.unchanged += 1
        c.executemany("INSERT OR IGNORE INTO temp.seen VALUES (CAST(? AS TEXT))", seen)
        self.progress.scanning(n)
        self._find_missing(roots)
        return todo, True

    def _find_missing(self, roots: Sequence[str]) -> None:
        """Catalogued photos under ``roots`` that the walk did not see (moved or deleted)."""
        c = self.conn
        c.execute("CREATE TEMP TABLE IF NOT EXISTS missing (id INTEGER PRIMARY KEY, sha256 TEXT)")
        c.execute("DELETE FROM temp.missing")
        for root in roots:
            path = os.path.abspath(os.path.expanduser(root))
            args: tuple[object, ...]
            if os.path.isdir(path):
                prefix = os.fsencode(path.rstrip(os.sep) + os.sep)  # bytes: names need not be UTF-8
                where, args = "substr(CAST(path AS BLOB), 1, ?) = ?", (len(prefix), prefix)
            else:
                where, args = "path = CAST(? AS TEXT)", (db_text(path),)
            c.execute(
                f"INSERT OR IGNORE INTO temp.missing SELECT id, sha256 FROM photos WHERE {where} "
                "AND path NOT IN (SELECT path FROM temp.seen)",
                args,
            )
        c.execute("CREATE INDEX IF NOT EXISTS temp.missing_sha ON missing(sha256)")

    def _resolve(self, todo: list[_Todo], s: IndexSummary) -> list[_Todo]:
        """Touched, moved and copied files: recognised by content hash, no inference. Files are
        hashed and looked up outside any transaction; only the writes are queued."""
        c = self.conn
        rest: list[_Todo] = []
        for t in todo:
            if self.stopping:
                rest.append(t)
                continue
            e = t.entry
            if t.kind == "changed" and t.sha256:
                sha = _hash_or_none(e.path)
                if sha == t.sha256:
                    row = c.execute("SELECT tagger, error_code FROM photos WHERE id = ?", (t.photo_id,)).fetchone()
                    if row["tagger"] == self.tagger and row["error_code"] is None:
                        self._queue(_touch(t.photo_id, e))
                        s.unchanged += 1
                        continue
                rest.append(t)
                continue
            if (
                t.kind != "new"
                or c.execute(
                    "SELECT 1 FROM photos WHERE size = ? AND sha256 IS NOT NULL AND error_code IS NULL AND tagger = ? LIMIT 1",
                    (e.size, self.tagger),
                ).fetchone()
                is None
            ):
                rest.append(t)
                continue
            sha = _hash_or_none(e.path)
            gone = c.execute(
                "SELECT p.id FROM temp.missing m JOIN photos p ON p.id = m.id WHERE m.sha256 = ? AND p.tagger = ? "
                "AND p.error_code IS NULL LIMIT 1",
                (sha, self.tagger),
            ).fetchone()
            if gone is not None:
                c.execute("DELETE FROM temp.missing WHERE id = ?", (gone["id"],))  # temp: no write lock
                self._queue(_move(gone["id"], e))
                s.moved += 1
                continue
            twin = c.execute(
                "SELECT * FROM photos WHERE sha256 = ? AND tagger = ? AND error_code IS NULL LIMIT 1",
                (sha, self.tagger),
            ).fetchone()
            if twin is None:
                rest.append(t)
                continue
            self._queue(_copy(twin, e, sha, self.tagger))
            s.copied += 1
        return rest

    def _read_metadata(self, s: IndexSummary) -> None:
        """GPS and the file's own keywords of photos catalogued before they were kept (or by a
        backend that does not read them), read from the file: no model (as embeddings and faces
        are backfilled). Only photos seen in this walk, a page at a time."""
        last = 0
        while not self.stopping:
            rows = self.conn.execute(
                "SELECT p.id, p.path FROM photos p JOIN temp.seen s ON s.path = p.path "
                "WHERE p.metadata_read IS NULL AND p.error_code IS NULL AND p.id > ? ORDER BY p.id LIMIT 500",
                (last,),
            ).fetchall()
            if not rows:
                return
            for row in rows:
                if self.stopping:
                    return
                self._queue(_metadata(row["id"], read_embedded(row["path"])))
                s.metadata_read += 1
            last = rows[-1]["id"]

    def _read_sidecars(self, s: IndexSummary) -> None:
        """The keywords other apps wrote in the sidecars that changed since they were last read
        (``sidecar_stamp``), replacing those read before; no model."""
        while self._sidecars and not self.stopping:
            path = self._sidecars.pop()
            stamp = sidecar_stamp(path)  # now: a sidecar written meanwhile (--write-xmp) is read as it is
            keywords, problems = sidecar_keywords(path)
            s.sidecar_problems += [(path, f"{p}; its keywords were not read") for p in problems]
            self._queue(_sidecar_keywords(path, stamp, keywords))
            s.keywords_read += 1

    def _delete_missing(self, s: IndexSummary) -> None:
        self._flush()
        with transaction(self.conn) as c:
            s.deleted = c.execute("DELETE FROM photos WHERE id IN (SELECT id FROM temp.missing)").rowcount

    def _classify(self, todo: list[_Todo], s: IndexSummary) -> None:
        by_path = {t.entry.path: t for t in todo}
        self.progress.start(len(todo))
        backend = self._backend = self.make_backend()
        if self.stopping and hasattr(backend, "stop"):  # asked to stop while the model loaded
            backend.stop()
        t0 = time.monotonic()
        try:
            for item in backend.classify(t.entry.path for t in todo):
                t = by_path.pop(item.path, None)
                if t is None:
                    continue
                self._store(t, item, s)
                s.classified += 1
                self.progress.advance()
                if self.stopping:
                    break
        finally:
            s.classify_seconds = time.monotonic() - t0
            backend.close()
            self._backend = None
        self._flush()

    def _store(self, t: _Todo, item: Classified, s: IndexSummary) -> None:
        e, r = t.entry, item.result
        if r.error is not None:  # counted once: kinds are counted only for photos that worked
            s.failed += 1
            s.failures.append((e.path, r.error.message))
        else:
            setattr(s, t.kind, getattr(s, t.kind) + 1)
        self._queue(_result(e, item, self.tagger, t.kind))


# --- the writes, each a function of the connection run inside ``Indexer._flush``'s transaction
def _touch(photo_id: int | None, e: FileEntry) -> Callable[[sqlite3.Connection], None]:
    def op(c: sqlite3.Connection) -> None:
        c.execute("UPDATE photos SET size = ?, mtime_ns = ? WHERE id = ?", (e.size, e.mtime_ns, photo_id))

    return op


def _move(photo_id: int, e: FileEntry) -> Callable[[sqlite3.Connection], int]:
    def op(c: sqlite3.Connection) -> int:
        c.execute(
            "UPDATE photos SET path = CAST(? AS TEXT), size = ?, mtime_ns = ?, indexed_at = ? WHERE id = ?",
            (db_text(e.path), e.size, e.mtime_ns, time.time(), photo_id),
        )
        return photo_id

    return op


def _copy(twin: sqlite3.Row, e: FileEntry, sha: str | None, tagger: str) -> Callable[[sqlite3.Connection], int]:
    def op(c: sqlite3.Connection) -> int:
        new_id = c.execute(
            "INSERT INTO photos (path, size, mtime_ns, sha256, width, height, taken, camera, tagger, indexed_at, "
            "latitude, longitude, metadata_read) VALUES (CAST(? AS TEXT), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                db_text(e.path),
                e.size,
                e.mtime_ns,
                sha,
                twin["width"],
                twin["height"],
                twin["taken"],
                twin["camera"],
                tagger,
                time.time(),
                twin["latitude"],
                twin["longitude"],
                twin["metadata_read"],
            ),
        ).fetchone()[0]
        c.execute(  # the same bytes: the same embedded keywords (its own sidecars are read as any)
            "INSERT INTO keywords (photo_id, source, name, path) SELECT ?, source, name, path FROM keywords "
            "WHERE photo_id = ? AND source = 'embedded'",
            (new_id, twin["id"]),
        )
        c.execute(
            "INSERT INTO tags (photo_id, rank, wnid, score) SELECT ?, rank, wnid, score FROM tags WHERE photo_id = ?",
            (new_id, twin["id"]),
        )
        c.execute(
            "INSERT INTO embeddings (photo_id, model, vector, sharpness) SELECT ?, model, vector, sharpness "
            "FROM embeddings WHERE photo_id = ?",
            (new_id, twin["id"]),
        )
        return new_id

    return op


def _result(e: FileEntry, item: Classified, tagger: str, kind: str) -> Callable[[sqlite3.Connection], int]:
    r, facts = item.result, item.facts

    def op(c: sqlite3.Connection) -> int:
        photo_id = c.execute(
            "INSERT INTO photos (path, size, mtime_ns, sha256, width, height, taken, camera, tagger, indexed_at, "
            "error_code, error, latitude, longitude, metadata_read) "
            "VALUES (CAST(? AS TEXT), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS TEXT), ?, ?, ?) "
            "ON CONFLICT(path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, "
            "sha256 = excluded.sha256, width = excluded.width, height = excluded.height, taken = excluded.taken, "
            "camera = excluded.camera, tagger = excluded.tagger, indexed_at = excluded.indexed_at, "
            "error_code = excluded.error_code, error = excluded.error, latitude = excluded.latitude, "
            "longitude = excluded.longitude, metadata_read = excluded.metadata_read RETURNING id",
            (
                db_text(e.path),
                e.size,
                e.mtime_ns,
                facts.sha256 if facts else None,
                r.width,
                r.height,
                facts.taken if facts else None,
                facts.camera if facts else None,
                tagger,
                time.time(),
                r.error.code if r.error is not None else None,
                db_text(r.error.message) if r.error is not None else None,  # it may name the file
                facts.latitude if facts else None,
                facts.longitude if facts else None,
                1 if facts and facts.keywords is not None else None,  # None: read later, without the model
            ),
        ).fetchone()[0]
        if facts and facts.keywords is not None:
            _replace_keywords(c, photo_id, "embedded", facts.keywords)
        c.execute("DELETE FROM tags WHERE photo_id = ?", (photo_id,))
        _store_embedding(c, photo_id, tagger, item)
        if r.error is None:
            c.executemany(
                "INSERT INTO tags (photo_id, rank, wnid, score) VALUES (?, ?, ?, ?)",
                [(photo_id, rank, p.wnid, p.score) for rank, p in enumerate(r.predictions)],
            )
            if item.faces is not None:  # found in the same decode (faces extra)
                from .people import replace_faces

                replace_faces(c, photo_id, item.faces)
            elif kind == "changed":  # other content: its faces are looked for again
                c.execute("DELETE FROM faces WHERE photo_id = ?", (photo_id,))
                c.execute("UPDATE photos SET faces = NULL WHERE id = ?", (photo_id,))
        return photo_id

    return op


def _metadata(photo_id: int, meta: Embedded) -> Callable[[sqlite3.Connection], None]:
    def op(c: sqlite3.Connection) -> None:
        c.execute(
            "UPDATE photos SET latitude = ?, longitude = ?, metadata_read = 1, taken = coalesce(taken, ?), "
            "camera = coalesce(camera, ?) WHERE id = ?",
            (meta.latitude, meta.longitude, meta.taken, meta.camera, photo_id),
        )
        _replace_keywords(c, photo_id, "embedded", meta.keywords)

    return op


def _sidecar_keywords(path: str, stamp: str, keywords: list[Keyword]) -> Callable[[sqlite3.Connection], None]:
    def op(c: sqlite3.Connection) -> None:
        row = c.execute("SELECT id FROM photos WHERE path = CAST(? AS TEXT)", (db_text(path),)).fetchone()
        if row is None:  # not catalogued (the run stopped before it was): read next time
            return
        _replace_keywords(c, row[0], "sidecar", keywords)
        c.execute("UPDATE photos SET sidecar_stamp = ? WHERE id = ?", (stamp, row[0]))

    return op


def _replace_keywords(c: sqlite3.Connection, photo_id: int, source: str, keywords: list[Keyword]) -> None:
    c.execute("DELETE FROM keywords WHERE photo_id = ? AND source = ?", (photo_id, source))
    c.executemany(
        "INSERT OR IGNORE INTO keywords (photo_id, source, name, path) VALUES (?, ?, ?, ?)",
        [(photo_id, source, k.name, k.path) for k in keywords],
    )


def _store_embedding(c: sqlite3.Connection, photo_id: int, tagger: str, item: Classified) -> None:
    """The photo's embedding from the forward pass that tagged it; none (a failed file, an engine
    without features) removes a stale one."""
    if item.embedding is None or item.result.error is not None:
        c.execute("DELETE FROM embeddings WHERE photo_id = ?", (photo_id,))
        return
    c.execute(
        "INSERT INTO embeddings (photo_id, model, vector, sharpness) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(photo_id) DO UPDATE SET model = excluded.model, vector = excluded.vector, "
        "sharpness = excluded.sharpness",
        (photo_id, tagger, encode(item.embedding), item.sharpness),
    )


def _hash_or_none(path: str) -> str | None:
    try:
        return file_sha256(path)
    except (OSError, ImageInputError):  # gone, or no longer a regular file
        return None
