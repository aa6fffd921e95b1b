"""A generated photo collection of real photos: nested folders, a duplicate, a corrupt JPEG, a
hidden folder and a text file; a helper that indexes it with the session's classifier; and
small real disks (tmpfs) to fill or make read-only."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from album_tree import CORRUPT, LAYOUT

from wanwu.library.backend import LocalBackend
from wanwu.library.catalogue import open_catalogue
from wanwu.library.indexer import Indexer
from wanwu.server.config import ServerConfig


@pytest.fixture
def album(tmp_path, photos) -> Path:
    root = tmp_path / "Pictures"
    for rel, name in LAYOUT.items():
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(photos[name], dest)
    (root / CORRUPT).write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)  # a JPEG header, then nothing
    (root / "notes.txt").write_text("not a photo")
    return root


@pytest.fixture
def index(tmp_path, classifier):
    """``index(roots, **kw)`` -> (IndexSummary, backends made) on a catalogue in tmp_path."""
    db = tmp_path / "library.db"

    def run(roots, *, tagger="test/fp32/abc", force=False, on_written=None, conn=None):
        made = []

        def make():
            backend = LocalBackend(classifier, top_k=5, batch_size=4)
            made.append(backend)
            return backend

        own = conn is None
        conn = conn or open_catalogue(db)
        try:
            summary = Indexer(conn, tagger, make, force=force, on_written=on_written).run([str(r) for r in roots])
        finally:
            if own:
                conn.close()
        return summary, made

    run.db = db
    return run


@pytest.fixture
def tmpfs(tmp_path):
    """``tmpfs(size)`` -> a fresh, empty tmpfs of ``size`` (``mount -t tmpfs``: a real small or
    read-only disk), unmounted afterwards; needs root and is skipped where mounting is refused."""
    import os
    import subprocess

    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mounts: list[Path] = []

    def mount(size: str = "1m", name: str = "disk") -> Path:
        where = tmp_path / name
        where.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)], capture_output=True
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
        mounts.append(where)
        return where

    def remount(where: Path, options: str) -> None:  # "ro", "size=8m" ...
        subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True, capture_output=True)

    mount.remount = remount  # type: ignore[attr-defined]
    yield mount
    for where in reversed(mounts):
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.fixture
def indexed(album, index):
    """The album indexed once -> (album, catalogue path)."""
    index([album])
    return album, index.db


@pytest.fixture
def make_client(indexed, app_clients):
    """``make_client(**ServerConfig changes)``: a test client of a server on the indexed album."""
    return lambda **changes: app_clients(ServerConfig.from_env(**{"library": str(indexed[1]), **changes}))
