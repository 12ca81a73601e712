"""The zoo's one entry point, :func:`build_model` (the catalogue is ``catalog.py``).

Every option is checked here, once, so that each builder can trust its inputs
and every caller (GUI, CLI, checkpoint loader) gets the same ValueError naming
the valid choices.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn

from .alexnet import build_alexnet
from .catalog import ACTIVATIONS, ARCHITECTURES, MAX_WIDTH, MIN_INPUT_SIZE, POOLINGS
from .googlenet import build_googlenet
from .lenet import build_lenet5
from .mobilenet import build_mobilenetv2
from .resnet import build_plain18, build_resnet18
from .simplecnn import build_simplecnn
from .vgg import build_vgg


def _vgg(depth_name):
    def build(**options):
        return build_vgg(depth_name, **options)
    return build


# The builder of each catalogue entry.
_BUILDERS = {
    "lenet5": build_lenet5, "alexnet": build_alexnet, "vgg11": _vgg("vgg11"), "vgg16": _vgg("vgg16"),
    "googlenet": build_googlenet, "resnet18": build_resnet18, "plain18": build_plain18,
    "mobilenetv2": build_mobilenetv2, "simplecnn": build_simplecnn,
}
assert set(_BUILDERS) == set(ARCHITECTURES), "every catalogue entry needs a builder"


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
    builder = _BUILDERS[name]
    _check_size(builder, options)
    return builder(**options)


MAX_MODEL_BYTES = 2_000_000_000   # the same bound as for a model file (checkpoint.DEFAULT_MAX_BYTES)


def _check_size(builder: Callable[..., nn.Module], options: dict) -> None:
    """Refuse options that would allocate more than MAX_MODEL_BYTES of weights, before allocating any.

    Each option is bounded on its own, but together (width 4, 4096 input channels, 4096-pixel
    inputs) they can still ask for gigabytes. Built on the meta device, a model has shapes and
    no storage: counting costs milliseconds and no memory.
    """
    with torch.device("meta"):
        model = builder(**options)
    size = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    if size > MAX_MODEL_BYTES:
        raise ValueError(f"these options would build a model of {size / 1e9:.1f} GB of weights, over the "
                         f"{MAX_MODEL_BYTES / 1e9:.0f} GB limit")
