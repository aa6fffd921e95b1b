"""wanwu (万物): offline, private "recognize anything" ImageNet-1k image classifier."""

from .errors import WanwuError
from .explain import Explanation
from .pipeline import Classifier, ImageResult, Prediction

__version__ = "0.1.0"
__all__ = ["Classifier", "Explanation", "ImageResult", "Prediction", "WanwuError", "__version__"]
