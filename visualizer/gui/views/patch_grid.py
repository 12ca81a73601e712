"""The layout of the top-patches mosaic: a grid of channels, each a 3 x 3 grid of its patches.

Kept apart from the view so that drawing and hit-testing use the same arithmetic: a click
at mosaic pixel (y, x) maps back to exactly the (channel, rank) whose patch is drawn there.
One RGB image for everything (one ImageItem is far cheaper than one per patch).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PATCH_GAP = 1      # between the patches of one channel
CELL_GAP = 4       # between channels
PER_ROW = 3        # patches per row of a channel's cell (9 patches: 3 x 3)


@dataclass(frozen=True)
class PatchGrid:
    patch_h: int
    patch_w: int
    k: int                 # patches per channel (slots, filled or not)
    channels: int          # cells laid out
    columns: int           # cells per row

    @classmethod
    def for_patches(cls, patch_shape: tuple[int, int], k: int, channels: int) -> PatchGrid:
        return cls(int(patch_shape[0]), int(patch_shape[1]), max(1, int(k)), max(1, int(channels)),
                   max(1, math.ceil(math.sqrt(channels))))

    @property
    def per_row(self) -> int:
        return min(PER_ROW, self.k)

    @property
    def cell_shape(self) -> tuple[int, int]:
        rows = math.ceil(self.k / self.per_row)
        return (rows * (self.patch_h + PATCH_GAP) - PATCH_GAP, self.per_row * (self.patch_w + PATCH_GAP) - PATCH_GAP)

    @property
    def shape(self) -> tuple[int, int]:
        ch, cw = self.cell_shape
        rows = math.ceil(self.channels / self.columns)
        return rows * (ch + CELL_GAP) - CELL_GAP, self.columns * (cw + CELL_GAP) - CELL_GAP

    def origin(self, cell: int, rank: int) -> tuple[int, int]:
        """Top-left mosaic pixel of patch ``rank`` of cell ``cell``."""
        ch, cw = self.cell_shape
        r, c = divmod(cell, self.columns)
        pr, pc = divmod(rank, self.per_row)
        return r * (ch + CELL_GAP) + pr * (self.patch_h + PATCH_GAP), c * (cw + CELL_GAP) + pc * (self.patch_w + PATCH_GAP)

    def hit(self, y: float, x: float) -> tuple[int, int] | None:
        """(cell, rank) of the patch drawn at mosaic pixel (y, x); None on a gap or outside."""
        if y < 0 or x < 0:
            return None
        ch, cw = self.cell_shape
        r, ry = divmod(int(y), ch + CELL_GAP)
        c, rx = divmod(int(x), cw + CELL_GAP)
        if ry >= ch or rx >= cw or c >= self.columns:
            return None
        pr, py = divmod(ry, self.patch_h + PATCH_GAP)
        pc, px = divmod(rx, self.patch_w + PATCH_GAP)
        if py >= self.patch_h or px >= self.patch_w:
            return None
        cell, rank = r * self.columns + c, pr * self.per_row + pc
        return (cell, rank) if cell < self.channels and rank < self.k else None


def render(grid: PatchGrid, cells: list[np.ndarray], background: tuple[int, int, int]) -> np.ndarray:
    """(H, W, 3) uint8: each cell's patches ((n, ph, pw, C) uint8, n <= k) placed on ``background``."""
    out = np.empty((*grid.shape, 3), np.uint8)
    out[:] = np.asarray(background, np.uint8)
    for cell, patches in enumerate(cells):
        for rank, patch in enumerate(patches[: grid.k]):
            y, x = grid.origin(cell, rank)
            rgb = patch if patch.shape[-1] == 3 else np.repeat(patch[..., :1], 3, axis=-1)
            out[y:y + grid.patch_h, x:x + grid.patch_w] = rgb
    return out
