"""``Classifier``: one model (spec, weights, engine) and its four stages, decode -> preprocess
-> infer -> postprocess, each a plain function of its input. It never sequences them: that is
``wanwu.pipeline.runner.Runner``'s one job; ``classify``, ``classify_iter`` and ``explain`` here
are conveniences that hand the work to its runner."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence, cast

import numpy as np

from ..engines import DEFAULT_BATCH_SIZE, DEFAULT_ENGINE, Engine, check_engine
from ..imaging import DecodedImage, ImageSource, Preprocessing, load_image, preprocess
from ..models import DEFAULT_MODEL, ModelSpec, get_spec
from ..models.weights import ResolvedWeights, resolve_weights
from .defaults import DEFAULT_MAX_PIXELS, DEFAULT_PRECISION, DEFAULT_TOP_K
from .explain import HeadGradients, resolve_target
from .results import ImageResult, Prediction, top_k_predictions
from .runner import Runner

if TYPE_CHECKING:
    from .explain import Explanation

__all__ = ["DRAFT_MARGIN", "Classifier"]

log = logging.getLogger("wanwu")

# JPEG draft decoding keeps the shorter side >= DRAFT_MARGIN x the model's resize size: on
# imagenet-100 upscaled to 12 MP that kept 100% top-1 agreement with exact decoding (a margin
# of 1x kept only 96%) and saves ~3 ms per megapixel (docs/benchmarks.md).
DRAFT_MARGIN = 2.0


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
        self.draft_margin = DRAFT_MARGIN  # the benchmarks try others (wanwu.bench.decode)
        self.weights: ResolvedWeights = resolve_weights(self.spec, weights)
        self.engine: Engine = engine_spec.create(
            self.spec, self.weights, precision=precision, threads=threads, **(engine_options or {})
        )
        self.runner = Runner(self)  # direct forward passes, recording nowhere (the server makes its own)
        self._head_gradients = HeadGradients(self)  # for explain; reads nothing until first used
        self.warmup()

    def warmup(self) -> None:
        """One dummy inference: engines allocate and pick kernels on their first call."""
        size = self.spec.input_size
        self.postprocess(self.infer(np.zeros((1, 3, size, size), np.float32)), 1)

    # -- the four stages (sequenced and timed by ``Runner``) ---------------------------------
    @property
    def model_name(self) -> str:
        return self.spec.name

    def decode(self, source: ImageSource, name: str | None = None) -> DecodedImage:
        """Bytes, path or file -> validated RGB image (JPEGs at reduced DCT scale unless ``draft=False``)."""
        draft_size = int(self.spec.preprocessing.resize_size * self.draft_margin) if self.draft else None
        return load_image(source, max_pixels=self.max_pixels, name=name, draft_size=draft_size)

    def preprocess(self, image: Any) -> np.ndarray:
        """RGB image -> the model's (C, H, W) float32 input."""
        return preprocess(image, self.spec.preprocessing)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """float32 NCHW batch -> (N, classes) logits: one forward pass."""
        return self.engine.run(batch)

    def infer_with_features(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits and the last feature map (N, C, h, w) from one forward pass (for CAM and embeddings)."""
        return self.engine.run_with_features(batch)

    @staticmethod
    def postprocess(logits: np.ndarray, top_k: int) -> list[list[Prediction]]:
        """(N, classes) logits -> per image the ``top_k`` most probable classes."""
        return top_k_predictions(logits, top_k)

    @property
    def preprocessing(self) -> Preprocessing:
        return self.spec.preprocessing

    def head_gradient(self, features: np.ndarray, index: int) -> np.ndarray:
        """d logits[index] / d features (C, h, w) of one image, from the engine's own weights."""
        return self._head_gradients(features, index)

    # -- convenience: the runner does the work ----------------------------------------------
    def classify_one(self, source: ImageSource, top_k: int = DEFAULT_TOP_K, name: str | None = None) -> ImageResult:
        """One image through all four stages, timing each. Input errors are returned in the
        result (``result.error``), not raised."""
        return self.runner.run(source, top_k, name)

    def classify(
        self, images: ImageSource | Sequence[ImageSource], top_k: int = DEFAULT_TOP_K
    ) -> list[Prediction] | list[ImageResult]:
        """One image -> its list of ``Prediction`` (raises on bad input).
        A list of images -> one ``ImageResult`` each (bad inputs carry ``.error``)."""
        if isinstance(images, (list, tuple)):
            return list(self.classify_iter(images, top_k=top_k))
        result = self.classify_one(cast(ImageSource, images), top_k)
        if result.error is not None:
            raise result.error
        return result.predictions

    def explain(
        self, image: ImageSource, target: int | str | None = None, top_k: int = DEFAULT_TOP_K, name: str | None = None
    ) -> Explanation:
        """One image -> its predictions and the class activation map of ``target`` (a class index,
        wnid or name; default the top-1 class): ``.heatmap()`` over the whole photo, ``.cam``
        over the model's crop. Raises on bad input, like ``classify`` of one image."""
        index = None if target is None else resolve_target(target)
        return self.runner.explain(image, top_k, index, name)

    def classify_iter(
        self,
        images: Iterable[ImageSource],
        top_k: int = DEFAULT_TOP_K,
        batch_size: int = DEFAULT_BATCH_SIZE,
        decode_threads: int = 2,
    ) -> Iterator[ImageResult]:
        """Results in input order. Decoding/preprocessing runs in threads, inference in batches."""
        for ran in self.runner.run_many(images, top_k, batch_size=batch_size, threads=decode_threads):
            yield ran.result
