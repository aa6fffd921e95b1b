"""Torch-free ONNX graphs of wanwu's architectures, built from NumPy state_dicts (read from
``.pth`` files by ``wanwu.models.pth_reader``) with the ``onnx`` helper API.

Every graph takes ``input`` (N, 3, S, S) float32 and has two outputs: ``logits`` (N, classes)
and ``features`` (N, C, h, w), the last feature map the classifier head reads (before global
average pooling; for VGG, after the last max-pool), so class activation maps cost no second
forward pass. ``GRAPH_VERSION`` is part of the ONNX cache key: bump it whenever a builder
changes the graph, and old cached models are rebuilt."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the onnx package is imported only when a graph is built, not to serve one
    import numpy as np

    from ..models.spec import ModelSpec
    from ..models.weights import ResolvedWeights

GRAPH_VERSION = 1
INPUT_NAME = "input"
LOGITS_NAME = "logits"
FEATURES_NAME = "features"

__all__ = ["FEATURES_NAME", "GRAPH_VERSION", "INPUT_NAME", "LOGITS_NAME", "build_from_weights", "build_onnx"]


def build_onnx(spec: ModelSpec, state_dict: dict[str, np.ndarray]) -> bytes:
    """The serialized ONNX model of ``spec`` with ``state_dict``'s weights. Raises
    ``builder.StateDictMismatch`` when the weights do not fit the architecture."""
    from .builder import GraphBuilder

    module_name, func_name = spec.graph.split(":")
    builder = getattr(import_module(module_name), func_name)
    g = GraphBuilder(state_dict)
    built = builder(g, INPUT_NAME, spec.input_size, num_classes=spec.num_classes, **spec.builder_kwargs)
    assert (built.logits, built.features) == (LOGITS_NAME, FEATURES_NAME), "builders name their outputs"
    model = g.model(
        spec.name,
        INPUT_NAME,
        spec.input_size,
        [(LOGITS_NAME, ["batch", spec.num_classes]), (FEATURES_NAME, ["batch", *built.features_shape])],
        doc=f"wanwu {spec.name}, graph version {GRAPH_VERSION}",
    )
    return model.SerializeToString()


def build_from_weights(spec: ModelSpec, weights: ResolvedWeights) -> bytes:
    """Read the weights file (no torch) and build ``spec``'s graph; a file that does not fit
    is a ``WeightsError`` worded as the torch reference words it."""
    from ..models.weights import fit_error, read_weights
    from .builder import StateDictMismatch

    try:
        return build_onnx(spec, read_weights(weights))
    except StateDictMismatch as exc:
        raise fit_error(weights.path, spec.name, exc.missing, exc.unexpected, exc.wrong) from None
