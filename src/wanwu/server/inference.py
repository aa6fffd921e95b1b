"""``InferenceService``: models, thread pools and the result cache of one server; every route
gets its answers from here.

CPU work never runs on the event loop: decoding and preprocessing run on a pool of
``workers`` threads, the forward pass on each model's inference thread (ONNX Runtime already
uses all cores), or inline on the decode thread when an image is alone. Each loaded model is
one ``LoadedModel``: its classifier, its stage runner (``wanwu.pipeline.runner.Runner``,
recording into this service's ``recorder``, the app's metrics) and the runner's micro-batcher.
The runner sequences and times the stages; this module adds the result cache, keyed by
sha256(bytes)+model+precision+weights, in ``classify``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

import anyio.to_thread
import numpy as np

from ..cache import CachedResult, ResultCache, content_key
from ..engines import passes_at_once
from ..errors import ImageInputError
from ..labels import DEFAULT_LANG
from ..pipeline.batching import MicroBatcher
from ..pipeline.classifier import Classifier
from ..pipeline.defaults import DEFAULT_TOP_K
from ..pipeline.explain import Explanation
from ..pipeline.results import ImageResult
from ..pipeline.runner import NO_RECORDER, BatchOptions, Recorder, Runner
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
class LoadedModel:
    """One loaded model as this service runs it: the classifier (shared through the pool), its
    stage runner recording into the service's metrics, and the runner's micro-batcher."""

    classifier: Classifier
    runner: Runner

    @property
    def batcher(self) -> MicroBatcher:
        assert self.runner.batcher is not None  # the service always makes its runners with one
        return self.runner.batcher


class InferenceService:
    """Models, thread pools and lifecycle state of one server."""

    def __init__(self, config: ServerConfig, pool: ModelPool | None = None, recorder: Recorder = NO_RECORDER):
        self.config = config
        self.pool = pool or ModelPool(config)
        self.recorder = recorder  # where stage times go; ``create_app`` sets its metrics before any request
        self._cpu = ThreadPoolExecutor(config.decode_workers, thread_name_prefix="wanwu-decode")
        self.cache = ResultCache(config.cache_entries, int(config.cache_mb * 1024 * 1024))
        self._models: dict[str, LoadedModel] = {}
        self._models_lock = threading.Lock()
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
        for loaded in list(self._models.values()):
            loaded.runner.close(timeout=self.config.shutdown_timeout)

    def _forget(self, name: str) -> None:
        """An unloaded model: drop its ``LoadedModel`` and close its batcher (queued work
        finishes), then hand the model's memory back to the kernel."""
        with self._models_lock:
            held = [self._models.pop(name, None)]  # the runner holds the classifier

        def release() -> None:
            loaded = held.pop()
            if loaded is not None:
                loaded.runner.close(timeout=self.config.shutdown_timeout)
            del loaded  # the last reference to the session: free it before trimming, not after
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

    def loaded(self, clf: Classifier) -> LoadedModel:
        """``clf``'s runner and batcher in this service, made on first use (and made again for
        a copy of the model loaded after an unload: the old batcher finishes its queue)."""
        loaded = self._models.get(clf.model_name)
        if loaded is None or loaded.classifier is not clf:
            with self._models_lock:
                loaded = self._models.get(clf.model_name)
                if loaded is not None and loaded.classifier is not clf:
                    threading.Thread(target=loaded.runner.close, daemon=True).start()
                    loaded = None
                if loaded is None:
                    batching = BatchOptions(
                        self.config.batch_size,
                        self.config.batch_wait_ms,
                        self.config.max_queue,
                        passes_at_once(clf.engine),
                    )
                    loaded = LoadedModel(clf, Runner(clf, self.recorder, batching=batching))
                    self._models[clf.model_name] = loaded
        return loaded

    def runner(self, clf: Classifier) -> Runner:
        """The stage runner of ``clf``'s model, recording into ``self.recorder``."""
        return self.loaded(clf).runner

    @property
    def batchers(self) -> dict[str, MicroBatcher]:
        """Each loaded model's micro-batcher (the metrics read their queue and batch counts)."""
        return {name: loaded.batcher for name, loaded in list(self._models.items())}

    # -- the pipeline ---------------------------------------------------------------------
    async def _run(self, executor: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, functools.partial(fn, *args))

    def cache_key(self, clf: Classifier, data: bytes) -> str:
        return content_key(data, clf.model_name, clf.engine.precision, clf.weights.sha256)

    async def classify(
        self, data: bytes, *, model: str | None = None, top_k: int = DEFAULT_TOP_K, filename: str = "upload"
    ) -> Classified:
        """Encoded image -> top-k predictions with per-stage timings. Bad input is returned
        in ``result.error``, not raised; an unknown/unavailable model raises, a full queue
        raises ``BusyError`` (503). A photo seen before is answered from the result cache
        (``cached=True``)."""
        clf = await self.classifier(model)
        runner = self.runner(clf)
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
                timing = hit.timing if not show else None
                result = runner.answer(hit.logits, top_k, filename, hit.width, hit.height, timing, hit.warnings)
                return Classified(result, cached=True, show_cached=show)
        result, logits = await runner.run_async(data, top_k, filename, self._cpu)
        if (
            key is not None and logits is not None
        ):  # with the first answer's timings: a hit then reads like a fresh answer
            assert result.width is not None and result.height is not None  # an answer has its size
            timing = dataclasses.replace(result.timing)
            self.cache.put(key, CachedResult(logits, result.width, result.height, timing, tuple(result.warnings)))
        return Classified(result, show_cached=show)

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
        default the top-1 class), or the input error. The whole run (``Runner.explain``,
        recording into this service's metrics) happens on a decode thread: its forward pass also
        returns the feature map, so it does not join the micro-batcher, and it is not cached."""
        clf = await self.classifier(model)
        try:
            return await self._run(self._cpu, self.runner(clf).explain, data, top_k, target, filename)
        except ImageInputError as exc:
            return exc

    async def prepare_images(self, clf: Classifier, images: Sequence[bytes], names: Sequence[str]) -> np.ndarray:
        """Encoded images -> one float32 NCHW batch. The first bad image raises its error."""
        return await self.runner(clf).prepare_many(images, names, self._cpu)

    async def probabilities(self, clf: Classifier, batch: np.ndarray) -> tuple[np.ndarray, float]:
        """float32 NCHW batch -> (N, classes) softmax probabilities and the forward time."""
        return await self.runner(clf).probabilities_async(batch)

    async def run_cpu(self, fn: Callable[..., T], *args: Any) -> T:
        """Run other CPU-heavy request work (e.g. parsing a large JSON tensor) off the loop."""
        return await self._run(self._cpu, fn, *args)
