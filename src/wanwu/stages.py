"""The one stage runner: decode -> preprocess -> infer -> postprocess, timed and recorded here.

Every road from an image to predictions goes through ``Stages``: ``Classifier.classify_one``
(one image), ``Classifier.classify_iter`` (many, batched) and the server's ``InferenceService``
(requests, micro-batched, cached). Each image's stages are timed into one ``Timing`` value, and
each stage is reported from here to a ``Recorder`` (the server's Prometheus metrics; nothing
for the CLI), so every route measures the same thing (as KServe's ``Model.__call__`` does):

- ``decode``, ``preprocess``, ``postprocess``: seconds for one image;
- ``inference``: seconds of one forward pass, once per pass (a batch of any size). A result
  cache hit runs no pass and records none; an image waiting for a batch records nothing.

``Stages`` is cut where callers put something between the stages: ``front`` (decode and
preprocess one image, on any thread), ``infer`` (one forward pass of a batch; what the server's
micro-batcher calls) and ``back`` (postprocess logits rows). ``run`` and ``run_many`` compose
them for one image and for a stream of images; ``explain`` runs one image whose forward pass
also returns the feature map, and whose postprocess adds its class activation map
(``wanwu.explain``), recorded under the same four stage names.

How to add a stage: add its field to ``Timing`` (the JSON ``timing_ms`` and the bench's
latency report show it), a ``Classifier`` method that does the work, and a step here that
times it, stores the time in the image's ``Timing`` and calls ``recorder.observe(model,
"<stage>", seconds)``; call it in order from ``run``/``run_many`` (and from
``InferenceService.classify`` if the server runs it). ``wanwu_stage_duration_seconds{stage=...}``
follows without touching the metrics.
"""

from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Protocol

import numpy as np

from .engines import DEFAULT_BATCH_SIZE
from .errors import ImageInputError, WanwuError
from .labels import DEFAULT_LANG, imagenet_classes, label_in

if TYPE_CHECKING:
    from .explain import Explanation
    from .imaging import DecodedImage, ImageSource, Preprocessing

STAGES = ("decode", "preprocess", "inference", "postprocess")


@dataclass
class Timing:
    """Seconds one image spent in each stage. ``inference`` is the image's forward pass: its
    share of a batch's pass (``run_many``) or, in the server, its wait for the micro-batch that
    carried it (queueing included: what the caller experienced)."""

    decode: float = 0.0
    preprocess: float = 0.0
    inference: float = 0.0
    postprocess: float = 0.0

    @property
    def total(self) -> float:
        return sum(getattr(self, f.name) for f in fields(self))

    def as_ms(self) -> dict[str, float]:
        """``{"decode": ms, ..., "total": ms}``: what results show as ``timing_ms``."""
        out = {f.name: getattr(self, f.name) * 1e3 for f in fields(self)}
        out["total"] = self.total * 1e3
        return out


@dataclass(frozen=True)
class Prediction:
    """One class and its probability. ``label`` is the English name; ``label_in(lang)`` and
    ``to_dict(lang)`` give the reader's language (the names come from ``wanwu.labels``)."""

    index: int
    wnid: str
    label: str
    score: float

    @property
    def label_en(self) -> str:
        return self.label

    @property
    def label_zh(self) -> str:
        return imagenet_classes()[self.index].label_zh

    def label_in(self, lang: str) -> str:
        return label_in(imagenet_classes()[self.index], lang)

    def to_dict(self, lang: str = DEFAULT_LANG) -> dict:
        """``label`` in ``lang``, plus ``label_en`` and ``label_zh`` whatever the language."""
        return {
            "index": self.index,
            "wnid": self.wnid,
            "label": self.label_in(lang),
            "label_en": self.label,
            "label_zh": self.label_zh,
            "score": self.score,
        }


