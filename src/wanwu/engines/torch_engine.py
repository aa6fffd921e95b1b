"""PyTorch eager engine: the reference every other engine is checked against."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from . import default_threads

if TYPE_CHECKING:
    from ..models.spec import ModelSpec
    from ..models.weights import ResolvedWeights


class TorchEngine:
    name = "torch"

    def __init__(self, model: torch.nn.Module, *, threads: int | None = None):
        self.precision = "fp32"
        self.threads = threads or default_threads()
        torch.set_num_threads(self.threads)
        self.model: Any = model.eval()  # a wanwu model: forward_features / forward_head as well

    def run(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))).numpy()

    def run_with_features(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``forward_features`` then ``forward_head``: the split every wanwu model has."""
        with torch.inference_mode():
            features = self.model.forward_features(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
            return self.model.forward_head(features).numpy(), features.numpy()

    def class_gradient(self, features: np.ndarray, index: int) -> np.ndarray:
        """d logits[index] / d features of one image (C, h, w), by autograd through the model's
        own head: the reference for class activation maps (``wanwu.pipeline.explain``)."""
        with torch.enable_grad():
            f = torch.from_numpy(np.array(features[None], dtype=np.float32)).requires_grad_(True)
            self.model.forward_head(f)[0, index].backward()
        assert f.grad is not None
        return f.grad[0].numpy()


def create(spec: ModelSpec, weights: ResolvedWeights, *, precision: str, threads: int | None = None) -> TorchEngine:
    """The eager model with ``weights`` (fp32 only; ``ENGINE_TABLE`` says so)."""
    from ..models.weights import load_state_dict

    return TorchEngine(load_state_dict(spec, weights), threads=threads)
