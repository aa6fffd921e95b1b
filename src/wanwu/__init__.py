"""wanwu (万物): offline, private "recognize anything" ImageNet-1k image classifier.

``from wanwu import Classifier`` works as before, but the names are imported on first use
(PEP 562): the ``wanwu`` command imports this package for every run, and loading the pipeline
(NumPy, Pillow, the labels) up front made ``wanwu --help`` take half a second."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_names

if TYPE_CHECKING:
    from .errors import WanwuError
    from .pipeline import Classifier, Explanation, ImageResult, Prediction, Timing

__version__ = "0.1.0"
__all__ = ["Classifier", "Explanation", "ImageResult", "Prediction", "Timing", "WanwuError", "__version__"]

_HOME = {
    "Classifier": ".pipeline",
    "ImageResult": ".pipeline",
    "Prediction": ".pipeline",
    "Explanation": ".pipeline",
    "Timing": ".pipeline",
    "WanwuError": ".errors",
}


__getattr__, __dir__ = lazy_names(__name__, _HOME)
