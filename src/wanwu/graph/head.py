"""The classifier head of a built graph, for class activation maps (CAM, Zhou et al. 2016).

When the logits come from one linear layer on the global average of ``features`` (every
EfficientNet-Lite and ResNet), ``logits = W @ mean_hw(features) + b``, so the map of class c is
exactly ``W[c] @ features`` per position. ``linear_head`` finds that ``W`` and ``b`` in the fp32
graph itself (whatever weights it was built from); VGG, whose head is three linear layers,
has none. Imports the onnx package: call it when explaining, not to classify."""

from __future__ import annotations

import numpy as np

from . import FEATURES_NAME, LOGITS_NAME


def linear_head(model: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """(W (classes, C), b (classes,)) of the Gemm giving ``logits`` from GlobalAveragePool(
    ``features``) in the fp32 graph ``model``; None when the head is anything else."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(model).graph
    producer = {out: node for node in graph.node for out in node.output}
    gemm = producer.get(LOGITS_NAME)
    flatten = producer.get(gemm.input[0]) if gemm is not None and gemm.op_type == "Gemm" else None
    pool = producer.get(flatten.input[0]) if flatten is not None and flatten.op_type == "Flatten" else None
    if pool is None or pool.op_type != "GlobalAveragePool" or pool.input[0] != FEATURES_NAME:
        return None
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in gemm.attribute}
    if attrs.get("transB") != 1 or attrs.get("transA", 0) != 0 or len(gemm.input) != 3:
        return None
    weights = {t.name: t for t in graph.initializer if t.name in gemm.input[1:]}
    if len(weights) != 2:
        return None
    return numpy_helper.to_array(weights[gemm.input[1]]), numpy_helper.to_array(weights[gemm.input[2]])
