"""What a model looks like, as plain data: its layers in execution order (no torch).

``introspect.introspect`` builds a :class:`ModelInfo` from a live ``nn.Module``; everything
else (the layer tree, the views, run files, the command line) reads these frozen records,
so the GUI process and a run file reader never need torch to know a model's structure.
"""
from __future__ import annotations

from dataclasses import dataclass, field

LAYER_KINDS = ("conv", "depthwise_conv", "pool", "activation", "norm", "linear", "dropout", "block", "other")


@dataclass(frozen=True)
class LayerInfo:
    name: str                               # qualified module name, or a functional pseudo-name
    kind: str                               # one of LAYER_KINDS
    type_name: str                          # class name ("Conv2d") or "F.relu" for functional calls
    output_shape: tuple[int, ...] | None    # per sample (no batch axis); None if not a tensor / not called
    params: int                             # own parameters for leaves, all for blocks
    functional: bool                        # a call inside forward (F.relu, F.conv2d, x + y), not a module
    parent: str | None                      # enclosing module's qualified name (None: the model itself)
    detail: str                             # "5x5 s1 p0", "max 2x2 s2", "ReLU", "groups=32", ...
    activation: str | None = None           # relu, leaky_relu, sigmoid, ... for activation layers
    activation_params: tuple[tuple[str, float], ...] = ()
    calls: int = 1                          # how often the forward called it (0: never)
    # A functional conv/linear: the model parameters (``named_parameters`` names) it was called with,
    # which stand in for its module form's .weight/.bias.
    weight: str | None = None
    bias: str | None = None
    # A functional layer's other arguments as called (stride, padding, groups, kernel_size, ...).
    call_args: tuple[tuple[str, object], ...] = ()

    @property
    def spatial(self) -> bool:
        return self.output_shape is not None and len(self.output_shape) == 3


@dataclass(frozen=True)
class ModelInfo:
    layers: tuple[LayerInfo, ...]           # execution order; blocks before their children
    input_shape: tuple[int, int, int]       # (C, H, W) that a dummy forward accepted
    total_params: int
    num_outputs: int                        # per-sample size of the model output (classes)
    _index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_index", {l.name: i for i, l in enumerate(self.layers)})

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def by_name(self, name: str) -> LayerInfo | None:
        i = self._index.get(name)
        return None if i is None else self.layers[i]

    def index_of(self, name: str) -> int:
        """Execution-order position of ``name`` (-1 if unknown): sorts captures input → output."""
        return self._index.get(name, -1)

    def names(self) -> tuple[str, ...]:
        return tuple(l.name for l in self.layers)

    def leaves(self) -> tuple[LayerInfo, ...]:
        return tuple(l for l in self.layers if l.kind != "block")

    def of_kind(self, *kinds: str) -> tuple[LayerInfo, ...]:
        return tuple(l for l in self.layers if l.kind in kinds)
