"""``/api/v1/library/*`` on a real catalogue of the generated album: search (English, Chinese,
groups), photos by id only, thumbnails (EXIF-rotated, <= 320 px, cached beside the catalogue),
clear 4xx for bad ids and gone files, and the API key covering every route."""

from __future__ import annotations

import io
import os

import pytest
from album_tree import LAYOUT
from fastapi.testclient import TestClient
from PIL import Image

from wanwu.server import InferenceService, create_app
from wanwu.server.config import ServerConfig

VISIBLE = [rel for rel in LAYOUT if not rel.startswith(".")]


def test_search_stats_and_photo(indexed, make_client):
    album, db = indexed
    client = make_client()
    assert client.get("/api/v1/library").json() == {"enabled": True}
    r = client.get("/api/v1/library/search", params={"q": "cat"})
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 2 and {i["path"] for i in body["items"]} == {
        str(album / "cats/chelsea.png"),
        str(album / "cats/2024/chelsea-again.png"),
    }
    item = body["items"][0]
    assert item["thumbnail_url"] == f"/api/v1/library/photos/{item['id']}/thumbnail"
    zh = client.get("/api/v1/library/search", params={"q": "猫", "lang": "zh"}).json()
    assert zh["total"] == 2 and any("猫" in t["label"] for t in zh["items"][0]["tags"])
    by_header = client.get("/api/v1/library/search", params={"q": "cat"}, headers={"Accept-Language": "zh-CN"}).json()
    assert any("猫" in t["label"] for t in by_header["items"][0]["tags"])
    everything = client.get("/api/v1/library/search", params={"limit": 3, "offset": 3}).json()
    assert everything["total"] == len(VISIBLE) and len(everything["items"]) == 3

    stats = client.get("/api/v1/library/stats").json()
    assert stats["photos"] == len(VISIBLE) + 1 and stats["failed"] == 1 and "catalogue" not in stats
    assert any(g["key"] == "cat" for g in stats["groups"])
    sugg = client.get("/api/v1/library/suggest", params={"q": "golden"}).json()["suggestions"]
    assert "golden retriever" in sugg
    assert "狗" in client.get("/api/v1/library/suggest", params={"q": "狗"}).json()["suggestions"]

    one = client.get(f"/api/v1/library/photos/{item['id']}").json()
    assert one["id"] == item["id"] and one["tags"] and one["width"] == 451


def test_thumbnail_and_image(indexed, make_client):
    album, db = indexed
    client = make_client()
    coffee_id = client.get("/api/v1/library/search", params={"q": "espresso"}).json()["items"][0]["id"]
    r = client.get(f"/api/v1/library/photos/{coffee_id}/thumbnail")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    thumb = Image.open(io.BytesIO(r.content))
    assert max(thumb.size) == 320  # coffee.png is 600 x 400
    assert thumb.size == (320, 213)
    cache = db.with_name("library-thumbnails")
    assert len(list(cache.rglob("*.jpg"))) == 1  # cached beside the catalogue, not beside the photo
    assert client.get(f"/api/v1/library/photos/{coffee_id}/thumbnail").content == r.content
    r = client.get(f"/api/v1/library/photos/{coffee_id}/image")
    assert r.status_code == 200 and r.content == (album / "kitchen/coffee.png").read_bytes()


def test_rotated_photo_thumbnail_is_upright(album, index, make_client):
    src = Image.open(album / "cats/chelsea.png").convert("RGB")  # 451 x 300, wide
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": displayed tall
    src.save(album / "cats/rotated.jpg", "JPEG", exif=exif)
    index([album])
    client = make_client()
    items = client.get("/api/v1/library/search", params={"q": "", "limit": 200}).json()["items"]
    rotated = next(i for i in items if i["path"].endswith("rotated.jpg"))
    assert (rotated["width"], rotated["height"]) == (300, 451)
    thumb = Image.open(io.BytesIO(client.get(rotated["thumbnail_url"]).content))
    assert thumb.size[1] == 320 and thumb.size[0] < thumb.size[1]


