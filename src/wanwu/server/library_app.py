"""The photo library on a server: ``install_library`` mounts the catalogue's routes
(``library_routes``: photos, search, similar, duplicates, thumbnails) and the people routes
(``people_routes``, which share the library routes' helpers) on an app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from ..library.catalogue import open_catalogue, thumbnails_dir
from . import people_routes
from .library_routes import LibraryContext, router, status_router


def install_library(app: FastAPI, db_path: Path | None, tag_confidence: float | None = None) -> None:
    """``GET /api/v1/library`` (whether there is a library: the page asks it) on every app, and
    with ``db_path`` (which must exist) the catalogue's routes under ``/api/v1/library/``."""
    app.state.library = None
    app.include_router(status_router)
    if db_path is None:
        return
    open_catalogue(db_path, readonly=True).close()  # LibraryError now, not at the first request
    app.state.library = LibraryContext(db_path, thumbnails_dir(db_path), tag_confidence)
    app.include_router(router)
    app.include_router(people_routes.router)
