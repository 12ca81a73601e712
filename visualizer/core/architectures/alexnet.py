"""AlexNet (Krizhevsky, Sutskever, Hinton 2012), single-tower as in torchvision.

At 224x224 and width 1.0 this is the standard layout (11x11/4 stem, overlapping
3x3/2 max pools, 6x6 pooled features, two 4096 fully connected layers, about
61 M parameters). Local response normalisation is left out (later work found it
useless; BatchNorm is the ``batchnorm`` option instead). Below 64x64 the stem
becomes 3x3/1 so that a 32x32 image still leaves a 4x4 map for the classifier.
"""
from __future__ import annotations

import torch.nn as nn

from .common import (
    SMALL_INPUT_LIMIT,
    classic_layout,
    conv_unit,
    dropout_items,
    make_activation,
    make_pool,
    named_sequential,
    scaled,
)


class AlexNet(nn.Sequential):
    """features -> avgpool -> flatten -> classifier (fc6, fc7, fc8)."""


def build_alexnet(*, in_channels: int, num_classes: int, input_size: int, width: float,
                  activation: str, pooling: str, batchnorm: bool, dropout: float) -> nn.Module:
    c1, c2, c3, c4, c5 = (scaled(c, width) for c in (64, 192, 384, 256, 256))
    hidden = scaled(4096, width)
    small = input_size < SMALL_INPUT_LIMIT
    if small:
        # Overlapping pooling kept (3x3 windows, stride 2); padding 1 halves 32 -> 16 -> 8 -> 4.
        stem, pool_padding, pooled = dict(kernel=3, stride=1, padding=1), 1, 2
    else:
        stem, pool_padding, pooled = dict(kernel=11, stride=4, padding=2), 0, 6

    def pool() -> nn.Module:
        return make_pool(pooling, 3, 2, padding=pool_padding)
    unit = dict(batchnorm=batchnorm, activation=activation)
    features = named_sequential([
        *conv_unit("conv", "1", in_channels, c1, stem["kernel"], stride=stem["stride"],
                   padding=stem["padding"], **unit),
        ("pool1", pool()),
        *conv_unit("conv", "2", c1, c2, 5, **unit),
        ("pool2", pool()),
        *conv_unit("conv", "3", c2, c3, 3, **unit),
        *conv_unit("conv", "4", c3, c4, 3, **unit),
        *conv_unit("conv", "5", c4, c5, 3, **unit),
        ("pool5", pool()),
    ])
    classifier = named_sequential([
        *dropout_items("dropout6", dropout),
        ("fc6", nn.Linear(c5 * pooled * pooled, hidden)),
        ("act6", make_activation(activation)),
        *dropout_items("dropout7", dropout),
        ("fc7", nn.Linear(hidden, hidden)),
        ("act7", make_activation(activation)),
        ("fc8", nn.Linear(hidden, num_classes)),
    ])
    return AlexNet(classic_layout(features, pooled, classifier))
