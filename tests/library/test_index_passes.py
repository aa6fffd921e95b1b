"""``wanwu index``'s layout (issue 23): an engine with one intra-op thread and a forward pass per
core, run at once, gives every photo the same tags, scores, embedding and facts as one pass at a
time on a two-thread engine (the layout before). No timing here: benchmarks/index_throughput.py."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from wanwu.library.backend import LocalBackend
from wanwu.library.embeddings import encode


def _sample() -> list[str]:
    env = os.environ.get("WANWU_IMAGENET_SAMPLE")
    folder = Path(env).expanduser() if env else Path(__file__).resolve().parents[3] / "shared" / "imagenet-100"
    if not folder.is_dir():
        pytest.skip(f"ImageNet sample not found at {folder} (set WANWU_IMAGENET_SAMPLE)")
    return sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in (".jpeg", ".jpg"))[:40]


def _run(backend: LocalBackend, paths: list[str]) -> dict:
    try:
        return {c.path: c for c in backend.classify(paths)}
    finally:
        backend.close()


def test_concurrent_one_thread_passes_give_the_same_answers(photos):
    from wanwu import Classifier

    paths = _sample() + [str(p) for p in photos.values()]
    before = _run(LocalBackend(Classifier(threads=2), top_k=5, batch_size=4, passes=1), paths)
    one_thread = Classifier(threads=1)
    after_backend = LocalBackend(one_thread, top_k=5, batch_size=4)
    assert after_backend.passes == 2 or os.cpu_count() == 1  # the default: one pass per core
    after = _run(after_backend, paths)
    assert sorted(after) == sorted(before) == sorted(paths)
    for path in paths:
        a, b = after[path], before[path]
        assert a.result.error is None and b.result.error is None, path
        assert [p.wnid for p in a.result.predictions] == [p.wnid for p in b.result.predictions], path
        np.testing.assert_allclose(
            [p.score for p in a.result.predictions], [p.score for p in b.result.predictions], rtol=1e-4, atol=1e-6
        )
        np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-5)
        assert (
            encode(a.embedding) == encode(b.embedding)
            or np.abs(
                np.frombuffer(encode(a.embedding), np.int8).astype(int) - np.frombuffer(encode(b.embedding), np.int8)
            ).max()
            <= 1
        ), path
        assert a.sharpness == b.sharpness and a.facts == b.facts, path
        assert (a.result.width, a.result.height) == (b.result.width, b.result.height)
