"""Find the images under folders: recursive, sorted, hidden files and folders skipped, and a
report of what was left out and why ("skipped 3 HEIC files: install the HEIC reader: ...").
Used by ``wanwu classify`` for folder arguments and by anything else that walks a photo library.

Only extensions are looked at (no file is opened): a folder of 100 000 photos is listed in the
time ``os.walk`` takes. A file named directly is always kept, so decoding it says what is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import formats


@dataclass
class SkipReport:
    """What a walk left out. ``unreadable``: (kind, what to do) -> files, e.g. HEIC without the
    reader, camera RAW; ``other``: files that are not images; ``hidden``: dot-files and
    dot-folders (not descended into); ``unlistable``: folders that could not be read;
    ``linked_folders``: links to folders (never followed: no loops); ``outside``: links that
    lead out of the walked folders (``wanwu index`` never follows them); ``special``: image
    names that are not regular files (FIFO, device, socket: never opened)."""

    unreadable: dict[tuple[str, str], list[Path]] = field(default_factory=dict)
    other: int = 0
    hidden: int = 0
    unlistable: list[tuple[Path, str]] = field(default_factory=list)
    linked_folders: list[Path] = field(default_factory=list)
    outside: list[Path] = field(default_factory=list)
    special: list[tuple[Path, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.unreadable or self.unlistable or self.outside or self.special)

    def lines(self, verbose: bool = False) -> list[str]:
        """One line per reason, for people: image files that were not read and unreadable
        folders always; with ``verbose``, also the counts of non-image and hidden entries."""
        out = []
        for (kind, todo), paths in self.unreadable.items():
            n = len(paths)
            out.append(f"skipped {n} {kind} file{'s' if n != 1 else ''} ({_examples(paths)}): {todo}")
        for folder, why in self.unlistable:
            out.append(f"skipped folder {folder}: {why}")
        if self.outside:
            n = len(self.outside)
            out.append(
                f"skipped {n} link{'s' if n != 1 else ''} leading out of the indexed folders "
                f"({_examples(self.outside)}): links are never followed out of them"
            )
        if self.special:
            n = len(self.special)
            kinds = ", ".join(f"{p.name}: {kind}" for p, kind in self.special[:2])
            more = f", and {n - 2} more" if n > 2 else ""
            out.append(
                f"skipped {n} file{'s' if n != 1 else ''} that {'are' if n != 1 else 'is'} not "
                f"a regular file ({kinds}{more}): never opened"
            )
        if verbose and self.linked_folders:
            n = len(self.linked_folders)
            out.append(
                f"skipped {n} linked folder{'s' if n != 1 else ''} ({_examples(self.linked_folders)}): "
                "links to folders are not followed"
            )
        if verbose and self.other:
            out.append(
                f"skipped {self.other} file{'s' if self.other != 1 else ''} that "
                f"{'are not images' if self.other != 1 else 'is not an image'}"
            )
        if verbose and self.hidden:
            out.append(
                f"skipped {self.hidden} hidden file{'s' if self.hidden != 1 else ''} or folder"
                f"{'s' if self.hidden != 1 else ''} (names starting with '.')"
            )
        return out


def _examples(paths: list[Path], shown: int = 2) -> str:
    names = ", ".join(p.name for p in paths[:shown])
    return names + (f", and {len(paths) - shown} more" if len(paths) > shown else "")


def iter_folder(folder: Path, report: SkipReport | None = None) -> Iterator[Path]:
    """The image files under ``folder``, recursively, in sorted order (a folder's own files,
    then its subfolders). Symlinked folders are not followed (no loops; they are listed in
    ``report.linked_folders``); symlinked files are yielded (the caller decides)."""
    report = report if report is not None else SkipReport()

    def on_error(exc: OSError) -> None:
        report.unlistable.append((Path(exc.filename or folder), exc.strerror or str(exc)))

    for root, dirs, files in os.walk(folder, onerror=on_error):
        hidden = [d for d in dirs if d.startswith(".")]
        report.hidden += len(hidden)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        report.linked_folders.extend(Path(root) / d for d in dirs if os.path.islink(os.path.join(root, d)))
        for name in sorted(files):
            if name.startswith("."):
                report.hidden += 1
                continue
            suffix = os.path.splitext(name)[1].lower()
            if suffix in formats.IMAGE_EXTENSIONS:
                yield Path(root) / name
                continue
            why = formats.unreadable(suffix)
            if why:
                report.unreadable.setdefault(why, []).append(Path(root) / name)
            else:
                report.other += 1


def iter_images(paths: Iterable[str | os.PathLike], report: SkipReport | None = None) -> Iterator[Path]:
    """Expand every folder in ``paths`` with :func:`iter_folder`; keep files (and paths that do
    not exist, so reading them reports it) as given, with ``~`` expanded."""
    for p in paths:
        path = Path(p).expanduser()
        if path.is_dir():
            yield from iter_folder(path, report)
        else:
            yield path
