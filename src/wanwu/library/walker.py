"""The files ``wanwu index`` considers: ``wanwu.walk`` (recursive, sorted, hidden folders
skipped, HEIC through ``wanwu-tagger[heif]``, unreadable kinds reported) plus one ``lstat`` each —
nothing is read or opened — minus the catalogue's own files.

What is followed (docs/library.md): links to folders never; a link to a file only when it
resolves inside the folders given to this run (else it is skipped and reported); and only
regular files are kept (a FIFO, device or socket named ``*.jpg`` is reported, never opened)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from ..walk import SkipReport, iter_images
from .files import file_kind, inside, real_roots


@dataclass(frozen=True)
class FileEntry:
    path: str  # absolute
    size: int
    mtime_ns: int


def walk(
    roots: Iterable[str | os.PathLike], exclude: Iterable[str] = (), report: SkipReport | None = None
) -> Iterator[FileEntry]:
    """Image files under ``roots`` (files named directly are kept). ``exclude``: absolute paths
    (files, or folders whose contents are left out) never to yield."""
    files = set(exclude)
    folders = tuple(p.rstrip(os.sep) + os.sep for p in files)
    report = report if report is not None else SkipReport()
    roots = [os.path.abspath(os.path.expanduser(r)) for r in roots]
    allowed = real_roots(roots)
    linked_before = len(report.linked_folders)
    for path in iter_images(roots, report):
        p = str(path)
        if p in files or p.startswith(folders):
            continue
        try:
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                if not inside(os.path.realpath(p), allowed):
                    report.outside.append(path)
                    continue
                st = os.stat(p)
        except OSError as exc:
            report.unlistable.append((path, exc.strerror or str(exc)))
            continue
        if not stat.S_ISREG(st.st_mode):
            report.special.append((path, file_kind(st.st_mode)))
            continue
        yield FileEntry(p, st.st_size, st.st_mtime_ns)
    linked = report.linked_folders[linked_before:]
    del report.linked_folders[linked_before:]
    for folder in linked:  # never followed; those leading out are worth saying
        (report.linked_folders if inside(os.path.realpath(folder), allowed) else report.outside).append(Path(folder))
