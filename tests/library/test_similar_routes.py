"""``/api/v1/library/similar/{id}`` and ``/api/v1/library/duplicates`` on the generated album
(which holds an exact duplicate): ids only, the API key, clear 4xx, 409 without embeddings;
and the page's Library script asks for both."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest


def _id_of(client, suffix: str) -> int:
    items = client.get("/api/v1/library/search", params={"q": "", "limit": 200}).json()["items"]
    return next(i["id"] for i in items if i["path"].endswith(suffix))


def test_similar_by_id(indexed, make_client):
    client = make_client()
    chelsea = _id_of(client, "cats/chelsea.png")
    r = client.get(f"/api/v1/library/similar/{chelsea}", params={"limit": 3})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert len(items) == 3 and chelsea not in [i["id"] for i in items]
    assert items[0]["path"].endswith("chelsea-again.png") and items[0]["similarity"] == pytest.approx(1, abs=1e-3)
    assert all(0 <= i["similarity"] <= 1 for i in items)
    assert items[0]["thumbnail_url"] == f"/api/v1/library/photos/{items[0]['id']}/thumbnail"
    assert items[0]["tags"]  # a card the page can draw as it draws search results


def test_duplicates(indexed, make_client):
    client = make_client()
    r = client.get("/api/v1/library/duplicates")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["threshold"] == 0.85 and body["embeddings"] is True
    [group] = body["exact"]
    assert group["kind"] == "exact" and group["keeper"] in [p["id"] for p in group["photos"]]
    assert {Path(p["path"]).name for p in group["photos"]} == {"chelsea.png", "chelsea-again.png"}
    assert all(p["image_url"].startswith("/api/v1/library/photos/") for p in group["photos"])
    assert body["near"] == []  # the album's other photos are all different
    assert client.get("/api/v1/library/duplicates", params={"threshold": 0.01}).json()["near"]


def test_bad_input_is_a_clear_4xx(indexed, make_client):
    client = make_client()
    r = client.get("/api/v1/library/similar/999999")
    assert r.status_code == 404 and r.json()["error"]["code"] == "photo_not_found"
    assert client.get("/api/v1/library/similar/0").status_code == 422
    assert client.get("/api/v1/library/similar/abc").status_code == 422
    assert client.get("/api/v1/library/similar/1", params={"limit": 0}).status_code == 422
    assert client.get("/api/v1/library/duplicates", params={"threshold": 2}).status_code == 422
    assert client.get("/api/v1/library/duplicates", params={"threshold": "x"}).status_code == 422
    failed = _failed_id(indexed[1])  # the corrupt JPEG: catalogued, no embedding
    r = client.get(f"/api/v1/library/similar/{failed}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "photo_not_embedded"


def _failed_id(db) -> int:
    conn = sqlite3.connect(db)
    (i,) = conn.execute("SELECT id FROM photos WHERE error_code IS NOT NULL").fetchone()
    conn.close()
    return i


def test_no_embeddings_is_409_saying_what_to_do(indexed, make_client):
    raw = sqlite3.connect(indexed[1])
    raw.execute("DELETE FROM embeddings")
    raw.commit()
    raw.close()
    r = make_client().get("/api/v1/library/similar/1")
    assert r.status_code == 409 and "wanwu index" in r.json()["error"]["message"]


def test_api_key_covers_them(indexed, make_client):
    client = make_client(api_key="s3cret")
    assert client.get("/api/v1/library/similar/1").status_code == 401
    assert client.get("/api/v1/library/duplicates").status_code == 401
    ok = client.get("/api/v1/library/duplicates", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200


def test_the_page_has_similar_and_duplicates(indexed, make_client):
    js = make_client().get("/static/library.js").text
    assert "/similar/" in js and "/duplicates" in js
