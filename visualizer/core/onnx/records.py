"""Snapshot records from numpy tensors: the same LayerCapture / ActivationStats / FilterCapture the
PyTorch path makes (``probe_reduce.py``, ``inspector.py``), with the same ``reduce`` helpers, so
every view draws an ONNX model's pass without knowing where it came from.
"""
from __future__ import annotations

import numpy as np

from ..reduce import activation_stats as batched_activation_stats, sanitize
from ..snapshot import ActivationStats, FilterCapture, LayerCapture, PoolCapture

MAX_VECTOR = 4096        # as probe.MAX_VECTOR: values kept of a non-spatial output


def layer_capture(name: str, kind: str, sample: np.ndarray, max_channels: int,
                  pool: PoolCapture | None = None) -> LayerCapture:
    """One layer's output for the probe sample (no batch axis), kept as the probe keeps it."""
    shape = tuple(int(d) for d in sample.shape)
    raw = np.asarray(sample, dtype=np.float32)
    raw = raw[:max_channels] if raw.ndim >= 2 else raw.reshape(-1)[:MAX_VECTOR]
    if raw.ndim == 2:             # (C, L) of a 1-D conv: C maps of height 1
        raw = raw[:, None, :]
    maps = vector = None
    channels: tuple[int, ...] = ()
    if raw.ndim == 3:
        maps, bad = sanitize(raw)
        channels = tuple(range(maps.shape[0]))
    else:
        vector, bad = sanitize(raw.reshape(-1)[:MAX_VECTOR])
        pool = None
    return LayerCapture(name=name, kind=kind, shape=shape, maps=maps, channels=channels, vector=vector,
                        nonfinite=bad, pool=pool)


def activation_stats(name: str, function: str, params, pre: np.ndarray, out: np.ndarray) -> ActivationStats:
    """What flows through one activation, computed as the PyTorch path computes it."""
    pre = np.nan_to_num(np.asarray(pre, dtype=np.float32).reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)
    out = np.nan_to_num(np.asarray(out, dtype=np.float32).reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)
    (stats,) = batched_activation_stats([name], [(function, tuple(params))], pre, (pre.size,), out, (out.size,))
    return stats


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
    return FilterCapture(name=name, weight=w, delta=delta, grad=None,
                         in_channels=cin, out_channels=cout, groups=int(groups))
