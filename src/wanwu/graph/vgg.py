"""VGG (no batch norm: VGG-16, configuration "D") as an ONNX graph from a torchvision-format
state_dict. Mirrors ``wanwu.models.vgg``. ``features`` is the map after the last max-pool;
VGG's head is three linear layers on it (no global average pooling)."""

from __future__ import annotations

from ..models.arch import VGG16_CFG, VGG_HIDDEN, VGG_POOL
from .builder import Built, GraphBuilder


def build(g: GraphBuilder, x: str, input_size: int, cfg: list = VGG16_CFG, num_classes: int = 1000) -> Built:
    """Adds the network to ``g``."""
    cin, index, size = 3, 0, input_size
    for i, v in enumerate(cfg):
        last = i == len(cfg) - 1
        if v == "M":
            x = g.node("MaxPool", [x], output="features" if last else None, kernel_shape=[2, 2], strides=[2, 2])
            size //= 2
            index += 1
        else:
            x = g.relu(g.conv(x, f"features.{index}", cin, v, 3, 1, [1] * 4, bias=True))
            cin, index = v, index + 2  # Conv2d, ReLU
    features = Built(x, (cin, size, size), "")
    # AdaptiveAvgPool2d((7, 7)): the identity at 224 px, an even average pool at multiples of it
    if size != VGG_POOL:
        if size % VGG_POOL:
            raise ValueError(f"VGG input {input_size} gives a {size}x{size} map, not a multiple of {VGG_POOL}")
        x = g.avg_pool(x, size // VGG_POOL)
    x = g.flatten(x)
    x = g.relu(g.linear(x, "classifier.0", cin * VGG_POOL * VGG_POOL, VGG_HIDDEN))
    x = g.relu(g.linear(x, "classifier.3", VGG_HIDDEN, VGG_HIDDEN))
    logits = g.linear(x, "classifier.6", VGG_HIDDEN, num_classes, output="logits")
    return Built(features.features, features.features_shape, logits)
