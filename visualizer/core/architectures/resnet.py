"""ResNet-18 (He et al. 2015) and "plain-18", the same network without skip connections.

The pair is the vanishing-gradient demonstration: with ``batchnorm=False`` the
gradients reaching ``conv1`` of plain-18 shrink by orders of magnitude, while the
identity paths of ResNet-18 carry them back intact. Parameter names match
torchvision's ``resnet18`` (``layer1.0.conv1``, ``layer2.0.downsample.0``, ``fc``;
11,689,512 parameters at 224x224, width 1.0, 1000 classes). plain-18 has no
downsample projections: those exist only to make the skip's shapes match.
Below 64x64 the stem is a 3x3/1 conv without max pool (the CIFAR variant).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .common import SMALL_INPUT_LIMIT, dropout_items, make_activation, make_pool, named_sequential, scaled


class BasicBlock(nn.Module):
    """Two 3x3 convs; with ``residual`` the input is added back before the last activation."""

    def __init__(self, cin: int, cout: int, stride: int, *, residual: bool, activation: str,
                 batchnorm: bool):
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=not batchnorm)
        self.bn1 = nn.BatchNorm2d(cout) if batchnorm else None
        self.act1 = make_activation(activation)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=not batchnorm)
        self.bn2 = nn.BatchNorm2d(cout) if batchnorm else None
        self.downsample = None
        if residual and (stride != 1 or cin != cout):
            # Unnamed (0, 1) children on purpose: torchvision's state-dict keys.
            projection = [nn.Conv2d(cin, cout, 1, stride, bias=not batchnorm)]
            if batchnorm:
                projection.append(nn.BatchNorm2d(cout))
            self.downsample = nn.Sequential(*projection)
        self.act2 = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        if self.bn1 is not None:
            out = self.bn1(out)
        out = self.act1(out)
        out = self.conv2(out)
        if self.bn2 is not None:
            out = self.bn2(out)
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.act2(out)

    def extra_repr(self) -> str:
        return f"residual={self.residual}"


class ResNet(nn.Sequential):
    """stem -> layer1..layer4 (two BasicBlocks each) -> avgpool -> fc."""


def build_resnet18(*, residual: bool = True, in_channels: int, num_classes: int, input_size: int,
                   width: float, activation: str, pooling: str, batchnorm: bool,
                   dropout: float) -> nn.Module:
    stem = scaled(64, width)
    items = []
    if input_size < SMALL_INPUT_LIMIT:
        items.append(("conv1", nn.Conv2d(in_channels, stem, 3, 1, 1, bias=not batchnorm)))
    else:
        items.append(("conv1", nn.Conv2d(in_channels, stem, 7, 2, 3, bias=not batchnorm)))
    if batchnorm:
        items.append(("bn1", nn.BatchNorm2d(stem)))
    items.append(("act1", make_activation(activation)))
    if input_size >= SMALL_INPUT_LIMIT:
        items.append(("maxpool", make_pool(pooling, 3, 2, 1)))
    cin = stem
    for stage, channels in enumerate((64, 128, 256, 512), start=1):
        cout = scaled(channels, width)
        stride = 1 if stage == 1 else 2
        blocks = [BasicBlock(cin, cout, stride, residual=residual, activation=activation, batchnorm=batchnorm),
                  BasicBlock(cout, cout, 1, residual=residual, activation=activation, batchnorm=batchnorm)]
        items.append((f"layer{stage}", nn.Sequential(*blocks)))  # children 0, 1: torchvision's names
        cin = cout
    items += [
        ("avgpool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
        *dropout_items("dropout", dropout),
        ("fc", nn.Linear(cin, num_classes)),
    ]
    return named_sequential(items, ResNet)


def build_plain18(**options) -> nn.Module:
    return build_resnet18(residual=False, **options)
