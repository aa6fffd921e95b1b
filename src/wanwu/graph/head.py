"""The classifier head of a built graph, for class activation maps (CAM, Zhou et al. 2016).

When the logits come from one linear layer on the global average of ``features`` (every
EfficientNet-Lite and ResNet), ``logits = W @ mean_hw(features) + b``, so the map of class c is
exactly ``W[c] @ features`` per position. ``linear_head`` finds that ``W`` and ``b`` in the fp32
graph itself (whatever weights it was built from); VGG, whose head is three linear layers,
has none; ``head_layers`` reads any head (VGG's too) as the list of layers that ``wanwu.pipeline.explain``
back-propagates through. Imports the onnx package: call it when explaining, not to classify."""

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
    if gemm is None or pool is None or pool.op_type != "GlobalAveragePool" or pool.input[0] != FEATURES_NAME:
        return None
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in gemm.attribute}
    if attrs.get("transB") != 1 or attrs.get("transA", 0) != 0 or len(gemm.input) != 3:
        return None
    weights = {t.name: t for t in graph.initializer if t.name in gemm.input[1:]}
    if len(weights) != 2:
        return None
    return numpy_helper.to_array(weights[gemm.input[1]]), numpy_helper.to_array(weights[gemm.input[2]])


# One step of the head between ``features`` and ``logits``: ("gap",), ("avgpool", k),
# ("flatten",), ("relu",) or ("gemm", W (out, in), b (out,)).
HeadLayer = tuple


def head_layers(model: bytes) -> list[HeadLayer]:
    """The layers from ``features`` to ``logits`` of the fp32 graph ``model``, in order: what
    ``wanwu.pipeline.explain`` back-propagates a class's score through (VGG's three linear layers as well
    as the single one of the others). ``ValueError`` for an op it does not know."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(model).graph
    producer = {out: node for node in graph.node for out in node.output}
    initializers = {t.name: t for t in graph.initializer}
    layers: list[HeadLayer] = []
    name = LOGITS_NAME
    while name != FEATURES_NAME:
        node = producer.get(name)
        if node is None:
            raise ValueError(f"{name!r} is not produced from {FEATURES_NAME!r}")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Gemm" and attrs.get("transB") == 1 and not attrs.get("transA"):
            w, b = (numpy_helper.to_array(initializers[n]) for n in node.input[1:3])
            layers.append(("gemm", w, b))
        elif node.op_type == "Relu":
            layers.append(("relu",))
        elif node.op_type == "Flatten" and attrs.get("axis", 1) == 1:
            layers.append(("flatten",))
        elif node.op_type == "GlobalAveragePool":
            layers.append(("gap",))
        elif node.op_type == "AveragePool" and attrs["kernel_shape"] == attrs.get("strides"):
            layers.append(("avgpool", int(attrs["kernel_shape"][0])))
        else:
            raise ValueError(f"the head has a {node.op_type} node, which explain cannot run backwards")
        name = node.input[0]
    return layers[::-1]
