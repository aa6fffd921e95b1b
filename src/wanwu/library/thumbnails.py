"""Thumbnails for the Library view: made on demand from the photo (EXIF-rotated, at most
``THUMBNAIL_SIZE`` px, JPEG) through ``wanwu.imaging.load_image`` — the one decoder, with its
pixel limit and JPEG draft decoding — and cached beside the catalogue (never beside the photos),
keyed by the photo's content hash, so copies share one and a changed photo gets a new one.
``prune`` removes those of photos the catalogue no longer holds (``wanwu index`` runs it).
The photo is a path, or an opened photo (``.path`` and ``.read()``: the server renders from the
descriptor it checked, ``routes._Opened``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Container, Protocol

from ..imaging import load_image


class OpenedPhoto(Protocol):
    path: str

    def read(self) -> bytes: ...


Photo = str | OpenedPhoto

THUMBNAIL_SIZE = 320
VIEW_SIZE = 2048  # the "open larger" view of formats a browser cannot show (TIFF, HEIC ...)
BROWSER_SHOWS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".gif", ".webp", ".avif", ".bmp"})


def _render(photo: Photo, size: int, out: Path, quality: int) -> Path:
    name = photo if isinstance(photo, str) else photo.path
    decoded = load_image(photo if isinstance(photo, str) else photo.read(), draft_size=size, name=name)
    img = decoded.image
    img.thumbnail((size, size))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".jpg", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            img.save(f, "JPEG", quality=quality, optimize=True)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def thumbnail(cache: Path, photo: Photo, sha256: str) -> Path:
    """The cached thumbnail of a photo, made first if needed. Raises ``ImageInputError`` /
    ``OSError`` when the photo cannot be read."""
    out = cache / sha256[:2] / f"{sha256}.jpg"
    return out if out.is_file() else _render(photo, THUMBNAIL_SIZE, out, 80)


def viewable(cache: Path, photo: Photo, sha256: str) -> Path:
    """A file a browser can show: the photo itself (given as a path), or a cached JPEG rendition of it."""
    if isinstance(photo, str) and os.path.splitext(photo)[1].lower() in BROWSER_SHOWS:
        return Path(photo)
    out = cache / "view" / f"{sha256}.jpg"
    return out if out.is_file() else _render(photo, VIEW_SIZE, out, 88)


def prune(cache: Path, keep: Container[str]) -> int:
    """Delete the cached thumbnails and renditions whose photo hash is not in ``keep`` (the hashes
    the catalogue still holds); the number deleted. Files being written (``.tmp-*``) and anything
    not named like a cached file are left alone."""
    removed = 0
    for folder in [*cache.glob("??"), cache / "view"]:
        if not folder.is_dir():
            continue
        for f in folder.glob("*.jpg"):
            if f.name.startswith(".tmp-") or len(f.stem) != 64 or f.stem in keep:
                continue
            try:
                f.unlink()
                removed += 1
            except FileNotFoundError:
                pass
    return removed
