"""The People API (``/api/v1/library/people...``, ``/faces/...``) over a catalogue that a real
``wanwu index`` made of ../shared/faces photos: what ``wanwu people`` does, by id only, behind
the API key, every mistake a clear 4xx (never a 500), each face as a small JPEG crop."""

from __future__ import annotations

import io
import shutil
import sqlite3

import pytest
from PIL import Image

from wanwu.cli import main
from wanwu.library.catalogue import open_catalogue
from wanwu.library.thumbnails import FACE_SIZE
from wanwu.server.config import ServerConfig

API = "/api/v1/library"
PHOTOS = ("obama/obama.jpg", "obama/obama1.jpg", "obama/obama2.jpg", "biden/biden.jpg", "biden/biden2.jpg")


@pytest.fixture(scope="module")
def faces_catalogue(tmp_path_factory, shared_faces, finder):
    """Five portraits (three of Obama, two of Biden) indexed with faces: two persons."""
    root = tmp_path_factory.mktemp("people-api") / "Pictures"
    for rel in PHOTOS:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_faces / rel, root / rel)
    db = root.parent / "library.db"
    assert main(["index", str(root), "--db", str(db), "--quiet"]) == 0
    return root, db


@pytest.fixture
def client(faces_catalogue, app_clients, tmp_path):
    """A client on a copy of the catalogue (edits do not leak into other tests)."""
    db = tmp_path / "library.db"
    src = sqlite3.connect(faces_catalogue[1])
    dst = sqlite3.connect(db)
    src.backup(dst)
    src.close()
    dst.close()

    def make(**changes):
        return app_clients(ServerConfig.from_env(**{"library": str(db), **changes}))

    make.db = db
    return make


def _persons(c) -> list[dict]:
    r = c.get(f"{API}/people")
    assert r.status_code == 200, r.text
    return r.json()["people"]


def test_people_their_photos_and_face_crops(client):
    c = client()
    listed = c.get(f"{API}/people").json()
    assert [p["faces"] for p in listed["people"]] == [3, 2] and listed["hint"] is None
    assert listed["waiting"] == {"faces": 0, "photos": 0}
    obama = listed["people"][0]
    assert obama["name"] is None and obama["photos"] == 3
    assert "sample" not in obama and obama["sample_face_url"] == f"{API}/faces/{obama['sample_face']}/crop"

    crop = c.get(obama["sample_face_url"])
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(crop.content)).size) <= FACE_SIZE
    assert c.get(obama["sample_face_url"]).content == crop.content  # cached

    page = c.get(f"{API}/people/{obama['id']}", params={"limit": 2}).json()
    assert page["person"]["id"] == obama["id"] and page["total"] == 3 and len(page["items"]) == 2
    item = page["items"][0]
    assert item["thumbnail_url"].endswith("/thumbnail") and item["path"].endswith(".jpg")
    assert [f["face"] for f in item["person_faces"]] and len(item["person_faces"][0]["box"]) == 4
    rest = c.get(f"{API}/people/{obama['id']}", params={"limit": 2, "offset": 2}).json()
    assert len(rest["items"]) == 1 and rest["items"][0]["id"] not in {i["id"] for i in page["items"]}


def test_name_merge_forget_do_what_wanwu_people_does(client):
    c = client()
    obama, biden = _persons(c)
    r = c.post(f"{API}/people/{obama['id']}/name", json={"name": "  奥巴马 "})
    assert r.status_code == 200 and r.json()["person"]["name"] == "奥巴马"
    found = c.get(f"{API}/search", params={"q": "奥巴马"}).json()
    assert found["total"] == 3
    assert c.post(f"{API}/people/{biden['id']}/name", json={"name": "奥巴马"}).status_code == 409  # taken

    kept = c.post(f"{API}/people/{obama['id']}/merge", json={"other": biden["id"]})
    assert kept.status_code == 200 and kept.json()["person"]["faces"] == 5
    assert [p["id"] for p in _persons(c)] == [obama["id"]]
    assert c.get(f"{API}/people/{biden['id']}").status_code == 404  # merged away

    face = c.get(f"{API}/people/{obama['id']}").json()["items"][0]["person_faces"][0]["face"]
    r = c.post(f"{API}/faces/{face}/forget")
    assert r.status_code == 200 and r.json()["message"] == f"forgot face {face}"
    assert c.get(f"{API}/faces/{face}/crop").status_code == 404
    assert c.post(f"{API}/people/{obama['id']}/forget").status_code == 200
    assert _persons(c) == []
    assert c.get(f"{API}/search", params={"q": "奥巴马"}).json()["total"] == 0


