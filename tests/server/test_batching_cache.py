"""The server's fast path: concurrent requests share forward passes, a repeated photo is
answered from the result cache (in /metrics; in the response only with --show-cache-hits), the
cache can be turned off, and a full inference queue answers 503 with Retry-After."""

from __future__ import annotations

import asyncio
import threading

import httpx
import numpy as np
import pytest


def _top1(body: dict) -> str:
    return body["results"][0]["predictions"][0]["label"]


def test_repeated_photo_is_cached_with_same_answer(make_client, chelsea, cat_labels):
    c = make_client(show_cache_hits=True)
    data = chelsea.read_bytes()
    first = c.post("/api/v1/classify", params={"top_k": 3}, content=data).json()
    second = c.post("/api/v1/classify", params={"top_k": 5}, content=data).json()
    assert first["results"][0]["cached"] is False and second["results"][0]["cached"] is True
    assert _top1(first) == _top1(second) in cat_labels
    assert len(second["results"][0]["predictions"]) == 5  # logits are cached, so any top_k works
    p1 = first["results"][0]["predictions"]
    p2 = second["results"][0]["predictions"][:3]
    assert [p["index"] for p in p1] == [p["index"] for p in p2]
    assert np.allclose([p["score"] for p in p1], [p["score"] for p in p2])
    assert second["results"][0]["timing_ms"]["inference"] == 0.0
    assert (second["results"][0]["width"], second["results"][0]["height"]) == (451, 300)
    metrics = c.get("/metrics").text
    assert "wanwu_cache_hits_total 1.0" in metrics and "wanwu_cache_misses_total 1.0" in metrics


def test_cache_is_keyed_by_content_not_name(make_client, chelsea, coffee):
    c = make_client(show_cache_hits=True)
    c.post("/api/v1/classify", files={"file": ("a.png", chelsea.read_bytes(), "image/png")})
    r = c.post("/api/v1/classify", files={"file": ("a.png", coffee.read_bytes(), "image/png")}).json()
    assert r["results"][0]["cached"] is False and _top1(r) in {"espresso", "cup"}


def test_cache_can_be_turned_off(make_client, coffee):
    c = make_client(cache_entries=0, show_cache_hits=True)
    data = coffee.read_bytes()
    for _ in range(2):
        assert c.post("/api/v1/classify", content=data).json()["results"][0]["cached"] is False
    assert "wanwu_cache_hits_total 0.0" in c.get("/metrics").text


def test_cache_hits_are_not_revealed_by_default(make_client, chelsea):
    """Another client must not learn that someone sent this photo before: no "cached" field, and
    the hit repeats the first answer's timings (its own would show no decode and no inference)."""
    c = make_client()
    data = chelsea.read_bytes()
    first, second = (
        c.post("/api/v1/classify", params={"top_k": 3}, content=data).json()["results"][0] for _ in range(2)
    )
    assert "cached" not in first and "cached" not in second
    assert second["timing_ms"] == first["timing_ms"] and second["timing_ms"]["inference"] > 0
    assert second["predictions"] == first["predictions"]
    assert "wanwu_cache_hits_total 1.0" in c.get("/metrics").text  # the operator still sees it


def test_bad_image_is_not_cached_as_good(make_client):
    c = make_client()
    for _ in range(2):
        r = c.post("/api/v1/classify", content=b"not an image at all")
        assert r.status_code == 415


def _concurrent_posts(app, payloads: list[bytes]) -> list[httpx.Response]:
    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await asyncio.gather(*(http.post("/api/v1/classify", content=p) for p in payloads))

    return asyncio.run(go())


def _distinct_photos(chelsea, n: int) -> list[bytes]:
    """n different encodings (so the cache cannot help) of the same cat."""
    import io

    from PIL import Image

    base = Image.open(chelsea).convert("RGB")
    out = []
    for i in range(n):
        buf = io.BytesIO()
        base.resize((451 - i, 300)).save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def test_concurrent_requests_share_forward_passes(make_client, chelsea, cat_labels):
    c = make_client(batch_size=8, batch_wait_ms=5)
    service = c.app.state.ctx.service
    responses = _concurrent_posts(c.app, _distinct_photos(chelsea, 24))
    assert all(r.status_code == 200 for r in responses)
    assert all(_top1(r.json()) in cat_labels for r in responses)
    batcher = service.batchers["efficientnet_lite0"]
    assert batcher.images == 24
    assert batcher.batches < 24, "concurrent requests should have been grouped"
    assert 'wanwu_inference_batches_total{model="efficientnet_lite0"}' in c.get("/metrics").text


def test_batching_off_runs_one_image_per_pass(make_client, chelsea):
    c = make_client(batch_size=1)
    _concurrent_posts(c.app, _distinct_photos(chelsea, 6))
    batcher = c.app.state.ctx.service.batchers["efficientnet_lite0"]
    assert batcher.batches == batcher.images == 6


