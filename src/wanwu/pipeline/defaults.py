"""What the pipeline does when the caller does not say: labels per image, precision, pixel limit.
A module of constants that imports nothing heavy (no NumPy): ``wanwu.settings`` builds the
command-line parsers from these, and must stay quick to import."""

from __future__ import annotations

from ..engines import DEFAULT_PRECISION  # fp32: int8 is faster but moves some labels
from ..preprocessing import DEFAULT_MAX_PIXELS  # 40 MP, the most pixels decoded into memory

__all__ = ["DEFAULT_MAX_PIXELS", "DEFAULT_PRECISION", "DEFAULT_TOP_K"]

DEFAULT_TOP_K = 5  # labels per image
