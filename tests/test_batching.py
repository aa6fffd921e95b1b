"""MicroBatcher: concurrent requests are grouped, results go back to the right caller,
failures reach every caller, the queue is bounded, an idle request is not delayed."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from wanwu.batching import BusyError, MicroBatcher


class SlowDouble:
    """A fake engine: returns 2*x summed per image; records batch sizes; can be held."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.sizes: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.gate.wait()
        self.sizes.append(len(batch))
        time.sleep(self.delay)
        return batch.reshape(len(batch), -1).sum(axis=1, keepdims=True) * 2


def test_results_return_to_their_callers_and_batches_form_under_load():
    engine = SlowDouble(delay=0.02)
    batcher = MicroBatcher(engine, max_batch_size=8, max_wait_ms=0)
    try:
        engine.gate.clear()  # hold the first batch so the others queue up behind it
        futures = [batcher.submit(np.full((1, 2, 2), i, np.float32)) for i in range(17)]
        engine.gate.set()
        values = [f.result(timeout=5)[0] for f in futures]
    finally:
        batcher.close()
    assert values == [i * 4 * 2 for i in range(17)]
    assert max(engine.sizes) == 8  # grouped, and never above the limit
    assert sum(engine.sizes) == 17
    assert batcher.batches == len(engine.sizes) < 17


def test_idle_request_is_not_delayed_by_max_wait():
    engine = SlowDouble()
    batcher = MicroBatcher(engine, max_batch_size=16, max_wait_ms=2000)
    try:
        t0 = time.monotonic()
        batcher.submit(np.ones((1, 1, 1), np.float32)).result(timeout=5)
        elapsed = time.monotonic() - t0
    finally:
        batcher.close()
    # nothing else was announced, so the 2 s max wait must not apply
    assert elapsed < 1.0


def test_waits_for_announced_requests_to_join_the_batch():
    engine = SlowDouble()
    batcher = MicroBatcher(engine, max_batch_size=16, max_wait_ms=1000)
    try:
        results = []
        with batcher.expect():  # a second request is still decoding
            first = batcher.submit(np.ones((1, 1, 1), np.float32))
            time.sleep(0.05)
            second = batcher.submit(np.ones((1, 1, 1), np.float32))
        results = [first.result(timeout=5), second.result(timeout=5)]
    finally:
        batcher.close()
    assert len(results) == 2
    assert engine.sizes == [2]


def test_engine_failure_reaches_every_caller_and_the_batcher_keeps_working():
    calls = {"n": 0}

    def flaky(batch):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("engine exploded")
        return batch.reshape(len(batch), -1)

    batcher = MicroBatcher(flaky, max_batch_size=4, max_wait_ms=0)
    try:
        with pytest.raises(RuntimeError, match="exploded"):
            batcher.submit(np.ones((1,), np.float32)).result(timeout=5)
        assert batcher.submit(np.full((1,), 3.0, np.float32)).result(timeout=5)[0] == 3.0
    finally:
        batcher.close()


def test_bounded_queue_refuses_with_busy_error():
    engine = SlowDouble()
    engine.gate.clear()
    batcher = MicroBatcher(engine, max_batch_size=1, max_wait_ms=0, max_queue=3)
    try:
        first = batcher.submit(np.ones((1,), np.float32))
        time.sleep(0.05)  # the thread has taken `first` and is blocked in the engine
        queued = [batcher.submit(np.ones((1,), np.float32)) for _ in range(3)]
        with pytest.raises(BusyError) as info:
            batcher.submit(np.ones((1,), np.float32))
        assert info.value.http_status == 503
        engine.gate.set()
        for f in [first, *queued]:
            f.result(timeout=5)
    finally:
        engine.gate.set()
        batcher.close()


def test_many_threads_get_correct_answers():
    batcher = MicroBatcher(lambda b: b.reshape(len(b), -1) + 1, max_batch_size=8, max_wait_ms=1)
    try:
        with ThreadPoolExecutor(16) as pool:
            out = list(pool.map(lambda i: batcher.submit(np.full((1,), float(i), np.float32)).result(5)[0], range(200)))
    finally:
        batcher.close()
    assert out == [i + 1.0 for i in range(200)]


def test_inline_pass_only_when_alone_and_the_batcher_waits_for_it():
    """claim_inline: a lone image may run its pass on its own thread; not while another image is
    queued or being decoded, and the batcher does not start a pass while an inline one runs."""
    import threading

    import numpy as np

    from wanwu.batching import MicroBatcher

    started = threading.Event()
    b = MicroBatcher(lambda x: (started.set(), x.sum(axis=(1, 2, 3))[:, None])[1], max_wait_ms=0)
    try:
        with b.expect():
            assert b.claim_inline()  # alone
            assert not b.claim_inline()  # one inline pass at a time
            fut = b.submit(np.ones((1, 2, 2), np.float32))  # queued meanwhile: must wait
            assert not started.wait(0.2)
            b.release_inline(1)
        assert fut.result(5)[0] == 4.0
        assert (b.batches, b.images) == (2, 2)
        with b.expect(), b.expect():
            assert not b.claim_inline()  # another image is being decoded: batch instead
    finally:
        b.close()
