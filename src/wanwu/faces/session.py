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
    """An ``onnxruntime.InferenceSession`` on ``model`` (serialized bytes or a file)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    # as OnnxRuntimeEngine does: a CPU-only session is never rebuilt, so the model bytes ONNX
    # Runtime's wrapper keeps for that (22 MB for the descriptor) can go
    session.disable_fallback()
    if getattr(session, "_model_bytes", None) is not None:
        session._model_bytes = None
    return session