@pytest.mark.parametrize("name", ["", "   ", "a|b", "bell\x07", "x" * 101])
def test_a_bad_name_is_422_with_a_message(client, name):
    c = client()
    pid = _persons(c)[0]["id"]
    r = c.post(f"{API}/people/{pid}/name", json={"name": name})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"]


def test_unknown_ids_bad_bodies_and_the_key(client):
    c = client()
    for method, url, body in (
        ("get", f"{API}/people/999", None),
        ("get", f"{API}/faces/999/crop", None),
        ("post", f"{API}/people/999/name", {"name": "x"}),
        ("post", f"{API}/people/999/forget", None),
        ("post", f"{API}/faces/999/forget", None),
    ):
        r = getattr(c, method)(url, json=body) if body else getattr(c, method)(url)
        assert r.status_code == 404 and r.json()["error"]["code"] == "person_not_found", (url, r.text)
    pid = _persons(c)[0]["id"]
    for url, body in (
        (f"{API}/people/{pid}/merge", {"other": 999}),
        (f"{API}/people/{pid}/merge", {"other": "two"}),
        (f"{API}/people/{pid}/name", {}),
        (f"{API}/people/0/name", {"name": "x"}),
        (f"{API}/people/{2**63}/name", {"name": "x"}),
    ):
        assert c.post(url, json=body).status_code in (404, 422), url
    keyed = client(api_key="k")
    assert keyed.get(f"{API}/people").status_code == 401
    assert keyed.post(f"{API}/people/{pid}/name", json={"name": "x"}).status_code == 401
    assert keyed.get(f"{API}/people", headers={"Authorization": "Bearer k"}).status_code == 200


def test_a_face_crop_is_served_only_while_the_photo_is_the_catalogued_one(client, faces_catalogue):
    c = client()
    person = _persons(c)[1]  # Biden: his photos are changed below
    photo = c.get(f"{API}/people/{person['id']}").json()["items"]
    face = photo[0]["person_faces"][0]["face"]
    original = faces_catalogue[0] / "biden" / photo[0]["path"].rsplit("/", 1)[1]
    kept = original.read_bytes()
    try:
        original.write_bytes(kept[:-10] + b"\0" * 10)  # same size, other content
        assert c.get(f"{API}/faces/{face}/crop").status_code in (404, 410)
        original.unlink()
        assert c.get(f"{API}/faces/{face}/crop").status_code == 410
    finally:
        original.write_bytes(kept)


def test_a_catalogue_without_faces_says_why(app_clients, tmp_path):
    db = tmp_path / "empty.db"
    open_catalogue(db).close()
    c = app_clients(ServerConfig.from_env(library=str(db)))
    r = c.get(f"{API}/people")
    assert r.status_code == 200
    assert r.json()["people"] == [] and r.json()["hint"]


def test_face_crops_leave_the_cache_with_their_photo(tmp_path):
    from wanwu.library.thumbnails import prune

    kept, gone = "a" * 64, "b" * 64
    (tmp_path / "faces").mkdir()
    for sha in (kept, gone):
        (tmp_path / "faces" / f"{sha}-0123abcd.jpg").write_bytes(b"jpeg")
    assert prune(tmp_path, {kept}) == 1
    assert [p.name for p in (tmp_path / "faces").iterdir()] == [f"{kept}-0123abcd.jpg"]
