"""``wanwu similar`` and ``wanwu duplicates`` on real photos and edited copies of them: edits are
found and grouped with their original, different photos are not, exact copies are a group of
their own, the keeper is the largest; a photo outside the collection gets neighbours; a
catalogue without embeddings says to run ``wanwu index``. And the exact-search index agrees
with brute force."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from wanwu.library.backend import tagger_name
from wanwu.library.catalogue import open_catalogue
from wanwu.library.similar import duplicates, similar_to_id, similar_to_vector
from wanwu.library.vectors import NoEmbeddingsError, VectorIndex

ORIGINALS = ("chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png", "china.jpg", "flower.jpg")


def _edits(img: Image.Image) -> dict[str, Image.Image]:
    w, h = img.size
    return {
        "half": img.resize((w // 2, h // 2), Image.Resampling.LANCZOS),
        "crop": img.crop((w // 20, h // 20, w - w // 20, h - h // 20)),
        "bright": ImageEnhance.Brightness(img).enhance(1.2),
        "border": ImageOps.expand(img, border=10, fill=(255, 255, 255)),
    }


@pytest.fixture
def collection(tmp_path, photos, classifier, index):
    """Six originals, four edits each of chelsea and coffee, one exact copy of rocket; indexed
    with the real tagger (so a file outside can be embedded by the catalogue's model)."""
    root = tmp_path / "photos"
    root.mkdir()
    for name in ORIGINALS:
        shutil.copy(photos[name], root / name)
    for name in ("chelsea.png", "coffee.png"):
        with Image.open(photos[name]) as im:
            img = im.convert("RGB")
        for kind, e in _edits(img).items():
            e.save(root / f"{name.split('.')[0]}-{kind}.jpg", quality=60)
    shutil.copy(photos["rocket.jpg"], root / "rocket-copy.jpg")
    tagger = tagger_name(classifier.model_name, "fp32", classifier.weights.sha256)
    index([root], tagger=tagger)
    return root


def _ids(db) -> dict[str, int]:
    conn = sqlite3.connect(db)
    out = {p.rsplit("/", 1)[-1]: i for i, p in conn.execute("SELECT id, path FROM photos")}
    conn.close()
    return out


def test_duplicates_groups_edits_apart_from_exact_copies(collection, index):
    conn = open_catalogue(index.db, readonly=True)
    found = duplicates(conn, str(index.db))
    conn.close()
    exact = [sorted(p["path"].rsplit("/", 1)[-1] for p in g["photos"]) for g in found["exact"]]
    assert exact == [["rocket-copy.jpg", "rocket.jpg"]]
    assert found["exact"][0]["reason"].startswith("same pixels and sharpness; oldest")
    near = {frozenset(p["path"].rsplit("/", 1)[-1] for p in g["photos"]): g for g in found["near"]}
    for stem, ext in (("chelsea", "png"), ("coffee", "png")):
        group = next(g for names, g in near.items() if f"{stem}.{ext}" in names)
        names = {p["path"].rsplit("/", 1)[-1] for p in group["photos"]}
        assert names == {f"{stem}.{ext}", *(f"{stem}-{k}.jpg" for k in ("half", "crop", "bright", "border"))}
        keeper = next(p for p in group["photos"] if p["id"] == group["keeper"])
        assert keeper["path"].endswith("-border.jpg")  # 10 px wider each way: the most pixels
        assert group["reason"].startswith("most pixels")
        assert all(0.85 <= p["similarity"] <= 1 for p in group["photos"])
    grouped = [n for names in near for n in names]
    assert len(grouped) == len(set(grouped))  # no photo in two groups
    for other in ("astronaut.png", "china.jpg", "flower.jpg", "rocket.jpg"):
        assert other not in grouped  # different photos are not grouped


def test_threshold_one_keeps_only_exact_groups(collection, index):
    conn = open_catalogue(index.db, readonly=True)
    found = duplicates(conn, str(index.db), threshold=0.9999)
    conn.close()
    assert found["near"] == [] and len(found["exact"]) == 1


def test_similar_lists_the_edits_first(collection, index):
    ids = _ids(index.db)
    conn = open_catalogue(index.db, readonly=True)
    got = similar_to_id(conn, str(index.db), ids["chelsea.png"], 4)
    conn.close()
    names = {g["path"].rsplit("/", 1)[-1] for g in got}
    assert names == {f"chelsea-{k}.jpg" for k in ("half", "crop", "bright", "border")}
    assert all(0 <= g["similarity"] <= 1 for g in got)
    assert [g["similarity"] for g in got] == sorted((g["similarity"] for g in got), reverse=True)


def test_a_photo_outside_the_collection_gets_neighbours(collection, index, photos, tmp_path):
    outside = tmp_path / "elsewhere.jpg"
    with Image.open(photos["coffee.png"]) as im:
        im.convert("RGB").rotate(3).save(outside, quality=70)  # not in the catalogue
    proc = subprocess.run(
        [sys.executable, "-m", "wanwu.cli", "similar", str(outside), "--db", str(index.db), "-n", "3", "-f", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert len(got) == 3 and all(g["path"].rsplit("/", 1)[-1].startswith("coffee") for g in got)
    assert "not in the catalogue" in proc.stderr


def test_no_embeddings_says_to_run_index(album, index):
    index([album])
    raw = sqlite3.connect(index.db)
    raw.execute("DELETE FROM embeddings")
    raw.commit()
    raw.close()
    conn = open_catalogue(index.db, readonly=True)
    with pytest.raises(NoEmbeddingsError, match="run `wanwu index`"):
        similar_to_vector(conn, str(index.db), np.ones(1280, np.float32) / np.sqrt(1280))
    found = duplicates(conn, str(index.db))  # exact copies need no embeddings
    conn.close()
    assert found["embeddings"] is False and len(found["exact"]) == 1 and found["near"] == []
    proc = subprocess.run(
        [sys.executable, "-m", "wanwu.cli", "similar", "1", "--db", str(index.db)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0 and "run `wanwu index`" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def _clustered(n: int, d: int = 256, seed: int = 0) -> np.ndarray:
    """Vectors with structure (a few directions carry most of the energy) and planted near-copies."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 16)) @ rng.standard_normal((16, d))
    x = np.maximum(latent + 0.5 * rng.standard_normal((n, d)), 0)
    x[1::50] = x[0::50][: len(x[1::50])] + 0.05 * rng.standard_normal((len(x[1::50]), d))
    return x


def test_index_answers_equal_brute_force(monkeypatch):
    from wanwu.library import vectors
    from wanwu.library.embeddings import normalized, quantize

    monkeypatch.setattr(vectors, "EXACT_BELOW", 100)  # force the projected path at test size
    rows = quantize(normalized(_clustered(3000)))
    index = VectorIndex.build(np.arange(3000) + 1, rows, dims=32)
    assert index.basis is not None
    unit = normalized(rows.astype(np.float32))
    full = unit @ unit.T
    for q in (0, 1, 7, 1234):
        pos, sims = index.nearest(unit[q], 10, exclude=q)
        want = np.argsort(-np.where(np.arange(3000) == q, -np.inf, full[q]), kind="stable")[:10]
        assert np.allclose(sims, full[q, want], atol=1e-5)
    got = set()
    for ii, jj, _ in index.pairs(0.9, block=700):
        got |= set(zip(ii.tolist(), jj.tolist()))
    want = set(zip(*[a.tolist() for a in np.nonzero(np.triu(full >= 0.9, 1))]))
    assert got == want and len(want) >= 50


def test_keeper_is_most_pixels_then_sharpest_then_oldest():
    from wanwu.library.similar import _keeper

    def row(i, w, sharp, taken=None, mtime=0):
        return {
            "id": i,
            "path": f"/p/{i}",
            "width": w,
            "height": w,
            "sharpness": sharp,
            "taken": taken,
            "mtime_ns": mtime,
        }

    k, why = _keeper([row(1, 100, 9.0), row(2, 200, 1.0)])
    assert k["id"] == 2 and why.startswith("most pixels (200x200)")
    k, why = _keeper([row(1, 200, 1.0), row(2, 200, 2.0)])
    assert k["id"] == 2 and why.endswith("then sharpest")
    k, why = _keeper([row(1, 200, 2.02, "2024-01-01T00:00:00"), row(2, 200, 2.0, "2019-05-01T00:00:00")])
    assert k["id"] == 2 and "oldest (2019-05-01" in why  # 1% sharper is a tie: the older wins
    k, why = _keeper([row(1, 200, None, mtime=5), row(2, 200, None, mtime=3)])
    assert k["id"] == 2 and "oldest" in why


def test_all_pairs_are_computed_once_per_index_and_threshold(monkeypatch):
    """The duplicates review asks again after every click: the all-pairs pass (the one costly
    step, ~50 s at 100,000 photos) runs once per index and threshold; a rebuilt index (the
    catalogue changed) or another threshold computes afresh, and the answers agree."""
    from wanwu.library import vectors
    from wanwu.library.embeddings import normalized, quantize

    rows = quantize(normalized(_clustered(600)))
    index = VectorIndex.build(np.arange(600) + 1, rows)
    calls = []
    real = VectorIndex.pairs

    def counted(self, threshold, block=vectors.BLOCK):
        calls.append(threshold)
        return real(self, threshold, block)

    monkeypatch.setattr(VectorIndex, "pairs", counted)
    first = index.linked(0.9)
    again = index.linked(0.9)
    assert calls == [0.9] and all(a is b for a, b in zip(first, again))
    assert len(first[0]) >= 10 and set(first[0].tolist()) <= set(range(1, 601))
    index.linked(0.95)
    assert calls == [0.9, 0.95]
    rebuilt = VectorIndex.build(np.arange(600) + 1, rows)
    redo = rebuilt.linked(0.9)
    assert calls == [0.9, 0.95, 0.9] and np.array_equal(redo[0], first[0]) and np.array_equal(redo[2], first[2])
    monkeypatch.setattr(vectors, "LINKED_KEPT", 0)
    rebuilt.linked(0.8)
    rebuilt.linked(0.8)
    assert calls[-2:] == [0.8, 0.8]  # too many pairs to keep: not kept
