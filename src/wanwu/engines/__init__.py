"""Inference engines. ``onnxruntime`` (default) runs a cached ONNX export and never imports
torch once the export exists; ``torch`` is the eager reference; ``openvino`` (optional package)
runs the same ONNX files."""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np

ENGINES = ("onnxruntime", "torch", "openvino")
DEFAULT_ENGINE = "onnxruntime"
PRECISIONS = ("fp32", "int8")


class Engine(Protocol):
    name: str
    precision: str

    def run(self, batch: np.ndarray) -> np.ndarray:
        """float32 NCHW batch -> float32 logits (N, classes)."""

    def run_with_features(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The same forward pass, also returning the last feature map (N, C, h, w) that the
        classifier head reads (``wanwu.graph``: before global average pooling)."""


def default_threads() -> int:
    """Cores this process may run on (affinity/cgroup aware where the OS tells)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
