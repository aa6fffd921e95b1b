"""``cpu_session``: the ONNX Runtime session of the faces' two small networks (the BlazeFace
detector and dlib's descriptor), made alike: CPU only, sequential, ``THREADS`` intra-op threads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# one intra-op thread: measured on the shared 2-core machine (load average 7), two threads cost
# the descriptor 18-20 ms of CPU a face against 10-11 ms, and were no faster in wall time; the
# indexer's parallelism is across photos anyway
THREADS = 1


def cpu_session(model: bytes | Path, threads: int = THREADS) -> Any:
    """An ``onnxruntime.InferenceSession`` on ``model`` (serialized bytes or a file), made as the
    classifiers' are (``engines.onnxruntime_engine``)."""
    from ..engines.onnxruntime_engine import cpu_options
    from ..engines.onnxruntime_engine import cpu_session as engine_session

    return engine_session(model if isinstance(model, bytes) else str(model), cpu_options(threads))
