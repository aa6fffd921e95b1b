"""Build a model's ONNX graph once (``wanwu.graph``, no torch) and keep it under the cache dir,
keyed by the weights' SHA-256 and the graph builder's version.

Files are written atomically (``wanwu.atomic.write_atomic``) with a ``.sha256`` sidecar; a file whose
checksum does not match its sidecar is treated as corrupt and rebuilt. When the cache dir
cannot be written, the model lives in memory for this process (with a warning). Torch is
never imported here.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Callable

from ..atomic import write_atomic
from ..graph import GRAPH_VERSION, INPUT_NAME, build_from_weights  # noqa: F401  (INPUT_NAME: quantize)
from ..models.spec import ModelSpec
from ..models.weights import ResolvedWeights, remember_sha256, sha256_file
from ..paths import cache_dir

log = logging.getLogger("wanwu.cache")


def onnx_cache_path(spec: ModelSpec, weights: ResolvedWeights, precision: str = "fp32") -> Path:
    return cache_dir() / "onnx" / f"{spec.name}-{weights.sha256[:16]}-{precision}-g{GRAPH_VERSION}.onnx"


def any_cached(spec: ModelSpec) -> bool:
    """Whether the cache holds a file of ``spec`` at this graph version, for any weights and
    precision (``onnx_cache_path``'s names): False tells "nothing prepared" without the weights' key."""
    return any((cache_dir() / "onnx").glob(f"{spec.name}-*-g{GRAPH_VERSION}.onnx"))


def _sidecar_checksum(path: Path) -> str:
    return path.with_name(path.name + ".sha256").read_text().strip()


def is_intact(path: Path) -> bool:
    """``read_verified``'s test without reading the file when its checksum is in the memo
    (``hashes.json``, keyed by path, size and mtime, which ``store`` fills): a file cut short or
    rewritten since has another size or mtime and is hashed again."""
    try:
        expected = _sidecar_checksum(path)
        return sha256_file(path) == expected
    except OSError:
        return False


def read_verified(path: Path) -> bytes | None:
    """The file's bytes if it exists and matches its sidecar checksum, else None."""
    try:
        data = path.read_bytes()
        expected = _sidecar_checksum(path)
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != expected:
        log.warning("cached model %s is corrupt (checksum mismatch); rebuilding it", path)
        return None
    return data


def store(path: Path, data: bytes) -> bool:
    """Write ``data`` and its checksum sidecar atomically. False when the cache is read-only."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        write_atomic(path, data, parents=True)
        write_atomic(path.with_name(path.name + ".sha256"), digest)
    except OSError as exc:
        log.warning("cannot write the model cache at %s (%s); keeping the model in memory", path.parent, exc)
        return False
    remember_sha256(path, digest)  # so that is_intact need not read it back
    return True


def cached(path: Path, build: Callable[[], bytes]) -> bytes:
    """The verified bytes at ``path``, or ``build()``'s result, stored there for next time."""
    data = read_verified(path)
    if data is None:
        data = build()
        store(path, data)
    return data


def load_or_export(spec: ModelSpec, weights: ResolvedWeights) -> bytes:
    """The fp32 ONNX model for (spec, weights), from the cache or freshly built."""
    path = onnx_cache_path(spec, weights, "fp32")

    def build() -> bytes:
        log.info("building the ONNX graph of %s (once; cached at %s)", spec.name, path)
        return build_from_weights(spec, weights)

    return cached(path, build)
