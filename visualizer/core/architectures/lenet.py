"""LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998), with the paper's layer names.

At 32x32: C1 6@28x28, S2 6@14x14, C3 16@10x10, S4 16@5x5, C5 120@1x1, F6 84,
output 10. For other inputs C1..S4 are unchanged and C5's kernel covers the
whole S4 map, so C5 is still 1x1 (as in the paper, where it is "fully
connected" to S4). Modern simplifications, as every course teaches it today:
full C3 connectivity (no connection table) and a linear output instead of RBF
units; subsampling follows the ``pooling`` option.
"""
from __future__ import annotations

import torch.nn as nn

from .common import conv_out, dropout_items, make_activation, make_pool, named_sequential, scaled


class LeNet5(nn.Sequential):
    """LeNet-5 as one flat sequence: C1, S2, C3, S4, C5, F6, output."""


def build_lenet5(*, in_channels: int, num_classes: int, input_size: int, width: float,
                 activation: str, pooling: str, batchnorm: bool, dropout: float) -> nn.Module:
    c1, c3, c5, f6 = (scaled(c, width) for c in (6, 16, 120, 84))
    s4_size = conv_out(conv_out(conv_out(conv_out(input_size, 5), 2, 2), 5), 2, 2)

    def conv(name, cin, cout, kernel):
        items = [(name, nn.Conv2d(cin, cout, kernel, bias=not batchnorm))]
        if batchnorm:
            items.append((f"{name}_bn", nn.BatchNorm2d(cout)))
        items.append((f"{name}_act", make_activation(activation)))
        return items

    layers = [
        *conv("C1", in_channels, c1, 5),
        ("S2", make_pool(pooling, 2, 2)),
        *conv("C3", c1, c3, 5),
        ("S4", make_pool(pooling, 2, 2)),
        *conv("C5", c3, c5, s4_size),
        ("flatten", nn.Flatten()),
        ("F6", nn.Linear(c5, f6)),
        ("F6_act", make_activation(activation)),
        *dropout_items("F6_dropout", dropout),
        ("output", nn.Linear(f6, num_classes)),
    ]
    return named_sequential(layers, LeNet5)
