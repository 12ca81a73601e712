"""SimpleCNN: three conv-activation-pool stages and a small classifier.

Made for the built-in RGB "shapes" data at 32x32: it trains in seconds on a
laptop CPU and its feature maps are large enough to read (32, 16, 8 pixels).
About 0.6 MB of float32 weights at width 1.0.
"""
from __future__ import annotations

import torch.nn as nn

from .common import classic_layout, conv_unit, dropout_items, make_activation, make_pool, named_sequential, scaled


class SimpleCNN(nn.Sequential):
    """features (conv1..conv3 with pools) -> avgpool (4x4) -> classifier (fc1, fc2)."""


def build_simplecnn(*, in_channels: int, num_classes: int, input_size: int, width: float,
                    activation: str, pooling: str, batchnorm: bool, dropout: float) -> nn.Module:
    del input_size  # the adaptive pool fixes the classifier's input at 4x4 for any size
    channels = [scaled(c, width) for c in (16, 32, 64)]
    hidden = scaled(128, width)
    items, cin = [], in_channels
    for i, cout in enumerate(channels, start=1):
        items += conv_unit("conv", str(i), cin, cout, 3, batchnorm=batchnorm, activation=activation)
        items.append((f"pool{i}", make_pool(pooling, 2, 2)))
        cin = cout
    classifier = named_sequential([
        ("fc1", nn.Linear(cin * 16, hidden)),
        ("act4", make_activation(activation)),
        *dropout_items("dropout", dropout),
        ("fc2", nn.Linear(hidden, num_classes)),
    ])
    return SimpleCNN(classic_layout(named_sequential(items), 4, classifier))
