"""What each channel looks for, as plain data (numpy only): receptive fields and top patches.

A :class:`ReceptiveField` says which input pixels one output position of a layer can see:
output (y, x) covers input rows ``start[0] + y * jump[0]`` up to ``size[0]`` rows further
(and the same for columns), before clipping to the image. It is computed from the
model's real strides, padding and dilation (``receptive_field.py``).

:class:`TopPatches` holds, for each channel of one conv layer, the k dataset images that
excite it most: each one's score (the channel's maximum over positions), where that
maximum is, the receptive field of that position in input pixels, and those pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReceptiveField:
    layer: str
    input_size: tuple[int, int]     # (H, W) of the model's input
    output_size: tuple[int, int]    # (Ho, Wo) of the layer's output
    jump: tuple[int, int]           # input pixels between two neighbouring outputs
    size: tuple[int, int]           # input pixels one output sees, before clipping
    start: tuple[int, int]          # first input pixel of output (0, 0); negative: in the padding

    def box(self, y: int, x: int, clip: bool = True) -> tuple[int, int, int, int]:
        """(y0, x0, y1, x1), ends exclusive, of output position (y, x); clipped to the image by default."""
        y0 = self.start[0] + int(y) * self.jump[0]
        x0 = self.start[1] + int(x) * self.jump[1]
        y1, x1 = y0 + self.size[0], x0 + self.size[1]
        if clip:
            h, w = self.input_size
            y0, x0, y1, x1 = max(y0, 0), max(x0, 0), min(y1, h), min(x1, w)
        return y0, x0, y1, x1

    @property
    def patch_shape(self) -> tuple[int, int]:
        """(height, width) of a patch: the field, or the whole image when the field is bigger."""
        return min(self.size[0], self.input_size[0]), min(self.size[1], self.input_size[1])

    def describe(self) -> str:
        return (f"{self.size[0]}×{self.size[1]} input pixels per output, "
                f"{self.jump[0]}×{self.jump[1]} apart")


@dataclass(frozen=True)
class ChannelPatches:
    """The top-k images of one channel, best first (ties: lower index first)."""

    channel: int
    scores: np.ndarray       # (k,) float32: the channel's maximum in each image
    indices: np.ndarray      # (k,) int64: position of the image in TopPatches.split
    positions: np.ndarray    # (k, 2) int32: (y, x) of that maximum in the layer's output
    boxes: np.ndarray        # (k, 4) int32: (y0, x0, y1, x1) of its receptive field, clipped to the image
    patches: np.ndarray      # (k, ph, pw, C) uint8: the field's pixels (0 outside the image)


@dataclass(frozen=True)
class TopPatches:
    layer: str
    split: str                        # the split ("train"/"val") whose positions ``indices`` are
    receptive_field: ReceptiveField
    channels: tuple[ChannelPatches, ...]
    searched: int                     # images looked at
    total: int                        # images in the split
    cancelled: bool = False

    @property
    def complete(self) -> bool:
        return not self.cancelled and self.searched >= self.total

    @property
    def k(self) -> int:
        return max((len(c.indices) for c in self.channels), default=0)
