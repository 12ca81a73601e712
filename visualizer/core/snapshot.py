"""The records that cross from the engine to the views: one schema for every source.

Frozen dataclasses holding only numpy arrays (made read-only), Python scalars,
strings and tuples: no tensors, no references into the live model. A snapshot
made by the app's engine, read back from a run file or received from a live
recorder is the same thing, so every view works on all three (DESIGN.md rule 3).

Conventions
- Every float array is float32, finite (NaN/inf replaced by 0 and counted in
  ``nonfinite``), C-contiguous and read-only.
- Spatial maps are (C, H, W), channel-first, one probe sample (no batch axis).
- Layer order everywhere is the model's execution order, input to output.
- Presentation (mosaics, display levels) is derived where it is shown, by cached
  properties: the engine, run files and the live stream carry only the data.
- A probe snapshot's records (layers, activation statistics, probabilities) may be handed
  over unbuilt and are built on first read (:class:`BuiltOnRead`): readers never see the
  difference, and the training thread does not pay for them.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


def frozen_array(a, dtype=np.float32) -> np.ndarray:
    """Copy ``a`` into a fresh contiguous read-only array (never an alias of live weights)."""
    out = np.array(a, dtype=dtype, copy=True, order="C")
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class Mosaic:
    """Channels tiled into one 2-D image (one ImageItem per layer is 7x faster than one per channel)."""

    image: np.ndarray          # (rows*(h+pad)-pad, cols*(w+pad)-pad) float32; padding holds NaN-free fill
    rows: int
    cols: int
    tile_h: int
    tile_w: int
    pad: int
    channels: tuple[int, ...]  # which original channel index each tile shows, row-major

    def tile_at(self, y: float, x: float) -> int | None:
        """Index into ``channels`` of the tile under image coordinates (y, x), or None on padding."""
        r, ry = divmod(int(y), self.tile_h + self.pad)
        c, rx = divmod(int(x), self.tile_w + self.pad)
        if y < 0 or x < 0 or r >= self.rows or c >= self.cols or ry >= self.tile_h or rx >= self.tile_w:
            return None
        i = r * self.cols + c
        return i if i < len(self.channels) else None


@dataclass(frozen=True)
class Levels:
    low: float
    high: float
    signed: bool  # the data has negative values: views use a diverging map with symmetric levels


@dataclass(frozen=True)
class Histogram:
    counts: np.ndarray  # (bins,) float32
    edges: np.ndarray   # (bins+1,) float32


@dataclass(frozen=True)
class ActivationStats:
    """What flows through one activation layer for the probe sample."""

    name: str
    function: str              # relu, leaky_relu, elu, gelu, silu, sigmoid, tanh, softmax, other
    params: tuple[tuple[str, float], ...]  # e.g. (("negative_slope", 0.01),), (("alpha", 1.0),)
    pre: Histogram             # histogram of the pre-activation input values
    pre_min: float
    pre_max: float
    out_mean: float
    out_std: float
    frac_dead: float           # fraction of outputs exactly 0 (ReLU family)
    frac_saturated: float      # sigmoid: out<0.01 or >0.99; tanh: |out|>0.99; else 0


@dataclass(frozen=True)
class PoolCapture:
    """Pooling layer input and output, with the winners of max pooling."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    mode: str                  # "max" or "avg" (adaptive pools report their effective window)
    input_maps: np.ndarray     # (C', Hi, Wi) float32
    argmax: np.ndarray | None  # (C', Ho, Wo) int32 flat index into Hi*Wi of each winner (max only)


@dataclass(frozen=True)
class LayerCapture:
    """One layer's output for the probe sample."""

    name: str
    kind: str                         # see model_info.LAYER_KINDS
    shape: tuple[int, ...]            # full per-sample output shape, e.g. (16, 10, 10) or (120,)
    maps: np.ndarray | None           # (C', H, W) spatial outputs, C' <= max_channels; None if not spatial
    channels: tuple[int, ...]         # original channel index of each row of ``maps``
    vector: np.ndarray | None         # (F,) flat outputs of non-spatial layers (bounded length)
    nonfinite: int                    # NaN/inf values replaced before sending
    pool: PoolCapture | None = None

    # Presentation, derived where it is shown (the window), once per capture: the engine and
    # the run files carry only the maps.
    @cached_property
    def mosaic(self) -> Mosaic | None:
        """``maps`` tiled into one image; None if not spatial."""
        from .reduce import make_mosaic
        return make_mosaic(self.maps, channels=self.channels) if self.maps is not None else None

    @cached_property
    def levels(self) -> Levels:
        """Display range over this layer's captured values."""
        from .reduce import levels_of
        return levels_of(self.maps if self.maps is not None else self.vector)

    @cached_property
    def channel_levels(self) -> np.ndarray | None:
        """(C', 2) per-channel (low, high), for per-channel normalisation; None if not spatial."""
        from .reduce import channel_levels
        return channel_levels(self.maps) if self.maps is not None else None


@dataclass(frozen=True)
class FilterCapture:
    """The kernels of one conv layer."""

    name: str
    weight: np.ndarray                # (O', I, kh, kw) float32, O' <= max_channels
    delta: np.ndarray | None          # weight - weight at training start, same shape
    grad: np.ndarray | None           # d loss / d weight, same shape (None outside training)
    in_channels: int
    out_channels: int                 # full count (weight may hold fewer)
    groups: int

    @cached_property
    def levels(self) -> Levels:
        """Symmetric display range over ``weight`` (derived where it is shown)."""
        from .reduce import levels_of
        return levels_of(self.weight, signed=True)


