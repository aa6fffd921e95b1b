"""``InferenceService``: the one road from request bytes to predictions for every route.

CPU work never runs on the event loop: decoding and preprocessing run on a pool of
``workers`` threads, the forward pass on a single inference thread (ONNX Runtime already
uses all cores). Every stage runs through ``wanwu.stages.Stages`` (one per model, recording
into this service's ``recorder``, the app's metrics): ``front`` on the decode pool, ``infer``
in the model's micro-batcher, ``back`` for the answer. ``classify`` is where the result cache
keyed by sha256(bytes)+model+precision sits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

import anyio.to_thread
import numpy as np

from ..batching import MicroBatcher
from ..cache import CachedResult, ResultCache, content_key
from ..errors import ImageInputError
from ..explain import Explanation
from ..labels import DEFAULT_LANG
from ..pipeline import Classifier
from ..settings import DEFAULT_TOP_K
from ..stages import NO_RECORDER, ImageResult, Recorder, Stages, Timing, softmax
from .config import ServerConfig
from .memory import release_freed_memory
from .model_pool import ModelPool

log = logging.getLogger("wanwu.server")
T = TypeVar("T")


@dataclass
class Classified:
    """One image's answer plus how it was obtained. ``cached`` is shown to the client only
    when ``show_cached`` (``--show-cache-hits``): on a shared server it would tell a user that
    someone else sent the same photo before."""

    result: ImageResult
    cached: bool = False
    show_cached: bool = False

    def to_dict(self, lang: str = DEFAULT_LANG) -> dict:
        out = self.result.to_dict(lang)
        if self.result.ok and self.show_cached:
            out["cached"] = self.cached
        return out


@dataclass
class Inferred:
    logits: np.ndarray  # (N, classes)
    seconds: float  # from submitting to the micro-batcher to the answer (queueing included)


class InferenceService:
    """Models, thread pools and lifecycle state of one server."""

    def __init__(self, config: ServerConfig, pool: ModelPool | None = None, recorder: Recorder = NO_RECORDER):
        self.config = config
        self.pool = pool or ModelPool(config)
        self.recorder = recorder  # where stage times go; ``create_app`` sets its metrics before any request
        self._stages: dict[str, Stages] = {}
        self._cpu = ThreadPoolExecutor(config.decode_workers, thread_name_prefix="wanwu-decode")
        self.cache = ResultCache(config.cache_entries, int(config.cache_mb * 1024 * 1024))
        self._batchers: dict[str, MicroBatcher] = {}
        self._batcher_models: dict[str, Classifier] = {}  # the classifier each batcher runs
        self._batchers_lock = threading.Lock()
        self.pool.on_unload(self._forget)
        self._started = False
        self._draining = False

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Load and warm up the default model (blocking; idempotent)."""
        self.pool.get(self.config.model)
        self._started = True

    @property
    def ready(self) -> bool:
        return self._started and not self._draining

    @property
    def draining(self) -> bool:
        return self._draining

    def begin_drain(self) -> None:
        """Shutting down: report not-ready from now on; in-flight requests still finish."""
        if not self._draining:
            log.info("shutting down: finishing in-flight requests, reporting not ready")
        self._draining = True

    def close(self) -> None:
        self._draining = True
        self._cpu.shutdown(wait=False, cancel_futures=True)
        for batcher in self._batchers.values():
            batcher.close(timeout=self.config.shutdown_timeout)

    def _forget(self, name: str) -> None:
        """An unloaded model: drop its stage runner and close its batcher (queued work finishes),
        then hand the model's memory back to the kernel."""
        self._stages.pop(name, None)
        with self._batchers_lock:
            held = [self._batchers.pop(name, None)]  # the batcher holds the model through its runner
            self._batcher_models.pop(name, None)

        def release() -> None:
            batcher = held.pop()
            if batcher is not None:
                batcher.close(timeout=self.config.shutdown_timeout)
            del batcher  # the last reference to the session: free it before trimming, not after
            release_freed_memory()

        threading.Thread(target=release, name=f"wanwu-unload-{name}", daemon=True).start()

    # -- models ---------------------------------------------------------------------------
    async def classifier(self, name: str | None = None) -> Classifier:
        """The loaded classifier for ``name`` (default model when empty), loading it in a
        worker thread the first time."""
        name = name or self.config.model
        clf = self.pool.peek(name)
        if clf is not None:
            return clf
        # abandon_on_cancel: a request that times out stops waiting; the load itself goes on
        # (the pool's lock makes the next request wait for that same load)
        return await anyio.to_thread.run_sync(self.pool.get, name, abandon_on_cancel=True)

    # -- the pipeline ---------------------------------------------------------------------
    async def _run(self, executor: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, functools.partial(fn, *args))

    def stages(self, clf: Classifier) -> Stages:
        """The stage runner of ``clf``'s model, recording into ``self.recorder``."""
        stages = self._stages.get(clf.model_name)
        if stages is None or stages.model is not clf:
            stages = self._stages[clf.model_name] = Stages(clf, self.recorder)
        return stages

    @property
    def batchers(self) -> dict[str, MicroBatcher]:
        return self._batchers

    def batcher(self, clf: Classifier) -> MicroBatcher:
        """The micro-batcher (and inference thread) of ``clf``'s model."""
        batcher = self._batchers.get(clf.model_name)
        if batcher is None or self._batcher_models.get(clf.model_name) is not clf:
            with self._batchers_lock:
                batcher = self._batchers.get(clf.model_name)
                if batcher is not None and self._batcher_models.get(clf.model_name) is not clf:
                    stale = batcher  # made for an unloaded copy of this model: finish its queue, replace it
                    threading.Thread(target=stale.close, daemon=True).start()
                    batcher = None
                if batcher is None:
                    batcher = MicroBatcher(
                        self.stages(clf).infer,
                        max_batch_size=self.config.batch_size,
                        max_wait_ms=self.config.batch_wait_ms,
                        max_queue=self.config.max_queue,
                        name=f"wanwu-infer-{clf.model_name}",
                    )
                    self._batchers[clf.model_name] = batcher
                    self._batcher_models[clf.model_name] = clf
        return batcher

    async def infer(self, clf: Classifier, batch: np.ndarray) -> Inferred:
        """float32 NCHW batch -> logits. Every forward pass of the server goes through here:
        each image joins the model's micro-batcher, so concurrent requests share passes.
        ``seconds`` is the wait for the answer (queueing included). A full queue raises
        ``BusyError`` (503)."""
        batcher = self.batcher(clf)
        t0 = time.perf_counter()
        futures = [batcher.submit(x) for x in batch]
        rows = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        return Inferred(np.stack(rows), time.perf_counter() - t0)

    def cache_key(self, clf: Classifier, data: bytes) -> str:
        return content_key(data, clf.model_name, clf.engine.precision, clf.weights.sha256)

    async def classify(
        self, data: bytes, *, model: str | None = None, top_k: int = DEFAULT_TOP_K, filename: str = "upload"
    ) -> Classified:
        """Encoded image -> top-k predictions with per-stage timings. Bad input is returned
        in ``result.error``, not raised; an unknown/unavailable model raises. A photo seen
        before is answered from the result cache (``cached=True``)."""
        clf = await self.classifier(model)
        stages = self.stages(clf)
        show = self.config.show_cache_hits
        key = None
        if self.cache.enabled:
            key = (
                self.cache_key(clf, data)
                if len(data) < 256 * 1024
                else await self._run(self._cpu, self.cache_key, clf, data)
            )
            hit = self.cache.get(key)
            if hit is not None:  # no decode, no forward pass: only postprocess runs (and is recorded)
                predictions, seconds = stages.back(hit.logits[None], top_k)
                timing = hit.timing if hit.timing is not None and not show else Timing(postprocess=seconds)
                result = ImageResult(
                    filename, predictions[0], hit.width, hit.height, timing, warnings=list(hit.warnings)
                )
                return Classified(result, cached=True, show_cached=show)
        batcher = self.batcher(clf)
        with batcher.expect():  # a batch forming meanwhile may wait for this image
            try:
                prepared, logits = await self._run(
                    self._cpu, self._front_and_lone_pass, stages, batcher, data, filename
                )
            except ImageInputError as exc:
                return Classified(ImageResult(filename, error=exc), show_cached=show)
            if logits is None:
                future = batcher.submit(prepared.x)
        if logits is None:
            t_submit = time.perf_counter()
            logits = await asyncio.wrap_future(future)  # the batcher's thread ran (and recorded) the pass
            prepared.timing.inference = time.perf_counter() - t_submit
        predictions, prepared.timing.postprocess = stages.back(logits[None], top_k)
        if key is not None:  # with the first answer's timings: a hit then reads like a fresh answer
            timing = dataclasses.replace(prepared.timing)
            self.cache.put(key, CachedResult(logits, prepared.width, prepared.height, timing, tuple(prepared.warnings)))
        return Classified(prepared.result(predictions[0]), show_cached=show)

    async def explain(
        self,
        data: bytes,
        *,
        model: str | None = None,
        top_k: int = DEFAULT_TOP_K,
        target: int | None = None,
        filename: str = "upload",
    ) -> Explanation | ImageInputError:
        """Encoded image -> predictions and the class activation map of ``target`` (class index;
        default the top-1 class), or the input error. The whole stage run (``Stages.explain``,
        recording into this service's metrics) happens on a decode thread: its forward pass also
        returns the feature map, so it does not join the micro-batcher, and it is not cached."""
        clf = await self.classifier(model)
        try:
            return await self._run(self._cpu, self.stages(clf).explain, data, top_k, target, filename)
        except ImageInputError as exc:
            return exc

    @staticmethod
    def _front_and_lone_pass(stages: Stages, batcher: MicroBatcher, data: bytes, filename: str):
        """Decode and preprocess; then, when this image is alone (nothing queued, running or
        being decoded), its forward pass too, on this thread: one hop instead of three.
        Under concurrency the image goes to the micro-batcher instead (logits None)."""
        prepared = stages.front(data, filename)
        if not batcher.claim_inline():
            return prepared, None
        try:
            logits, prepared.timing.inference = stages.infer_timed(prepared.x[None])
        except BaseException:
            batcher.release_inline(0)
            raise
        batcher.release_inline(1)
        return prepared, logits[0]

    async def prepare_images(self, clf: Classifier, images: Sequence[bytes], names: Sequence[str]) -> np.ndarray:
        """Encoded images -> one float32 NCHW batch. The first bad image raises its error."""
        stages = self.stages(clf)
        prepared = await asyncio.gather(
            *(self._run(self._cpu, stages.front, data, name) for data, name in zip(images, names)),
            return_exceptions=True,
        )
        for item in prepared:
            if isinstance(item, BaseException):
                raise item
        return np.stack([item.x for item in prepared])  # type: ignore[union-attr]

    async def probabilities(self, clf: Classifier, batch: np.ndarray) -> tuple[np.ndarray, float]:
        """float32 NCHW batch -> (N, classes) softmax probabilities and the forward time."""
        inferred = await self.infer(clf, batch)
        return softmax(inferred.logits.astype(np.float64)).astype(np.float32), inferred.seconds

    async def run_cpu(self, fn: Callable[..., T], *args: Any) -> T:
        """Run other CPU-heavy request work (e.g. parsing a large JSON tensor) off the loop."""
        return await self._run(self._cpu, fn, *args)
