"""Snapshot records from numpy tensors: the same LayerCapture / ActivationStats / FilterCapture the
PyTorch path makes (``probe.py``, ``inspector.py``), built with the same ``reduce`` helpers, so
every view draws an ONNX model's pass without knowing where it came from.

The bounds (values kept of a flat output, histogram bins, scatter samples) are the probe's.
"""
from __future__ import annotations

import numpy as np

from ..reduce import channel_levels, histogram, levels_of, make_mosaic, sanitize, subsample
from ..snapshot import ActivationStats, FilterCapture, LayerCapture, PoolCapture, frozen_array

MAX_VECTOR = 4096        # as probe.MAX_VECTOR: values kept of a non-spatial output
MAX_SAMPLES = 4096       # as probe.MAX_SAMPLES: pre-activation values for scatter overlays
HIST_BINS = 64           # as probe.HIST_BINS


def _finite(v) -> float:
    v = float(v)
    return v if np.isfinite(v) else 0.0


def _finite_np(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    return np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0) if not np.isfinite(a).all() else a


def layer_capture(name: str, kind: str, sample: np.ndarray, max_channels: int,
                  pool: PoolCapture | None = None) -> LayerCapture:
    """One layer's output for the probe sample (no batch axis), reduced as ``Probe._layer_capture`` does."""
    shape = tuple(int(d) for d in sample.shape)
    raw = np.asarray(sample, dtype=np.float32)
    raw = raw[:max_channels] if raw.ndim >= 2 else raw.reshape(-1)[:MAX_VECTOR]
    if raw.ndim == 2:             # (C, L) of a 1-D conv: C maps of height 1
        raw = raw[:, None, :]
    maps = mosaic = ch_levels = vector = None
    channels: tuple[int, ...] = ()
    if raw.ndim == 3:
        maps, bad = sanitize(raw)
        channels = tuple(range(maps.shape[0]))
        mosaic = make_mosaic(maps, channels=channels)
        levels = levels_of(maps)
        ch_levels = channel_levels(maps)
    else:
        vector, bad = sanitize(raw.reshape(-1)[:MAX_VECTOR])
        levels = levels_of(vector)
        pool = None
    return LayerCapture(name=name, kind=kind, shape=shape, maps=maps, channels=channels, vector=vector,
                        mosaic=mosaic, levels=levels, channel_levels=ch_levels, nonfinite=bad, pool=pool)


def activation_stats(name: str, function: str, params, pre: np.ndarray, out: np.ndarray) -> ActivationStats:
    """What flows through one activation, as ``Probe._activation_stats`` computes it."""
    pre = _finite_np(pre)
    out_raw = np.asarray(out, dtype=np.float32)
    out = _finite_np(out_raw)
    n = max(out.size, 1)
    if function == "sigmoid":
        saturated = float(np.count_nonzero((out < 0.01) | (out > 0.99)) / n)
    elif function == "tanh":
        saturated = float(np.count_nonzero(np.abs(out) > 0.99) / n)
    else:
        saturated = 0.0
    lo, hi = (float(pre.min()), float(pre.max())) if pre.size else (0.0, 0.0)
    mean = out.mean(dtype=np.float64) if out.size else 0.0
    std = np.sqrt(np.mean(np.square(out - mean, dtype=np.float64))) if out.size else 0.0
    return ActivationStats(
        name=name, function=function, params=tuple(params),
        pre=histogram(pre, bins=HIST_BINS, lo=lo, hi=hi), pre_min=lo, pre_max=hi,
        out_mean=_finite(mean), out_std=_finite(std),
        frac_dead=float(np.count_nonzero(out_raw == 0) / n), frac_saturated=saturated,
        samples=subsample(pre, MAX_SAMPLES))


def filter_capture(name: str, weight: np.ndarray, *, transposed: bool, groups: int, max_channels: int,
                   initial: np.ndarray | None = None) -> FilterCapture:
    """A conv node's kernels from its initializer (a copy); ``initial`` gives the change since then."""
    n = max(1, int(max_channels))
    w, _ = sanitize(np.asarray(weight, dtype=np.float32)[:n])
    delta = None
    if initial is not None and tuple(np.shape(initial)) == tuple(weight.shape):
        delta, _ = sanitize(w - np.asarray(initial, dtype=np.float32)[:n])
    if transposed:   # ConvTranspose: (C_in, C_out / groups, kh, kw), as nn.ConvTranspose2d holds it
        cin, cout = int(weight.shape[0]), int(weight.shape[1]) * groups
    else:
        cin, cout = int(weight.shape[1]) * groups, int(weight.shape[0])
    return FilterCapture(name=name, weight=w, delta=delta, grad=None, levels=levels_of(w, signed=True),
                         in_channels=cin, out_channels=cout, groups=int(groups))


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax of one sample's outputs, unless they already are (log-)probabilities (as the Inspector does)."""
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
    out, _ = sanitize(p.astype(np.float32))
    return out
