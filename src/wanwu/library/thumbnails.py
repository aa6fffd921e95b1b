"""Thumbnails for the Library view: made on demand from the photo (EXIF-rotated, at most
``THUMBNAIL_SIZE`` px, JPEG) through ``wanwu.imaging.load_image`` — the one decoder, with its
pixel limit and JPEG draft decoding — and cached beside the catalogue (never beside the photos),
keyed by the photo's content hash, so copies share one and a changed photo gets a new one.
Face crops (the People view) are cached the same way, under ``faces/``. ``prune`` removes those of photos the catalogue no longer holds (``wanwu index`` runs it).
The photo is a path, or an opened photo (``.path`` and ``.read()``: the server renders from the
descriptor it checked, ``wanwu.server.library_routes._Opened``).

A photo that cannot be read raises ``ImageInputError`` / ``OSError``; a cache that cannot be
written raises ``DiskFullError`` (no space left) or ``ThumbnailCacheError``, which name the
cache's folder: the two are different problems with different answers (410 vs 507 / 500)."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Container, Protocol

from ..atomic import describe_disk, is_disk_full, is_own_temp, stale_before, write_atomic
from ..errors import DiskFullError, ThumbnailCacheError
from ..imaging import load_image


class OpenedPhoto(Protocol):
    path: str

    def read(self) -> bytes: ...


Photo = str | OpenedPhoto

THUMBNAIL_SIZE = 320
FACE_SIZE = 160  # a face crop (the People view), at most this many px
FACE_MARGIN = 0.3  # of the face box's size, added on each side of it (hair, chin)
VIEW_SIZE = 2048  # the "open larger" view of formats a browser cannot show (TIFF, HEIC ...)
BROWSER_SHOWS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".gif", ".webp", ".avif", ".bmp"})


def _render(
    photo: Photo, size: int, out: Path, quality: int, crop: tuple[float, float, float, float] | None = None
) -> Path:
    """``photo`` (or its ``crop``: left, top, right, bottom, 0-1 of the upright photo) at most
    ``size`` px, as a JPEG at ``out``."""
    name = photo if isinstance(photo, str) else photo.path
    draft = size if crop is None else int(size / max(crop[2] - crop[0], crop[3] - crop[1]))
    decoded = load_image(photo if isinstance(photo, str) else photo.read(), draft_size=draft, name=name)
    img = decoded.image
    if crop is not None:
        w, h = img.size
        img = img.crop((round(crop[0] * w), round(crop[1] * h), round(crop[2] * w), round(crop[3] * h)))
    img.thumbnail((size, size))
    buf = io.BytesIO()  # at most VIEW_SIZE px: a few hundred KB
    img.save(buf, "JPEG", quality=quality, optimize=True)
    try:
        write_atomic(out, buf.getvalue(), parents=True)
    except OSError as exc:
        cache = out.parent.parent  # <cache>/ab/<sha>.jpg or <cache>/view/<sha>.jpg
        if is_disk_full(exc):
            raise DiskFullError(
                f"the thumbnail cache {cache} is full: no space left on {describe_disk(cache)}"
            ) from None
        raise ThumbnailCacheError(f"the thumbnail cache {cache} cannot be written: {exc.strerror or exc}") from None
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


def face_crop(cache: Path, photo: Photo, sha256: str, box: tuple[float, float, float, float]) -> Path:
    """The cached crop of one face (``box``: left, top, width, height, 0-1 of the upright photo),
    square around the face with ``FACE_MARGIN``, at most ``FACE_SIZE`` px; made first if needed.
    Keyed by the photo's hash and the box, so a face found again elsewhere gets a new crop."""
    left, top, w, h = box
    key = hashlib.sha256(f"{left:.5f},{top:.5f},{w:.5f},{h:.5f}".encode()).hexdigest()[:8]
    out = cache / "faces" / f"{sha256}-{key}.jpg"
    if out.is_file():
        return out
    cx, cy, half = left + w / 2, top + h / 2, max(w, h) * (0.5 + FACE_MARGIN)
    crop = (max(0.0, cx - half), max(0.0, cy - half), min(1.0, cx + half), min(1.0, cy + half))
    return _render(photo, FACE_SIZE, out, 85, crop)


def prune(cache: Path, keep: Container[str]) -> int:
    """Delete the cached thumbnails and renditions whose photo hash is not in ``keep`` (the hashes
    the catalogue still holds); the number deleted. Temporary files older than a minute (a killed
    server's) go too; those being written and anything not named like a cached file stay."""
    removed = 0
    stale = stale_before()
    for folder in [*cache.glob("??"), cache / "view", cache / "faces"]:
        try:
            entries = list(os.scandir(folder))
        except OSError:  # not a folder, or gone
            continue
        for e in entries:
            if is_own_temp(e.name) or e.name.startswith(".tmp-"):  # .tmp-*.jpg: wanwu 0.x's
                try:
                    old = e.is_file(follow_symlinks=False) and e.stat(follow_symlinks=False).st_mtime < stale
                except OSError:
                    old = False
                if old:
                    _unlink(e.path)
            elif e.name.endswith(".jpg") and len(e.name) in (64 + 4, 64 + 9 + 4) and e.name[:64] not in keep:
                removed += _unlink(e.path)
    return removed


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False
