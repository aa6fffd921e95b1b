"""``Classifier``: images -> top-k ImageNet predictions. decode -> preprocess -> infer ->
postprocess, the one pipeline used by the CLI, the Python API, the server and the benchmarks."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator, Sequence

import numpy as np

from .engines import DEFAULT_ENGINE, Engine, check_engine
from .errors import ImageInputError, WanwuError
from .imaging import DecodedImage, ImageSource, load_image, preprocess
from .labels import imagenet_classes
from .models import DEFAULT_MODEL, ModelSpec, get_spec
from .models.weights import ResolvedWeights, resolve_weights
from .settings import DEFAULT_MAX_PIXELS, DEFAULT_PRECISION, DEFAULT_TOP_K

log = logging.getLogger("wanwu")

# JPEG draft decoding keeps the shorter side >= DRAFT_MARGIN x the model's resize size: on
# imagenet-100 upscaled to 12 MP that kept 100% top-1 agreement with exact decoding (a margin
# of 1x kept only 96%) and saves ~3 ms per megapixel (docs/benchmarks.md).
DRAFT_MARGIN = 2.0


@dataclass(frozen=True)
class Prediction:
    index: int
    wnid: str
    label: str
    score: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ImageResult:
    """The answer for one image, or the error that stopped it (``error`` set, no predictions)."""

    name: str
    predictions: list[Prediction] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    timing_ms: dict[str, float] = field(default_factory=dict)
    error: WanwuError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        out: dict = {"filename": self.name, "width": self.width, "height": self.height}
        if self.error is not None:
            out["error"] = {"code": self.error.code, "message": self.error.message}
        else:
            out["predictions"] = [p.to_dict() for p in self.predictions]
            out["timing_ms"] = {k: round(v, 3) for k, v in self.timing_ms.items()}
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


def _source_name(source: ImageSource, i: int) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return getattr(source, "filename", None) or f"image[{i}]"


class Classifier:
    """Recognise ImageNet-1k classes in images.

    >>> clf = Classifier()                           # embedded EfficientNet-Lite0, ONNX Runtime
    >>> clf.classify("cat.jpg", top_k=3)[0].label    # one image -> list of Prediction
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        engine: str = DEFAULT_ENGINE,
        *,
        weights: str | os.PathLike | None = None,
        precision: str = DEFAULT_PRECISION,
        threads: int | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        draft: bool = True,
        engine_options: dict | None = None,
    ):
        engine_spec = check_engine(engine, precision)  # ConfigError before any loading
        self.spec: ModelSpec = get_spec(model)
        self.max_pixels = max_pixels
        self.draft = draft
        self.weights: ResolvedWeights = resolve_weights(self.spec, weights)
        self.engine: Engine = engine_spec.create(
            self.spec, self.weights, precision=precision, threads=threads, **(engine_options or {})
        )
        self.warmup()

    def warmup(self) -> None:
        """One dummy inference: engines allocate and pick kernels on their first call."""
        size = self.spec.input_size
        self.postprocess(self.infer(np.zeros((1, 3, size, size), np.float32)), 1)

    # -- the four stages ------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self.spec.name

    def load(self, source: ImageSource, name: str | None = None) -> DecodedImage:
        draft_size = int(self.spec.preprocessing.resize_size * DRAFT_MARGIN) if self.draft else None
        return load_image(source, max_pixels=self.max_pixels, name=name, draft_size=draft_size)

    def prepare(self, image) -> np.ndarray:
        return preprocess(image, self.spec.preprocessing)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.engine.run(batch)

    def infer_with_features(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits and the last feature map (N, C, h, w) from one forward pass (for CAM)."""
        return self.engine.run_with_features(batch)

    @staticmethod
    def postprocess(logits: np.ndarray, top_k: int) -> list[list[Prediction]]:
        return top_k_predictions(logits, top_k)

    # -- convenience ----------------------------------------------------------------------
    def classify_one(self, source: ImageSource, top_k: int = DEFAULT_TOP_K, name: str | None = None) -> ImageResult:
        """One image through all four stages, timing each. Input errors are returned in the
        result (``result.error``), not raised."""
        name = name or _source_name(source, 0)
        t0 = time.perf_counter()
        try:
            decoded = self.load(source, name)
        except ImageInputError as exc:
            return ImageResult(name, error=exc)
        t1 = time.perf_counter()
        x = self.prepare(decoded.image)[None]
        t2 = time.perf_counter()
        logits = self.infer(x)
        t3 = time.perf_counter()
        preds = self.postprocess(logits, top_k)[0]
        t4 = time.perf_counter()
        timing = {
            "decode": (t1 - t0) * 1e3, "preprocess": (t2 - t1) * 1e3, "inference": (t3 - t2) * 1e3,
            "postprocess": (t4 - t3) * 1e3, "total": (t4 - t0) * 1e3,
        }
        return ImageResult(name, preds, decoded.width, decoded.height, timing)

    def classify(
        self, images: ImageSource | Sequence[ImageSource], top_k: int = DEFAULT_TOP_K
    ) -> list[Prediction] | list[ImageResult]:
        """One image -> its list of ``Prediction`` (raises on bad input).
        A list of images -> one ``ImageResult`` each (bad inputs carry ``.error``)."""
        if isinstance(images, (list, tuple)):
            return list(self.classify_iter(images, top_k=top_k))
        result = self.classify_one(images, top_k)
        if result.error is not None:
            raise result.error
        return result.predictions

    def classify_iter(
        self, images: Iterable[ImageSource], top_k: int = DEFAULT_TOP_K, batch_size: int = 8, decode_threads: int = 2
    ) -> Iterator[ImageResult]:
        """Results in input order. Decoding/preprocessing runs in threads, inference in batches."""

        def prepare(item: tuple[int, ImageSource]) -> tuple[ImageResult, np.ndarray | None]:
            i, source = item
            name = _source_name(source, i)
            t0 = time.perf_counter()
            try:
                decoded = self.load(source, name)
            except ImageInputError as exc:
                return ImageResult(name, error=exc), None
            t1 = time.perf_counter()
            x = self.prepare(decoded.image)
            t2 = time.perf_counter()
            timing = {"decode": (t1 - t0) * 1e3, "preprocess": (t2 - t1) * 1e3}
            return ImageResult(name, width=decoded.width, height=decoded.height, timing_ms=timing), x

        with ThreadPoolExecutor(max_workers=max(1, decode_threads)) as pool:
            pending: list[tuple[ImageResult, np.ndarray | None]] = []
            for prepared in pool.map(prepare, enumerate(images)):
                pending.append(prepared)
                if len(pending) >= batch_size:
                    yield from self._finish(pending, top_k)
                    pending = []
            if pending:
                yield from self._finish(pending, top_k)

    def _finish(self, pending: list[tuple[ImageResult, np.ndarray | None]], top_k: int) -> Iterator[ImageResult]:
        ready = [(r, x) for r, x in pending if x is not None]
        if ready:
            t0 = time.perf_counter()
            logits = self.infer(np.stack([x for _, x in ready]))
            t1 = time.perf_counter()
            preds = self.postprocess(logits, top_k)
            t2 = time.perf_counter()
            share = 1.0 / len(ready)
            for (result, _), p in zip(ready, preds):
                result.predictions = p
                result.timing_ms["inference"] = (t1 - t0) * 1e3 * share
                result.timing_ms["postprocess"] = (t2 - t1) * 1e3 * share
                result.timing_ms["total"] = sum(result.timing_ms.values())
        for result, _ in pending:
            yield result

