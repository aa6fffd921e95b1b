"""OpenVINO CPU engine (optional: ``pip install openvino``). Runs the same cached ONNX files as
ONNX Runtime: the fp32 export, or for int8 the static QDQ model (OpenVINO turns the QDQ pairs
into its own int8 kernels). ``fp32`` is kept strictly fp32: on CPUs with AMX/AVX-512 BF16,
OpenVINO would otherwise compute in bf16 by default."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from ..errors import EngineError
from ..graph import FEATURES_NAME, LOGITS_NAME
from . import DEFAULT_PRECISION, default_threads
from .onnx_files import onnx_model

if TYPE_CHECKING:
    from ..models.spec import ModelSpec
    from ..models.weights import ResolvedWeights


class OpenVinoEngine:
    name = "openvino"

    def __init__(self, model: bytes, *, precision: str = DEFAULT_PRECISION, threads: int | None = None):
        import openvino as ov  # installed: ``EngineSpec.create`` checked before importing this module

        self.precision = precision
        self.threads = threads or default_threads()
        core = ov.Core()
        config = {
            "INFERENCE_NUM_THREADS": self.threads,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32",  # int8 layers stay int8; the rest is not lowered to bf16
            "ENABLE_CPU_PINNING": False,  # several processes would otherwise pin to the same cores
        }
        try:
            self._compiled = core.compile_model(core.read_model(model), "CPU", config)
        except RuntimeError as exc:
            raise EngineError(f"OpenVINO could not compile the model: {exc}") from None
        names = [o.get_any_name() for o in self._compiled.outputs]
        self._output = self._compiled.output(LOGITS_NAME if LOGITS_NAME in names else 0)
        self._features = self._compiled.output(FEATURES_NAME) if FEATURES_NAME in names else None
        self._local = threading.local()  # an infer request is not thread-safe: one per thread

    def _infer(self, batch: np.ndarray):
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        return request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})

    def run(self, batch: np.ndarray) -> np.ndarray:
        return np.array(self._infer(batch)[self._output], dtype=np.float32, copy=True)

    def run_with_features(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._features is None:
            raise EngineError(f"this ONNX model has no {FEATURES_NAME!r} output")
        result = self._infer(batch)
        return (
            np.array(result[self._output], dtype=np.float32, copy=True),
            np.array(result[self._features], dtype=np.float32, copy=True),
        )


def create(spec: ModelSpec, weights: ResolvedWeights, *, precision: str, threads: int | None = None) -> OpenVinoEngine:
    return OpenVinoEngine(onnx_model(spec, weights, precision), precision=precision, threads=threads)
