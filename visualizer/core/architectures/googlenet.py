"""GoogLeNet / Inception v1 (Szegedy et al. 2014), without the auxiliary heads.

Each Inception module runs four branches side by side on the same input and
concatenates their channels: a 1x1 conv, 1x1 -> 3x3, 1x1 -> 5x5 (the paper's
5x5; torchvision uses 3x3 there, which is why it counts 6.6 M parameters and
this one 7.0 M) and a 3x3 pool -> 1x1. The 1x1 "reduce" convs are what keep
it cheap. Below 64x64 the 7x7/2 stem and first pool become a 3x3/1 stem.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .common import SMALL_INPUT_LIMIT, conv_unit, dropout_items, make_pool, named_sequential, scaled

# name: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj), the paper's table 1.
MODULES = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


class Inception(nn.Module):
    """Four parallel branches whose outputs are concatenated along channels."""

    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, cp: int, *,
                 activation: str, pooling: str, batchnorm: bool):
        super().__init__()
        unit = dict(batchnorm=batchnorm, activation=activation)
        self.branch1x1 = named_sequential(conv_unit("conv", "", cin, c1, 1, **unit))
        self.branch3x3 = named_sequential([*conv_unit("conv", "_reduce", cin, c3r, 1, **unit),
                                           *conv_unit("conv", "", c3r, c3, 3, **unit)])
        self.branch5x5 = named_sequential([*conv_unit("conv", "_reduce", cin, c5r, 1, **unit),
                                           *conv_unit("conv", "", c5r, c5, 5, **unit)])
        self.branch_pool = named_sequential([("pool", make_pool(pooling, 3, 1, 1, ceil_mode=True)),
                                             *conv_unit("conv", "", cin, cp, 1, **unit)])
        self.out_channels = c1 + c3 + c5 + cp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1x1(x), self.branch3x3(x), self.branch5x5(x),
                          self.branch_pool(x)], dim=1)


class GoogLeNet(nn.Sequential):
    """stem -> inception 3a..5b with pools between stages -> avgpool -> fc."""


def build_googlenet(*, in_channels: int, num_classes: int, input_size: int, width: float,
                    activation: str, pooling: str, batchnorm: bool, dropout: float) -> nn.Module:
    unit = dict(batchnorm=batchnorm, activation=activation)
    small = input_size < SMALL_INPUT_LIMIT
    c_stem1, c_stem2, c_stem3 = scaled(64, width), scaled(64, width), scaled(192, width)
    items = []
    if small:
        items.append(("conv1", named_sequential(conv_unit("conv", "", in_channels, c_stem1, 3, **unit))))
    else:
        items += [("conv1", named_sequential(conv_unit("conv", "", in_channels, c_stem1, 7, stride=2,
                                                       padding=3, **unit))),
                  ("maxpool1", make_pool(pooling, 3, 2, ceil_mode=True))]
    items += [
        ("conv2", named_sequential(conv_unit("conv", "", c_stem1, c_stem2, 1, **unit))),
        ("conv3", named_sequential(conv_unit("conv", "", c_stem2, c_stem3, 3, **unit))),
        ("maxpool2", make_pool(pooling, 3, 2, ceil_mode=True)),
    ]
    cin = c_stem3
    # torchvision's pools between stages: 3x3/2 after 3b, 2x2/2 after 4e (both ceil mode).
    pools_after = {"3b": ("maxpool3", 3), "4e": ("maxpool4", 2)}
    for name, config in MODULES.items():
        module = Inception(cin, *(scaled(c, width) for c in config), pooling=pooling, **unit)
        items.append((f"inception{name}", module))
        cin = module.out_channels
        if name in pools_after:
            pool_name, kernel = pools_after[name]
            items.append((pool_name, make_pool(pooling, kernel, 2, ceil_mode=True)))
    items += [
        ("avgpool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
        *dropout_items("dropout", dropout),
        ("fc", nn.Linear(cin, num_classes)),
    ]
    return named_sequential(items, GoogLeNet)
