"""Model registry (``ModelSpec``), architectures in plain torch, and weight resolution."""

from .registry import DEFAULT_MODEL, MODELS, get_spec, list_specs
from .spec import ModelSpec, Preprocessing, WeightSource

__all__ = ["DEFAULT_MODEL", "MODELS", "ModelSpec", "Preprocessing", "WeightSource", "get_spec", "list_specs"]
