"""The files ``wanwu index`` considers: ``wanwu.walk`` (recursive, sorted, hidden folders
skipped, HEIC through ``wanwu[heif]``, unreadable kinds reported) plus one ``stat`` each —
nothing is read — minus the catalogue's own files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Iterator

from ..walk import SkipReport, iter_images


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
    for path in iter_images([os.path.abspath(os.path.expanduser(r)) for r in roots], report):
        p = str(path)
        if p in files or p.startswith(folders):
            continue
        try:
            st = os.stat(p)
        except OSError as exc:
            report.unlistable.append((path, exc.strerror or str(exc)))
            continue
        yield FileEntry(p, st.st_size, st.st_mtime_ns)
