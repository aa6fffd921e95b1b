"""The Library API of ``wanwu serve --library``: ``/api/v1/library/*``.

Photos are addressed by catalogue id only: no route takes a path, and a file is served only
when the catalogue lists it and it is still that photo: a regular file inside the folders the
catalogue was indexed from once links are resolved, of the catalogued size and mtime (or
content hash), checked on the descriptor that is then sent (``wanwu.library.files.open_catalogued``). A photo
replaced by a link to anything else is never sent. Each request
opens the catalogue read-only (WAL: ``wanwu index`` may be writing meanwhile), except
``POST /photos/{id}/tags``, which does what ``wanwu tag`` does (``wanwu.library.usertags.apply``), and the
People edits (``people_routes``: what ``wanwu people`` does). Like every
``/api`` route, these need the API key when the server has one; the edit takes JSON only, which
a page on another site cannot send here without CORS allowing it.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from ..errors import (
    BusyError,
    DiskFullError,
    ImageInputError,
    PhotoGoneError,
    PhotoNotFoundError,
    ThumbnailCacheError,
    UnsupportedLanguageError,
)
from ..library import names, usertags
from ..library.catalogue import LibraryError, catalogue_roots, open_catalogue
from ..library.export import summary
from ..library.files import NotServedError, PhotoChangedError, json_text, open_catalogued
from ..library.search import group_counts, photo, search
from ..library.thumbnails import BROWSER_SHOWS, thumbnail, viewable
from .context import context_of
from .errors import BadRequestError, error_responses
from .language import LangQuery, response_language


class _JSON(JSONResponse):
    """JSON whose file names may not be UTF-8: an undecodable byte as a ``\\udcXX`` escape."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
        return json_text(text).encode("utf-8")


log = logging.getLogger("wanwu.library")
router = APIRouter(prefix="/api/v1/library", tags=["Library"], default_response_class=_JSON)
status_router = APIRouter(prefix="/api/v1", tags=["Library"])  # on every server: does it have a library?


@dataclass(frozen=True)
class LibraryContext:
    db_path: Path
    thumbnails: Path
    tag_confidence: float | None = None  # the server's --tag-confidence (None: calibrated per model)


@status_router.get("/library", summary="Is there a photo library?")
def library_status(request: Request) -> dict:
    """``{"enabled": true}`` when the server was started with ``--library``."""
    return {"enabled": getattr(request.app.state, "library", None) is not None}


def _ctx(request: Request) -> LibraryContext:
    ctx = getattr(request.app.state, "library", None)
    if ctx is None:
        raise LibraryError("this server has no photo library; start it with `wanwu serve --library`")
    return ctx


@contextmanager
def _catalogue(request: Request) -> Iterator[tuple[LibraryContext, sqlite3.Connection]]:
    ctx = _ctx(request)
    conn = open_catalogue(ctx.db_path, readonly=True)
    try:
        yield ctx, conn
    finally:
        conn.close()


def _lang(request: Request, lang: str | None) -> str:
    """As every route with ``lang`` (``wanwu.server.language``): ``?lang=fr`` is a 400."""
    return response_language(request, context_of(request), lang)


def _with_urls(item: dict) -> dict:
    base = f"/api/v1/library/photos/{item['id']}"
    return {**item, "thumbnail_url": f"{base}/thumbnail", "image_url": f"{base}/image"}


Lang = LangQuery
_LANG_ERRORS = error_responses(UnsupportedLanguageError)
TagConfidence = Annotated[
    float | None,
    Query(
        gt=0,
        le=1,
        description="how sure a tag must be (the tag policy's threshold, docs/library.md); "
        "default: the server's --tag-confidence, else calibrated per model",
    ),
]


def _confidence(ctx: LibraryContext, asked: float | None) -> float | None:
    return asked if asked is not None else ctx.tag_confidence


