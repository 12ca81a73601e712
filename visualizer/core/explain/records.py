"""What the step-by-step explanations and class activation maps hand to the views: plain frozen records.

No torch here (the window's process will not have it): numpy arrays made read-only
(``snapshot.frozen_array``), Python scalars, strings and tuples, so a record can cross a
thread, a process or a file like every snapshot. ``steps.py`` and ``cam.py`` fill them from
the real model; the views only draw them.

Coordinates: (y, x), row first. A window's cells are given by the input rows and columns
they read (``rows``, ``cols``, in the coordinates of the unpadded input, so a cell in the
padding has a negative index or one past the input's edge); ``inside`` says which cells
lie on the real input.

Every record class is registered with ``core.record`` so that it travels like a snapshot
(the run-file and stream encoding, no pickle) from the process that owns the model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model_info import ModelInfo
from ..record.record_types import register_record_type

CAM_METHODS = ("auto", "cam", "grad-cam")


class ExplainError(ValueError):
    """The explanation asked for cannot be made (no such layer, wrong kind, position out of range)."""


@register_record_type
@dataclass(frozen=True)
class WindowGeometry:
    """How a conv or pooling window slides over its input: enough to draw it and to play it."""

    kind: str                            # "conv" or "pool"
    kernel: tuple[int, int]              # cells read per window (kh, kw)
    stride: tuple[int, int]
    dilation: tuple[int, int]            # gap between the cells read (1: adjacent)
    padding: tuple[int, int, int, int]   # (top, left, bottom, right) cells added around the input
    input_size: tuple[int, int]          # (Hi, Wi) of the unpadded input
    output_size: tuple[int, int]         # (Ho, Wo)
    adaptive: bool = False               # adaptive pooling: windows differ in size, stride is nominal

    @property
    def count(self) -> int:
        return self.output_size[0] * self.output_size[1]

    @property
    def padded_size(self) -> tuple[int, int]:
        t, l, b, r = self.padding
        return self.input_size[0] + t + b, self.input_size[1] + l + r

    @property
    def positions(self) -> np.ndarray:
        """(Ho * Wo, 2) output positions (y, x) in the order a play button visits them (row by row)."""
        ho, wo = self.output_size
        ys, xs = np.divmod(np.arange(ho * wo), max(wo, 1))
        out = np.stack([ys, xs], axis=1).astype(np.int32)
        out.setflags(write=False)
        return out

    def origin(self, y: int, x: int) -> tuple[int, int]:
        """Input coordinates of the first cell the window at output (y, x) reads (negative in the padding)."""
        if self.adaptive:
            return (int(np.floor(y * self.input_size[0] / self.output_size[0])),
                    int(np.floor(x * self.input_size[1] / self.output_size[1])))
        return y * self.stride[0] - self.padding[0], x * self.stride[1] - self.padding[1]

    def next_position(self, y: int, x: int, step: int = 1) -> tuple[int, int]:
        """The position ``step`` windows after (y, x) in play order, wrapping round at the end."""
        ho, wo = self.output_size
        i = (int(y) * wo + int(x) + int(step)) % max(self.count, 1)
        return divmod(i, max(wo, 1))

    def contains(self, y: int, x: int) -> bool:
        return 0 <= y < self.output_size[0] and 0 <= x < self.output_size[1]


@register_record_type
@dataclass(frozen=True)
class ActivationStep:
    """The activation applied to the unit's value, when the layer is followed directly by one."""

    layer: str                 # as introspection names it: "C1_act", or "F.relu" for a functional call
    function: str              # relu, leaky_relu, sigmoid, tanh, ...
    functional: bool           # called as a function inside forward (F.relu), not a module
    computed: float | None     # the function applied to the computed sum (None: not element-wise, e.g. softmax)
    output: float              # the value in the activation's real output


@register_record_type
@dataclass(frozen=True)
class ConvStep:
    """One output value of a conv layer, computed in front of the class from the layer's real input."""

    layer: str
    out_channel: int
    position: tuple[int, int]         # (y, x) in the output map
    geometry: WindowGeometry
    groups: int
    padding_mode: str                 # "zeros" (padding cells are 0) or reflect / replicate / circular
    in_channels: tuple[int, ...]      # input channels this output channel reads (its group)
    padded_inputs: np.ndarray         # (M, Hp, Wp) the real input of the first M <= MAX_MAPS of them, padded
    rows: np.ndarray                  # (kh,) input row read by each kernel row (negative / >= Hi: padding)
    cols: np.ndarray                  # (kw,)
    inside: np.ndarray                # (kh, kw) bool: the cell lies on the real input
    patches: np.ndarray               # (Cg, kh, kw) input values under the window, padding included
    kernel: np.ndarray                # (Cg, kh, kw) the weights of this output channel
    products: np.ndarray              # (Cg, kh, kw) patches * kernel
    channel_sums: np.ndarray          # (Cg,) products summed per input channel
    bias: float                       # 0.0 when the layer has none
    has_bias: bool
    total: float                      # sum of all products + bias: the value computed here
    output: float                     # the value in the layer's real output at (out_channel, y, x)
    output_map: np.ndarray            # (Ho, Wo) the real output map of out_channel, to show where it lands
    activation: ActivationStep | None
    next_layer: str | None            # what runs next on this output (e.g. a BatchNorm), when known

    @property
    def error(self) -> float:
        return abs(self.total - self.output)


