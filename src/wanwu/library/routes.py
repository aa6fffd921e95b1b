"""The Library API of ``wanwu serve --library``: ``/api/v1/library/*``.

Photos are addressed by catalogue id only: no route takes a path, and a file is served only
when the catalogue lists it, so nothing outside the catalogue can be reached. Each request
opens the catalogue read-only (WAL: ``wanwu index`` may be writing meanwhile). Like every
``/api`` route, these need the API key when the server has one.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from ..errors import ImageInputError, UnsupportedLanguageError, WanwuError
from ..server.context import context_of
from ..server.errors import error_responses
from ..server.language import LangQuery, response_language
from . import names
from .catalogue import LibraryError, open_catalogue, thumbnails_dir
from .export import summary
from .search import DEFAULT_MIN_SCORE, group_counts, photo, search
from .thumbnails import thumbnail, viewable

router = APIRouter(prefix="/api/v1/library", tags=["Library"])
status_router = APIRouter(prefix="/api/v1", tags=["Library"])  # on every server: does it have a library?


class PhotoNotFoundError(WanwuError):
    code = "photo_not_found"
    http_status = 404
    summary = "no photo with this id in the catalogue"


class PhotoGoneError(WanwuError):
    code = "photo_gone"
    http_status = 410
    summary = "the photo is in the catalogue but its file is gone or unreadable (re-run wanwu index)"


@dataclass(frozen=True)
class LibraryContext:
    db_path: Path
    thumbnails: Path


def install_library(app: FastAPI, db_path: Path | None) -> None:
    """``GET /api/v1/library`` (whether there is a library: the page asks it) on every app, and
    with ``db_path`` (which must exist) the catalogue's routes under ``/api/v1/library/``."""
    app.state.library = None
    app.include_router(status_router)
    if db_path is None:
        return
    open_catalogue(db_path, readonly=True).close()  # LibraryError now, not at the first request
    app.state.library = LibraryContext(db_path, thumbnails_dir(db_path))
    app.include_router(router)


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
MinScore = Annotated[float, Query(ge=0, le=1, description="hide tags scoring below this")]
PhotoId = Annotated[int, PathParam(ge=1, description="catalogue id (from search)")]


@router.get("/search", summary="Find photos", responses=_LANG_ERRORS)
def library_search(
    request: Request,
    q: Annotated[
        str, Query(max_length=200, description="class or group in English or Chinese; empty: all photos")
    ] = "",
    limit: Annotated[int, Query(ge=1, le=200)] = 48,
    offset: Annotated[int, Query(ge=0)] = 0,
    lang: Lang = None,
    min_score: MinScore = DEFAULT_MIN_SCORE,
) -> dict:
    """Photos whose tags match ``q`` (``dog`` and ``狗`` find every breed), best score first."""
    lang = _lang(request, lang)
    with _catalogue(request) as (_, conn):
        page = search(conn, q, lang=lang, min_score=min_score, limit=limit, offset=offset)
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
def library_stats(request: Request, lang: Lang = None, min_score: MinScore = DEFAULT_MIN_SCORE) -> dict:
    """Photos, failures, models, and the top groups (facets) and labels with their counts."""
    lang = _lang(request, lang)
    with _catalogue(request) as (ctx, conn):
        info = summary(conn, str(ctx.db_path), lang, min_score)
        info["groups"] = group_counts(conn, lang, min_score, top=16)
    info.pop("catalogue", None)  # no server paths in answers beyond the photos' own
    return info


@router.get("/photos/{photo_id}", summary="One photo with its tags", responses=_LANG_ERRORS)
def library_photo(
    request: Request, photo_id: PhotoId, lang: Lang = None, min_score: MinScore = DEFAULT_MIN_SCORE
) -> dict:
    with _catalogue(request) as (_, conn):
        found = photo(conn, photo_id, _lang(request, lang), min_score)
    if found is None:
        raise PhotoNotFoundError(f"no photo {photo_id} in the catalogue")
    return _with_urls(found)


def _file_of(request: Request, photo_id: int) -> tuple[LibraryContext, str, str]:
    with _catalogue(request) as (ctx, conn):
        row = conn.execute("SELECT path, sha256, error_code FROM photos WHERE id = ?", (photo_id,)).fetchone()
    if row is None:
        raise PhotoNotFoundError(f"no photo {photo_id} in the catalogue")
    if row["error_code"] or not row["sha256"] or not os.path.isfile(row["path"]):
        raise PhotoGoneError(f"photo {photo_id} cannot be shown: its file is gone or unreadable")
    return ctx, row["path"], row["sha256"]


def _rendition(request: Request, photo_id: int, render: Callable[[Path, str, str], Path]) -> Path:
    """``render(thumbnail_dir, path, sha256)`` for a catalogued photo; a file that can no longer
    be read is 410 Gone, not a 500."""
    ctx, path, sha = _file_of(request, photo_id)
    try:
        return render(ctx.thumbnails, path, sha)
    except (ImageInputError, OSError):
        raise PhotoGoneError(f"photo {photo_id} cannot be read any more; re-run wanwu index") from None


_IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {}}, "description": "the image"},
    404: {"description": PhotoNotFoundError.summary},
    410: {"description": PhotoGoneError.summary},
}


@router.get(
    "/photos/{photo_id}/thumbnail",
    summary="Thumbnail (JPEG, at most 320 px)",
    responses=_IMAGE_RESPONSES,
    response_class=FileResponse,
)
def library_thumbnail(request: Request, photo_id: PhotoId) -> FileResponse:
    out = _rendition(request, photo_id, thumbnail)
    return FileResponse(out, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


@router.get(
    "/photos/{photo_id}/image",
    summary="The photo, to view larger",
    responses=_IMAGE_RESPONSES,
    response_class=FileResponse,
)
def library_image(request: Request, photo_id: PhotoId) -> FileResponse:
    """The photo file itself when a browser can show it, else a JPEG rendition (TIFF, HEIC)."""
    return FileResponse(_rendition(request, photo_id, viewable), headers={"Cache-Control": "private, max-age=3600"})
