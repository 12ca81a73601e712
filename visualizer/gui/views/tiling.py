"""Re-tiling channel maps with a Mosaic's geometry.

The worker sends one mosaic per layer (one ImageItem is 7x faster than one per
channel); the view needs to re-tile only when it transforms the maps itself
(per-channel normalisation), and must then reproduce the same layout so that
``Mosaic.tile_at`` still maps clicks to channels.
"""
from __future__ import annotations

import math

import numpy as np


def grid_for(n: int) -> tuple[int, int]:
    """(rows, cols) of a near-square grid holding n tiles."""
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    return rows, cols


def tile(maps: np.ndarray, rows: int, cols: int, pad: int = 1, fill: float = 0.0) -> np.ndarray:
    """(N, h, w[, 3]) tiles -> one (rows*(h+pad)-pad, cols*(w+pad)-pad[, 3]) image, row-major.

    Vectorised: pad every tile on the bottom/right, reshape the grid into the
    image, then crop the trailing pad.
    """
    maps = np.asarray(maps)
    n, h, w = maps.shape[:3]
    extra = maps.shape[3:]
    if n > rows * cols:
        raise ValueError(f"{n} tiles do not fit a {rows}x{cols} grid")
    grid = np.full((rows * cols, h + pad, w + pad, *extra), fill, dtype=maps.dtype)
    grid[:n, :h, :w] = maps
    grid = grid.reshape(rows, cols, h + pad, w + pad, *extra)
    grid = grid.swapaxes(1, 2).reshape(rows * (h + pad), cols * (w + pad), *extra)
    return np.ascontiguousarray(grid[: rows * (h + pad) - pad, : cols * (w + pad) - pad])


def per_channel_normalised(maps: np.ndarray, channel_levels: np.ndarray | None, signed: bool = False) -> np.ndarray:
    """Each (h, w) map rescaled by its own levels.

    Unsigned maps go to [0, 1] by (low, high); signed maps are divided by their
    own max |value| into [-1, 1] so that zero stays the centre of a diverging
    colormap. Flat maps become 0.
    """
    maps = np.asarray(maps, dtype=np.float32)
    if (channel_levels is None or len(channel_levels) != len(maps)
            or not np.isfinite(np.asarray(channel_levels, dtype=np.float32)).all()):
        flat = maps.reshape(len(maps), -1)
        lo = flat.min(axis=1) if flat.size else np.zeros(len(maps), np.float32)
        hi = flat.max(axis=1) if flat.size else np.ones(len(maps), np.float32)
    else:
        lv = np.asarray(channel_levels, dtype=np.float32)
        lo, hi = lv[:, 0], lv[:, 1]
    if signed:
        lo, span = np.zeros_like(lo), np.maximum(np.abs(lo), np.abs(hi))
    else:
        span = hi - lo
    safe = np.where(span > 0, span, 1.0).astype(np.float32)
    out = (maps - lo[:, None, None]) / safe[:, None, None]
    out[span <= 0] = 0.0
    return np.clip(out, -1.0 if signed else 0.0, 1.0, out=out)
