"""The zoo's catalogue and its one entry point, :func:`build_model`.

Every option is checked here, once, so that each builder can trust its inputs
and every caller (GUI, CLI, checkpoint loader) gets the same ValueError naming
the valid choices.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

import torch
import torch.nn as nn

from .alexnet import build_alexnet
from .common import ACTIVATIONS, MIN_INPUT_SIZE, POOLINGS
from .googlenet import build_googlenet
from .lenet import build_lenet5
from .mobilenet import build_mobilenetv2
from .resnet import build_plain18, build_resnet18
from .simplecnn import build_simplecnn
from .vgg import build_vgg

OPTION_NAMES = ("activation", "pooling", "batchnorm", "dropout")
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
    builder: Callable[..., nn.Module] = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "recommended", MappingProxyType(dict(self.recommended)))

    def build(self, **options) -> nn.Module:
        """Same as ``build_model(self.name, **options)``, with the same checks."""
        return build_model(self.name, **options)


def _vgg(depth_name):
    def build(**options):
        return build_vgg(depth_name, **options)
    return build


# default_width: one SGD step (forward, backward, update) at 32x32, batch 64, 3 channels, with the
# recommended options, measured on the 2-core development CPU (torch 2.13, 2 threads, idle):
# lenet5 1.0: 4 ms, simplecnn 1.0: 9 ms, alexnet 0.5: 89 ms, vgg11 0.5: 84 ms, vgg16 0.5: 124 ms,
# googlenet 0.25: 153 ms (0.5: 374 ms), resnet18 0.5: 215 ms, plain18 0.5: 130 ms,
# mobilenetv2 0.5: 202 ms (1.0: 935 ms). Wider looks better, but a live view needs steps well
# under half a second with the probe's overhead on top.
_SPECS = (
    ArchSpec("lenet5", "LeNet-5", "LeCun 1998: two conv/subsample pairs then C5, F6 and the output; "
             "the network that read cheques.", 1998, 1.0, paper_input_size=32, builder=build_lenet5),
    ArchSpec("alexnet", "AlexNet", "Krizhevsky 2012: five convs, overlapping pools and two large "
             "dropout-regularised dense layers; started the deep-learning boom.", 2012, 0.5,
             recommended={"dropout": 0.5}, builder=build_alexnet),
    ArchSpec("vgg11", "VGG-11", "Simonyan 2014: eight 3x3 convs in five stages, each ending in a "
             "2x2 max pool: depth from one repeated simple block.", 2014, 0.5,
             recommended={"batchnorm": True, "dropout": 0.5}, builder=_vgg("vgg11")),
    ArchSpec("vgg16", "VGG-16", "Simonyan 2014: thirteen 3x3 convs and three dense layers (138 M "
             "parameters at full size): deep, uniform, heavy.", 2014, 0.5,
             recommended={"batchnorm": True, "dropout": 0.5}, builder=_vgg("vgg16")),
    ArchSpec("googlenet", "GoogLeNet", "Szegedy 2014: Inception modules run 1x1, 3x3, 5x5 convs "
             "and a pool side by side and concatenate them.", 2014, 0.25,
             recommended={"batchnorm": True, "dropout": 0.2}, builder=build_googlenet),
    ArchSpec("resnet18", "ResNet-18", "He 2015: eight residual blocks whose skip connections let "
             "gradients flow through very deep networks.", 2015, 0.5,
             options=("activation", "batchnorm", "dropout"),
             recommended={"batchnorm": True}, builder=build_resnet18),
    ArchSpec("plain18", "Plain-18", "ResNet-18 without its skip connections: watch the gradients "
             "vanish (compare both with BatchNorm off).", 2015, 0.5,
             options=("activation", "batchnorm", "dropout"),
             recommended={"batchnorm": False}, builder=build_plain18),
    ArchSpec("mobilenetv2", "MobileNetV2", "Sandler 2018: inverted residual blocks of 1x1 expand, "
             "depthwise 3x3 and linear 1x1 projection; built for phones.", 2018, 0.5,
             options=("activation", "batchnorm", "dropout"),
             recommended={"batchnorm": True, "dropout": 0.2}, builder=build_mobilenetv2),
    ArchSpec("simplecnn", "SimpleCNN", "Three conv-activation-pool stages and a small classifier; "
             "learns the built-in shapes in seconds.", None, 1.0, paper_input_size=32,
             builder=build_simplecnn),
)

ARCHITECTURES: dict[str, ArchSpec] = {spec.name: spec for spec in _SPECS}


def _choice(what: str, value, valid) -> str:
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(valid)}")
    return value


def _integer(what: str, value, minimum: int, maximum: int = 100_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not (minimum <= value <= maximum):
        raise ValueError(f"{what} must be an integer from {minimum} to {maximum}, got {value!r}")
    return value


def build_model(name: str, *, in_channels: int = 1, num_classes: int = 10, input_size: int = 32,
                width: float = 1.0, activation: str = "relu", pooling: str = "max",
                batchnorm: bool = False, dropout: float = 0.0) -> nn.Module:
    """A freshly initialised zoo network taking (N, in_channels, input_size, input_size) images.

    Raises ValueError, naming the valid choices, for an unknown name or option.
    """
    spec = ARCHITECTURES.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")
    # Upper bounds: options can come from an untrusted checkpoint, and 2**40 classes would
    # ask the allocator for terabytes before any other check could object.
    _integer("in_channels", in_channels, 1, 4096)
    _integer("num_classes", num_classes, 1, 100_000)
    _integer("input_size", input_size, MIN_INPUT_SIZE, 4096)
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not (0 < width <= MAX_WIDTH):
        raise ValueError(f"width must be a number in (0, {MAX_WIDTH:g}], got {width!r}")
    _choice("activation", activation, ACTIVATIONS)
    _choice("pooling", pooling, POOLINGS)
    if not isinstance(batchnorm, bool):
        raise ValueError(f"batchnorm must be True or False, got {batchnorm!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (0 <= dropout < 1) \
            or math.isnan(dropout):
        raise ValueError(f"dropout must be a rate in [0, 1), got {dropout!r}")
    options = dict(in_channels=in_channels, num_classes=num_classes, input_size=input_size, width=float(width),
                   activation=activation, pooling=pooling, batchnorm=batchnorm, dropout=float(dropout))
    _check_size(spec, options)
    return spec.builder(**options)


MAX_MODEL_BYTES = 2_000_000_000   # the same bound as for a model file (checkpoint.DEFAULT_MAX_BYTES)


def _check_size(spec: ArchSpec, options: dict) -> None:
    """Refuse options that would allocate more than MAX_MODEL_BYTES of weights, before allocating any.

    Each option is bounded on its own, but together (width 4, 4096 input channels, 4096-pixel
    inputs) they can still ask for gigabytes. Built on the meta device, a model has shapes and
    no storage: counting costs milliseconds and no memory.
    """
    with torch.device("meta"):
        model = spec.builder(**options)
    size = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    if size > MAX_MODEL_BYTES:
        raise ValueError(f"these options would build a model of {size / 1e9:.1f} GB of weights, over the "
                         f"{MAX_MODEL_BYTES / 1e9:.0f} GB limit")
