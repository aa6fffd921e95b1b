"""The photo catalogue: one SQLite database (stdlib ``sqlite3``, WAL), its versioned schema and
the migrations that bring an older file up to date, and the one-writer lock.

Readers (``wanwu search``, ``wanwu library``, ``wanwu serve --library``) open it read-only and
keep working while ``wanwu index`` writes: WAL lets readers see the last committed batch.
The schema is documented in ``docs/library.md``; change it only by appending to ``MIGRATIONS``.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from .. import settings
from ..errors import DiskFullError, LibraryBusyError, LibraryError
from .files import db_text, text_from_db

DEFAULT_NAME = "library.db"
ENV_VAR = settings.env_name("library")

# Each entry moves the schema from version i to i + 1 (``PRAGMA user_version``). Never edit a
# released step: append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE photos (
        id          INTEGER PRIMARY KEY,
        path        TEXT NOT NULL UNIQUE,     -- absolute, as walked
        size        INTEGER NOT NULL,         -- bytes
        mtime_ns    INTEGER NOT NULL,
        sha256      TEXT,                     -- content hash (NULL only while unknown)
        width       INTEGER,                  -- as displayed (EXIF rotation applied)
        height      INTEGER,
        taken       TEXT,                     -- EXIF DateTimeOriginal, ISO 8601
        camera      TEXT,                     -- EXIF Make + Model
        tagger      TEXT,                     -- model/precision/weights that made the tags
        indexed_at  REAL NOT NULL,            -- unix time
        error_code  TEXT,                     -- set when the file could not be classified
        error       TEXT
    );
    CREATE INDEX photos_sha256 ON photos(sha256);
    CREATE INDEX photos_size ON photos(size);
    CREATE TABLE tags (                      -- the model's top-k, best first
        photo_id    INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        rank        INTEGER NOT NULL,
        wnid        TEXT NOT NULL,
        score       REAL NOT NULL,
        PRIMARY KEY (photo_id, rank)
    ) WITHOUT ROWID;
    CREATE INDEX tags_wnid ON tags(wnid, score);
    CREATE TABLE user_tags (                 -- `wanwu tag --add/--remove`; survive re-indexing
        photo_id    INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        name        TEXT NOT NULL,            -- as the user typed it
        wnid        TEXT,                     -- the ImageNet class it names, if any
        removed     INTEGER NOT NULL DEFAULT 0,  -- 1: the user says this tag is wrong
        PRIMARY KEY (photo_id, name)
    ) WITHOUT ROWID;
    CREATE INDEX user_tags_wnid ON user_tags(wnid);
    """,
    """
    CREATE TABLE roots (                     -- what `wanwu index` was given, resolved: what is served
        path        TEXT PRIMARY KEY,         -- absolute, links resolved (a folder, or a file named directly)
        added_at    REAL NOT NULL             -- unix time
    ) WITHOUT ROWID;
    """,
    # people (wanwu.library.people): the faces found in each photo and the persons they belong to
    """
    ALTER TABLE photos ADD COLUMN faces INTEGER;  -- faces found; NULL: not looked for yet
    CREATE TABLE persons (
        id          INTEGER PRIMARY KEY,
        name        TEXT,                     -- NULL until the user names the person
        centroid    BLOB,                     -- mean descriptor of its faces (float32 x 128)
        forgotten   INTEGER NOT NULL DEFAULT 0   -- 1: `wanwu people forget`; its faces are never suggested
    );
    CREATE TABLE faces (
        id          INTEGER PRIMARY KEY,
        photo_id    INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        x REAL NOT NULL, y REAL NOT NULL, w REAL NOT NULL, h REAL NOT NULL,  -- box: 0-1 of the upright photo, x,y top-left
        landmarks   BLOB,                     -- 5 points (x, y), 0-1 (float32 x 10)
        descriptor  BLOB,                     -- float16 x 128; NULL once forgotten
        person_id   INTEGER REFERENCES persons(id) ON DELETE SET NULL,
        clustered   INTEGER NOT NULL DEFAULT 0,  -- 1: compared with the persons (wanwu.faces.cluster)
        forgotten   INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX faces_photo ON faces(photo_id);
    CREATE INDEX faces_person ON faces(person_id);
    CREATE INDEX faces_waiting ON faces(clustered, person_id);
    """,
    # issue 22: the pooled feature vector of the forward pass that tagged the photo (library/embeddings.py)
    """
    CREATE TABLE embeddings (
        photo_id    INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
        model       TEXT NOT NULL,            -- the tagger that made it; models never mix
        vector      BLOB NOT NULL,            -- int8, L2 direction only (embeddings.STORAGE)
        sharpness   REAL                      -- variance of the Laplacian of the model input
    );
    CREATE INDEX embeddings_model ON embeddings(model);
    CREATE TABLE embeddings_version (         -- bumped on every change: in-memory indexes key on it
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        n           INTEGER NOT NULL
    );
    INSERT INTO embeddings_version VALUES (1, 0);
    CREATE TRIGGER embeddings_ins AFTER INSERT ON embeddings BEGIN UPDATE embeddings_version SET n = n + 1; END;
    CREATE TRIGGER embeddings_upd AFTER UPDATE ON embeddings BEGIN UPDATE embeddings_version SET n = n + 1; END;
    CREATE TRIGGER embeddings_del AFTER DELETE ON embeddings BEGIN UPDATE embeddings_version SET n = n + 1; END;
    """,
    # issue 26: where the photo was taken, and the keywords other apps wrote (library/metadata.py)
    """
    ALTER TABLE photos ADD COLUMN latitude REAL;       -- EXIF GPS, decimal degrees, south negative
    ALTER TABLE photos ADD COLUMN longitude REAL;      -- west negative
    ALTER TABLE photos ADD COLUMN metadata_read INTEGER;  -- 1: GPS and the file's own keywords read; NULL: not yet
    ALTER TABLE photos ADD COLUMN sidecar_stamp TEXT;  -- its sidecars' size and mtime when their keywords were read
    CREATE TABLE keywords (                  -- other apps' keywords: the user's own, never wanwu's tags
        photo_id    INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        source      TEXT NOT NULL,            -- sidecar (photo.jpg.xmp, photo.xmp) | embedded (the photo's XMP/IPTC)
        name        TEXT NOT NULL,            -- the keyword; a hierarchy's leaf
        path        TEXT,                     -- the hierarchy, "|"-joined (Places|China|北京); NULL: flat
        PRIMARY KEY (photo_id, source, name)
    ) WITHOUT ROWID;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def default_db_path() -> Path:
    """``$WANWU_LIBRARY``, else ``$XDG_DATA_HOME/wanwu/library.db`` (``~/.local/share/...``)."""
    env = settings.env_value("library")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "wanwu" / DEFAULT_NAME


def resolve_db_path(db: str | os.PathLike | None) -> Path:
    return Path(db).expanduser().absolute() if db else default_db_path().absolute()


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the missing migrations in one transaction each; returns the version now."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise LibraryError(
            f"the catalogue has schema version {version}, newer than this wanwu knows ({SCHEMA_VERSION}); upgrade wanwu"
        )
    for step in range(version, SCHEMA_VERSION):
        with conn:
            conn.executescript("BEGIN;" + MIGRATIONS[step] + f"; PRAGMA user_version = {step + 1};")
            if step + 1 == 2:
                _backfill_roots(conn)
    return SCHEMA_VERSION


def _backfill_roots(conn: sqlite3.Connection) -> None:
    """A catalogue made before roots were recorded: its photos' top-most folders, resolved now,
    are taken as the folders it was indexed from (the next ``wanwu index`` adds its own)."""
    folders = sorted({os.path.dirname(p) for (p,) in conn.execute("SELECT path FROM photos")})
    top: list[str] = []
    for folder in folders:  # sorted: a folder comes right after its ancestors
        if not top or not (folder == top[-1] or folder.startswith(top[-1].rstrip(os.sep) + os.sep)):
            top.append(folder)
    record_roots(conn, top)


def record_roots(conn: sqlite3.Connection, roots: Iterable[str | os.PathLike]) -> tuple[str, ...]:
    """Add the resolved ``roots`` to the catalogue's roots (in the caller's transaction, if any);
    returns them resolved."""
    from .files import real_roots

    real = real_roots(roots)
    conn.executemany(
        "INSERT OR IGNORE INTO roots (path, added_at) VALUES (CAST(? AS TEXT), ?)",
        [(db_text(r), time.time()) for r in real],
    )
    return real


def catalogue_roots(conn: sqlite3.Connection) -> tuple[str, ...]:
    """Every folder (or file) the catalogue was indexed from, resolved."""
    return tuple(r[0] for r in conn.execute("SELECT path FROM roots"))


def _configure(conn: sqlite3.Connection) -> sqlite3.Connection:
    conn.row_factory = sqlite3.Row
    conn.text_factory = text_from_db  # file names that are not UTF-8 come back as they were
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 5000")  # a reader waits out a writer's checkpoint
    return conn


def require_catalogue(db: str | os.PathLike | None) -> Path:
    """The catalogue's path, or a ``LibraryError`` saying there is none and how to make one.
    Commands that only read or change an existing catalogue (``search``, ``tag``, ``people`` ...)
    call it before anything that would create a file (the lock, the folder, the database)."""
    path = resolve_db_path(db)
    if not path.is_file():
        raise LibraryError(
            f"no photo catalogue at {path}; make one with `wanwu index PHOTOS_FOLDER` (or point --db / {ENV_VAR} at it)"
        )
    return path


def open_catalogue(
    db: str | os.PathLike | None = None, *, readonly: bool = False, create: bool = True
) -> sqlite3.Connection:
    """Open (and for writers migrate, and create unless ``create`` is false) the catalogue.
    Readers never create a file: a missing catalogue is a ``LibraryError`` telling how to make
    one (``require_catalogue``), and so is a file that is not a catalogue."""
    if readonly or not create:
        require_catalogue(db)
    try:
        with full_disk_reported(resolve_db_path(db)):
            return _open(db, readonly=readonly)
    except sqlite3.DatabaseError as exc:
        raise LibraryError(
            f"{resolve_db_path(db)} is not a usable wanwu catalogue ({exc}); point --db / {ENV_VAR} at another file"
        ) from None


def _open(db: str | os.PathLike | None = None, *, readonly: bool = False) -> sqlite3.Connection:
    path = resolve_db_path(db)
    if readonly:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False)
        _configure(conn)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            conn.close()
            raise LibraryError(
                f"{path} has catalogue schema {version}, this wanwu reads {SCHEMA_VERSION}; "
                "run `wanwu index` once to migrate it"
            )
        return conn
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # explicit BEGIN/COMMIT
    _configure(conn)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a crash loses at most the last batch
    migrate(conn)
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: ``BEGIN IMMEDIATE`` (the write lock first, waiting up to the
    connection's busy timeout), ``COMMIT`` when the block ends, ``ROLLBACK`` when it raises —
    every statement of the block or none. (With ``isolation_level=None`` a plain ``with conn:``
    issues no BEGIN, so each statement would commit on its own.)"""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def full_disk_error(db_path: Path) -> DiskFullError:
    """The one line a full disk under the catalogue deserves (and its exit status)."""
    from ..atomic import describe_disk, free_bytes

    where = describe_disk(db_path.parent)
    tmp = tempfile.gettempdir()  # SQLite's temporary tables live there
    tmp_free, db_free = free_bytes(tmp), free_bytes(db_path.parent)
    try:
        elsewhere = os.stat(tmp).st_dev != os.stat(db_path.parent).st_dev
    except OSError:
        elsewhere = False
    if elsewhere and tmp_free is not None and db_free is not None and tmp_free < db_free:
        where = f"{describe_disk(tmp)} (temporary files, {tmp})"
    return DiskFullError(
        f"not enough space on {where} for the catalogue {db_path}; nothing committed was lost: "
        "free some space and run the same command again to go on"
    )


