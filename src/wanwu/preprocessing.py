"""Facts about a model's input that the command line and the model registry need before any
pixel is touched (no Pillow, no NumPy here: building ``wanwu --help`` imports this module)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_PIXELS = 40_000_000  # 40 MP: the most pixels decoded into memory (~120 MB as RGB)


@dataclass(frozen=True)
class Preprocessing:
    """torchvision-style eval transform: resize shorter side (antialiased bilinear) to
    ``resize_size``, center-crop ``crop_size``, scale to [0, 1], normalize with mean/std, NCHW.
    Each ``ModelSpec`` carries one; ``wanwu.imaging.preprocess`` applies it."""

    crop_size: int
    resize_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
