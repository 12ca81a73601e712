"""Building blocks shared by every zoo architecture.

One factory per option (activation, pooling, BatchNorm, width), so that every
architecture honours the lecture's switches the same way. Activations are
always separate, non-inplace modules: the probe hooks them by name, and an
in-place activation would overwrite the conv output a hook just looked at.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import torch.nn as nn

from .catalog import ACTIVATIONS, POOLINGS

# Below this input size the ImageNet stems (7x7/2 or 11x11/4 conv, then a
# stride-2 pool) would shrink a 32x32 image to almost nothing before the first
# real block; CIFAR-style variants use a 3x3 stride-1 stem instead.
SMALL_INPUT_LIMIT = 64


def make_activation(name: str) -> nn.Module:
    """A fresh activation module (never shared: each one is hooked under its own name)."""
    if name == "relu":
        return nn.ReLU(inplace=False)
    if name == "leaky_relu":
        return nn.LeakyReLU(0.01, inplace=False)
    if name == "elu":
        return nn.ELU(inplace=False)
    if name == "gelu":
        return nn.GELU()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "tanh":
        return nn.Tanh()
    raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")


def make_pool(kind: str, kernel: int, stride: int | None = None, padding: int = 0,
              ceil_mode: bool = False) -> nn.Module:
    if kind == "max":
        return nn.MaxPool2d(kernel, stride, padding, ceil_mode=ceil_mode)
    if kind == "avg":
        # count_include_pad=False: zero padding must not darken the border of an average.
        return nn.AvgPool2d(kernel, stride, padding, ceil_mode=ceil_mode, count_include_pad=False)
    raise ValueError(f"unknown pooling {kind!r}; choose one of {', '.join(POOLINGS)}")


def scaled(channels: int, width: float) -> int:
    """Channel count under a width multiplier: rounded, never below one."""
    return max(1, int(round(channels * width)))


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet's rounding: a multiple of ``divisor``, never more than 10% below ``value``."""
    out = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if out < 0.9 * value:
        out += divisor
    return out


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0, ceil_mode: bool = False) -> int:
    """Spatial size after a conv/pool, as PyTorch computes it."""
    span = size + 2 * padding - kernel
    steps = math.ceil(span / stride) if ceil_mode else span // stride
    out = steps + 1
    # PyTorch's ceil_mode rule: the last window must start inside the input (or left padding).
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def conv_unit(prefix: str, suffix: str, cin: int, cout: int, kernel: int, *, stride: int = 1,
              padding: int | None = None, groups: int = 1, batchnorm: bool, activation: str | None
              ) -> list[tuple[str, nn.Module]]:
    """Conv, optional BatchNorm, optional activation as named entries.

    Names are ``{prefix}{suffix}``, ``bn{suffix}``, ``act{suffix}`` for a prefix
    such as "conv" (so VGG gets conv1_1, bn1_1, act1_1). The conv has no bias
    when BatchNorm follows: the BN shift makes it redundant.
    """
    if padding is None:
        padding = kernel // 2
    items: list[tuple[str, nn.Module]] = [
        (f"{prefix}{suffix}", nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups,
                                        bias=not batchnorm)),
    ]
    if batchnorm:
        items.append((f"bn{suffix}", nn.BatchNorm2d(cout)))
    if activation is not None:
        items.append((f"act{suffix}", make_activation(activation)))
    return items


def named_sequential(items, cls: type[nn.Sequential] = nn.Sequential) -> nn.Sequential:
    """A Sequential whose children carry readable names instead of 0, 1, 2..."""
    return cls(OrderedDict(items))


def dropout_items(name: str, rate: float) -> list[tuple[str, nn.Module]]:
    """A dropout entry only when it does something, so layer lists stay uncluttered."""
    return [(name, nn.Dropout(rate))] if rate > 0 else []


def classic_layout(features: nn.Module, pooled: int, classifier: nn.Module) -> OrderedDict:
    """Top level of the plain feed-forward nets (AlexNet, VGG, SimpleCNN), torchvision's names.

    The adaptive pool makes the classifier's input size independent of the image size.
    """
    return OrderedDict(features=features, avgpool=nn.AdaptiveAvgPool2d(pooled),
                       flatten=nn.Flatten(), classifier=classifier)
