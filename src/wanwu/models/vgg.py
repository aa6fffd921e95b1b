"""VGG-16 (configuration "D", no batch norm) in plain torch with torchvision's module indices,
so ``vgg16-397923af.pth`` loads with ``strict=True``."""

from __future__ import annotations

import torch
from torch import nn

from .arch import VGG16_CFG, VGG_HIDDEN, VGG_POOL


class VGG(nn.Module):
    def __init__(self, cfg: list, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU(inplace=True)]
                channels = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((VGG_POOL, VGG_POOL))
        self.classifier = nn.Sequential(
            nn.Linear(512 * VGG_POOL * VGG_POOL, VGG_HIDDEN),
            nn.ReLU(True),
            nn.Dropout(dropout),
            nn.Linear(VGG_HIDDEN, VGG_HIDDEN),
            nn.ReLU(True),
            nn.Dropout(dropout),
            nn.Linear(VGG_HIDDEN, num_classes),
        )
        for m in self.modules():  # torchvision's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (N, 512, h, w) after the last max-pool. VGG has no global average
        pooling: its head is three linear layers on the (7x7-pooled) map."""
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(features), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def vgg16(num_classes: int = 1000) -> VGG:
    return VGG(VGG16_CFG, num_classes)