def test_full_queue_is_503_with_retry_after(make_client, chelsea, coffee, monkeypatch):
    c = make_client(max_queue=1, batch_size=1, cache_entries=0)
    clf = c.app.state.ctx.service.pool.get("efficientnet_lite0")
    gate = threading.Event()
    real_run = clf.engine.run

    def held(batch):
        gate.wait(10)
        return real_run(batch)

    monkeypatch.setattr(clf.engine, "run", held)
    photos = _distinct_photos(chelsea, 4)

    async def go():
        transport = httpx.ASGITransport(app=c.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as http:
            tasks = [asyncio.create_task(http.post("/api/v1/classify", content=p)) for p in photos]
            await asyncio.sleep(1.0)  # one in the engine, one queued, the rest refused
            gate.set()
            return await asyncio.gather(*tasks)

    responses = asyncio.run(go())
    statuses = sorted(r.status_code for r in responses)
    assert 503 in statuses and 200 in statuses, statuses
    busy = next(r for r in responses if r.status_code == 503)
    assert busy.headers["retry-after"] == "1" and busy.json()["error"]["code"] == "busy"
    monkeypatch.undo()
    assert c.post("/api/v1/classify", content=coffee.read_bytes()).status_code == 200


def test_max_models_unloads_the_least_recently_used(base_config, chelsea, cat_labels):
    """--max-models 2: the default stays, the least recently used other model is unloaded (its
    batcher closed), and asking for it again loads it again with the same answers."""
    from fastapi.testclient import TestClient

    from wanwu.models import get_spec
    from wanwu.models.weights import availability
    from wanwu.server import InferenceService, create_app

    if not all(availability(get_spec(m))[0] for m in ("efficientnet_lite1", "efficientnet_lite2")):
        pytest.skip("needs the more-models extra (EfficientNet-Lite1/2)")
    config = base_config.with_(max_models=2)
    service = InferenceService(config)
    data = chelsea.read_bytes()
    with TestClient(create_app(config, service=service)) as c:

        def top1(model: str) -> str:
            r = c.post("/api/v1/classify", params={"model": model, "top_k": 1}, content=data)
            assert r.status_code == 200, r.text
            return _top1(r.json())

        first = top1("efficientnet_lite1")
        assert set(service.pool.loaded_names()) == {"efficientnet_lite0", "efficientnet_lite1"}
        top1("efficientnet_lite2")
        assert set(service.pool.loaded_names()) == {"efficientnet_lite0", "efficientnet_lite2"}
        assert set(service.batchers) <= {"efficientnet_lite0", "efficientnet_lite2"}
        loaded = {m["name"]: m["loaded"] for m in c.get("/api/v1/models").json()["models"]}
        assert loaded["efficientnet_lite1"] is False and loaded["efficientnet_lite0"] is True
        assert top1("efficientnet_lite1") == first  # loaded again
        assert set(service.pool.loaded_names()) == {"efficientnet_lite0", "efficientnet_lite1"}
        assert top1("efficientnet_lite0") in cat_labels  # the default was never unloaded


def test_an_unloaded_model_is_freed_before_its_memory_is_handed_back(base_config, chelsea, monkeypatch):
    """--max-models: the unloaded model's session must be gone when glibc is asked to give the
    freed pages back; trimming while the closing batcher still held it left its memory in the
    heap (unloading lite1 then gave nothing back: 217 MB with or without --max-models 2)."""
    import threading
    import weakref

    from wanwu.models import get_spec
    from wanwu.models.weights import availability
    from wanwu.server import InferenceService, inference

    if not all(availability(get_spec(m))[0] for m in ("efficientnet_lite1", "efficientnet_lite2")):
        pytest.skip("needs the more-models extra (EfficientNet-Lite1/2)")
    config = base_config.with_(max_models=2)
    service = InferenceService(config)
    service.start()
    data = chelsea.read_bytes()

    alive_at_release: list[bool] = []
    released = threading.Event()
    clf = service.pool.get("efficientnet_lite1")
    asyncio.run(service.classify(data, model="efficientnet_lite1"))  # its batcher exists and has run
    ref = weakref.ref(clf)

    def recording_release() -> None:
        import gc

        gc.collect()
        alive_at_release.append(ref() is not None)
        released.set()

    monkeypatch.setattr(inference, "release_freed_memory", recording_release)
    del clf
    service.pool.get("efficientnet_lite2")  # lite1 goes (least recently used, not the default)
    assert released.wait(10), "the unloaded model was never released"
    assert alive_at_release == [False] and "efficientnet_lite1" not in service.pool.loaded_names()
    service.close()