@contextmanager
def full_disk_reported(db_path: Path) -> Iterator[None]:
    """Turn "database or disk is full" (and ENOSPC/EDQUOT) into ``full_disk_error``; also SQLite's
    "disk I/O error" when the catalogue's disk has less than 1 MB left (a full disk fails the
    shared-memory file or the WAL that way, not as SQLITE_FULL)."""
    from ..atomic import free_bytes, is_disk_full

    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        if is_disk_full(exc):
            raise full_disk_error(db_path) from None
        if isinstance(exc, sqlite3.OperationalError) and "disk I/O error" in str(exc):
            free = free_bytes(db_path.parent)
            if free is not None and free < 1 << 20:
                raise full_disk_error(db_path) from None
        raise


@contextmanager
def writer_lock(db_path: Path) -> Iterator[None]:
    """One writer at a time: an exclusive ``flock`` on ``library.db.lock`` beside the catalogue,
    released when the process ends however it ends. Readers take no lock. The lock is named after
    the resolved file, so a link to the catalogue (``--db link.db``) takes the same lock."""
    import fcntl

    db_path = Path(os.path.realpath(db_path))
    db_path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = db_path.with_name(db_path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise LibraryBusyError(
                f"another wanwu process (pid {holder}) is writing {db_path}; wait for it to "
                "finish (search and serve keep working meanwhile)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def wanwu_files(db_path: Path) -> set[str]:
    """The catalogue's own files (database, WAL, lock, thumbnails folder): never indexed."""
    name = db_path.name
    return {str(db_path.parent / n) for n in (name, name + "-wal", name + "-shm", name + ".lock")}


def thumbnails_dir(db_path: Path) -> Path:
    """Thumbnails are cached beside the catalogue, never beside the photos."""
    return db_path.with_name(db_path.stem + "-thumbnails")


def prune_thumbnails(conn: sqlite3.Connection, db_path: str | Path) -> int:
    """Remove the cached thumbnails and face crops of photos gone from the catalogue (deleted, or
    changed: a new hash); how many. Without a thumbnail cache (the Library view never opened) the
    catalogue's hashes are not read. ``wanwu index`` runs it after a run that was not interrupted."""
    from .thumbnails import prune

    cache = thumbnails_dir(Path(db_path))
    if not cache.is_dir():
        return 0
    keep = {row[0] for row in conn.execute("SELECT DISTINCT sha256 FROM photos WHERE sha256 IS NOT NULL")}
    return prune(cache, keep)


def read_snapshot(conn: sqlite3.Connection) -> None:
    """Begin a read transaction on ``conn``: every read until it ends sees the catalogue as it is
    now, while ``wanwu index`` goes on committing (a listing streamed in pages stays one listing)."""
    conn.execute("BEGIN")


def wait_for_writers(conn: sqlite3.Connection, timeout_ms: int) -> None:
    """Let ``conn`` wait up to ``timeout_ms`` for another writer's lock before ``database is
    locked`` (a connection waits 5 s: what a reader needs to wait out a checkpoint)."""
    conn.execute(f"PRAGMA busy_timeout = {int(timeout_ms)}")
