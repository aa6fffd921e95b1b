"""The photo catalogue: one SQLite database (stdlib ``sqlite3``, WAL), its versioned schema and
the migrations that bring an older file up to date, and the one-writer lock.

Readers (``wanwu search``, ``wanwu library``, ``wanwu serve --library``) open it read-only and
keep working while ``wanwu index`` writes: WAL lets readers see the last committed batch.
The schema is documented in ``docs/library.md``; change it only by appending to ``MIGRATIONS``.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import EXIT_RETRY, WanwuError

DEFAULT_NAME = "library.db"
ENV_VAR = "WANWU_LIBRARY"

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
)
SCHEMA_VERSION = len(MIGRATIONS)


class LibraryError(WanwuError):
    code = "library_error"
    http_status = 409


class LibraryBusyError(LibraryError):
    code = "library_busy"
    exit_status = EXIT_RETRY  # not 1 ("some files failed"): nothing was tried; run it again later
    summary = "another process is writing the photo catalogue"


def default_db_path() -> Path:
    """``$WANWU_LIBRARY``, else ``$XDG_DATA_HOME/wanwu/library.db`` (``~/.local/share/...``)."""
    env = os.environ.get(ENV_VAR)
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
    return SCHEMA_VERSION


def _configure(conn: sqlite3.Connection) -> sqlite3.Connection:
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 5000")  # a reader waits out a writer's checkpoint
    return conn


def open_catalogue(db: str | os.PathLike | None = None, *, readonly: bool = False) -> sqlite3.Connection:
    """Open (and for writers create and migrate) the catalogue. Readers never create a file:
    a missing catalogue is a ``LibraryError`` telling how to make one, and so is a file that
    is not a catalogue."""
    try:
        return _open(db, readonly=readonly)
    except sqlite3.DatabaseError as exc:
        raise LibraryError(
            f"{resolve_db_path(db)} is not a usable wanwu catalogue ({exc}); point --db / {ENV_VAR} at another file"
        ) from None


def _open(db: str | os.PathLike | None = None, *, readonly: bool = False) -> sqlite3.Connection:
    path = resolve_db_path(db)
    if readonly:
        if not path.is_file():
            raise LibraryError(
                f"no photo catalogue at {path}; make one with `wanwu index PHOTOS_FOLDER`"
                f" (or point --db / {ENV_VAR} at it)"
            )
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
def writer_lock(db_path: Path) -> Iterator[None]:
    """One writer at a time: an exclusive ``flock`` on ``library.db.lock`` beside the catalogue,
    released when the process ends however it ends. Readers take no lock."""
    import fcntl

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
