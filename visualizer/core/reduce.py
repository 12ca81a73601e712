"""Turn captured arrays into what views draw: finite float32, mosaics, levels, histograms.

numpy only (no torch): this runs in the worker after the tensors were copied to
host, and the results go straight into frozen snapshots, so every returned array
is read-only (``snapshot.frozen_array``).
"""
from __future__ import annotations

import math

import numpy as np

from .snapshot import Histogram, Levels, Mosaic, frozen_array

# A zero-width range would make views divide by zero (and pyqtgraph's levels
# reject low == high); widen it by this much.
_MIN_SPAN = 1e-6


def sanitize(a) -> tuple[np.ndarray, int]:
    """``a`` as read-only finite float32, and how many values were NaN/inf (replaced by 0).

    Values that only overflow on the cast to float32 count as non-finite too:
    one +inf pixel freezes a pyqtgraph histogram (PITFALLS), whatever its origin.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.array(a, dtype=np.float32, copy=True, order="C")
    bad = ~np.isfinite(out)
    n_bad = int(bad.sum())
    if n_bad:
        out[bad] = 0.0
    out.setflags(write=False)
    return out, n_bad


def _finite_range(a: np.ndarray) -> tuple[float, float] | None:
    vals = a[np.isfinite(a)] if a.size else a
    if vals.size == 0:
        return None
    return float(vals.min()), float(vals.max())


def grid_shape(count: int, tile_h: int, tile_w: int) -> tuple[int, int]:
    """(rows, cols) for ``count`` tiles so that the whole mosaic is roughly square.

    cols starts at ceil(sqrt(C)) and is scaled by the tile aspect: wide tiles
    (W > H) get fewer columns, tall tiles more.
    """
    if count <= 0:
        return 0, 0
    aspect = tile_h / max(tile_w, 1)
    cols = int(math.ceil(math.sqrt(count * aspect)))
    cols = max(1, min(count, cols))
    rows = int(math.ceil(count / cols))
    return rows, cols


def make_mosaic(maps, pad: int = 1, fill: float | None = None,
                channels: tuple[int, ...] | None = None) -> Mosaic:
    """Tile (C, H, W) maps row-major into one image (one ImageItem beats C of them 7x).

    Padding holds ``fill``, by default the minimum of non-negative maps (the
    bottom of a sequential scale) or 0 for signed maps (the neutral middle of a
    diverging scale), so it never stretches the levels or draws coloured grid lines. ``channels``
    names the original channel index of each tile (default 0..C-1).
    """
    m, _ = sanitize(maps)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3:
        raise ValueError(f"make_mosaic wants (C, H, W) maps, got shape {m.shape}")
    c, h, w = m.shape
    pad = max(0, int(pad))
    if channels is None:
        channels = tuple(range(c))
    elif len(channels) != c:
        raise ValueError(f"{len(channels)} channel indices for {c} maps")
    rows, cols = grid_shape(c, h, w)
    if fill is None or not math.isfinite(fill):
        low = float(m.min()) if m.size else 0.0
        fill = 0.0 if low < 0 else low
    height = max(rows * (h + pad) - pad, 0)
    width = max(cols * (w + pad) - pad, 0)
    # One vectorised copy instead of a loop over channels (120 1x1 tiles of LeNet C5
    # took longer in the loop than all the rest of a snapshot's reduction).
    cells = np.full((rows * cols, h + pad, w + pad), fill, dtype=np.float32)
    cells[:c, :h, :w] = m
    grid = cells.reshape(rows, cols, h + pad, w + pad).transpose(0, 2, 1, 3)
    image = grid.reshape(rows * (h + pad), cols * (w + pad))[:height, :width]
    return Mosaic(image=frozen_array(image), rows=rows, cols=cols, tile_h=h, tile_w=w,
                  pad=pad, channels=tuple(int(k) for k in channels))


def levels_of(a, signed: bool | None = None) -> Levels:
    """Display range of ``a``; signed data gets symmetric levels ±max|a| (diverging map).

    ``signed=None`` decides from the data (any negative value). Non-finite values
    are ignored; an empty or constant array still gets a non-zero span.
    """
    arr = np.asarray(a, dtype=np.float32)
    rng = _finite_range(arr)
    lo, hi = rng if rng is not None else (0.0, 0.0)
    if signed is None:
        signed = lo < 0
    if signed:
        m = max(abs(lo), abs(hi))
        if m < _MIN_SPAN:
            m = 1.0
        return Levels(low=-m, high=m, signed=True)
    if hi - lo < _MIN_SPAN:
        # A constant map (e.g. a dead ReLU layer, all 0) shows as the low colour.
        hi = lo + max(1.0, abs(lo))
    return Levels(low=lo, high=hi, signed=False)


def channel_levels(maps) -> np.ndarray:
    """(C, 2) per-channel (low, high) for per-channel normalisation; constant channels widened."""
    m, _ = sanitize(maps)
    if m.ndim < 2 or m.shape[0] == 0:
        return frozen_array(np.zeros((0, 2), np.float32))
    flat = m.reshape(m.shape[0], -1)
    if flat.shape[1] == 0:
        out = np.tile(np.array([0.0, 1.0], np.float32), (m.shape[0], 1))
        return frozen_array(out)
    lo = flat.min(axis=1)
    hi = flat.max(axis=1)
    flat_span = (hi - lo) < _MIN_SPAN
    hi = np.where(flat_span, lo + np.maximum(1.0, np.abs(lo)), hi)
    return frozen_array(np.stack([lo, hi], axis=1))


def histogram(a, bins: int = 64, lo: float | None = None, hi: float | None = None) -> Histogram:
    """Counts of the finite values of ``a`` over ``bins`` equal bins in [lo, hi] (defaults: data range)."""
    arr = np.asarray(a, dtype=np.float32).ravel()
    finite = arr[np.isfinite(arr)]
    if lo is None or hi is None:
        rng = _finite_range(finite)
        d_lo, d_hi = rng if rng is not None else (0.0, 1.0)
        lo = d_lo if lo is None else lo
        hi = d_hi if hi is None else hi
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi - lo < _MIN_SPAN:
        lo, hi = lo - 0.5, lo + 0.5
    bins = int(bins)
    edges = np.linspace(lo, hi, bins + 1)
    # bincount over computed bin indices: np.histogram's generic path was the largest
    # single cost of a LeNet snapshot. Same convention: the last bin includes ``hi``,
    # values outside [lo, hi] are not counted.
    inside = finite[(finite >= lo) & (finite <= hi)]
    idx = ((inside.astype(np.float64) - lo) * (bins / (hi - lo))).astype(np.int64)
    np.clip(idx, 0, bins - 1, out=idx)
    counts = np.bincount(idx, minlength=bins)
    return Histogram(counts=frozen_array(counts), edges=frozen_array(edges))


def subsample(a, limit: int = 4096) -> np.ndarray:
    """Up to ``limit`` evenly spaced values of the flattened ``a`` (deterministic, so views don't flicker)."""
    flat = np.asarray(a, dtype=np.float32).ravel()
    if flat.size > limit:
        idx = np.linspace(0, flat.size - 1, limit).astype(np.int64)
        flat = flat[idx]
    return frozen_array(flat)
