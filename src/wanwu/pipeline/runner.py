"""The one stage runner: decode -> preprocess -> infer -> postprocess, sequenced, timed and
recorded here and nowhere else.

Every road from an image to predictions goes through a ``Runner``: ``Classifier.classify_one``
and ``classify_iter`` (the CLI, the Python API), the server's ``InferenceService`` (requests,
micro-batched, cached; the v2 protocol), the indexer's ``LocalBackend`` (files, with their
bytes read once) and the benchmarks. The stages themselves are ``Classifier`` methods (plain
functions of their input); what differs between the roads is plugged in, not re-composed:

- the forward step: a direct call (``Runner(model)``), or the server's micro-batcher
  (``Runner(model, batching=BatchOptions(...))``, ``self.batcher``), which runs a lone image
  inline on its own thread and groups concurrent ones;
- how a source is read (``run_many(read=...)``: the indexer opens each file once and gets its
  bytes and its facts, hash and EXIF, from that one read) and what is looked at between the
  stages (``inspect``: faces in the decoded image, the sharpness of the model input);
- whether the forward pass also returns the feature map (``features=True``: embeddings).

Each image's stages are timed into one ``Timing`` value, and each stage is reported from here
to a ``Recorder`` (the server's Prometheus metrics; nothing for the CLI), so every route
measures the same thing (as KServe's ``Model.__call__`` does):

- ``decode``, ``preprocess``, ``postprocess``: seconds for one image (``postprocess`` is
  logits -> probabilities -> top-k, or the probabilities alone on the v2 protocol);
- ``inference``: seconds of one forward pass, once per pass (a batch of any size). A result
  cache hit runs no pass and records none; an image waiting for a batch records nothing;
- ``class_map``: the class activation map of ``explain`` (after its postprocess). The
  ``Explanation``'s own ``timing.postprocess`` includes it: what the caller waited for after
  the forward pass.

How to add a stage: add its field to ``Timing`` (``results.py``: the JSON ``timing_ms``, the
bench's latency report and Ray's rows show it), a ``Classifier`` method that does the work,
and a step here that times it, stores the time in the image's ``Timing`` and calls
``recorder.observe(model, "<stage>", seconds)``; call it in order from ``prepare`` (before the
forward pass) or ``postprocess`` (after it): every road above then runs it. ``wanwu_stage_duration_seconds{stage=...}``
follows without touching the metrics.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np

from ..engines import DEFAULT_BATCH_SIZE
from ..errors import EngineError, ImageInputError
from .batching import MicroBatcher
from .explain import Explanation, class_map, crop_box
from .results import ImageResult, Prediction, Timing, prediction, probabilities

if TYPE_CHECKING:
    from ..imaging import DecodedImage, ImageSource, Preprocessing


class Recorder(Protocol):
    """Where stage times go (the server's ``Metrics``)."""

    def observe(self, model: str, stage: str, seconds: float) -> None: ...


class _NoRecorder:
    def observe(self, model: str, stage: str, seconds: float) -> None:
        pass


NO_RECORDER: Recorder = _NoRecorder()


class StageModel(Protocol):
    """The four stages a ``Runner`` sequences: ``Classifier`` has them."""

    @property
    def model_name(self) -> str: ...

    def decode(self, source: ImageSource, name: str | None = None) -> DecodedImage: ...

    def preprocess(self, image: Any) -> np.ndarray: ...

    def infer(self, batch: np.ndarray) -> np.ndarray: ...

    def postprocess(self, logits: np.ndarray, top_k: int) -> list[list[Prediction]]: ...

    # for ``features=True`` and ``explain``
    def infer_with_features(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    @property
    def preprocessing(self) -> Preprocessing: ...

    def head_gradient(self, features: np.ndarray, index: int) -> np.ndarray: ...


@dataclass(frozen=True)
class BatchOptions:
    """The server's micro-batcher (``wanwu.pipeline.batching``): most images per pass, how long
    a forming batch may wait for images still being prepared, most images waiting, and how many
    passes may run at once."""

    max_batch_size: int
    max_wait_ms: float
    max_queue: int
    passes: int = 1


@dataclass
class Prepared:
    """One image before its forward pass: the model input (C, H, W) and the times so far."""

    name: str
    x: np.ndarray
    width: int
    height: int
    timing: Timing
    warnings: list[str] = field(default_factory=list)
    image: Any = None  # the decoded RGB image, kept only for ``inspect`` (faces)
    ready_at: float = 0.0  # perf_counter when the input was ready: its forward pass is timed from here

    def result(self, predictions: list[Prediction]) -> ImageResult:
        return ImageResult(self.name, predictions, self.width, self.height, self.timing, warnings=self.warnings)


@dataclass
class Ran:
    """One source after ``run_many``: its result, what ``read`` said about it (``facts``; None
    without a ``read`` hook or when it failed) and, with ``features=True``, the feature map of
    its forward pass (C, h, w; None when the engine has none or the image failed)."""

    source: Any
    result: ImageResult
    facts: Any = None
    features: np.ndarray | None = None


Read = Callable[[Any], AbstractContextManager[tuple[Any, Any]]]
"""``read(source)``: a context that opens ``source`` once and gives ``(data, facts)``: what the
decoder reads and what the caller learnt from it; held open until the image is prepared and
inspected. ``ImageInputError`` on entering: the source fails with no facts."""

Inspect = Callable[[Any, Prepared, Any], None]
"""``inspect(data, prepared, facts)`` after an image is prepared, on its reading thread; the
decoded image (``prepared.image``) is dropped right after."""


def source_name(source: Any, i: int = 0) -> str:
    """A path's own name, else the object's ``filename``, else ``image[i]``."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return getattr(source, "filename", None) or f"image[{i}]"


class Runner:
    """The stages of one model, sequenced and timed, reporting to ``recorder``. Cheap to make
    without ``batching``; with it, the runner owns a micro-batcher and its inference thread
    (``close()`` it). The server makes one per (service, model)."""

    def __init__(self, model: StageModel, recorder: Recorder = NO_RECORDER, *, batching: BatchOptions | None = None):
        self.model = model
        self.recorder = recorder
        self.batcher: MicroBatcher | None = None
        if batching is not None:
            self.batcher = MicroBatcher(
                self._pass_logits,
                max_batch_size=batching.max_batch_size,
                max_wait_ms=batching.max_wait_ms,
                max_queue=batching.max_queue,
                name=f"wanwu-infer-{model.model_name}",
                passes=batching.passes,
            )

    def close(self, timeout: float | None = 5.0) -> None:
        """Finish what the batcher has queued and stop its thread (nothing to do without one)."""
        if self.batcher is not None:
            self.batcher.close(timeout=timeout)

    def _observe(self, stage: str, seconds: float) -> None:
        self.recorder.observe(self.model.model_name, stage, seconds)

    # -- the stages, timed ------------------------------------------------------------------
    def prepare(self, source: ImageSource, name: str, *, keep_image: bool = False) -> Prepared:
        """Decode and preprocess one image (any thread). Raises ``ImageInputError`` for bad
        input. ``keep_image``: the decoded image rides along in ``Prepared.image``."""
        m = self.model
        t0 = time.perf_counter()
        decoded = m.decode(source, name)
        t1 = time.perf_counter()
        x = m.preprocess(decoded.image)
        t2 = time.perf_counter()
        self._observe("decode", t1 - t0)
        self._observe("preprocess", t2 - t1)
        return Prepared(
            name,
            x,
            decoded.width,
            decoded.height,
            Timing(decode=t1 - t0, preprocess=t2 - t1),
            list(getattr(decoded, "warnings", ())),
            decoded.image if keep_image else None,
            time.perf_counter(),
        )

    def _timed_pass(self, batch: np.ndarray, features: bool) -> tuple[np.ndarray, np.ndarray | None, float]:
        """One forward pass: logits (and with ``features`` the feature map; ``EngineError`` when
        the engine's model has none) and its seconds; recorded once, whatever the batch size."""
        t0 = time.perf_counter()
        if features:
            logits, maps = self.model.infer_with_features(batch)
        else:
            logits, maps = self.model.infer(batch), None
        seconds = time.perf_counter() - t0
        self._observe("inference", seconds)
        return logits, maps, seconds

    def _pass(self, batch: np.ndarray, features: bool = False) -> tuple[np.ndarray, np.ndarray | None, float]:
        """``_timed_pass``, with the feature map only when the engine has one (logits alone otherwise)."""
        if features:
            try:
                return self._timed_pass(batch, True)
            except EngineError:  # a model without a feature output: logits alone
                pass
        return self._timed_pass(batch, False)

    def _pass_logits(self, batch: np.ndarray) -> np.ndarray:
        return self._pass(batch)[0]

    def postprocess(self, logits: np.ndarray, top_k: int) -> tuple[list[list[Prediction]], float]:
        """Logits rows -> top-k predictions per row, and the seconds per row."""
        t0 = time.perf_counter()
        predictions = self.model.postprocess(logits, top_k)
        per_image = (time.perf_counter() - t0) / max(1, len(predictions))
        for _ in predictions:
            self._observe("postprocess", per_image)
        return predictions, per_image

    # -- one image ----------------------------------------------------------------------------
    def _prepare_and_forward(self, source: ImageSource, name: str) -> tuple[Prepared, Future]:
        """Prepare one image and start its forward pass: directly, or through the batcher (inline
        when the image is alone). The future resolves to its logits row."""
        box: list[Prepared] = []

        def make() -> np.ndarray:
            box.append(self.prepare(source, name))
            return box[0].x

        if self.batcher is not None:
            future = self.batcher.run(make)
        else:
            future = Future()
            future.set_result(self._pass_logits(make()[None])[0])
        return box[0], future

    def _finish_one(self, prepared: Prepared, row: np.ndarray, top_k: int) -> ImageResult:
        prepared.timing.inference = time.perf_counter() - prepared.ready_at
        predictions, prepared.timing.postprocess = self.postprocess(row[None], top_k)
        return prepared.result(predictions[0])

    def run(self, source: ImageSource, top_k: int, name: str | None = None) -> ImageResult:
        """One image through all four stages. Bad input comes back in ``result.error``."""
        name = name or source_name(source)
        try:
            prepared, future = self._prepare_and_forward(source, name)
        except ImageInputError as exc:
            return ImageResult(name, error=exc)
        return self._finish_one(prepared, future.result(), top_k)

    async def run_async(
        self, source: ImageSource, top_k: int, name: str, executor: Executor
    ) -> tuple[ImageResult, np.ndarray | None]:
        """``run`` for an event loop: decode, preprocess (and a lone image's forward pass) on
        ``executor``; a batched pass is awaited without holding a thread. Also returns the
        logits row (None for bad input), for the server's result cache. ``BusyError`` when the
        batcher's queue is full."""
        loop = asyncio.get_running_loop()
        try:
            prepared, future = await loop.run_in_executor(executor, self._prepare_and_forward, source, name)
        except ImageInputError as exc:
            return ImageResult(name, error=exc), None
        row = await asyncio.wrap_future(future)
        return self._finish_one(prepared, row, top_k), row

    def answer(
        self,
        row: np.ndarray,
        top_k: int,
        name: str,
        width: int | None,
        height: int | None,
        timing: Timing | None,
        warnings: Sequence[str] = (),
    ) -> ImageResult:
        """An image whose logits are known (the server's result cache): postprocess only, and
        recorded; ``timing`` None: the result shows this postprocess alone."""
        predictions, seconds = self.postprocess(row[None], top_k)
        timing = timing if timing is not None else Timing(postprocess=seconds)
        return ImageResult(name, predictions[0], width, height, timing, warnings=list(warnings))

    # -- a batch of model inputs (the v2 protocol) ------------------------------------------
    async def prepare_many(
        self, sources: Sequence[ImageSource], names: Sequence[str], executor: Executor
    ) -> np.ndarray:
        """Encoded images -> one float32 NCHW batch, prepared on ``executor``. The first bad
        image raises its error."""
        loop = asyncio.get_running_loop()
        prepared = await asyncio.gather(
            *(loop.run_in_executor(executor, self.prepare, s, n) for s, n in zip(sources, names)),
            return_exceptions=True,
        )
        for item in prepared:
            if isinstance(item, BaseException):
                raise item
        return np.stack([item.x for item in prepared])  # type: ignore[union-attr]

    async def probabilities_async(self, batch: np.ndarray) -> tuple[np.ndarray, float]:
        """float32 NCHW batch -> (N, classes) FP32 probabilities and the seconds of the forward
        step: each image joins the batcher (concurrent requests share passes; without one, one
        direct pass on a worker thread). The softmax is this road's postprocess, recorded per image."""
        t0 = time.perf_counter()
        if self.batcher is not None:
            futures = [self.batcher.submit(x) for x in batch]
            logits = np.stack(await asyncio.gather(*(asyncio.wrap_future(f) for f in futures)))
        else:
            logits = await asyncio.get_running_loop().run_in_executor(None, self._pass_logits, batch)
        t1 = time.perf_counter()
        probs = probabilities(logits).astype(np.float32)
        per_image = (time.perf_counter() - t1) / max(1, len(probs))
        for _ in probs:
            self._observe("postprocess", per_image)
        return probs, t1 - t0

    # -- many images ------------------------------------------------------------------------
    def run_many(
        self,
        sources: Iterable[Any],
        top_k: int,
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int = 2,
        *,
        window: int | None = None,
        read: Read | None = None,
        inspect: Inspect | None = None,
        features: bool = False,
        passes: int = 1,
    ) -> Iterator[Ran]:
        """Every source through the four stages, in input order: reading and preparing on
        ``threads`` threads, at most ``window`` sources ahead of the forward passes (default
        ``2 * batch_size + threads``), passes of up to ``batch_size`` images, up to ``passes``
        of them at once (each image's ``inference`` is its share of its batch's pass). A bad
        source comes back in place with ``result.error``. Stop early by closing the iterator."""

        def prepare(item: tuple[int, Any]) -> tuple[Ran, Prepared | None]:
            i, source = item
            name = source_name(source, i)
            if read is None:
                return self._prepare_ran(source, name, source, None, inspect)
            try:
                with read(source) as (data, facts):
                    return self._prepare_ran(source, name, data, facts, inspect)
            except ImageInputError as exc:
                return Ran(source, ImageResult(name, error=exc)), None

        # Not ``pool.map``: it submits every source at once, so a folder of 100,000 photos would
        # be decoded as fast as the threads go and held until inference caught up. At most
        # ``window`` images are in flight here, whatever the number of sources.
        window = window or 2 * batch_size + max(1, threads)
        infer_pool = ThreadPoolExecutor(passes, thread_name_prefix="wanwu-infer") if passes > 1 else None
        try:
            with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="wanwu-read") as pool:
                queue: deque[Future] = deque()
                in_pass: deque[Future[list[Ran]]] = deque()  # batches in their forward pass
                items = enumerate(sources)
                batch: list[tuple[Ran, Prepared | None]] = []
                while True:
                    while len(queue) < window:
                        nxt = next(items, None)
                        if nxt is None:
                            break
                        queue.append(pool.submit(prepare, nxt))
                    if not queue:
                        break
                    batch.append(queue.popleft().result())
                    if len(batch) >= batch_size or not queue:
                        if infer_pool is None:
                            yield from self._finish(batch, top_k, features)
                        else:
                            in_pass.append(infer_pool.submit(self._finish, batch, top_k, features))
                            while len(in_pass) >= passes or (in_pass and in_pass[0].done()):
                                yield from in_pass.popleft().result()
                        batch = []
                while in_pass:
                    yield from in_pass.popleft().result()
        finally:
            if infer_pool is not None:
                infer_pool.shutdown(wait=True, cancel_futures=True)

    def _prepare_ran(
        self, source: Any, name: str, data: Any, facts: Any, inspect: Inspect | None
    ) -> tuple[Ran, Prepared | None]:
        try:
            prepared = self.prepare(data, name, keep_image=inspect is not None)
        except ImageInputError as exc:
            return Ran(source, ImageResult(name, error=exc), facts), None
        if inspect is not None:
            inspect(data, prepared, facts)
            prepared.image = None  # the pixels go now, not after the batch's forward pass
        return Ran(source, ImageResult(name), facts), prepared

    def _finish(self, batch: list[tuple[Ran, Prepared | None]], top_k: int, features: bool) -> list[Ran]:
        """The forward pass and postprocess of one batch (its failed sources pass through)."""
        ready = [(ran, p) for ran, p in batch if p is not None]
        if ready:
            logits, maps, seconds = self._pass(np.stack([p.x for _, p in ready]), features)
            predictions, per_image = self.postprocess(logits, top_k)
            for i, ((ran, p), preds) in enumerate(zip(ready, predictions)):
                p.timing.inference = seconds / len(ready)
                p.timing.postprocess = per_image
                ran.result = p.result(preds)
                ran.features = None if maps is None else maps[i]
        return [ran for ran, _ in batch]

    def feature_map(self, source: ImageSource, name: str) -> np.ndarray:
        """One image's last feature map (C, h, w) from its forward pass, with no postprocess:
        what the library's embeddings are pooled from. Raises ``ImageInputError`` for bad input,
        ``EngineError`` when the engine's model has no feature output."""
        prepared = self.prepare(source, name)
        _, maps, _ = self._timed_pass(prepared.x[None], True)
        assert maps is not None
        return maps[0]

    # -- explain ----------------------------------------------------------------------------
    def explain(
        self, source: ImageSource, top_k: int, target: int | None = None, name: str | None = None
    ) -> Explanation:
        """One image through the four stages with the class activation map of ``target`` (class
        index; default the top-1 class): the forward pass also returns the feature map, and the
        map (``wanwu.pipeline.explain``) is made after postprocess and recorded as ``class_map``.
        Raises ``ImageInputError`` for bad input."""
        m = self.model
        name = name or source_name(source)
        prepared = self.prepare(source, name, keep_image=True)
        logits, maps, inference = self._timed_pass(prepared.x[None], True)
        assert maps is not None
        t3 = time.perf_counter()
        predictions, _ = self.postprocess(logits, top_k)
        t4 = time.perf_counter()
        index = predictions[0][0].index if target is None else int(target)
        target_prediction = prediction(index, probabilities(logits[0]))
        cam = class_map(maps[0], m.head_gradient(maps[0], index))
        t5 = time.perf_counter()
        self._observe("class_map", t5 - t4)
        timing = prepared.timing
        timing.inference, timing.postprocess = inference, t5 - t3
        box = crop_box(prepared.width, prepared.height, m.preprocessing)
        return Explanation(
            name,
            predictions[0],
            target_prediction,
            cam,
            prepared.width,
            prepared.height,
            box,
            prepared.image,
            timing,
        )
