"""ResultCache: content-addressed, bounded by entries and bytes, LRU, counts hits/misses."""

from __future__ import annotations

import numpy as np

from wanwu.cache import CachedResult, ResultCache, content_key


def _entry(v: float = 0.0) -> CachedResult:
    return CachedResult(np.full(1000, v, np.float32), 10, 20)


def test_key_depends_on_bytes_model_and_precision():
    a = content_key(b"img", "efficientnet_lite0", "fp32")
    assert a == content_key(b"img", "efficientnet_lite0", "fp32")
    assert a != content_key(b"img2", "efficientnet_lite0", "fp32")
    assert a != content_key(b"img", "resnet18", "fp32")
    assert a != content_key(b"img", "efficientnet_lite0", "int8")


def test_hit_miss_counters_and_values():
    cache = ResultCache(max_entries=10)
    assert cache.get("k") is None
    cache.put("k", _entry(1.5))
    got = cache.get("k")
    assert got is not None and got.logits[0] == 1.5 and (got.width, got.height) == (10, 20)
    assert (cache.hits, cache.misses) == (1, 1)


def test_lru_eviction_by_entries():
    cache = ResultCache(max_entries=2)
    cache.put("a", _entry())
    cache.put("b", _entry())
    cache.get("a")  # a is now most recent
    cache.put("c", _entry())
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert len(cache) == 2


def test_eviction_by_bytes():
    one = _entry().nbytes
    cache = ResultCache(max_entries=100, max_bytes=3 * one)
    for i in range(10):
        cache.put(str(i), _entry())
    assert len(cache) == 3 and cache.size_bytes <= 3 * one
    assert cache.get("9") is not None and cache.get("0") is None


def test_disabled_cache_stores_nothing():
    cache = ResultCache(max_entries=0)
    cache.put("k", _entry())
    assert cache.get("k") is None and len(cache) == 0