def test_bad_ids_and_gone_files_are_clear_4xx(indexed, make_client):
    album, db = indexed
    client = make_client()
    assert client.get("/api/v1/library/photos/999999").status_code == 404
    assert client.get("/api/v1/library/photos/999999").json()["error"]["code"] == "photo_not_found"
    assert client.get("/api/v1/library/photos/0/thumbnail").status_code == 422
    assert client.get("/api/v1/library/photos/abc").status_code == 422
    assert client.get("/api/v1/library/photos/..%2F..%2Fetc%2Fpasswd/image").status_code in (404, 422)
    assert client.get("/api/v1/library/search", params={"limit": 0}).status_code == 422
    broken = next(
        i
        for i in client.get("/api/v1/library/search", params={"q": "", "limit": 200}).json()["items"]
        if i["path"].endswith("rocket.jpg")
    )
    os.remove(broken["path"])
    r = client.get(broken["thumbnail_url"])
    assert r.status_code == 410 and r.json()["error"]["code"] == "photo_gone"


def test_an_unsupported_lang_is_400_as_on_classify(indexed, make_client):
    """`lang=xx` used to answer 200 in English on the library routes where classify says 400."""
    album, _ = indexed
    client = make_client()
    photo_id = client.get("/api/v1/library/search", params={"q": "cat"}).json()["items"][0]["id"]
    classify = client.post(
        "/api/v1/classify",
        params={"lang": "xx"},
        files={"file": ("cat.png", (album / "cats/chelsea.png").read_bytes())},
    )
    assert classify.status_code == 400
    want = {k: v for k, v in classify.json()["error"].items() if k != "request_id"}
    assert want["code"] == "unsupported_language"
    for route, params in [
        ("/api/v1/library/search", {"q": "cat"}),
        ("/api/v1/library/stats", {}),
        (f"/api/v1/library/photos/{photo_id}", {}),
    ]:
        for lang in ("xx", "fr", " "):
            r = client.get(route, params={**params, "lang": lang})
            assert r.status_code == 400, (route, lang)
            got = {k: v for k, v in r.json()["error"].items() if k != "request_id"}
            if lang == "xx":
                assert got == want, route  # the same code and message as classify
            assert got["code"] == "unsupported_language"
        assert client.get(route, params={**params, "lang": "zh-CN"}).status_code == 200
    spec = client.get("/openapi.json").json()["paths"]["/api/v1/library/search"]["get"]
    assert "unsupported_language" in spec["responses"]["400"]["description"]


def test_api_key_covers_the_library(indexed, make_client):
    client = make_client(api_key="s3cret")
    assert client.get("/api/v1/library/search", params={"q": "cat"}).status_code == 401
    assert client.get("/api/v1/library/photos/1/thumbnail").status_code == 401
    ok = client.get("/api/v1/library/search", params={"q": "cat"}, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and ok.json()["total"] == 2


def test_no_library_no_routes(make_client, tmp_path):
    from wanwu.library.catalogue import LibraryError

    config = ServerConfig.from_env()
    with TestClient(create_app(config, service=InferenceService(config)), raise_server_exceptions=False) as plain:
        assert plain.get("/api/v1/library/stats").status_code == 404
        assert plain.get("/api/v1/library").json() == {"enabled": False}
    with pytest.raises(LibraryError, match="wanwu index"):
        create_app(ServerConfig.from_env(library=str(tmp_path / "missing.db")))


def test_heic_is_shown_as_jpeg(album, index, make_client):
    pillow_heif = pytest.importorskip("pillow_heif", reason="needs the wanwu-tagger[heif] extra")
    pillow_heif.from_pillow(Image.open(album / "kitchen/coffee.png").convert("RGB")).save(album / "IMG_2.heic")
    index([album])
    client = make_client()
    item = next(
        i
        for i in client.get("/api/v1/library/search", params={"limit": 200}).json()["items"]
        if i["path"].endswith("IMG_2.heic")
    )
    for url, size in ((item["thumbnail_url"], (320, 213)), (item["image_url"], (600, 400))):
        r = client.get(url)
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(r.content)).size == size


