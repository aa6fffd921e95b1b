"""MicroBatcher: concurrent requests are grouped, results go back to the right caller,
failures reach every caller, the queue is bounded, an idle request is not delayed."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from wanwu.pipeline.batching import BusyError, MicroBatcher


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


def test_waits_for_images_still_being_prepared_to_join_the_batch():
    engine = SlowDouble()
    engine.gate.clear()  # hold the first pass so the next two images meet in the queue
    batcher = MicroBatcher(engine, max_batch_size=16, max_wait_ms=1000)
    preparing = threading.Event()

    def slow_prepare():
        preparing.set()
        time.sleep(0.05)
        return np.ones((1, 1, 1), np.float32)

    try:
        first = batcher.submit(np.ones((1, 1, 1), np.float32))  # the thread takes it and is held
        time.sleep(0.05)
        with ThreadPoolExecutor(2) as pool:
            second = pool.submit(batcher.run, lambda: np.ones((1, 1, 1), np.float32))
            third = pool.submit(batcher.run, slow_prepare)  # still preparing when the batch forms
            assert preparing.wait(5)
            engine.gate.set()
            results = [first.result(timeout=5), second.result().result(timeout=5), third.result().result(timeout=5)]
    finally:
        engine.gate.set()
        batcher.close()
    assert len(results) == 3
    assert engine.sizes == [1, 2]


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


def test_run_is_inline_when_alone_and_queued_otherwise():
    """``run``: a lone image has its pass on the caller's thread (the future comes back done);
    while another image is being prepared or a pass runs, it goes through the batcher's thread."""
    threads: list[str] = []

    def engine(x):
        threads.append(threading.current_thread().name)
        return x.reshape(len(x), -1).sum(axis=1, keepdims=True)

    b = MicroBatcher(engine, max_wait_ms=0, name="batcher-thread")
    try:
        fut = b.run(lambda: np.ones((1, 2, 2), np.float32))
        assert fut.done() and fut.result()[0] == 4.0 and threads == [threading.current_thread().name]
        inner: list = []

        def prepare_while_another_is_prepared():
            inner.append(b.run(lambda: np.ones((1, 2, 2), np.float32)))  # two images announced: queued
            return np.full((1, 2, 2), 2.0, np.float32)

        outer = b.run(prepare_while_another_is_prepared)
        assert inner[0].result(5)[0] == 4.0 and outer.result(5)[0] == 8.0
        assert threads[1] == "batcher-thread"
        assert (b.batches, b.images) == (len(threads), 3)
    finally:
        b.close()


def test_a_failed_inline_pass_reaches_its_caller_and_frees_the_batcher():
    calls = {"n": 0}

    def flaky(x):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("engine exploded")
        return x.reshape(len(x), -1)

    b = MicroBatcher(flaky, max_wait_ms=0)
    try:
        with pytest.raises(RuntimeError, match="exploded"):
            b.run(lambda: np.ones((1,), np.float32)).result(5)
        assert b.run(lambda: np.full((1,), 3.0, np.float32)).result(5)[0] == 3.0
    finally:
        b.close()


@pytest.mark.parametrize("passes", [1, 2])
def test_passes_run_side_by_side_up_to_their_number(passes):
    """With ``passes=2`` two batches are in the engine at once (one pass per core, each on one
    intra-op thread); with one, never more than one."""
    inside, most, lock = 0, 0, threading.Lock()
    both_in = threading.Barrier(2)

    def engine(batch: np.ndarray) -> np.ndarray:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        try:
            both_in.wait(timeout=0.5)  # the second pass arrives while the first is still here
        except threading.BrokenBarrierError:
            pass
        with lock:
            inside -= 1
        return batch.reshape(len(batch), -1).sum(axis=1, keepdims=True)

    batcher = MicroBatcher(engine, max_batch_size=1, max_wait_ms=0, passes=passes)
    try:
        futures = [batcher.submit(np.full((1, 1, 1), i, np.float32)) for i in range(4)]
        assert [f.result(timeout=10)[0] for f in futures] == [0, 1, 2, 3]
    finally:
        batcher.close()
    assert most == passes and batcher.batches == 4
