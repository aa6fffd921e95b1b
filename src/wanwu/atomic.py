"""``write_atomic`` / ``atomic_writer``: the one way wanwu writes a file that someone may be
reading — XMP sidecars, thumbnails, the ONNX cache, the weights memo, downloaded weights.

The bytes go to a temporary file in the same folder, are flushed and ``fsync``'d, get their
final mode, and the temporary file is renamed over the target (``os.replace``): a reader sees
the old file or the new one, never half of one, and a crash leaves at most a temporary file.

- **Mode**: a file that is replaced keeps its mode (and, best effort, its owner and group); a new
  file gets ``new_mode`` when the caller gives one (a sidecar: its photo's permissions), else
  what ``open()`` would give it: ``0o666 & ~umask``. Never ``mkstemp``'s 0o600, which hides the
  file from a photo manager or a server running as another user.
- **Temporary names** are wanwu's own and recognisable: ``.wanwu-<8 hex>-<target name>.tmp``
  (hidden, so folder walks skip them), which is what ``is_own_temp`` and ``remove_stale_temps``
  look for to clean up after a ``kill -9``.
- **Links**: the rename replaces a symbolic link at ``path`` by a regular file; it never writes
  through one. (Sidecars go further and leave a linked sidecar alone: ``wanwu.library.xmp``.)
- **Errors** name the target, never the temporary file: an ``OSError`` raised while writing has
  ``filename`` set to ``path``, and the temporary file is removed.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

TEMP_PREFIX = ".wanwu-"
TEMP_SUFFIX = ".tmp"
_NAME_MAX = 255
_WRITE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS}
)  # bytes in one file name on every file system wanwu writes to


def new_file_mode() -> int:
    """The mode ``open()`` would give a new file: 0o666 less the process's umask. The umask is
    read from /proc, since setting it to read it back is not thread-safe; elsewhere the usual
    0o644."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o644


def temp_name(target_name: str) -> str:
    """A fresh temporary name for writing ``target_name`` in the same folder."""
    token = os.urandom(4).hex()  # not `secrets`: it loads OpenSSL, and every command imports this
    name = f"{TEMP_PREFIX}{token}-{target_name}{TEMP_SUFFIX}"
    if len(os.fsencode(name)) > _NAME_MAX:  # a long photo name: keep only its extension
        ext = os.path.splitext(target_name)[1][:16]
        name = f"{TEMP_PREFIX}{token}{ext}{TEMP_SUFFIX}"
    return name


def is_own_temp(name: str) -> bool:
    """Whether a file name is one of wanwu's temporary names (``temp_name``, or the
    ``.wanwu-XXXXXXXX.xmp.tmp`` of wanwu 0.x sidecars)."""
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def _target_mode(path: str, new_mode: int | None) -> tuple[int, tuple[int, int] | None]:
    """(mode, (uid, gid) to keep or None) for the file about to be written at ``path``."""
    try:
        st = os.lstat(path)
    except OSError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode):
        return stat.S_IMODE(st.st_mode) & 0o777, (st.st_uid, st.st_gid)
    return (new_file_mode() if new_mode is None else new_mode & 0o777), None


def _keep_owner(fd: int, owner: tuple[int, int] | None) -> None:
    if owner is None:
        return
    st = os.fstat(fd)
    uid, gid = owner
    if (st.st_uid, st.st_gid) == (uid, gid):
        return
    try:  # root keeps the owner; anyone keeps a group they are in; otherwise the file is theirs
        os.fchown(fd, uid if os.geteuid() == 0 else -1, gid)
    except OSError:
        pass


def _create_temp(folder: str, target_name: str) -> tuple[int, str]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(99):
        tmp = os.path.join(folder, temp_name(target_name))
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue
    tmp = os.path.join(folder, temp_name(target_name))
    return os.open(tmp, flags, 0o600), tmp