@dataclass
class ImageResult:
    """The answer for one image, or the error that stopped it (``error`` set, no predictions)."""

    name: str
    predictions: list[Prediction] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    timing: Timing = field(default_factory=Timing)
    error: WanwuError | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. too small for a meaningful answer

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def timing_ms(self) -> dict[str, float]:
        return self.timing.as_ms()

    def to_dict(self, lang: str = DEFAULT_LANG) -> dict:
        out: dict = {"filename": self.name, "width": self.width, "height": self.height}
        if self.error is not None:
            out["error"] = self.error.to_dict(lang)
        else:
            out["predictions"] = [p.to_dict(lang) for p in self.predictions]
            out["timing_ms"] = {k: round(v, 3) for k, v in self.timing_ms.items()}
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def top_k_predictions(logits: np.ndarray, k: int) -> list[list[Prediction]]:
    """(N, classes) logits -> per row the k most probable classes, best first."""
    probs = softmax(logits.astype(np.float64))
    k = max(1, min(int(k), probs.shape[-1]))
    idx = np.argpartition(-probs, k - 1, axis=-1)[:, :k]
    classes = imagenet_classes()
    out = []
    for row, cand in zip(probs, idx):
        order = cand[np.argsort(-row[cand], kind="stable")]
        out.append([Prediction(int(i), classes[i].wnid, classes[i].label, float(row[i])) for i in order])
    return out


class Recorder(Protocol):
    """Where stage times go (the server's ``Metrics``)."""

    def observe(self, model: str, stage: str, seconds: float) -> None: ...


class _NoRecorder:
    def observe(self, model: str, stage: str, seconds: float) -> None:
        pass


NO_RECORDER: Recorder = _NoRecorder()


