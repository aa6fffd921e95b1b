"""ResNet (BasicBlock: ResNet-18) as an ONNX graph from a torchvision-format state_dict, batch
norm folded into the convs. Mirrors ``wanwu.models.resnet``."""

from __future__ import annotations

from ..models.arch import RESNET18_LAYERS, RESNET_BN_EPS, RESNET_WIDTHS
from .builder import Built, GraphBuilder, conv_out


def build(
    g: GraphBuilder, x: str, input_size: int, layers: list[int] = RESNET18_LAYERS, num_classes: int = 1000
) -> Built:
    """Adds the network to ``g``."""
    size = conv_out(conv_out(input_size, 7, 2, 3), 3, 2, 1)  # stem conv, max-pool
    eps = RESNET_BN_EPS
    x = g.relu(g.conv(x, "conv1", 3, 64, 7, 2, [3] * 4, bn="bn1", bn_eps=eps))
    x = g.max_pool(x, 3, 2, 1)
    cin = 64
    for stage, (blocks, planes) in enumerate(zip(layers, RESNET_WIDTHS), start=1):
        for i in range(blocks):
            p = f"layer{stage}.{i}"
            stride = 2 if i == 0 and stage > 1 else 1
            size = conv_out(size, 3, stride, 1)
            identity = x
            if i == 0 and (stride != 1 or cin != planes):
                identity = g.conv(x, f"{p}.downsample.0", cin, planes, 1, stride, bn=f"{p}.downsample.1", bn_eps=eps)
            y = g.relu(g.conv(x, f"{p}.conv1", cin, planes, 3, stride, [1] * 4, bn=f"{p}.bn1", bn_eps=eps))
            y = g.conv(y, f"{p}.conv2", planes, planes, 3, 1, [1] * 4, bn=f"{p}.bn2", bn_eps=eps)
            last = stage == len(layers) and i == blocks - 1
            x = g.relu(g.add(y, identity), output="features" if last else None)
            cin = planes
    logits = g.linear(g.flatten(g.global_avg_pool(x)), "fc", cin, num_classes, output="logits")
    return Built(x, (cin, size, size), logits)
