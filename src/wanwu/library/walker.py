"""Walk photo folders: every file wanwu decodes, recursively, sorted, with its size and mtime
(one ``stat`` each, nothing read). Hidden folders and files, and wanwu's own catalogue files,
are skipped; HEIC/HEIF files need the ``wanwu[heif]`` extra and are reported otherwise."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from ..imaging import IMAGE_EXTENSIONS

HEIF_EXTENSIONS = frozenset({".heic", ".heif", ".hif"})
HEIF_MISSING = "HEIC/HEIF needs the heif extra: pip install 'wanwu[heif]'"


@dataclass(frozen=True)
class FileEntry:
    path: str  # absolute
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


def heif_supported() -> bool:
    """True when HEIC decodes (pillow-heif installed and registered with Pillow)."""
    try:
        from PIL import Image

        return "HEIF" in Image.registered_extensions().values() or _register_heif()
    except Exception:
        return False


def _register_heif() -> bool:
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


def walk(roots: Iterable[str | os.PathLike], exclude: Iterable[str] = (), skipped: list[Skipped] | None = None
         ) -> Iterator[FileEntry]:
    """Image files under ``roots`` (files given directly are kept if they are images), sorted
    per folder. ``exclude`` holds absolute paths never to yield (the catalogue's own files);
    files left out for a reason the user may care about are appended to ``skipped``."""
    exclude = set(exclude)
    heif = None
    for root in roots:
        root_path = Path(root).expanduser().absolute()
        if root_path.is_file():
            candidates: Iterable[tuple[str, list[str]]] = [(str(root_path.parent), [root_path.name])]
        else:
            candidates = _folders(root_path, exclude)
        for folder, names in candidates:
            for name in names:
                path = os.path.join(folder, name)
                ext = os.path.splitext(name)[1].lower()
                if path in exclude:
                    continue
                if ext in HEIF_EXTENSIONS:
                    heif = heif_supported() if heif is None else heif
                    if not heif:
                        if skipped is not None:
                            skipped.append(Skipped(path, HEIF_MISSING))
                        continue
                elif ext not in IMAGE_EXTENSIONS:
                    continue
                try:
                    st = os.stat(path)
                except OSError as exc:
                    if skipped is not None:
                        skipped.append(Skipped(path, exc.strerror or str(exc)))
                    continue
                yield FileEntry(path, st.st_size, st.st_mtime_ns)


def _folders(root: Path, exclude: set[str]) -> Iterator[tuple[str, list[str]]]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and os.path.join(folder, d) not in exclude)
        yield folder, sorted(f for f in files if not f.startswith("."))
