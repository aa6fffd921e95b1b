"""The tag policy where the library shows and writes tags (issue 20): a photo split inside one
group is tagged with the group, an unsure one gets no tag and no sidecar keywords, search for a
group finds photos tagged only by the group, and a policy change rewrites sidecars without the
model while the user's own tags survive. The catalogue rows are written here (no inference)."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from wanwu import settings
from wanwu.cli import library as library_cli
from wanwu.cli import main
from wanwu.library import usertags, xmp
from wanwu.library.catalogue import open_catalogue
from wanwu.library.export import summary
from wanwu.library.search import group_counts, photo, search


def _keywords(sidecar: str) -> dict[str, list[str]]:
    """The keyword bags of a sidecar, read back with ElementTree (not with wanwu's own reader)."""
    rdf = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
    bags = {
        "dc:subject": "{http://purl.org/dc/elements/1.1/}subject",
        "lr:hierarchicalSubject": "{http://ns.adobe.com/lightroom/1.0/}hierarchicalSubject",
        "digiKam:TagsList": "{http://www.digikam.org/ns/1.0/}TagsList",
    }
    root = ET.parse(sidecar).getroot()
    return {
        name: [li.text or "" for el in root.iter(tag) for li in el.iter(f"{{{rdf}}}li")] for name, tag in bags.items()
    }


TABBY, TIGER_CAT, EGYPTIAN_CAT, GOLDEN, ESPRESSO = "n02123045", "n02123159", "n02124075", "n02099601", "n07920052"
SPLIT_CAT = [(TABBY, 0.45), (TIGER_CAT, 0.35), (EGYPTIAN_CAT, 0.15)]  # calibrated: "cat" 96%, tabby 51%
UNSURE = [(TABBY, 0.3), (GOLDEN, 0.3), (ESPRESSO, 0.2)]
SURE_DOG = [(GOLDEN, 0.97), ("n02099712", 0.02)]


@pytest.fixture
def tagger() -> str:
    return library_cli._tagger_for(settings.ModelSettings.from_env({}))  # the default model's, as index makes it


@pytest.fixture
def library(tmp_path, photos, tagger):
    """Three catalogued photos (real files) tagged as the model would: a cat the model hesitates
    over, an unsure photo and a sure golden retriever. -> (db path, {name: path})."""
    root = tmp_path / "Pictures"
    root.mkdir()
    files = {}
    for name, src in (("cat", "chelsea.png"), ("unsure", "coffee.png"), ("dog", "astronaut.png")):
        files[name] = root / f"{name}.png"
        shutil.copy(photos[src], files[name])
    db = tmp_path / "library.db"
    conn = open_catalogue(db)
    with conn:
        for i, (name, scores) in enumerate((("cat", SPLIT_CAT), ("unsure", UNSURE), ("dog", SURE_DOG)), 1):
            st = files[name].stat()
            conn.execute(
                "INSERT INTO photos (id, path, size, mtime_ns, sha256, tagger, indexed_at) VALUES (?, ?, ?, ?, ?, ?, 0)",
                (i, str(files[name]), st.st_size, st.st_mtime_ns, f"sha{i}", tagger),
            )
            conn.executemany("INSERT INTO tags VALUES (?, ?, ?, ?)", [(i, r, w, p) for r, (w, p) in enumerate(scores)])
            # fully indexed: its embedding and faces looked for, so nothing is left for the model to do
            conn.execute("INSERT INTO embeddings (photo_id, model, vector) VALUES (?, ?, ?)", (i, tagger, bytes(1280)))
            conn.execute("UPDATE photos SET faces = 0 WHERE id = ?", (i,))
    conn.close()
    return db, files


def _tags(db, photo_id, **kw) -> list[dict]:
    conn = open_catalogue(db, readonly=True)
    try:
        return photo(conn, photo_id, **kw)["tags"]
    finally:
        conn.close()


def test_a_photo_split_inside_a_group_is_tagged_with_the_group(library):
    db, _ = library
    (tag,) = _tags(db, 1)
    assert (tag["group"], tag["wnid"], tag["label"]) == ("cat", None, "cat")
    assert tag["score"] > 0.9
    assert _tags(db, 1, lang="zh")[0]["label"] == "猫"
    assert _tags(db, 3)[0]["wnid"] == GOLDEN  # sure: the class itself


def test_an_unsure_photo_gets_no_tag(library):
    db, _ = library
    assert _tags(db, 2) == []
    conn = open_catalogue(db, readonly=True)
    assert 2 not in {p["id"] for p in search(conn, "tabby").items + search(conn, "golden retriever").items}
    conn.close()


def test_search_for_a_group_finds_photos_tagged_only_by_the_group(library):
    db, files = library
    conn = open_catalogue(db, readonly=True)
    try:
        for query in ("cat", "猫", "feline", "animal"):
            assert str(files["cat"]) in [p["path"] for p in search(conn, query).items], query
        assert search(conn, "tabby").total == 0  # "a cat" is not "a tabby"
        assert [p["path"] for p in search(conn, "dog").items] == [str(files["dog"])]
        assert [p["path"] for p in search(conn, "animal").items][:1] == [str(files["dog"])]  # 97% before 96%
        facets = {g["key"]: g["count"] for g in group_counts(conn)}
        assert facets["cat"] == 1 and facets["dog"] == 1 and facets["animal"] == 2
        info = summary(conn, str(db))
        assert [x["wnid"] for x in info["labels"]] == [GOLDEN]  # the group tag is not a label count
    finally:
        conn.close()


def _index(root: Path, db: Path, *extra: str) -> int:
    return main(["index", str(root), "--db", str(db), "--write-xmp", "--quiet", *extra])


def test_a_policy_change_rewrites_sidecars_without_the_model_and_user_tags_win(library, monkeypatch, capsys):
    db, files = library
    root = files["cat"].parent

    def no_model(*a, **kw):
        raise AssertionError("the model ran: a policy change must not re-classify")

    monkeypatch.setattr("wanwu.pipeline.Classifier", no_model)
    monkeypatch.setattr("wanwu.library.backend.LocalBackend", no_model)
    monkeypatch.delenv("WANWU_TAG_CONFIDENCE", raising=False)
    conn = open_catalogue(db)
    usertags.apply(conn, str(files["cat"]), ["holiday"], [])
    conn.close()

    assert _index(root, db) == 0
    cat = _keywords(xmp.sidecar_path(str(files["cat"])))
    assert {"cat", "feline", "holiday"} <= set(cat["dc:subject"]) and "tabby" not in cat["dc:subject"]
    assert not Path(xmp.sidecar_path(str(files["unsure"]))).exists()  # no tag: no keywords, no sidecar
    assert "golden retriever" in _keywords(xmp.sidecar_path(str(files["dog"])))["dc:subject"]

    assert _index(root, db, "--tag-confidence", "0.99") == 0  # stricter: the cat is no longer sure enough
    cat = _keywords(xmp.sidecar_path(str(files["cat"])))
    assert "cat" not in cat["dc:subject"] and "holiday" in cat["dc:subject"]  # the user's tag stays
    assert "wanwu|holiday" in cat["lr:hierarchicalSubject"]

    monkeypatch.setenv("WANWU_TAG_CONFIDENCE", "0.5")  # more lenient: tabby (51%) itself
    assert _index(root, db) == 0
    cat = _keywords(xmp.sidecar_path(str(files["cat"])))
    assert {"tabby", "cat", "holiday"} <= set(cat["dc:subject"])
    assert "0 new" in capsys.readouterr().out
