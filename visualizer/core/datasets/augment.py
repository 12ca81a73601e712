"""Random geometric augmentation of training images, with torch ops.

One affine warp per image (rotation, translation, scale, horizontal flip
folded into a single ``grid_sample``), applied to a whole batch at once when
the DataLoader fetches batches. Pixels moved in from outside are 0 (black),
the background of the digit data sets; it is applied before normalisation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    rotation: float = 0.0      # degrees: angle drawn uniformly from [-rotation, rotation]
    translation: float = 0.0   # fraction of the image size, per axis, from [-translation, translation]
    scale: float = 0.0         # zoom factor drawn from [1 - scale, 1 + scale]
    hflip: bool = False        # mirror left-right with probability 1/2

    def __post_init__(self):
        if not (self.rotation >= 0 and 0 <= self.translation < 1 and 0 <= self.scale < 1):
            raise ValueError(f"augmentation out of range: {self} (rotation >= 0, translation and scale in [0, 1))")

    @property
    def active(self) -> bool:
        return bool(self.rotation or self.translation or self.scale or self.hflip)


def augment_batch(x: torch.Tensor, aug: Augment, generator: torch.Generator) -> torch.Tensor:
    """(B, C, H, W) float in [0, 1] -> the same batch, each image warped by its own random affine."""
    if not aug.active or x.shape[0] == 0:
        return x
    b = x.shape[0]

    def uniform(limit: float) -> torch.Tensor:
        return (torch.rand(b, generator=generator) * 2 - 1) * limit

    angle = uniform(math.radians(aug.rotation))
    zoom = 1 + uniform(aug.scale)
    shift = torch.stack([uniform(aug.translation), uniform(aug.translation)], dim=1) * 2  # grid spans [-1, 1]
    flip = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0) if aug.hflip else torch.ones(b)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # affine_grid maps output coordinates to input ones, so this is the inverse of the
    # wanted motion: rotate by -angle, shrink by zoom, mirror x, then undo the shift.
    a = torch.stack([torch.stack([cos * flip, sin], 1), torch.stack([-sin * flip, cos], 1)], 1)  # (B, 2, 2)
    theta = torch.cat([a, -(a @ shift[:, :, None])], dim=2)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