@contextmanager
def atomic_writer(path: str | os.PathLike, *, new_mode: int | None = None, parents: bool = False) -> Iterator[BinaryIO]:
    """``with atomic_writer(path) as f: f.write(...)``: ``path`` is replaced when the block ends
    normally, and left as it was (temporary file removed) when it raises. ``parents``: create
    missing folders first (caches; never for sidecars)."""
    target = os.fspath(path)
    folder = os.path.dirname(target) or "."
    tmp = ""
    body = False
    try:
        if parents:
            os.makedirs(folder, exist_ok=True)
        mode, owner = _target_mode(target, new_mode)
        fd, tmp = _create_temp(folder, os.path.basename(target))
        with os.fdopen(fd, "wb") as f:
            body = True
            yield f
            body = False
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), mode)
            _keep_owner(f.fileno(), owner)
        os.replace(tmp, target)
        tmp = ""
    except OSError as exc:
        name = exc.filename
        if body and (name is not None or exc.errno not in _WRITE_ERRNOS):
            raise  # the caller's own error (a socket's, a decoder's): passed on untouched
        if name is None or (isinstance(name, str) and is_own_temp(os.path.basename(name))):
            exc.filename, exc.filename2 = target, None  # the file asked for, not our temporary one
        raise
    finally:
        if tmp:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def write_atomic(
    path: str | os.PathLike,
    data: bytes | str,
    *,
    new_mode: int | None = None,
    parents: bool = False,
    encoding: str = "utf-8",
) -> Path:
    """Replace (or create) ``path`` with ``data`` atomically (see the module's rules)."""
    raw = data.encode(encoding) if isinstance(data, str) else data
    with atomic_writer(path, new_mode=new_mode, parents=parents) as f:
        f.write(raw)
    return Path(path)


def remove_stale_temps(folders: Iterable[str | os.PathLike], older_than: float, suffix: str = TEMP_SUFFIX) -> list[str]:
    """Delete wanwu's own temporary files (``is_own_temp``, ending in ``suffix``) in ``folders``
    that were last modified before ``older_than`` (unix time): what a ``kill -9`` in the middle
    of a write leaves behind. Only regular files; links and anything else are left alone.
    Returns the paths removed; folders that cannot be read or written are skipped."""
    removed: list[str] = []
    for folder in folders:
        try:
            with os.scandir(str(folder)) as entries:
                stale = [
                    e.path
                    for e in entries
                    if is_own_temp(e.name)
                    and e.name.endswith(suffix)
                    and e.is_file(follow_symlinks=False)
                    and e.stat(follow_symlinks=False).st_mtime < older_than
                ]
        except OSError:
            continue
        for p in stale:
            try:
                os.unlink(p)
                removed.append(p)
            except OSError:
                pass
    return removed


def stale_before() -> float:
    """The time before which a temporary file cannot belong to a write still under way: one
    minute before now (a write takes milliseconds; the margin keeps a concurrent ``wanwu tag``
    from losing its file)."""
    return time.time() - 60.0


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error means "no space left": ``ENOSPC`` or ``EDQUOT`` from the OS, or SQLite's
    ``SQLITE_FULL`` ("database or disk is full")."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    code = getattr(exc, "sqlite_errorcode", None)
    return code == 13 or (code is None and "database or disk is full" in str(exc))  # SQLITE_FULL


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


def free_bytes(path: str | os.PathLike) -> int | None:
    """Bytes an unprivileged process may still write on the disk holding ``path`` (or its
    nearest existing folder), or None when it cannot be told."""
    p = os.path.abspath(os.fspath(path))
    while not os.path.exists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    try:
        st = os.statvfs(p)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def describe_disk(path: str | os.PathLike) -> str:
    """``the disk mounted at /mnt/photos (0 B free)``: which disk holds ``path``, for messages."""
    p = os.path.abspath(os.fspath(path))
    while not os.path.exists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    mount = p
    while not os.path.ismount(mount) and os.path.dirname(mount) != mount:
        mount = os.path.dirname(mount)
    free = free_bytes(p)
    return f"the disk mounted at {mount}" + ("" if free is None else f" ({_size(free)} free)")
