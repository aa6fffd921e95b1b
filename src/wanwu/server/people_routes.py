"""The People part of the Library API (``/api/v1/library/people...``, ``/faces/...``): what
``wanwu people`` does (``wanwu.library.people``: list, show, name, merge, forget), over HTTP for the
page's People view, and each face as a small JPEG crop.

As every library route: persons and faces by id only (never a path from the client), behind the
API key, errors as the usual JSON (a bad name 422 ``bad_person_name``, an unknown person or face
404 ``person_not_found``, a name another person has 409 ``person_name_taken``, a catalogue held
too long by ``wanwu index`` 503 ``busy``). Edits write the catalogue only, like ``POST
/photos/{id}/tags``: the sidecars follow at the next ``wanwu index --write-xmp``. A face crop is
made from the photo opened the safe way (``library_routes._open_photo``) and cached with the thumbnails.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import Annotated, Iterator

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from ..errors import BusyError
from ..library import people
from ..library.catalogue import open_catalogue
from ..library.search import photos_by_id
from ..library.thumbnails import FACE_SIZE, face_crop
from .errors import error_responses
from .library_routes import (
    _IMAGE_RESPONSES,
    _JSON,
    _LANG_ERRORS,
    MAX_INT,
    Lang,
    TagConfidence,
    _catalogue,
    _confidence,
    _ctx,
    _lang,
    _open_photo,
    _rendition,
    _with_urls,
)

router = APIRouter(prefix="/api/v1/library", tags=["Library: people"], default_response_class=_JSON)
PersonId = Annotated[int, PathParam(ge=1, le=MAX_INT, description="person number (from GET /people)")]
FaceId = Annotated[int, PathParam(ge=1, le=MAX_INT, description="face id (from GET /people/{id})")]
_ERRORS = error_responses(people.PersonNotFoundError)
_EDIT_ERRORS = error_responses(
    people.PersonNotFoundError, people.PersonNameError, people.PersonNameTakenError, BusyError
)


def _public(p: dict) -> dict:
    """A person as the API shows it: the sample face by id and URL, no server path."""
    out = {k: v for k, v in p.items() if k != "sample"}
    out["sample_face_url"] = f"/api/v1/library/faces/{p['sample_face']}/crop" if p.get("sample_face") else None
    return out


@router.get("/people", summary="The persons whose faces are in the photos")
def library_people(request: Request) -> dict:
    """Persons (named first, then by faces): ``{id, name (null until named), faces, photos,
    sample_face, sample_face_url}``; ``waiting``: faces that belong to nobody yet; ``hint``: why
    the list is empty, when it is."""
    with _catalogue(request) as (_, conn):
        found = people.persons(conn)
    listed = [_public(p) for p in found if p["id"] is not None]
    waiting = next((p for p in found if p["id"] is None), None)
    hint = None
    if not found:
        from ..faces import INSTALL_HINT, faces_available

        hint = "no faces in the catalogue yet: `wanwu index PHOTOS` finds them" if faces_available() else INSTALL_HINT
    return {
        "people": listed,
        "waiting": {"faces": waiting["faces"], "photos": waiting["photos"]} if waiting else {"faces": 0, "photos": 0},
        "hint": hint,
    }


@router.get("/people/{person_id}", summary="A person and their photos", responses={**_ERRORS, **_LANG_ERRORS})
def library_person(
    request: Request,
    person_id: PersonId,
    limit: Annotated[int, Query(ge=1, le=200)] = 48,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
    lang: Lang = None,
    tag_confidence: TagConfidence = None,
) -> dict:
    """The person (as in ``GET /people``) and their photos paged like search (``total``,
    ``offset``, ``limit``, ``items``: search's items, each with ``person_faces``: this person's
    faces in it, ``{face, box}``, box left, top, width, height, 0-1)."""
    lang = _lang(request, lang)
    with _catalogue(request) as (ctx, conn):
        who = people.person(conn, person_id)
        faces = people.faces_of(conn, person_id)
        by_photo: dict[int, list[dict]] = {}
        for f in faces:
            by_photo.setdefault(f["photo"], []).append({"face": f["face"], "box": f["box"]})
        ids = list(by_photo)
        items = photos_by_id(conn, ids[offset : offset + limit], lang, _confidence(ctx, tag_confidence))
    return {
        "person": _public(who),
        "total": len(ids),
        "offset": offset,
        "limit": limit,
        "items": [{**_with_urls(i), "person_faces": by_photo[i["id"]]} for i in items],
    }


@router.get(
    "/faces/{face_id}/crop",
    summary=f"A face, cropped (JPEG, at most {FACE_SIZE} px)",
    responses={**_IMAGE_RESPONSES, **_ERRORS},
    response_class=FileResponse,
)
def library_face_crop(request: Request, face_id: FaceId) -> FileResponse:
    with _catalogue(request) as (_, conn):
        row = conn.execute(
            "SELECT photo_id, x, y, w, h FROM faces WHERE id = ? AND forgotten = 0", (face_id,)
        ).fetchone()
    if row is None:
        raise people.PersonNotFoundError(f"no face {face_id}")
    box = (row["x"], row["y"], row["w"], row["h"])
    ctx, opened = _open_photo(request, row["photo_id"])
    out = _rendition(ctx, row["photo_id"], opened, lambda cache, src, sha: face_crop(cache, src, sha, box))
    return FileResponse(out, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


# --- edits: what `wanwu people name|merge|forget` does ------------------------------------
class NameEdit(BaseModel):
    name: str = Field(min_length=1, max_length=people.MAX_NAME, description="e.g. 奶奶")


class MergeEdit(BaseModel):
    other: int = Field(ge=1, le=MAX_INT, description="the person who joins this one (and goes)")


@contextmanager
def _writable(request: Request) -> Iterator[sqlite3.Connection]:
    conn = open_catalogue(_ctx(request).db_path)
    try:
        yield conn
    except sqlite3.OperationalError as exc:  # locked past busy_timeout by a long `wanwu index` commit
        raise BusyError(f"the catalogue is busy ({exc}); try again in a moment") from None
    finally:
        conn.close()


@router.post("/people/{person_id}/name", summary="Name or rename a person", responses=_EDIT_ERRORS)
def library_name_person(request: Request, person_id: PersonId, edit: NameEdit) -> dict:
    """``wanwu people name``: then search finds their photos by that name. Answers the person."""
    with _writable(request) as conn:
        people.person(conn, person_id)  # 404 for a person without faces, as GET says
        people.name(conn, str(person_id), edit.name)
        return {"person": _public(people.person(conn, person_id))}


@router.post("/people/{person_id}/merge", summary="Two persons are one", responses=_EDIT_ERRORS)
def library_merge_person(request: Request, person_id: PersonId, edit: MergeEdit) -> dict:
    """``wanwu people merge``: ``other``'s faces join this person (who keeps their name, or
    takes the other's when they had none). Answers the person kept."""
    with _writable(request) as conn:
        people.person(conn, person_id)
        people.person(conn, edit.other)
        kept = people.merge(conn, str(person_id), str(edit.other))
        return {"person": _public(people.person(conn, kept))}


@router.post("/people/{person_id}/forget", summary="Forget a person", responses=_EDIT_ERRORS)
def library_forget_person(request: Request, person_id: PersonId) -> dict:
    """``wanwu people forget``: their descriptors are dropped and they are never suggested again."""
    with _writable(request) as conn:
        people.person(conn, person_id)
        return {"message": people.forget(conn, str(person_id))}


@router.post("/faces/{face_id}/forget", summary="Forget one face", responses=_EDIT_ERRORS)
def library_forget_face(request: Request, face_id: FaceId) -> dict:
    """``wanwu people forget face:ID``: that face leaves its person and is never suggested again."""
    with _writable(request) as conn:
        return {"message": people.forget(conn, f"face:{face_id}")}
