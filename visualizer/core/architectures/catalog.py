"""The zoo's catalogue: names, titles, descriptions and options of every architecture (no torch).

The window lists these in its menus without importing torch; ``registry.py`` attaches the
builders and checks the options in ``build_model``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh")
POOLINGS = ("max", "avg")
MIN_INPUT_SIZE = 28
OPTION_NAMES = ("activation", "pooling", "batchnorm", "dropout")
# What a zoo model is built with besides its data's shape: the options plus the width multiplier.
MODEL_OPTION_KEYS = ("width", *OPTION_NAMES)
MAX_WIDTH = 4.0


@dataclass(frozen=True)
class ArchSpec:
    """One zoo entry: what to call it, how to describe it, and how to build it."""

    name: str                      # the key in ARCHITECTURES and in checkpoints
    title: str                     # for people: "LeNet-5"
    description: str               # one line
    year: int | None               # of the paper; None for our own SimpleCNN
    default_width: float           # trains at 32x32, batch 64, on a 2-core CPU in < ~0.5 s/step
    default_input_size: int = 32
    paper_input_size: int = 224    # the layout of the paper appears at this size and width 1.0
    # The options that change this network. "pooling" is absent where the small-input layout has
    # no pool to switch (ResNet's stem pool exists only from 64x64 up; MobileNetV2 has none).
    options: tuple[str, ...] = OPTION_NAMES
    # Options the GUI should start from (e.g. BatchNorm for the deep nets); build_model's own
    # defaults stay the same for every architecture.
    recommended: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "recommended", MappingProxyType(dict(self.recommended)))

    def build(self, **options):
        """Same as ``build_model(self.name, **options)``, with the same checks (imports torch)."""
        from .registry import build_model
        return build_model(self.name, **options)


# default_width: one SGD step (forward, backward, update) at 32x32, batch 64, 3 channels, with the
# recommended options, measured on the 2-core development CPU (torch 2.13, 2 threads, idle):
# lenet5 1.0: 4 ms, simplecnn 1.0: 9 ms, alexnet 0.5: 89 ms, vgg11 0.5: 84 ms, vgg16 0.5: 124 ms,
# googlenet 0.25: 153 ms (0.5: 374 ms), resnet18 0.5: 215 ms, plain18 0.5: 130 ms,
# mobilenetv2 0.5: 202 ms (1.0: 935 ms). Wider looks better, but a live view needs steps well
# under half a second with the probe's overhead on top.
_SPECS = (
    ArchSpec("lenet5", "LeNet-5", "LeCun 1998: two conv/subsample pairs then C5, F6 and the output; "
             "the network that read cheques.", 1998, 1.0, paper_input_size=32),
    ArchSpec("alexnet", "AlexNet", "Krizhevsky 2012: five convs, overlapping pools and two large "
             "dropout-regularised dense layers; started the deep-learning boom.", 2012, 0.5,
             recommended={"dropout": 0.5}),
    ArchSpec("vgg11", "VGG-11", "Simonyan 2014: eight 3x3 convs in five stages, each ending in a "
             "2x2 max pool: depth from one repeated simple block.", 2014, 0.5,
             recommended={"batchnorm": True, "dropout": 0.5}),
    ArchSpec("vgg16", "VGG-16", "Simonyan 2014: thirteen 3x3 convs and three dense layers (138 M "
             "parameters at full size): deep, uniform, heavy.", 2014, 0.5,
             recommended={"batchnorm": True, "dropout": 0.5}),
    ArchSpec("googlenet", "GoogLeNet", "Szegedy 2014: Inception modules run 1x1, 3x3, 5x5 convs "
             "and a pool side by side and concatenate them.", 2014, 0.25,
             recommended={"batchnorm": True, "dropout": 0.2}),
    ArchSpec("resnet18", "ResNet-18", "He 2015: eight residual blocks whose skip connections let "
             "gradients flow through very deep networks.", 2015, 0.5,
             options=("activation", "batchnorm", "dropout"),
             recommended={"batchnorm": True}),
    ArchSpec("plain18", "Plain-18", "ResNet-18 without its skip connections: watch the gradients "
             "vanish (compare both with BatchNorm off).", 2015, 0.5,
             options=("activation", "batchnorm", "dropout"),
             recommended={"batchnorm": False}),
    ArchSpec("mobilenetv2", "MobileNetV2", "Sandler 2018: inverted residual blocks of 1x1 expand, "
             "depthwise 3x3 and linear 1x1 projection; built for phones.", 2018, 0.5,
             options=("activation", "batchnorm", "dropout"),
             recommended={"batchnorm": True, "dropout": 0.2}),
    ArchSpec("simplecnn", "SimpleCNN", "Three conv-activation-pool stages and a small classifier; "
             "learns the built-in shapes in seconds.", None, 1.0, paper_input_size=32),
)

ARCHITECTURES: dict[str, ArchSpec] = {spec.name: spec for spec in _SPECS}
