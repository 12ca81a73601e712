"""Turn captured arrays into records and what views draw: finite float32, mosaics, levels,
histograms, probabilities and the activation statistics of many layers at once.

numpy only (no torch): this runs in the worker after the tensors were copied to
host, and the results go straight into frozen snapshots, so every returned array
is read-only (``snapshot.frozen_array``).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .snapshot import ActivationStats, Histogram, Levels, Mosaic, frozen_array

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
    image = tile(m, rows, cols, pad=pad, fill=fill) if c else np.zeros((0, 0), np.float32)
    return Mosaic(image=frozen_array(image), rows=rows, cols=cols, tile_h=h, tile_w=w,
                  pad=pad, channels=tuple(int(k) for k in channels))


def tile(maps, rows: int, cols: int, pad: int = 1, fill: float = 0.0) -> np.ndarray:
    """(N, h, w[, 3]) tiles -> one (rows*(h+pad)-pad, cols*(w+pad)-pad[, 3]) image, row-major.

    The one tiling every mosaic uses (feature maps, the overview, filters). One vectorised
    copy instead of a loop over tiles (120 1x1 tiles of LeNet C5 took longer in the loop
    than all the rest of a snapshot's reduction): pad every tile on the bottom/right,
    reshape the grid into the image, crop the trailing pad.
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
    return np.ascontiguousarray(grid[: max(rows * (h + pad) - pad, 0), : max(cols * (w + pad) - pad, 0)])


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


def probabilities(logits) -> np.ndarray:
    """Softmax of one sample's outputs, unless they already are (log-)probabilities.

    Many user models end in ``softmax``/``log_softmax`` (the classic MNIST
    example): a second softmax would flatten their confidence towards uniform.
    """
    v = np.asarray(logits, dtype=np.float64).reshape(-1)
    if v.size == 0:
        return frozen_array(np.zeros(0, np.float32))
    finite = bool(np.isfinite(v).all())
    if finite and (v >= 0).all() and (v <= 1).all() and abs(float(v.sum()) - 1.0) < 1e-3:
        p = v
    elif finite and (v <= 0).all() and abs(float(np.exp(v).sum()) - 1.0) < 1e-3:
        p = np.exp(v)
    else:
        z = np.nan_to_num(v, nan=0.0, posinf=1e4, neginf=-1e4)
        e = np.exp(z - z.max())
        p = e / e.sum()
    out, _ = sanitize(p)
    return out


HIST_BINS = 64
# Saturation rules by function (sigmoid: out < 0.01 or > 0.99; tanh: |out| > 0.99).
_SATURATING = {"sigmoid": 1, "tanh": 2}


@lru_cache(maxsize=64)
def _segments(sizes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(length, start, non-empty, count) of each of concatenated segments of ``sizes``: the same
    for every snapshot of a model, so worked out once. Per segment, not per value: a segment id
    for every value, cached, was 8 bytes a value kept for as long as the model (18 MB for
    ResNet-18 at 224); ``np.repeat`` of a per-segment figure costs about the same as indexing by it."""
    n = np.array(sizes, dtype=np.int64)
    # reduceat needs every start inside the array: an empty segment borrows one and is zeroed after.
    starts = np.minimum(np.concatenate([[0], np.cumsum(n)[:-1]]), max(int(n.sum()) - 1, 0))
    return n, starts, n > 0, np.maximum(n, 1)


@lru_cache(maxsize=64)
def _saturation_rule(functions: tuple[str, ...]) -> np.ndarray:
    return np.array([_SATURATING.get(fn, 0) for fn in functions], dtype=np.int8)


def activation_stats(names: list[str], functions: list[tuple[str, tuple]], pre: np.ndarray,
                     pre_sizes: tuple[int, ...], out: np.ndarray, out_sizes: tuple[int, ...]) \
        -> tuple[ActivationStats, ...]:
    """Every activation layer's statistics at once: segment reductions over the concatenated values.

    ``pre``/``out``: every layer's input/output values, one after the other (``*_sizes`` each);
    ``functions``: each layer's (function, params).

    On the host, after the one copy: for the small tensors of one sample, numpy's
    ``reduceat`` and ``bincount`` cost a quarter of the same segment ops in torch (0.13 vs
    0.52 ms for LeNet-5's four activations), whose per-call overhead dominates.
    """
    if not names:
        return ()
    k = len(names)
    n_pre, start_pre, has_pre, _ = _segments(pre_sizes)
    n_out, start_out, has_out, count = _segments(out_sizes)
    zeros = np.zeros(k)
    lo = np.where(has_pre, np.minimum.reduceat(pre, start_pre), 0.0) if pre.size else zeros
    hi = np.where(has_pre, np.maximum.reduceat(pre, start_pre), 0.0) if pre.size else zeros
    # A (nearly) constant input gets a bin range of width 1 around it, as reduce.histogram does.
    narrow = (hi - lo) < _MIN_SPAN
    h_lo = np.where(narrow, lo - 0.5, lo)
    h_hi = np.where(narrow, lo + 0.5, hi)
    scale = HIST_BINS / (h_hi - h_lo)
    idx = ((pre - np.repeat(h_lo, n_pre)) * np.repeat(scale, n_pre)).astype(np.int64)
    np.clip(idx, 0, HIST_BINS - 1, out=idx)
    idx += np.repeat(np.arange(k, dtype=np.int64) * HIST_BINS, n_pre)
    counts = np.bincount(idx, minlength=k * HIST_BINS).reshape(k, HIST_BINS).astype(np.float32)

    def per_layer(values: np.ndarray) -> np.ndarray:
        return np.where(has_out, np.add.reduceat(values, start_out, dtype=np.float64), 0.0) if out.size else zeros

    mean = per_layer(out) / count
    std = np.sqrt(per_layer(np.square(out - np.repeat(mean, n_out))) / count)
    dead = per_layer(out == 0) / count
    rule = _saturation_rule(tuple(fn for fn, _ in functions))
    if rule.any():
        r = np.repeat(rule, n_out)
        sat_mask = np.where(r == 1, (out < 0.01) | (out > 0.99), (r == 2) & (np.abs(out) > 0.99))
        saturated = per_layer(sat_mask) / count
    else:
        saturated = zeros
    edges_all = (h_lo[:, None] + (h_hi - h_lo)[:, None] * np.linspace(0.0, 1.0, HIST_BINS + 1)).astype(np.float32)
    counts.setflags(write=False)
    edges_all.setflags(write=False)
    figures = np.stack([lo, hi, mean, std, dead, saturated], 1).tolist()
    return tuple(
        ActivationStats(name=n, function=functions[i][0], params=tuple(functions[i][1]),
                        pre=Histogram(counts=counts[i], edges=edges_all[i]), pre_min=f[0], pre_max=f[1],
                        out_mean=f[2], out_std=f[3], frac_dead=f[4], frac_saturated=f[5])
        for i, (n, f) in enumerate(zip(names, figures)))