@register_record_type
@dataclass(frozen=True)
class PoolStep:
    """One output value of a pooling layer: the window, the winner (max) or the mean (average)."""

    layer: str
    channel: int
    position: tuple[int, int]
    geometry: WindowGeometry
    mode: str                         # "max" or "avg"
    padded_input: np.ndarray          # (Hp, Wp) the real input map of this channel, padding as 0
    rows: np.ndarray                  # (kh,) input rows read (padding: outside 0..Hi-1)
    cols: np.ndarray                  # (kw,)
    inside: np.ndarray                # (kh, kw) bool
    patch: np.ndarray                 # (kh, kw) input values; cells outside the input hold 0
    winner: tuple[int, int] | None    # max: input (y, x) of the winning cell (the first one on a tie)
    divisor: int                      # avg: what the sum is divided by (PyTorch's rule); max: 1
    window_sum: float                 # avg: sum of the cells on the input
    computed: float                   # the max, or window_sum / divisor
    output: float                     # the value in the layer's real output
    output_map: np.ndarray            # (Ho, Wo) the real output map of this channel

    @property
    def error(self) -> float:
        return abs(self.computed - self.output)


@register_record_type
@dataclass(frozen=True)
class LinearStep:
    """One unit of a fully connected layer: its largest contributions w_i * x_i, sorted, plus the bias."""

    layer: str
    unit: int
    in_features: int
    out_features: int                 # units in the layer (play/step goes through them)
    inputs: np.ndarray                # (F,) the layer's real input
    weights: np.ndarray               # (F,) the unit's weights
    products: np.ndarray              # (F,) inputs * weights
    top: np.ndarray                   # (k,) int: input indices by |product|, largest first
    rest: float                       # sum of the products not in ``top``
    bias: float
    has_bias: bool
    total: float                      # sum of all products + bias
    output: float                     # the value in the layer's real output
    activation: ActivationStep | None
    next_layer: str | None

    @property
    def error(self) -> float:
        return abs(self.total - self.output)


@register_record_type
@dataclass(frozen=True)
class ClassActivationMap:
    """Where the model looks for one class: a heat map at the input's resolution."""

    method: str                       # "cam" (Zhou et al. 2016) or "grad-cam" (Selvaraju et al. 2017)
    layer: str                        # the layer asked for (Grad-CAM) or found (CAM: the maps the pooling averages)
    source_layer: str                 # whose output maps were weighted: ``layer``, or the activation right after it
    class_index: int
    class_name: str
    predicted: int                    # the model's predicted class for this input
    score: float                      # the class's logit
    probabilities: np.ndarray         # (K,) softmax of the logits
    heatmap: np.ndarray               # (H, W) float32 in [0, 1] at input resolution (bilinear upsampling)
    raw: np.ndarray                   # (h, w) float32 map at the layer's resolution, after ReLU, before scaling
    peak: float                       # max of ``raw``: 0 means the map is empty (no positive evidence)
    input_image: np.ndarray           # (C, H, W) float32 in [0, 1] to draw under the map
    class_names: tuple[str, ...]


def grad_cam_layers(info: ModelInfo) -> tuple[str, ...]:
    """Conv layers whose output is still a map (more than 1x1), input to output: what Grad-CAM can use.

    Torch-free, from the layer list the window already has, so a layer picker can be filled
    without asking the model. The last one is the usual choice (``default_grad_cam_layer``):
    the most abstract maps that still say where.
    """
    # Module layers only: Grad-CAM hooks the layer's module, and an F.conv2d call has none.
    return tuple(l.name for l in info.layers
                 if l.kind in ("conv", "depthwise_conv") and not l.functional and l.output_shape is not None
                 and len(l.output_shape) == 3 and l.output_shape[1] * l.output_shape[2] > 1)


def default_grad_cam_layer(info: ModelInfo) -> str | None:
    names = grad_cam_layers(info)
    return names[-1] if names else None
