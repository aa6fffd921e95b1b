"""The ONNX model an ONNX-based engine runs (ONNX Runtime, OpenVINO): the cached fp32 graph
(``onnx_cache``) or its int8 quantization (``quantize``), built on first use."""

from __future__ import annotations

from ..models.spec import ModelSpec
from ..models.weights import ResolvedWeights


def onnx_model(spec: ModelSpec, weights: ResolvedWeights, precision: str) -> bytes:
    """The cached ONNX model that the ONNX-based engines run: the fp32 graph or the int8 one."""
    if precision == "int8":
        from .quantize import load_or_quantize  # onnxruntime.quantization: only for int8

        return load_or_quantize(spec, weights)
    from .onnx_cache import load_or_export

    return load_or_export(spec, weights)