class StageModel(Protocol):
    """What ``Stages`` needs of a model: ``Classifier`` has it."""

    @property
    def model_name(self) -> str: ...

    def decode(self, source: ImageSource, name: str | None = None) -> DecodedImage: ...

    def preprocess(self, image: Any) -> np.ndarray: ...

    def infer(self, batch: np.ndarray) -> np.ndarray: ...

    def postprocess(self, logits: np.ndarray, top_k: int) -> list[list[Prediction]]: ...

    # for ``Stages.explain`` only
    @property
    def preprocessing(self) -> Preprocessing: ...

    def infer_with_features(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def head_gradient(self, features: np.ndarray, index: int) -> np.ndarray: ...


@dataclass
class Prepared:
    """One image after ``front``: the model input (C, H, W) and the times so far."""

    name: str
    x: np.ndarray
    width: int
    height: int
    timing: Timing
    warnings: list[str] = field(default_factory=list)
    image: Any = None  # the decoded RGB image, kept only when ``front(keep_image=True)`` (faces)

    def result(self, predictions: list[Prediction]) -> ImageResult:
        return ImageResult(self.name, predictions, self.width, self.height, self.timing, warnings=self.warnings)


def source_name(source: Any, i: int = 0) -> str:
    """A path's own name, else the object's ``filename``, else ``image[i]``."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return getattr(source, "filename", None) or f"image[{i}]"


class Stages:
    """The four stages of one model, timed, reporting to ``recorder``. Cheap to make: the
    server makes one per (service, model) so that each app records into its own metrics."""

    def __init__(self, model: StageModel, recorder: Recorder = NO_RECORDER):
        self.model = model
        self.recorder = recorder

    def front(self, source: ImageSource, name: str, *, keep_image: bool = False) -> Prepared:
        """Decode and preprocess one image. Raises ``ImageInputError`` for bad input.
        ``keep_image``: the decoded image rides along in ``Prepared.image`` (the indexer finds
        faces in it: each photo is decoded once)."""
        m, name_ = self.model, self.model.model_name
        t0 = time.perf_counter()
        decoded = m.decode(source, name)
        t1 = time.perf_counter()
        x = m.preprocess(decoded.image)
        t2 = time.perf_counter()
        self.recorder.observe(name_, "decode", t1 - t0)
        self.recorder.observe(name_, "preprocess", t2 - t1)
        return Prepared(
            name,
            x,
            decoded.width,
            decoded.height,
            Timing(decode=t1 - t0, preprocess=t2 - t1),
            list(getattr(decoded, "warnings", ())),
            decoded.image if keep_image else None,
        )

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """One forward pass: float32 NCHW batch -> logits; recorded once, whatever the batch size."""
        logits, _ = self.infer_timed(batch)
        return logits

    def infer_timed(self, batch: np.ndarray) -> tuple[np.ndarray, float]:
        t0 = time.perf_counter()
        logits = self.model.infer(batch)
        seconds = time.perf_counter() - t0
        self.recorder.observe(self.model.model_name, "inference", seconds)
        return logits, seconds

    def back(self, logits: np.ndarray, top_k: int) -> tuple[list[list[Prediction]], float]:
        """Logits rows -> top-k predictions per row, and the seconds per row."""
        t0 = time.perf_counter()
        predictions = self.model.postprocess(logits, top_k)
        per_image = (time.perf_counter() - t0) / max(1, len(predictions))
        for _ in predictions:
            self.recorder.observe(self.model.model_name, "postprocess", per_image)
        return predictions, per_image

    # -- compositions -----------------------------------------------------------------------
    def run(self, source: ImageSource, top_k: int, name: str | None = None) -> ImageResult:
        """One image through all four stages. Bad input comes back in ``result.error``."""
        name = name or source_name(source)
        try:
            prepared = self.front(source, name)
        except ImageInputError as exc:
            return ImageResult(name, error=exc)
        logits, prepared.timing.inference = self.infer_timed(prepared.x[None])
        predictions, prepared.timing.postprocess = self.back(logits, top_k)
        return prepared.result(predictions[0])

    def run_many(
        self, sources: Iterable[ImageSource], top_k: int, batch_size: int = DEFAULT_BATCH_SIZE, threads: int = 2
    ) -> Iterator[ImageResult]:
        """Results in input order: ``front`` on ``threads`` threads, forward passes of up to
        ``batch_size`` images (each image's ``inference`` is its share of its batch's pass)."""

        def front(item: tuple[int, ImageSource]) -> Prepared | ImageResult:
            i, source = item
            name = source_name(source, i)
            try:
                return self.front(source, name)
            except ImageInputError as exc:
                return ImageResult(name, error=exc)

        # Not ``pool.map``: it submits every source at once, so a folder of 100,000 photos would
        # be decoded as fast as the threads go and held until inference caught up. At most
        # ``window`` images are in flight here, whatever the number of sources.
        window = 2 * batch_size + max(1, threads)
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            queue: deque[Future] = deque()
            items = enumerate(sources)
            pending: list[Prepared | ImageResult] = []
            while True:
                while len(queue) < window:
                    nxt = next(items, None)
                    if nxt is None:
                        break
                    queue.append(pool.submit(front, nxt))
                if not queue:
                    break
                pending.append(queue.popleft().result())
                if len(pending) >= batch_size:
                    yield from self._finish(pending, top_k)
                    pending = []
            if pending:
                yield from self._finish(pending, top_k)

    def _finish(self, pending: list[Prepared | ImageResult], top_k: int) -> Iterator[ImageResult]:
        ready = [p for p in pending if isinstance(p, Prepared)]
        answers: dict[int, ImageResult] = {}
        if ready:
            logits, seconds = self.infer_timed(np.stack([p.x for p in ready]))
            predictions, per_image = self.back(logits, top_k)
            for item, preds in zip(ready, predictions):
                item.timing.inference = seconds / len(ready)
                item.timing.postprocess = per_image
                answers[id(item)] = item.result(preds)
        for p in pending:
            yield answers[id(p)] if isinstance(p, Prepared) else p

    def explain(
        self, source: ImageSource, top_k: int, target: int | None = None, name: str | None = None
    ) -> Explanation:
        """One image through the four stages with the class activation map of ``target`` (class
        index; default the top-1 class): the forward pass also returns the feature map and
        postprocess computes the map (``wanwu.explain``). Times are recorded as ``run``'s are.
        Raises ``ImageInputError`` for bad input."""
        from .explain import Explanation, class_map, crop_box

        m, model = self.model, self.model.model_name
        name = name or source_name(source)
        t0 = time.perf_counter()
        decoded = m.decode(source, name)
        t1 = time.perf_counter()
        x = m.preprocess(decoded.image)
        t2 = time.perf_counter()
        logits, features = m.infer_with_features(x[None])
        t3 = time.perf_counter()
        predictions = m.postprocess(logits, top_k)[0]
        index = predictions[0].index if target is None else int(target)
        chosen = imagenet_classes()[index]
        target_prediction = Prediction(
            index, chosen.wnid, chosen.label, float(softmax(logits[0].astype(np.float64))[index])
        )
        cam = class_map(features[0], m.head_gradient(features[0], index))
        t4 = time.perf_counter()
        for stage, seconds in (
            ("decode", t1 - t0),
            ("preprocess", t2 - t1),
            ("inference", t3 - t2),
            ("postprocess", t4 - t3),
        ):
            self.recorder.observe(model, stage, seconds)
        timing = Timing(decode=t1 - t0, preprocess=t2 - t1, inference=t3 - t2, postprocess=t4 - t3)
        box = crop_box(decoded.width, decoded.height, m.preprocessing)
        return Explanation(
            name, predictions, target_prediction, cam, decoded.width, decoded.height, box, decoded.image, timing
        )