MAX_INT = 2**63 - 1  # SQLite's integers: a larger id or offset is a bad parameter (422), not a 500
PhotoId = Annotated[int, PathParam(ge=1, le=MAX_INT, description="catalogue id (from search)")]


@router.get("/search", summary="Find photos", responses=_LANG_ERRORS)
def library_search(
    request: Request,
    q: Annotated[
        str, Query(max_length=200, description="class or group in English or Chinese; empty: all photos")
    ] = "",
    limit: Annotated[int, Query(ge=1, le=200)] = 48,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
    lang: Lang = None,
    tag_confidence: TagConfidence = None,
) -> dict:
    """Photos whose tags match ``q`` (``dog`` and ``狗`` find every breed, and photos tagged only
    "dog" or "retriever"), best score first. Tags are the tag policy's (a class, a group with
    ``group`` set, or none), never the raw top-k."""
    lang = _lang(request, lang)
    with _catalogue(request) as (ctx, conn):
        confidence = _confidence(ctx, tag_confidence)
        page = search(conn, q, lang=lang, confidence=confidence, limit=limit, offset=offset)
    return {
        "query": q,
        "total": page.total,
        "offset": offset,
        "limit": limit,
        "items": [_with_urls(i) for i in page.items],
    }


@router.get("/suggest", summary="Search suggestions")
def library_suggest(
    q: Annotated[str, Query(max_length=100)] = "", limit: Annotated[int, Query(ge=1, le=50)] = 10
) -> dict:
    """Class and group names (English and Chinese) that start with or contain ``q``."""
    return {"query": q, "suggestions": names.suggestions(q, limit)}


@router.get("/stats", summary="Catalogue summary", responses=_LANG_ERRORS)
def library_stats(request: Request, lang: Lang = None, tag_confidence: TagConfidence = None) -> dict:
    """Photos, failures, models, and the top groups (facets) and labels with their counts."""
    lang = _lang(request, lang)
    with _catalogue(request) as (ctx, conn):
        confidence = _confidence(ctx, tag_confidence)
        info = summary(conn, str(ctx.db_path), lang, confidence)
        info["groups"] = group_counts(conn, lang, confidence, top=16)
    info.pop("catalogue", None)  # no server paths in answers beyond the photos' own
    return info


@router.get("/photos/{photo_id}", summary="One photo with its tags", responses=_LANG_ERRORS)
def library_photo(request: Request, photo_id: PhotoId, lang: Lang = None, tag_confidence: TagConfidence = None) -> dict:
    with _catalogue(request) as (ctx, conn):
        found = photo(conn, photo_id, _lang(request, lang), _confidence(ctx, tag_confidence))
    if found is None:
        raise PhotoNotFoundError(f"no photo {photo_id} in the catalogue")
    return _with_urls(found)


TagName = Annotated[str, Field(min_length=1, max_length=100)]


class TagEdit(BaseModel):
    """What ``wanwu tag --add ... --remove ...`` takes: names (a class in any language, a wnid, or a
    free keyword) to add, and names or wnids to remove."""

    add: list[TagName] = Field(default_factory=list, max_length=20)
    remove: list[TagName] = Field(default_factory=list, max_length=20)


@router.post("/photos/{photo_id}/tags", summary="Add or remove the user's tags (wanwu tag)", responses=_LANG_ERRORS)
def library_tag(
    request: Request, photo_id: PhotoId, edit: TagEdit, lang: Lang = None, tag_confidence: TagConfidence = None
) -> dict:
    """Record the user's tags for a photo as ``wanwu tag`` does (they survive re-indexing; ``wanwu
    index --write-xmp`` writes them into sidecars). Answers what was done and the photo as it is now."""
    if not edit.add and not edit.remove:
        raise BadRequestError("give tags to add and/or remove")
    ctx = _ctx(request)
    conn = open_catalogue(ctx.db_path)
    try:
        row = conn.execute("SELECT path FROM photos WHERE id = ?", (photo_id,)).fetchone()
        if row is None:
            raise PhotoNotFoundError(f"no photo {photo_id} in the catalogue")
        lang = _lang(request, lang)
        try:
            outcome = usertags.apply(conn, row["path"], edit.add, edit.remove, lang)
        except sqlite3.OperationalError as exc:  # locked past busy_timeout by a long `wanwu index` commit
            raise BusyError(f"the catalogue is busy ({exc}); try again in a moment") from None
        found = photo(conn, photo_id, lang, _confidence(ctx, tag_confidence))
    finally:
        conn.close()
    return {"message": outcome.message, "photo": _with_urls(found) if found else None}


