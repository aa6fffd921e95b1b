"""Static post-training int8 quantization with ONNX Runtime (QDQ format, per-channel weights,
uint8 activations), calibrated on real photos.

By default the calibration set is the 18 photos that ship in ``wanwu/data/calibration``
(sample images from scikit-image, matplotlib and scikit-learn — none from ImageNet), each
seen whole and horizontally flipped: 36 samples. ``calibration_dir`` takes any folder of
photos instead. The result is cached beside the fp32 export, keyed by the same weights hash.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from PIL import ImageOps

from ..imaging import IMAGE_EXTENSIONS, load_image, preprocess
from ..models.spec import ModelSpec
from ..models.weights import ResolvedWeights
from .onnx_cache import INPUT_NAME, cached, load_or_export, onnx_cache_path

log = logging.getLogger("wanwu.quantize")

CALIBRATION_METHOD = "Percentile"  # MinMax lets rare outliers stretch the int8 range
# ONNX Runtime's histogram calibration keeps every intermediate tensor of every sample until it
# builds the histograms: 2.5 GB peak for EfficientNet-Lite0 on 36 samples. Feeding it CALIBRATION_CHUNK
# samples at a time (its CalibStridedMinMax option, which merges the histograms chunk by chunk)
# bounds that to one chunk's tensors.
CALIBRATION_CHUNK = 6


@contextlib.contextmanager
def stdout_to_log(logger: logging.Logger) -> Iterator[None]:
    """Keep stdout for the requested output while ONNX Runtime's quantizer runs: its Python
    ``print`` chatter ("Collecting tensor data and making histogram ...") goes to ``logger`` at
    debug level, and anything written to file descriptor 1 by native code goes to stderr."""
    chatter = io.StringIO()
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(chatter):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        for line in chatter.getvalue().splitlines():
            logger.debug("onnxruntime: %s", line)


def calibration_photos(calibration_dir: str | os.PathLike | None = None) -> list[Path]:
    if calibration_dir is not None:
        root = Path(calibration_dir)
    else:
        root = Path(str(resources.files("wanwu").joinpath("data/calibration")))
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)


def calibration_batches(spec: ModelSpec, photos: Iterable[Path]) -> Iterator[np.ndarray]:
    """Each photo preprocessed as at inference time, plus its mirror image."""
    for path in photos:
        image = load_image(path).image
        for variant in (image, ImageOps.mirror(image)):
            yield preprocess(variant, spec.preprocessing)[None]


def quantize_onnx(fp32_model: bytes, batches: Iterable[np.ndarray], method: str = CALIBRATION_METHOD) -> bytes:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    samples = list(batches)  # small: one model input each
    chunk = max(d for d in range(1, CALIBRATION_CHUNK + 1) if len(samples) % d == 0)  # ORT wants a divisor

    class Reader(CalibrationDataReader):
        """The samples in [start, end), as ORT's strided calibration asks for them."""

        def __init__(self) -> None:
            self.set_range(0, len(samples))

        def __len__(self) -> int:
            return len(samples)

        def set_range(self, start_index: int, end_index: int) -> None:
            self._it = iter(samples[start_index:end_index])

        def get_next(self):
            batch = next(self._it, None)
            return None if batch is None else {INPUT_NAME: batch}

    with tempfile.TemporaryDirectory(prefix="wanwu-quant-") as tmp, stdout_to_log(log):
        src, pre, dst = (Path(tmp) / n for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        src.write_bytes(fp32_model)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(dst),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=getattr(CalibrationMethod, method),
            extra_options={
                "CalibStridedMinMax": chunk,
                **({"CalibPercentile": 99.999} if method == "Percentile" else {}),
            },
        )
        return dst.read_bytes()


def load_or_quantize(
    spec: ModelSpec, weights: ResolvedWeights, calibration_dir: str | os.PathLike | None = None
) -> bytes:
    """The int8 model for (spec, weights), from the cache or freshly quantized."""
    path = onnx_cache_path(spec, weights, "int8")

    def quantize() -> bytes:
        photos = calibration_photos(calibration_dir)
        log.info("quantizing %s to int8 on %d calibration photos (once; cached at %s)", spec.name, len(photos), path)
        return quantize_onnx(load_or_export(spec, weights), calibration_batches(spec, photos))

    # a custom calibration set is the caller's experiment: built every time, never cached
    return quantize() if calibration_dir is not None else cached(path, quantize)
