"""``wanwu.atomic``: the one atomic write — modes (the replaced file's, else the caller's or
0o666 & ~umask; never 0600), recognisable temporary names that are removed on failure and
cleaned up after a ``kill -9``, errors that name the target — and that every file wanwu
replaces goes through it."""

from __future__ import annotations

import errno
import os
import re
import stat
import time
from pathlib import Path

import pytest

from wanwu import atomic
from wanwu.atomic import (
    atomic_writer,
    is_disk_full,
    is_own_temp,
    new_file_mode,
    remove_stale_temps,
    temp_name,
    write_atomic,
)

SRC = Path(__file__).resolve().parents[1] / "src" / "wanwu"


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_new_files_get_the_umask_mode_or_the_callers(tmp_path, umask_022):
    assert new_file_mode() == 0o644
    plain = write_atomic(tmp_path / "plain", b"x")
    assert _mode(plain) == 0o644 and plain.read_bytes() == b"x"
    given = write_atomic(tmp_path / "given", "y", new_mode=0o640)
    assert _mode(given) == 0o640 and given.read_text() == "y"
    os.umask(0o027)
    assert _mode(write_atomic(tmp_path / "private", b"z")) == 0o640


def test_a_replaced_file_keeps_its_mode(tmp_path, umask_022):
    target = tmp_path / "shared.xmp"
    target.write_text("old")
    for mode in (0o664, 0o600, 0o444):
        target.chmod(mode)
        write_atomic(target, "new", new_mode=0o600)  # new_mode is for new files only
        assert _mode(target) == mode and target.read_text() == "new"


def test_temporary_names_are_wanwus_own_and_bounded():
    name = temp_name("photo.jpg.xmp")
    assert re.fullmatch(r"\.wanwu-[0-9a-f]{8}-photo\.jpg\.xmp\.tmp", name) and is_own_temp(name)
    assert is_own_temp(".wanwu-k3j2h1x0.xmp.tmp")  # what wanwu 0.x sidecars left
    long = temp_name("é" * 120 + ".jpg.xmp")  # 240 bytes of name + ".jpg.xmp": over 255 with ours
    assert len(os.fsencode(long)) <= 255 and long.endswith(".xmp.tmp") and is_own_temp(long)
    assert not is_own_temp("photo.jpg") and not is_own_temp(".wanwu-notes.txt")


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    with pytest.raises(ValueError), atomic_writer(target) as f:
        f.write(b"half")
        raise ValueError("the caller's own error")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["a.json"]


def test_errors_name_the_target_not_the_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "photo.jpg.xmp"

    def refuse(folder, name):  # what a read-only folder answers to the temporary file
        raise PermissionError(errno.EACCES, "Permission denied", os.path.join(folder, temp_name(name)))

    monkeypatch.setattr(atomic, "_create_temp", refuse)
    with pytest.raises(PermissionError) as info:
        write_atomic(target, b"x")
    assert info.value.filename == str(target) and ".tmp" not in str(info.value)


def test_a_full_disk_while_writing_names_the_target_and_keeps_nothing(tmp_path, monkeypatch):
    target = tmp_path / "thumb.jpg"
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as info:
        write_atomic(target, b"x" * 100)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert is_disk_full(info.value) and info.value.filename == str(target)
    assert os.listdir(tmp_path) == []


def test_a_link_at_the_target_is_replaced_not_written_through(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    link = tmp_path / "sidecar.xmp"
    link.symlink_to(outside)
    write_atomic(link, "new")
    assert outside.read_text() == "keep me" and not link.is_symlink() and link.read_text() == "new"


def test_stale_temporary_files_are_removed_and_nothing_else(tmp_path):
    old = time.time() - 3600
    stale_new = tmp_path / temp_name("a.jpg.xmp")
    stale_old_format = tmp_path / ".wanwu-ab12cd34.xmp.tmp"
    fresh = tmp_path / temp_name("b.jpg.xmp")  # a write still under way
    not_ours = tmp_path / ".wanwu-notes.txt"
    other_kind = tmp_path / temp_name("model.onnx")
    for p in (stale_new, stale_old_format, fresh, not_ours, other_kind):
        p.write_text("x")
    link = tmp_path / ".wanwu-deadbeef-c.jpg.xmp.tmp"
    link.symlink_to(not_ours)
    for p in (stale_new, stale_old_format, not_ours, other_kind):
        os.utime(p, (old, old))
    os.utime(link, (old, old), follow_symlinks=False)
    removed = remove_stale_temps([tmp_path, tmp_path / "missing"], time.time() - 60, suffix=".xmp.tmp")
    assert sorted(removed) == sorted([str(stale_new), str(stale_old_format)])
    assert fresh.exists() and not_ours.exists() and other_kind.exists() and link.is_symlink()


def test_disk_full_is_recognised_from_the_os_and_from_sqlite():
    import sqlite3

    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert is_disk_full(sqlite3.OperationalError("database or disk is full"))
    assert not is_disk_full(sqlite3.OperationalError("database is locked"))


def test_every_file_wanwu_replaces_goes_through_write_atomic():
    """No second implementation: the rename into place, the temporary files and the fsync live
    in wanwu/atomic.py only."""
    pattern = re.compile(r"os\.replace\(|os\.rename\(|mkstemp\(|NamedTemporaryFile\(")
    offenders = [
        f"{p.relative_to(SRC)}:{n}"
        for p in SRC.rglob("*.py")
        if p.name != "atomic.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_the_caches_and_downloads_are_not_private(tmp_path, monkeypatch, umask_022):
    """The ONNX cache and the weights memo are 0o644 under umask 022 (mkstemp's 0600 would hide
    a cache prepared by root from the user who runs wanwu); downloads: tests/test_weights.py."""
    from wanwu.engines import onnx_cache

    monkeypatch.setenv("WANWU_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "cache" / "onnx" / "m.onnx"
    assert onnx_cache.store(model, b"graph")
    memo = tmp_path / "cache" / "hashes.json"
    assert memo.is_file()
    assert {_mode(model), _mode(model.with_name("m.onnx.sha256")), _mode(memo)} == {0o644}
    assert not list((tmp_path / "cache").rglob(".wanwu-*"))


def test_thumbnail_pruning_removes_stale_temporary_files_only(tmp_path):
    from wanwu.library.thumbnails import prune

    keep, gone = "a" * 64, "b" * 64
    folder = tmp_path / "aa"
    folder.mkdir()
    kept, pruned = folder / f"{keep}.jpg", folder / f"{gone}.jpg"
    stale, old_format = folder / temp_name(f"{keep}.jpg"), folder / ".tmp-x1y2.jpg"
    fresh, other = folder / temp_name(f"{gone}.jpg"), folder / "notes.txt"
    for p in (kept, pruned, stale, old_format, fresh, other):
        p.write_bytes(b"x")
    hour_ago = time.time() - 3600
    for p in (stale, old_format, other):
        os.utime(p, (hour_ago, hour_ago))
    assert prune(tmp_path, {keep}) == 1
    assert sorted(p.name for p in folder.iterdir()) == sorted([kept.name, fresh.name, other.name])