@dataclass
class _Opened:
    """A catalogued photo checked and opened for serving (``wanwu.library.files.open_catalogued``)."""

    file: Any  # binary file object, positioned at 0
    path: str  # as catalogued
    sha256: str
    size: int

    def read(self) -> bytes:
        with self.file:
            return self.file.read()

    def chunks(self, size: int = 1 << 16) -> Iterator[bytes]:
        with self.file:
            while chunk := self.file.read(size):
                yield chunk


def _open_photo(request: Request, photo_id: int) -> tuple[LibraryContext, _Opened]:
    """The photo's file, if it is still the catalogued photo inside the library's folders."""
    with _catalogue(request) as (ctx, conn):
        row = conn.execute(
            "SELECT path, size, mtime_ns, sha256, error_code FROM photos WHERE id = ?", (photo_id,)
        ).fetchone()
        roots = catalogue_roots(conn)
    if row is None:
        raise PhotoNotFoundError(f"no photo {photo_id} in the catalogue")
    if row["error_code"] or not row["sha256"]:
        raise PhotoGoneError(f"photo {photo_id} cannot be shown: its file could not be read when indexed")
    try:
        f, st = open_catalogued(row["path"], roots, row["size"], row["mtime_ns"], row["sha256"])
    except (NotServedError, PhotoChangedError) as exc:
        raise type(exc)(f"photo {photo_id} is not served: {exc.message}") from None
    except OSError:
        raise PhotoGoneError(f"photo {photo_id} cannot be shown: its file is gone or unreadable") from None
    return ctx, _Opened(f, row["path"], row["sha256"], st.st_size)


def _rendition(ctx: LibraryContext, photo_id: int, opened: _Opened, render: Callable[[Path, Any, str], Path]) -> Path:
    """``render(thumbnail_dir, source, sha256)`` of a checked photo, from the bytes of the
    descriptor that was checked (a cached rendition is used without reading them); a file that
    can no longer be decoded is 410 Gone, not a 500. A thumbnail cache that cannot be written is
    the server's problem, not the photo's: 507 ``disk_full`` or 500 ``thumbnail_cache_unwritable``,
    and the log (not the answer) names the folder."""
    try:
        return render(ctx.thumbnails, opened, opened.sha256)
    except DiskFullError as exc:
        _log_now_and_then(exc.message)
        raise DiskFullError(
            f"photo {photo_id} cannot be shown: the server's thumbnail cache is full (no space left on its "
            "disk); it can be shown once space is freed (the server's log says where)"
        ) from None
    except ThumbnailCacheError as exc:
        _log_now_and_then(exc.message)
        raise ThumbnailCacheError(
            f"photo {photo_id} cannot be shown: the server's thumbnail cache cannot be written (the server's log says why)"
        ) from None
    except (ImageInputError, OSError):
        raise PhotoGoneError(f"photo {photo_id} cannot be read any more; re-run wanwu index") from None
    finally:
        opened.file.close()


_last_logged: dict[str, float] = {}


def _log_now_and_then(message: str, every: float = 60.0) -> None:
    """Log a server-side problem with its path, once a minute at most (a page asks for dozens
    of thumbnails at once)."""
    now = time.monotonic()
    if now - _last_logged.get(message, -every) >= every:
        _last_logged[message] = now
        log.error("%s", message)


_IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {}}, "description": "the image"},
    404: {"description": f"{PhotoNotFoundError.summary}; or {NotServedError.summary}"},
    410: {"description": f"{PhotoGoneError.summary}; or {PhotoChangedError.summary}"},
    500: {"description": f"{ThumbnailCacheError.summary} (`{ThumbnailCacheError.code}`)"},
    507: {"description": f"the thumbnail cache's disk is full (`{DiskFullError.code}`)"},
}


@router.get(
    "/photos/{photo_id}/thumbnail",
    summary="Thumbnail (JPEG, at most 320 px)",
    responses=_IMAGE_RESPONSES,
    response_class=FileResponse,
)
def library_thumbnail(request: Request, photo_id: PhotoId) -> FileResponse:
    ctx, opened = _open_photo(request, photo_id)
    out = _rendition(ctx, photo_id, opened, thumbnail)
    return FileResponse(out, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


@router.get(
    "/photos/{photo_id}/image",
    summary="The photo, to view larger",
    responses=_IMAGE_RESPONSES,
    response_class=FileResponse,
)
def library_image(request: Request, photo_id: PhotoId) -> Any:
    """The photo file itself when a browser can show it, else a JPEG rendition (TIFF, HEIC)."""
    ctx, opened = _open_photo(request, photo_id)
    headers = {"Cache-Control": "private, max-age=3600"}
    if os.path.splitext(opened.path)[1].lower() in BROWSER_SHOWS:  # sent from the checked descriptor
        media_type = mimetypes.guess_type(opened.path)[0] or "application/octet-stream"
        headers["Content-Length"] = str(opened.size)
        return StreamingResponse(opened.chunks(), media_type=media_type, headers=headers)
    return FileResponse(_rendition(ctx, photo_id, opened, viewable), media_type="image/jpeg", headers=headers)


# --- similar photos and duplicates (issue 22; library/similar.py) ---------------------------
@router.get("/similar/{photo_id}", summary="Photos like this one", responses=_LANG_ERRORS)
def library_similar(
    request: Request,
    photo_id: PhotoId,
    limit: Annotated[int, Query(ge=1, le=200)] = 24,
    lang: Lang = None,
    tag_confidence: TagConfidence = None,
) -> dict:
    """The ``limit`` photos whose embeddings are closest to photo ``photo_id``'s, with their
    ``similarity`` (cosine, 0-1), best first. 409 while the catalogue has no embeddings."""
    from ..library.similar import similar_to_id

    lang = _lang(request, lang)
    with _catalogue(request) as (ctx, conn):
        confidence = _confidence(ctx, tag_confidence)
        if photo(conn, photo_id, lang, confidence) is None:
            raise PhotoNotFoundError(f"no photo {photo_id} in the catalogue")
        found = similar_to_id(conn, str(ctx.db_path), photo_id, limit)
        items = [{**(photo(conn, i["id"], lang, confidence) or i), "similarity": i["similarity"]} for i in found]
    return {"id": photo_id, "items": [_with_urls(i) for i in items]}


@router.get("/duplicates", summary="Exact copies and near-duplicates")
def library_duplicates(
    request: Request,
    threshold: Annotated[float | None, Query(gt=0, le=1, description="near-duplicates: cosine >= this")] = None,
) -> dict:
    """Groups of exact copies (same content hash) and, apart, of near-duplicates (embeddings at
    cosine >= ``threshold``), each with the suggested ``keeper`` id and its ``reason``. Nothing
    is ever deleted by wanwu."""
    from ..library.similar import DEFAULT_THRESHOLD, duplicates

    with _catalogue(request) as (ctx, conn):
        found = duplicates(conn, str(ctx.db_path), DEFAULT_THRESHOLD if threshold is None else threshold)
    for group in found["exact"] + found["near"]:
        group["photos"] = [_with_urls(p) for p in group["photos"]]
    return found
