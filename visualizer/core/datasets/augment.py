"""Random geometric augmentation of training images, with torch ops.

One affine warp per image (rotation, translation, scale, horizontal flip
folded into a single ``grid_sample``), applied to a whole batch at once when
the DataLoader fetches batches. Pixels moved in from outside are 0 (black),
the background of the digit data sets; it is applied before normalisation.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..config import Augment


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
