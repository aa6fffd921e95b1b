"""Architecture facts shared by the torch modules (reference engine) and the torch-free ONNX
graph builders (``wanwu.graph``): one source of truth for stage tables, widths and padding."""

from __future__ import annotations

import math
from dataclasses import dataclass

# --- EfficientNet-Lite ------------------------------------------------------------------------
# (repeats, kernel, stride, expand ratio, in channels, out channels) — EfficientNet-B0 stages
LITE_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
# variant -> (width multiplier, depth multiplier, resolution)
LITE_VARIANTS = {0: (1.0, 1.0, 224), 1: (1.0, 1.1, 240), 2: (1.1, 1.2, 260), 3: (1.2, 1.4, 280), 4: (1.4, 1.8, 300)}
LITE_BN_EPS = 1e-3
LITE_STEM = 32  # stem and head widths are fixed in Lite (not scaled by width)
LITE_HEAD = 1280


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TF SAME padding for one spatial dim: (pad_before, pad_after, output size)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


@dataclass(frozen=True)
class LiteBlock:
    """One MBConv block: channels in/out, depthwise kernel and stride, expansion, input size."""

    cin: int
    cout: int
    kernel: int
    stride: int
    expand: int
    in_size: int

    @property
    def mid(self) -> int:
        return self.cin * self.expand

    @property
    def out_size(self) -> int:
        return same_padding(self.in_size, self.kernel, self.stride)[2]

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.cin == self.cout


def lite_blocks(variant: int) -> list[LiteBlock]:
    """The MBConv blocks of EfficientNet-Lite``variant``, in order (Lite keeps the first and last
    stage at depth 1)."""
    width, depth, image_size = LITE_VARIANTS[variant]
    size = same_padding(image_size, 3, 2)[2]  # after the stride-2 stem
    blocks: list[LiteBlock] = []
    for i, (repeats, kernel, stride, expand, cin, cout) in enumerate(LITE_STAGES):
        cin, cout = round_filters(cin, width), round_filters(cout, width)
        if 0 < i < len(LITE_STAGES) - 1:
            repeats = int(math.ceil(depth * repeats))
        for r in range(repeats):
            block = LiteBlock(cin if r == 0 else cout, cout, kernel, stride if r == 0 else 1, expand, size)
            size = block.out_size
            blocks.append(block)
    return blocks


# --- ResNet / VGG -----------------------------------------------------------------------------
RESNET18_LAYERS = [2, 2, 2, 2]  # BasicBlocks per stage; widths 64, 128, 256, 512
RESNET_WIDTHS = [64, 128, 256, 512]
RESNET_BN_EPS = 1e-5
VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]  # "D"
VGG_POOL = 7  # AdaptiveAvgPool2d((7, 7)) before the classifier
VGG_HIDDEN = 4096
