"""Embeddings at index time: one per photo from the forward pass that tags it, stored as int8
with the tagger that made it; a catalogue indexed before them gets them on the next run, one
forward pass per photo and no more; a copy takes its twin's; Ray rows carry the same bytes."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
from album_tree import LAYOUT

from wanwu.library import catalogue, embeddings, usertags
from wanwu.library.catalogue import open_catalogue

VISIBLE = [rel for rel in LAYOUT if not rel.startswith(".")]


def _embedded(db) -> dict[str, tuple[str, np.ndarray, float]]:
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT p.path, e.model, e.vector, e.sharpness FROM embeddings e JOIN photos p ON p.id = e.photo_id"
    ).fetchall()
    conn.close()
    return {path: (model, embeddings.decode(blob), sharp) for path, model, blob, sharp in rows}


def test_index_stores_one_embedding_per_photo_from_the_same_pass(album, index, classifier):
    summary, made = index([album])
    got = _embedded(index.db)
    assert len(got) == len(VISIBLE) == summary.new  # the corrupt file has none
    for model, vector, sharp in got.values():
        assert model == "test/fp32/abc" and vector.shape == (1280,) and sharp > 0
        assert abs(float(np.linalg.norm(vector)) - 1) < 1e-5
    # the stored vector is the pooled feature map of the photo's own forward pass
    prepared = classifier.runner.prepare(str(album / "kitchen/coffee.png"), "coffee")
    _, features = classifier.infer_with_features(prepared.x[None])
    want = embeddings.pooled(features)[0]
    assert float(want @ got[str(album / "kitchen/coffee.png")][1]) > 0.999
    # the exact duplicate and the cat are far closer to each other than to the coffee
    cat, again = got[str(album / "cats/chelsea.png")][1], got[str(album / "cats/2024/chelsea-again.png")][1]
    assert float(cat @ again) > 0.999 and float(cat @ want) < 0.8


def test_int8_keeps_the_direction():
    rng = np.random.default_rng(1)
    v = embeddings.normalized(np.maximum(rng.standard_normal((50, 1280)), 0).astype(np.float32))
    back = np.stack([embeddings.decode(embeddings.encode(x)) for x in v])
    assert len(embeddings.encode(v[0])) == 1280
    assert np.min(np.sum(v * back, axis=1)) > 0.999


def test_a_catalogue_indexed_before_embeddings_gets_them_with_one_pass_each(album, index):
    index([album])
    conn = open_catalogue(index.db)
    usertags.apply(conn, str(album / "space/rocket.jpg"), ["my rocket"], [])
    tags_before = conn.execute("SELECT photo_id, rank, wnid FROM tags ORDER BY 1, 2").fetchall()
    conn.close()
    # make it a catalogue of the schema before embeddings, as an older wanwu left it
    raw = sqlite3.connect(index.db)
    raw.executescript(
        "DROP TABLE embeddings; DROP TABLE embeddings_version; DROP TABLE keywords; "
        "ALTER TABLE photos DROP COLUMN latitude; ALTER TABLE photos DROP COLUMN longitude; "
        "ALTER TABLE photos DROP COLUMN metadata_read; ALTER TABLE photos DROP COLUMN sidecar_stamp; "
        "PRAGMA user_version = 3;"  # the step before embeddings (and the keywords and GPS of version 5)
    )
    raw.close()

    summary, made = index([album])
    assert len(made) == 1
    assert summary.embedded == len(VISIBLE) and summary.classified == len(VISIBLE)  # once each
    assert summary.still_failing == 1  # the corrupt file is not retried
    assert "embedded" in summary.line() and summary.to_dict()["embedded"] == len(VISIBLE)
    assert len(_embedded(index.db)) == len(VISIBLE)
    conn = open_catalogue(index.db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == catalogue.SCHEMA_VERSION
    assert conn.execute("SELECT photo_id, rank, wnid FROM tags ORDER BY 1, 2").fetchall() == tags_before
    assert conn.execute("SELECT count(*) FROM user_tags").fetchone()[0] == 1  # kept
    conn.close()

    summary, made = index([album])
    assert made == [] and summary.classified == 0  # and no more


def test_another_model_replaces_the_embeddings(album, index):
    index([album])
    index([album], tagger="other/int8/def")
    assert {m for m, _, _ in _embedded(index.db).values()} == {"other/int8/def"}


def test_a_copy_takes_its_twins_embedding_and_a_deleted_photo_loses_it(album, index):
    index([album])
    conn = open_catalogue(index.db)
    version = conn.execute("SELECT n FROM embeddings_version").fetchone()[0]
    conn.close()
    shutil.copy(album / "kitchen/coffee.png", album / "bikes/coffee-copy.png")
    (album / "space/rocket.jpg").unlink()
    summary, made = index([album])
    assert summary.copied == 1 and summary.classified == 0
    got = _embedded(index.db)
    assert np.array_equal(got[str(album / "bikes/coffee-copy.png")][1], got[str(album / "kitchen/coffee.png")][1])
    assert str(album / "space/rocket.jpg") not in got
    conn = open_catalogue(index.db)
    assert conn.execute("SELECT n FROM embeddings_version").fetchone()[0] == version + 2  # change counter
    conn.close()


def test_ray_rows_carry_the_same_embedding(album, classifier):
    """The Ray backend's row codec (what crosses from a worker) keeps the embedding as stored."""
    from wanwu.library.backend import LocalBackend
    from wanwu.library.ray_backend import _error_classes, _from_row, _to_row

    local = LocalBackend(classifier, 5)
    items = list(local.classify([str(album / "kitchen/coffee.png")]))
    local.close()
    back = _from_row(_to_row(items[0]), _error_classes())
    assert back.embedding is not None and back.sharpness == items[0].sharpness
    assert embeddings.encode(back.embedding) == embeddings.encode(items[0].embedding)