def test_tag_confidence_from_the_server_and_per_request(indexed, make_client):
    """The tags the Library API shows are the tag policy's: the server's --tag-confidence sets how
    sure they must be, a request's ``tag_confidence`` overrides it, and 0 is a clear 422."""
    strict = make_client(tag_confidence=0.999)
    assert strict.get("/api/v1/library/search", params={"q": "cat"}).json()["total"] == 0
    body = strict.get("/api/v1/library/search", params={"q": "cat", "tag_confidence": 0.5}).json()
    assert body["total"] == 2
    (tag,) = body["items"][0]["tags"]
    assert {"wnid", "group", "label", "score"} <= set(tag)
    assert strict.get("/api/v1/library/search", params={"q": "cat", "tag_confidence": 0}).status_code == 422
    stats = strict.get("/api/v1/library/stats").json()
    assert not any(g["key"] == "cat" for g in stats["groups"])


def test_tag_edits_from_the_page_do_what_wanwu_tag_does(indexed, make_client):
    """Issue 26 item 11: the photo view adds and removes tags through the API (behind the key)."""
    album, db = indexed
    client = make_client(api_key="k")
    auth = {"Authorization": "Bearer k"}
    item = client.get("/api/v1/library/search", params={"q": "espresso"}, headers=auth).json()["items"][0]
    url = f"/api/v1/library/photos/{item['id']}/tags"
    assert client.post(url, json={"add": ["holiday"]}).status_code == 401  # a write needs the key too

    r = client.post(
        url, json={"add": ["金毛", "holiday"], "remove": ["n07920052"]}, headers=auth, params={"lang": "zh"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message"] == "-意式浓缩咖啡 +金毛寻回犬 +holiday"  # one language, the request's (item 18)
    labels = {t["label"]: t for t in body["photo"]["tags"]}
    assert labels["金毛寻回犬"]["user"] and labels["holiday"]["user"] and "意式浓缩咖啡" not in labels
    assert client.get("/api/v1/library/search", params={"q": "holiday"}, headers=auth).json()["total"] == 1

    # removing what was added: by the wnid the page knows, or by the keyword
    r = client.post(url, json={"remove": ["n02099601", "holiday"]}, headers=auth).json()
    assert r["message"] == "-golden retriever -holiday"  # the class the wnid names, by its name
    assert not {"golden retriever", "holiday"} & {t["label"] for t in r["photo"]["tags"]}

    for bad, status in [({}, 400), ({"add": [""]}, 422), ({"add": "dog"}, 422), ({"add": ["x" * 101]}, 422)]:
        assert client.post(url, json=bad, headers=auth).status_code == status, bad
    assert client.post(url, content=b"add=dog", headers={**auth, "Content-Type": "text/plain"}).status_code == 422
    assert client.post("/api/v1/library/photos/999999/tags", json={"add": ["dog"]}, headers=auth).status_code == 404


def test_photo_item_has_place_and_other_apps_keywords(album, index, app_clients):
    """Issue 26 items 5 and 9: the photo item says where (EXIF GPS) and carries the keywords a
    digiKam sidecar holds, as the user's (``source``: sidecar); search finds them."""
    gps = {1: "N", 2: (39.0, 54.0, 27.0), 3: "E", 4: (116.0, 23.0, 50.0)}  # 北京
    with Image.open(album / "travel/2019/summer/china.jpg") as img:
        exif = Image.Exif()
        exif[0x8825] = gps
        img.save(album / "travel/2019/summer/china.jpg", "JPEG", exif=exif)
    (album / "travel/2019/summer/china.jpg.xmp").write_text(
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:digiKam="http://www.digikam.org/ns/1.0/">'
        "<digiKam:TagsList><rdf:Seq><rdf:li>旅行/北京</rdf:li></rdf:Seq></digiKam:TagsList>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    index([album])
    client = app_clients(ServerConfig.from_env(library=str(index.db)))
    found = client.get("/api/v1/library/search", params={"q": "旅行"}).json()
    assert found["total"] == 1
    one = client.get(f"/api/v1/library/photos/{found['items'][0]['id']}").json()
    assert (one["latitude"], one["longitude"]) == (39.9075, 116.397222)
    [kw] = [t for t in one["tags"] if t.get("source")]
    assert kw == {
        "wnid": None,
        "label": "北京",
        "score": None,
        "user": True,
        "source": "sidecar",
        "hierarchy": "旅行|北京",
    }
