"""How the library touches photo files: which ones it follows, reads and serves (docs/library.md,
"What is followed, what is served").

- The indexed roots are kept resolved (``real_roots``); a path is *inside* when its resolved
  path is a root or under one (``inside``). The walker never follows a link out of them, and
  the server serves nothing whose resolved path is outside them.
- Files are opened without blocking and checked on the open descriptor (``open_regular``): a
  FIFO, a device or a socket named ``*.jpg`` is refused before a byte is read, and so is a
  regular file over the size limit (``read_regular``), so no file can hang a run or fill memory.
- ``open_catalogued``: what the server serves is the catalogued file itself — a regular file,
  inside the roots after resolving links, still of the catalogued size and mtime (or, when
  those changed, of the catalogued content hash) — checked on the descriptor it then reads.
"""

from __future__ import annotations

import os
import re
import stat
from typing import BinaryIO, Iterable

from ..environment import variable
from ..errors import (
    FileTooLargeError,
    NotARegularFileError,
    NotServedError,
    PhotoChangedError,
)

MAX_FILE_ENV = variable("max_file_mb").metadata["env"]  # the default: environment.DEFAULT_MAX_FILE_MB


def real_roots(roots: Iterable[str | os.PathLike]) -> tuple[str, ...]:
    """The roots as resolved absolute paths (links and ``~`` resolved), without duplicates."""
    out: dict[str, None] = {}
    for r in roots:
        out.setdefault(os.path.realpath(os.path.expanduser(os.fspath(r))), None)
    return tuple(out)


def inside(real: str, roots: Iterable[str]) -> bool:
    """Whether the resolved path ``real`` is one of ``roots`` (resolved) or under one."""
    return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def file_kind(mode: int) -> str:
    """A file type as people say it, for skip reports and errors."""
    for test, name in (
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISDIR, "folder"),
        (stat.S_ISLNK, "link"),
    ):
        if test(mode):
            return name
    return "special file"


def open_regular(path: str, *, follow: bool = True) -> tuple[int, os.stat_result]:
    """A descriptor of ``path`` and its ``fstat``, when it is a regular file. Opening never
    blocks (``O_NONBLOCK``: a FIFO without a writer would wait forever) and the check is on the
    descriptor, so a file swapped after a ``stat`` is still caught. ``follow=False`` refuses a
    link as the last component. Raises ``NotARegularFileError`` or ``OSError``."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFileError(f"{path} is a {file_kind(st.st_mode)}, not a regular file: not read")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def too_large(path: str, size: int, max_bytes: int) -> FileTooLargeError:
    return FileTooLargeError(
        f"{path} is {size / 1e6:.0f} MB, over the limit of {max_bytes / 1e6:g} MB per file; "
        f"raise it with --max-file-mb ({MAX_FILE_ENV})"
    )


def read_regular(path: str, max_bytes: int | None) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` (``FileTooLargeError``
    beyond, checked from ``fstat`` before reading and again while reading a growing file)."""
    fd, st = open_regular(path)
    with os.fdopen(fd, "rb") as f:
        if max_bytes is not None and st.st_size > max_bytes:
            raise too_large(path, st.st_size, max_bytes)
        data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise too_large(path, len(data), max_bytes)
    return data


def sha256_of(path: str) -> str:
    """The SHA-256 of the regular file ``path``, streamed (any size, constant memory)."""
    fd, _ = open_regular(path)
    with os.fdopen(fd, "rb") as f:
        import hashlib  # here, not at the top: OpenSSL costs every command ~30 ms to load

        return hashlib.file_digest(f, "sha256").hexdigest()


def open_catalogued(
    path: str, roots: Iterable[str], size: int, mtime_ns: int, sha256: str
) -> tuple[BinaryIO, os.stat_result]:
    """The catalogued photo at ``path`` opened for serving, or why not: ``NotServedError``
    (404: it leads outside the resolved ``roots``, or is not a regular file),
    ``PhotoChangedError`` (410: other content than catalogued), ``OSError`` (gone).

    The resolved path is opened without following a last link, and the descriptor itself is
    checked (``/proc/self/fd``: a folder swapped for a link meanwhile is caught too), so what is
    sent is what was checked."""
    real = os.path.realpath(path)
    if not inside(real, roots):
        raise NotServedError("its file leads outside the library's folders")
    try:
        fd, st = open_regular(real, follow=False)
    except NotARegularFileError:
        raise NotServedError("its file is not a regular file") from None
    f = os.fdopen(fd, "rb")
    try:
        try:
            opened = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            opened = real  # no /proc: the O_NOFOLLOW open of the resolved path stands
        if opened != real:
            raise NotServedError("its file changed place while it was opened")
        if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
            import hashlib

            if hashlib.file_digest(f, "sha256").hexdigest() != sha256:
                raise PhotoChangedError("its file is no longer the photo that was indexed; re-run wanwu index")
            f.seek(0)
    except BaseException:
        f.close()
        raise
    return f, st


# --- file names that are not UTF-8 -----------------------------------------------------------
# Linux file names are bytes; Python gives an undecodable byte as a lone surrogate (\udcff for
# b"\xff", "surrogateescape"). The catalogue stores the name's own bytes (``db_text`` + SQL
# ``CAST(? AS TEXT)``; read back by ``catalogue``'s text factory), text output writes them back
# as they were, and JSON writes them as ``\udcff`` escapes (json.loads + os.fsencode restore them).
def db_text(path: str) -> str | bytes:
    """``path`` as an SQL parameter for ``CAST(? AS TEXT)``: itself, or its bytes when it is
    not valid UTF-8 (sqlite3 refuses to bind such a str)."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape")


def text_from_db(data: bytes) -> str:
    """The catalogue's text factory: UTF-8, an undecodable byte kept as a lone surrogate."""
    return data.decode("utf-8", "surrogateescape")


def json_text(text: str) -> str:
    """JSON text (as ``json.dumps(..., ensure_ascii=False)`` made it) with lone surrogates
    written as ``\\udcXX`` escapes, so it encodes as UTF-8 and loses nothing."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def printable_name(path: str) -> str:
    """Valid UTF-8 text for ``path``: an undecodable byte shown as ``\\xff`` (for formats
    that hold only UTF-8 text, such as Parquet strings)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


_SURROGATE = re.compile("[\ud800-\udfff]")
