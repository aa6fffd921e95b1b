"""Export a model to ONNX once and keep it under the cache dir, keyed by the weights' SHA-256.

Files are written atomically (temp file + rename) with a ``.sha256`` sidecar; a file whose
checksum does not match its sidecar is treated as corrupt and rebuilt. When the cache dir
cannot be written, the export lives in memory for this process (with a warning). Torch is
imported only when an export is actually needed.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Callable

from ..models.spec import ModelSpec
from ..models.weights import ResolvedWeights, atomic_write_bytes, load_state_dict
from ..paths import cache_dir

log = logging.getLogger("wanwu.cache")

EXPORT_VERSION = 1  # bump when the export procedure changes: old cache entries are ignored
OPSET = 18
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def onnx_cache_path(spec: ModelSpec, weights: ResolvedWeights, precision: str = "fp32") -> Path:
    return cache_dir() / "onnx" / f"{spec.name}-{weights.sha256[:16]}-{precision}-v{EXPORT_VERSION}.onnx"


def read_verified(path: Path) -> bytes | None:
    """The file's bytes if it exists and matches its sidecar checksum, else None."""
    sidecar = path.with_name(path.name + ".sha256")
    try:
        data = path.read_bytes()
        expected = sidecar.read_text().strip()
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != expected:
        log.warning("cached model %s is corrupt (checksum mismatch); rebuilding it", path)
        return None
    return data


def store(path: Path, data: bytes) -> bool:
    """Write ``data`` and its checksum sidecar atomically. False when the cache is read-only."""
    try:
        atomic_write_bytes(path, data)
        atomic_write_bytes(path.with_name(path.name + ".sha256"), hashlib.sha256(data).hexdigest().encode())
        return True
    except OSError as exc:
        log.warning("cannot write the model cache at %s (%s); keeping the model in memory", path.parent, exc)
        return False


def export_onnx(model, input_size: int) -> bytes:
    """torch module -> ONNX bytes with a dynamic batch dimension."""
    import io
    import warnings

    import torch

    model = model.eval()
    dummy = torch.zeros(1, 3, input_size, input_size)
    buf = io.BytesIO()
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter about constant folding
        torch.onnx.export(
            model, (dummy,), buf,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET, dynamo=False, do_constant_folding=True,
        )
    return buf.getvalue()


def cached(path: Path, build: Callable[[], bytes]) -> bytes:
    """The verified bytes at ``path``, or ``build()``'s result, stored there for next time."""
    data = read_verified(path)
    if data is None:
        data = build()
        store(path, data)
    return data


def load_or_export(spec: ModelSpec, weights: ResolvedWeights) -> bytes:
    """The fp32 ONNX model for (spec, weights), from the cache or freshly exported."""
    path = onnx_cache_path(spec, weights, "fp32")

    def export() -> bytes:
        log.info("exporting %s to ONNX (once; cached at %s)", spec.name, path)
        return export_onnx(load_state_dict(spec, weights), spec.input_size)

    return cached(path, export)