@dataclass(frozen=True)
class GradientStats:
    """Gradient magnitudes of one parameterised layer at one step."""

    name: str
    weight_norm: float                # L2 norm of the weight gradient
    bias_norm: float | None
    weight_l2: float                  # L2 norm of the weight itself
    update_ratio: float               # ||delta W|| / ||W|| of the last optimizer step
    act_grad_norm: float | None       # L2 norm of d loss / d output (None if not captured)


class BuiltOnRead:
    """A dataclass field that may be given unbuilt (an object with ``build()``) and is built on first read.

    The trainer hands a probe pass's records over as values plus layout (packed_pass.py): they
    are built where the snapshot is first read, once, not in the training thread (in the app:
    the window process's reader thread, or a run writer's thread). Reading gives the built value,
    so nothing that reads a snapshot knows the difference; pickling and ``copy.copy`` carry
    whichever form is held.
    """

    def __set_name__(self, owner, name):
        self._key = "_built_" + name

    def __get__(self, obj, owner=None):
        if obj is None:
            raise AttributeError   # no class-level default: the field stays required
        value = obj.__dict__[self._key]
        if hasattr(value, "build"):
            value = value.build()
            obj.__dict__[self._key] = value
        return value

    def __set__(self, obj, value):
        obj.__dict__[self._key] = value


@dataclass(frozen=True)
class ProbeSnapshot:
    """One forward pass on one sample: what every view needs that is not training state."""

    input_image: np.ndarray           # (C, H, W) float32 in [0, 1] for display (de-normalised)
    label: int | None                 # true class if known
    probabilities: np.ndarray = BuiltOnRead()  # (K,) float32, softmax of the logits
    class_names: tuple[str, ...]
    layers: tuple[LayerCapture, ...] = BuiltOnRead()  # selected layers, execution order
    activations: tuple[ActivationStats, ...] = BuiltOnRead()  # every activation layer, execution order
    filters: tuple[FilterCapture, ...]        # selected conv layers
    request_id: int = 0               # the CaptureRequest this answers

    def with_input_image(self, image: np.ndarray) -> "ProbeSnapshot":
        """The same snapshot showing ``image`` (unbuilt records stay unbuilt: ``dataclasses.replace`` would
        build them)."""
        out = copy.copy(self)
        object.__setattr__(out, "input_image", image)
        return out

    def built(self) -> "ProbeSnapshot":
        """Builds the records now (in the calling thread); returns self."""
        self.probabilities, self.layers, self.activations   # noqa: B018 - reading builds them
        return self

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.probabilities)) if self.probabilities.size else -1

    def layer(self, name: str) -> LayerCapture | None:
        return next((c for c in self.layers if c.name == name), None)


@dataclass(frozen=True)
class TrainingSnapshot:
    """Training state at one step, at most N per second."""

    step: int                         # optimizer steps done so far (global)
    epoch: int                        # 0-based epoch of this step
    batch: int                        # batch index within the epoch
    batches_per_epoch: int
    total_steps: int
    loss: float
    accuracy: float                   # of the last batch
    lr: float
    samples_per_sec: float
    history: np.ndarray               # (k, 3) float32 rows (step, loss, acc) of every step since the last snapshot
    gradients: tuple[GradientStats, ...]  # every parameterised layer, input to output
    probe: ProbeSnapshot | None       # None when no capture was requested/due


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
    step: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None


@dataclass(frozen=True)
class Diverged:
    """Training stopped at a non-finite loss, before the optimizer step (weights are the last good ones)."""

    step: int
    epoch: int
    layer: str | None                 # first layer (execution order) whose output or gradient was non-finite
    message: str                      # what happened and what to try


OUT_OF_MEMORY = "out of memory"


@dataclass(frozen=True)
class Finished:
    step: int
    epoch: int
    reason: str                       # "completed", "stopped", "failed" (the worker caught an error) or OUT_OF_MEMORY
    batch_size: int = 0               # with OUT_OF_MEMORY: the batch size that did not fit


@dataclass(frozen=True)
class Paused:
    """Yielded while paused whenever the trainer wakes (a command, a capture request; at least each second)
    so the caller can handle commands between two steps."""

    step: int


TrainingEvent = TrainingSnapshot | EpochEnd | Diverged | Finished | Paused


@dataclass(frozen=True)
class CaptureRequest:
    """What the GUI wants captured; handed to the worker through a one-slot mailbox (latest wins)."""

    layers: tuple[str, ...] = ()          # layers whose maps to capture ("*" = every layer)
    filter_layers: tuple[str, ...] = ()   # conv layers whose kernels to capture
    max_channels: int = 64
    overview_channels: int = 0            # channels kept of every layer not in ``layers`` (0: none)
    # (C, H, W) image in [0, 1] at any size (the engine fits it to the model's input), or None
    probe_input: np.ndarray | None = field(default=None, compare=False)
    probe_via: tuple[int, int] | None = None  # fit probe_input to this (H, W) first: the training data's size
    probe_label: int | None = None        # true class of probe_input, if known
    probe_index: int = 0                  # validation-split sample used when probe_input is None
    probe_split: str = ""                 # "train": probe_index is in the training split ("": the probe split)
    request_id: int = 0
