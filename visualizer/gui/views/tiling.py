"""Per-channel normalisation of maps before they are tiled (``core.reduce.tile``, the one tiling).

A view re-tiles when it transforms the maps itself (per-channel normalisation), with the
mosaic's own geometry, so that ``Mosaic.tile_at`` still maps clicks to channels.
"""
from __future__ import annotations

import numpy as np


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
