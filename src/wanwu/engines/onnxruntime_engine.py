"""ONNX Runtime CPU engine (the default)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort

from ..errors import EngineError
from ..graph import FEATURES_NAME, LOGITS_NAME
from . import DEFAULT_PRECISION, default_threads
from .onnx_files import onnx_model

if TYPE_CHECKING:
    from ..models.spec import ModelSpec
    from ..models.weights import ResolvedWeights


class OnnxRuntimeEngine:
    name = "onnxruntime"

    def __init__(
        self,
        model: bytes,
        *,
        precision: str = DEFAULT_PRECISION,
        threads: int | None = None,
        arena: bool = True,
        spin: bool = True,
        shrink_arena: bool = False,
        spin_idle: bool = True,
    ):
        """``arena=False`` returns activation memory after each call (a server whose batch size
        varies keeps the largest batch's memory otherwise); ``shrink_arena=True`` keeps the arena
        but hands its unused memory back after every run of more than one image (ONNX Runtime's
        run option ``memory.enable_memory_arena_shrinkage``): a batch's memory is not kept for
        good, while runs of one image, the latency-bound case, reuse theirs. ``spin=False`` stops
        intra-op threads from busy-waiting at all; ``spin_idle=False`` lets them spin during a run
        but stops them as soon as the last concurrent run returns (``session.force_spinning_stop``),
        so idle threads do not steal the cores that decoding shares."""
        self.precision = precision
        self.threads = threads or default_threads()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only
        options.enable_cpu_mem_arena = arena
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if not spin_idle:
            options.add_session_config_entry("session.force_spinning_stop", "1")
        self._run_options = None
        if arena and shrink_arena:
            self._run_options = ort.RunOptions()
            self._run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        # ONNX Runtime's Python wrapper keeps the model bytes to rebuild the session should an
        # execution provider fail (its own comment: "holding the memory indefinitely"); a
        # CPU-only session is never rebuilt, so the bytes go: the model's size in RSS (47 MB
        # for ResNet-18 fp32, 19 MB for Lite0) for as long as the model stays loaded
        self.session.disable_fallback()
        if getattr(self.session, "_model_bytes", None) is not None:
            self.session._model_bytes = None
        self.input_name = self.session.get_inputs()[0].name
        names = [o.name for o in self.session.get_outputs()]
        self._logits = LOGITS_NAME if LOGITS_NAME in names else names[0]
        self._has_features = FEATURES_NAME in names

    def _options(self, batch: np.ndarray) -> ort.RunOptions | None:
        return self._run_options if len(batch) > 1 else None

    def _feed(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([self._logits], self._feed(batch), self._options(batch))[0]

    def run_with_features(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self._has_features:
            raise EngineError(f"this ONNX model has no {FEATURES_NAME!r} output")
        logits, features = self.session.run([self._logits, FEATURES_NAME], self._feed(batch), self._options(batch))
        return logits, features


def create(
    spec: ModelSpec, weights: ResolvedWeights, *, precision: str, threads: int | None = None, **options: Any
) -> OnnxRuntimeEngine:
    return OnnxRuntimeEngine(onnx_model(spec, weights, precision), precision=precision, threads=threads, **options)
