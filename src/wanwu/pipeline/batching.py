"""Dynamic micro-batching: concurrent single-image requests share one inference call.

An inference thread takes the first waiting image, adds every image already queued (up to
``max_batch_size``) and runs them as one batch; ``passes`` threads may each run a batch at once
(one pass per core with one intra-op thread each, as ``wanwu index`` runs them). While a batch runs, new requests queue up and
form the next one, so batches grow with load by themselves. An idle server adds no wait: the
thread only lingers (at most ``max_wait_ms``) when other images are still being prepared
(announced by ``run``) and will be ready in a moment. A lone image does not even change
threads: ``run`` does its pass inline, on the caller's thread.

The queue is bounded: when ``max_queue`` images are waiting, ``submit`` raises ``BusyError``
(the server answers 503 with Retry-After) instead of letting memory grow.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np

from ..engines import DEFAULT_BATCH_SIZE
from ..errors import BusyError

__all__ = ["BusyError", "MicroBatcher"]


class MicroBatcher:
    def __init__(
        self,
        infer: Callable[[np.ndarray], np.ndarray],
        *,
        max_batch_size: int = DEFAULT_BATCH_SIZE,
        max_wait_ms: float = 2.0,
        max_queue: int = 256,
        name: str = "wanwu-inference",
        passes: int = 1,
    ):
        if max_batch_size < 1 or passes < 1:
            raise ValueError("max_batch_size and passes must be >= 1")
        self._infer = infer
        self.max_batch_size = max_batch_size
        self.max_wait = max(0.0, max_wait_ms) / 1e3
        self.max_queue = max_queue
        self._queue: deque[tuple[np.ndarray, Future]] = deque()
        self._expected = 0
        self.passes = passes
        self._running = 0  # forward passes running (on the inference threads or inline on callers')
        self._cond = threading.Condition()
        self._closed = False
        self.batches = 0  # statistics: calls made and images served
        self.images = 0
        self.last_batch_size = 0
        self._threads = [
            threading.Thread(target=self._loop, name=name if passes == 1 else f"{name}-{i}", daemon=True)
            for i in range(passes)
        ]
        for thread in self._threads:
            thread.start()

    # -- producers ----------------------------------------------------------------------
    def run(self, prepare: Callable[[], np.ndarray]) -> Future:
        """One image's forward pass, in one call. ``prepare()`` makes its input (C, H, W) on the
        caller's thread (decode and preprocess; its exceptions propagate) while the image is
        announced, so a batch forming meanwhile may wait for it. Then, when the image is alone
        (nothing queued, a pass free, no other image being prepared), its pass runs right here
        on the caller's thread (one hop instead of three) and the future comes back done;
        otherwise the image joins the queue. The future resolves to its logits row; a full
        queue raises ``BusyError``."""
        with self._announced():
            x = prepare()
            if not self._claim_inline():
                return self.submit(x)
            fut: Future = Future()
            try:
                row = self._infer(x[None])[0]
            except BaseException as exc:
                self._done(0)
                if not isinstance(exc, Exception):
                    raise
                fut.set_exception(exc)
                return fut
            self._done(1)
            fut.set_result(row)
            return fut

    def submit(self, x: np.ndarray) -> Future:
        """Queue one preprocessed image (C, H, W); the future resolves to its logits row."""
        fut: Future = Future()
        with self._cond:
            if self._closed:
                raise BusyError("the server is shutting down")
            if len(self._queue) >= self.max_queue:
                raise BusyError(f"too many images waiting ({self.max_queue}); try again shortly")
            self._queue.append((x, fut))
            self._cond.notify_all()
        return fut

    @contextmanager
    def _announced(self) -> Iterator[None]:
        """An image that is still being prepared: a forming batch may wait for it."""
        with self._cond:
            self._expected += 1
        try:
            yield
        finally:
            with self._cond:
                self._expected -= 1
                self._cond.notify_all()

    def _claim_inline(self) -> bool:
        """True (and the batcher waits) when nothing is queued or running and no other image
        is being prepared; ``_done`` after the pass."""
        with self._cond:
            if self._closed or self._running >= self.passes or self._queue or self._expected > 1:
                return False
            self._running += 1
            return True

    @property
    def queued(self) -> int:
        return len(self._queue)

    # -- the inference thread -------------------------------------------------------------
    def _take_batch(self) -> list[tuple[np.ndarray, Future]] | None:
        with self._cond:
            while (not self._queue or self._running >= self.passes) and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            self._running += 1
            deadline = time.monotonic() + self.max_wait
            while len(self._queue) < self.max_batch_size and self._expected > 0 and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            n = min(self.max_batch_size, len(self._queue))
            return [self._queue.popleft() for _ in range(n)]

    def _done(self, images: int) -> None:
        """After a pass of ``images`` images (0 if it failed), here or inline: counted as a batch."""
        with self._cond:
            self._running -= 1
            if images:
                self.batches += 1
                self.images += images
                self.last_batch_size = images
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            live = [(x, f) for x, f in batch if f.set_running_or_notify_cancel()]
            if not live:
                self._done(0)
                continue
            try:
                logits = self._infer(np.stack([x for x, _ in live]))
            except BaseException as exc:  # hand the failure to every waiting request
                self._done(0)
                for _, f in live:
                    f.set_exception(exc)
                continue
            self._done(len(live))
            for (_, f), row in zip(live, logits):
                f.set_result(row)

    def close(self, timeout: float | None = 5.0) -> None:
        """Finish what is queued, then stop the threads."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)
