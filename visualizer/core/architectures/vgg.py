"""VGG-11 and VGG-16 (Simonyan, Zisserman 2014): stacks of 3x3 convs, 2x2 max pools.

Layers carry the paper's stage names: ``features.conv1_1``, ``features.act1_1``,
``features.pool1``, ..., ``classifier.fc6``, ``fc7``, ``fc8``. At 224x224 and width
1.0 the layout is torchvision's (7x7 pooled features, two 4096 fully connected
layers; VGG-16 has 138,357,544 parameters). Small inputs keep every conv; a pool
that would shrink a map below 1x1 (the fifth one at 28x28) is left out, and the
classifier then reads a 1x1 pooled map as CIFAR variants do.
"""
from __future__ import annotations

import torch.nn as nn

from .common import (
    SMALL_INPUT_LIMIT,
    classic_layout,
    conv_out,
    conv_unit,
    dropout_items,
    make_activation,
    make_pool,
    named_sequential,
    scaled,
)

# Output channels of each conv, one tuple per stage; every stage ends with a pool.
STAGES = {
    "vgg11": ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
}


class VGG(nn.Sequential):
    """features (conv stages) -> avgpool -> flatten -> classifier (fc6, fc7, fc8)."""


def build_vgg(depth_name: str, *, in_channels: int, num_classes: int, input_size: int, width: float,
              activation: str, pooling: str, batchnorm: bool, dropout: float) -> nn.Module:
    items = []
    cin, size = in_channels, input_size
    for stage, convs in enumerate(STAGES[depth_name], start=1):
        for i, channels in enumerate(convs, start=1):
            cout = scaled(channels, width)
            items += conv_unit("conv", f"{stage}_{i}", cin, cout, 3, batchnorm=batchnorm,
                               activation=activation)
            cin = cout
        if size >= 2:
            items.append((f"pool{stage}", make_pool(pooling, 2, 2)))
            size = conv_out(size, 2, 2)
    pooled = 1 if input_size < SMALL_INPUT_LIMIT else 7
    hidden = scaled(4096, width)
    classifier = named_sequential([
        ("fc6", nn.Linear(cin * pooled * pooled, hidden)),
        ("act6", make_activation(activation)),
        *dropout_items("dropout6", dropout),
        ("fc7", nn.Linear(hidden, hidden)),
        ("act7", make_activation(activation)),
        *dropout_items("dropout7", dropout),
        ("fc8", nn.Linear(hidden, num_classes)),
    ])
    return VGG(classic_layout(named_sequential(items), pooled, classifier))
