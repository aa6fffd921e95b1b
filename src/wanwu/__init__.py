"""wanwu (万物): offline, private "recognize anything" ImageNet-1k image classifier.

``from wanwu import Classifier`` works as before, but the names are imported on first use
(PEP 562): the ``wanwu`` command imports this package for every run, and loading the pipeline
(NumPy, Pillow, the labels) up front made ``wanwu --help`` take half a second."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import WanwuError
    from .explain import Explanation
    from .pipeline import Classifier, ImageResult, Prediction

__version__ = "0.1.0"
__all__ = ["Classifier", "Explanation", "ImageResult", "Prediction", "WanwuError", "__version__"]

_HOME = {
    "Classifier": ".pipeline",
    "ImageResult": ".pipeline",
    "Prediction": ".pipeline",
    "Explanation": ".explain",
    "WanwuError": ".errors",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'wanwu' has no attribute {name!r}")
    value = getattr(import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
