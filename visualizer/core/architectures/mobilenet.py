"""MobileNetV2 (Sandler et al. 2018): inverted residuals with linear bottlenecks.

Each block expands the channels with a 1x1 conv, filters every channel on its
own with a depthwise 3x3 conv (``groups`` = channels: the cheap half of a
depthwise-separable convolution), then projects back down with a linear 1x1 conv
(no activation: a nonlinearity in the narrow bottleneck would destroy
information). The input is added back when stride is 1 and the channels match.
The paper's ReLU6 is replaced by the ``activation`` option ("relu" gives plain
ReLU). At 224x224, width 1.0, 1000 classes: torchvision's 3,504,872 parameters.
Below 64x64 the stem and the first stride-2 block keep stride 1 (the CIFAR variant).
With ``batchnorm=False`` and PyTorch's default initialisation the first layers'
gradients vanish (about 1e-9): the registry recommends BatchNorm on.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .common import SMALL_INPUT_LIMIT, conv_unit, dropout_items, make_divisible, named_sequential

# (expansion t, output channels c, repeats n, first stride s): the paper's table 2.
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
            (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class InvertedResidual(nn.Module):
    """expand (1x1) -> depthwise (3x3) -> project (linear 1x1), plus the input when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int, *, activation: str,
                 batchnorm: bool):
        super().__init__()
        hidden = int(round(cin * expansion))
        self.use_skip = stride == 1 and cin == cout
        unit = dict(batchnorm=batchnorm)
        # No expansion conv when t == 1: it would be a 1x1 conv to the same width.
        self.expand = (named_sequential(conv_unit("conv", "", cin, hidden, 1, activation=activation, **unit))
                       if expansion != 1 else None)
        self.depthwise = named_sequential(conv_unit("conv", "", hidden, hidden, 3, stride=stride,
                                                    groups=hidden, activation=activation, **unit))
        self.project = named_sequential(conv_unit("conv", "", hidden, cout, 1, activation=None, **unit))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x if self.expand is None else self.expand(x)
        out = self.project(self.depthwise(out))
        return x + out if self.use_skip else out

    def extra_repr(self) -> str:
        return f"skip={self.use_skip}"


class MobileNetV2(nn.Sequential):
    """features (stem, block1..block17, head) -> avgpool -> classifier."""


def build_mobilenetv2(*, in_channels: int, num_classes: int, input_size: int, width: float,
                      activation: str, pooling: str, batchnorm: bool, dropout: float) -> nn.Module:
    del pooling  # MobileNetV2 downsamples with strided convs only: there is no pool to switch.
    small = input_size < SMALL_INPUT_LIMIT
    stem = make_divisible(32 * width)
    items = [("stem", named_sequential(conv_unit("conv", "", in_channels, stem, 3, stride=1 if small else 2,
                                                 batchnorm=batchnorm, activation=activation)))]
    cin, index = stem, 0
    for stage, (t, c, n, s) in enumerate(SETTINGS):
        cout = make_divisible(c * width)
        if small and stage == 1:
            s = 1
        for i in range(n):
            index += 1
            items.append((f"block{index}", InvertedResidual(cin, cout, s if i == 0 else 1, t,
                                                            activation=activation, batchnorm=batchnorm)))
            cin = cout
    # torchvision keeps 1280 for widths below 1; scaling it too keeps small widths cheap on a CPU.
    last = make_divisible(1280 * width)
    items.append(("head", named_sequential(conv_unit("conv", "", cin, last, 1, batchnorm=batchnorm,
                                                     activation=activation))))
    classifier = named_sequential([*dropout_items("dropout", dropout), ("fc", nn.Linear(last, num_classes))])
    return named_sequential([("features", named_sequential(items)), ("avgpool", nn.AdaptiveAvgPool2d(1)),
                             ("flatten", nn.Flatten()), ("classifier", classifier)], MobileNetV2)
