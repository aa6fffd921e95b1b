"""int8 against fp32: dynamic quantization of the Linear layers alone (the usual first
suggestion) versus wanwu's static QDQ quantization, and the issue's rule for making int8 the
default (faster, top-1 within 1 point of fp32, >= 95% top-1 agreement)."""

from __future__ import annotations

import tempfile
from pathlib import Path

INT8_MAX_TOP1_DROP = 1.0  # points
INT8_MIN_AGREEMENT = 95.0  # %
LINEAR_OPS = ("MatMul", "Gemm")


def dynamic_quantize_linear(fp32_model: bytes) -> bytes:
    """ONNX Runtime dynamic quantization of MatMul/Gemm only (int8 weights, activations
    quantized on the fly): the convolutions stay fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="wanwu-dynq-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "dyn.onnx"
        src.write_bytes(fp32_model)
        quantize_dynamic(str(src), str(dst), op_types_to_quantize=list(LINEAR_OPS), weight_type=QuantType.QInt8)
        return dst.read_bytes()


def linear_macs(onnx_model: bytes) -> int:
    """Multiply-accumulates per image in the model's MatMul/Gemm layers (weights as initializers)."""
    import onnx

    model = onnx.load_from_string(onnx_model)
    dims = {init.name: list(init.dims) for init in model.graph.initializer}
    macs = 0
    for node in model.graph.node:
        if node.op_type in LINEAR_OPS:
            for name in node.input[1:2]:
                shape = dims.get(name)
                if shape and len(shape) == 2:
                    macs += shape[0] * shape[1]
    return macs


def int8_verdict(
    speedup: float | None, fp32_top1: float | None, int8_top1: float | None, agreement: float | None
) -> dict:
    """The issue's rule for making int8 the default, with each condition and its number."""
    checks = {
        "faster": (speedup is not None and speedup > 1.0, speedup),
        "top1_within_1_point": (
            fp32_top1 is not None and int8_top1 is not None and fp32_top1 - int8_top1 <= INT8_MAX_TOP1_DROP,
            None if fp32_top1 is None or int8_top1 is None else fp32_top1 - int8_top1,
        ),
        "agreement_95": (agreement is not None and agreement >= INT8_MIN_AGREEMENT, agreement),
    }
    return {
        "qualifies": all(ok for ok, _ in checks.values()),
        "checks": {k: {"ok": ok, "value": v} for k, (ok, v) in checks.items()},
    }
