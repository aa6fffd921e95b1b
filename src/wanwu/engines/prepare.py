"""Build a model's cached ONNX files ahead of its first use (``wanwu models --prepare``).

The first use of a model builds its fp32 graph (0.2-0.5 s; VGG-16 about 7 s) and, for
``--precision int8``, quantizes it (about 10 s of calibration for EfficientNet-Lite0); both are
stored in the cache that every later process reads (``onnx_cache``). Preparing does that step
now, at install or deploy time, into the same files, so the first ``classify`` or ``serve``
answer comes at cache speed. The engines that run these files are the ones marked ``runs_onnx``
in ``ENGINE_TABLE`` (ONNX Runtime, and OpenVINO, which compiles them in memory at each start and
keeps no cache of its own); the torch engine runs the weights as they are.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from ..errors import CacheError
from ..paths import user_path
from .onnx_cache import is_intact, onnx_cache_path
from .onnx_files import onnx_model

if TYPE_CHECKING:
    from ..models.spec import ModelSpec
    from ..models.weights import ResolvedWeights


@dataclass(frozen=True)
class Prepared:
    """One cached file: where it is, and whether it was there already."""

    model: str
    precision: str
    path: Path
    seconds: float
    already_cached: bool


def is_prepared(spec: ModelSpec, weights: ResolvedWeights, precision: str) -> bool:
    """True when the cache holds an intact file for (spec, weights, precision): one that the
    engine would read, not rebuild. Cheap: its checksum comes from the memo when known."""
    return is_intact(onnx_cache_path(spec, weights, precision))


def prepared_precisions(spec: ModelSpec, weights: ResolvedWeights, precisions: Iterable[str]) -> list[str]:
    """Those of ``precisions`` whose file for (spec, weights) is prepared."""
    return [p for p in precisions if is_prepared(spec, weights, p)]


def check_writable(folder: Path) -> None:
    """``CacheError`` unless a file can be created in ``folder`` (checked before minutes of work)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise CacheError(
            f"cannot write the model cache at {folder} ({exc.strerror or exc}); "
            "choose a folder you can write with --cache-dir or WANWU_CACHE_DIR"
        ) from None


def prepare(
    spec: ModelSpec, weights: ResolvedWeights, precision: str, announce: Callable[[str], None] | None = None
) -> Prepared:
    """Make sure the cache holds the ``precision`` model of (spec, weights); build it if not,
    calling ``announce`` with what is about to be done first. For int8 the fp32 graph it is
    quantized from is cached too."""
    path = onnx_cache_path(spec, weights, precision)
    start = time.perf_counter()
    if is_prepared(spec, weights, precision):
        return Prepared(spec.name, precision, path, time.perf_counter() - start, True)
    check_writable(path.parent)
    if announce is not None:
        what = (
            "quantizing it to int8 (calibration: the slow part)" if precision == "int8" else "building its ONNX graph"
        )
        announce(f"{spec.name}: {what}, once, into {user_path(path.parent)}")
    onnx_model(spec, weights, precision)  # builds and stores it, as a first use would
    if not path.is_file():  # the cache could not be written after all (onnx_cache warned)
        raise CacheError(f"the {precision} model of {spec.name} was built but could not be stored at {path}")
    return Prepared(spec.name, precision, path, time.perf_counter() - start, False)
