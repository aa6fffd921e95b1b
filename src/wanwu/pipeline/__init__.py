"""The inference core: one photo -> its top-k ImageNet classes.

- ``results``: ``Prediction``, ``ImageResult``, ``Timing`` and the one postprocess (softmax, top-k);
- ``classifier``: ``Classifier``, one model (spec, weights, engine) and its four stages;
- ``runner``: ``Runner``, the only code that sequences and times the stages;
- ``batching``: ``MicroBatcher``, the server's forward step (a lone image runs inline);
- ``explain``: class activation maps (the maths; ``Runner.explain`` runs it);
- ``defaults``: what the pipeline does when the caller does not say.

The names below are imported on first use (PEP 562): ``from wanwu.pipeline import Classifier``
loads the engines; ``wanwu.pipeline.defaults`` alone loads nothing heavy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_names

if TYPE_CHECKING:
    from .classifier import DRAFT_MARGIN, Classifier
    from .explain import Explanation
    from .results import ImageResult, Prediction, Timing, softmax, top_k_predictions
    from .runner import Runner

__all__ = [
    "DRAFT_MARGIN",
    "Classifier",
    "Explanation",
    "ImageResult",
    "Prediction",
    "Runner",
    "Timing",
    "softmax",
    "top_k_predictions",
]

_HOME = {
    "DRAFT_MARGIN": ".classifier",
    "Classifier": ".classifier",
    "Explanation": ".explain",
    "ImageResult": ".results",
    "Prediction": ".results",
    "Runner": ".runner",
    "Timing": ".results",
    "softmax": ".results",
    "top_k_predictions": ".results",
}

__getattr__, __dir__ = lazy_names(__name__, _HOME)
