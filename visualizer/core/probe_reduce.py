"""One armed pass's kept tensors → snapshot records, with one host copy and no per-layer numpy loops.

What a snapshot costs is not its size (a LeNet-5 snapshot is a few tens of kilobytes) but
Python work per layer. So everything is batched across layers. On the model's device only
what must be: max-pooling winners, recomputed on the kept one-sample inputs. Then every
kept number travels to the host in one flat float32 tensor (one device synchronisation on
a GPU), is cut into views there, made finite in one pass, and frozen; the statistics of all
activation layers (range, 64-bin histogram, mean, std, dead and saturated fractions) are
segment reductions over their concatenated values on the host.

Presentation (mosaics, display levels) is not computed here: the snapshot's cached
properties derive it where it is shown.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .snapshot import ActivationStats, Histogram, LayerCapture, PoolCapture

HIST_BINS = 64
_MIN_SPAN = 1e-6
# Saturation rules by function (sigmoid: out < 0.01 or > 0.99; tanh: |out| > 0.99).
_SATURATING = {"sigmoid": 1, "tanh": 2}


@dataclass
class PassTensors:
    """What one armed forward kept, by layer name (one-sample tensors, private clones)."""

    outs: dict[str, torch.Tensor] = field(default_factory=dict)       # (C', H, W) or (F,)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # full per-sample output shape
    pool_in: dict[str, torch.Tensor] = field(default_factory=dict)    # (C', Hi, Wi) input of a pooling layer
    pre: dict[str, torch.Tensor] = field(default_factory=dict)        # activation input (whole sample)
    act_out: dict[str, torch.Tensor] = field(default_factory=dict)    # activation output (whole sample)
    act_fn: dict[str, tuple[str, tuple]] = field(default_factory=dict)  # activation function and params


@dataclass(frozen=True)
class _Pool:
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    mode: str
    argmax: torch.Tensor | None


def _as_pair(v) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


def pool_window(m: nn.Module, x: torch.Tensor, out_shape) -> _Pool | None:
    """The window of pooling layer ``m`` on its kept input ``x`` (C, Hi, Wi), with max winners."""
    if x.dim() != 3 or len(out_shape) != 3:
        return None
    hi, wi = int(x.shape[1]), int(x.shape[2])
    ho, wo = int(out_shape[1]), int(out_shape[2])
    argmax = None
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        kernel = _as_pair(m.kernel_size)
        stride = _as_pair(m.stride if m.stride not in (None, 0, ()) else m.kernel_size)
        padding = _as_pair(m.padding)
        mode = "max" if isinstance(m, nn.MaxPool2d) else "avg"
        if mode == "max":
            # Recomputed on the one kept sample: cheaper than asking every training pass for indices.
            _, idx = F.max_pool2d(x[None].float(), m.kernel_size, m.stride, m.padding, m.dilation,
                                  m.ceil_mode, return_indices=True)
            argmax = idx[0]
    elif isinstance(m, (nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)):
        # The effective window (exact when the input divides evenly).
        sh, sw = max(hi // max(ho, 1), 1), max(wi // max(wo, 1), 1)
        kernel = (hi - (ho - 1) * sh, wi - (wo - 1) * sw)
        stride, padding = (sh, sw), (0, 0)
        mode = "max" if isinstance(m, nn.AdaptiveMaxPool2d) else "avg"
        if mode == "max":
            _, idx = F.adaptive_max_pool2d(x[None].float(), (ho, wo), return_indices=True)
            argmax = idx[0]
    else:
        return None
    return _Pool(kernel, stride, padding, mode, argmax)


class _Flat:
    """Tensors to send to the host together; ``take()`` after the copy gives each back as numpy."""

    def __init__(self, device: torch.device):
        self.device = device
        self._parts: list[torch.Tensor] = []
        self._shapes: list[tuple[int, ...]] = []
        self._host: np.ndarray | None = None
        self._offsets: list[int] = []

    def add(self, t: torch.Tensor) -> int:
        flat = t.detach().reshape(-1)
        if flat.dtype != torch.float32 or flat.device != self.device:
            flat = flat.to(device=self.device, dtype=torch.float32)
        self._parts.append(flat)
        self._shapes.append(t.shape)
        return len(self._parts) - 1

    def copy_to_host(self) -> None:
        if not self._parts:
            self._host = np.zeros(0, np.float32)
            return
        flat = torch.cat(self._parts).cpu()          # the one device -> host copy
        host = flat.numpy()
        if host.size and not np.isfinite(host).all():
            self._bad = ~np.isfinite(host)
            host = np.where(self._bad, np.float32(0), host)
        else:
            self._bad = None
        host.setflags(write=False)
        self._host = host
        self._offsets = np.cumsum([0] + [p.numel() for p in self._parts]).tolist()

    def take(self, i: int) -> np.ndarray:
        a, b = self._offsets[i], self._offsets[i + 1]
        return self._host[a:b].reshape(self._shapes[i])

    def span(self, indices: list[int]) -> np.ndarray:
        """The host values of consecutive parts ``indices``, flat, as one view."""
        if not indices:
            return np.zeros(0, np.float32)
        return self._host[self._offsets[indices[0]]:self._offsets[indices[-1] + 1]]

    def sizes(self, indices: list[int]) -> tuple[int, ...]:
        return tuple(self._offsets[i + 1] - self._offsets[i] for i in indices)

    def nonfinite(self, i: int) -> int:
        if self._bad is None:
            return 0
        return int(self._bad[self._offsets[i]:self._offsets[i + 1]].sum())


@lru_cache(maxsize=64)
def _segments(sizes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(segment id of each value, start of each segment, which are non-empty, counts) for concatenated
    segments of ``sizes``: the same for every snapshot of a model, so worked out once."""
    n = np.array(sizes, dtype=np.int64)
    seg = np.repeat(np.arange(len(sizes)), n)
    # reduceat needs every start inside the array: an empty segment borrows one and is zeroed after.
    starts = np.minimum(np.concatenate([[0], np.cumsum(n)[:-1]]), max(int(n.sum()) - 1, 0))
    return seg, starts, n > 0, np.maximum(n, 1)


@lru_cache(maxsize=64)
def _saturation_rule(functions: tuple[str, ...]) -> np.ndarray:
    return np.array([_SATURATING.get(fn, 0) for fn in functions], dtype=np.int8)


def _activation_stats(names: list[str], kept: PassTensors, pre: np.ndarray, pre_sizes: tuple[int, ...],
                      out: np.ndarray, out_sizes: tuple[int, ...]) -> tuple[ActivationStats, ...]:
    """Every activation layer's statistics at once: segment reductions over the concatenated values.

    On the host, after the one copy: for the small tensors of one sample, numpy's
    ``reduceat`` and ``bincount`` cost a quarter of the same segment ops in torch (0.13 vs
    0.52 ms for LeNet-5's four activations), whose per-call overhead dominates.
    """
    if not names:
        return ()
    k = len(names)
    seg_pre, start_pre, has_pre, _ = _segments(pre_sizes)
    seg_out, start_out, has_out, count = _segments(out_sizes)
    zeros = np.zeros(k)
    lo = np.where(has_pre, np.minimum.reduceat(pre, start_pre), 0.0) if pre.size else zeros
    hi = np.where(has_pre, np.maximum.reduceat(pre, start_pre), 0.0) if pre.size else zeros
    # A (nearly) constant input gets a bin range of width 1 around it, as reduce.histogram does.
    narrow = (hi - lo) < _MIN_SPAN
    h_lo = np.where(narrow, lo - 0.5, lo)
    h_hi = np.where(narrow, lo + 0.5, hi)
    scale = HIST_BINS / (h_hi - h_lo)
    idx = ((pre - h_lo[seg_pre]) * scale[seg_pre]).astype(np.int64)
    np.clip(idx, 0, HIST_BINS - 1, out=idx)
    idx += seg_pre * HIST_BINS
    counts = np.bincount(idx, minlength=k * HIST_BINS).reshape(k, HIST_BINS).astype(np.float32)

    def per_layer(values: np.ndarray) -> np.ndarray:
        return np.where(has_out, np.add.reduceat(values, start_out, dtype=np.float64), 0.0) if out.size else zeros

    mean = per_layer(out) / count
    std = np.sqrt(per_layer(np.square(out - mean[seg_out])) / count)
    dead = per_layer(out == 0) / count
    functions = tuple(kept.act_fn[n][0] for n in names)
    rule = _saturation_rule(functions)
    if rule.any():
        r = rule[seg_out]
        sat_mask = np.where(r == 1, (out < 0.01) | (out > 0.99), (r == 2) & (np.abs(out) > 0.99))
        saturated = per_layer(sat_mask) / count
    else:
        saturated = zeros
    edges_all = (h_lo[:, None] + (h_hi - h_lo)[:, None] * np.linspace(0.0, 1.0, HIST_BINS + 1)).astype(np.float32)
    counts.setflags(write=False)
    edges_all.setflags(write=False)
    figures = np.stack([lo, hi, mean, std, dead, saturated], 1).tolist()
    return tuple(
        ActivationStats(name=n, function=functions[i], params=tuple(kept.act_fn[n][1]),
                        pre=Histogram(counts=counts[i], edges=edges_all[i]), pre_min=f[0], pre_max=f[1],
                        out_mean=f[2], out_std=f[3], frac_dead=f[4], frac_saturated=f[5])
        for i, (n, f) in enumerate(zip(names, figures)))


def reduce_pass(kept: PassTensors, kinds: dict[str, str], modules: dict[str, nn.Module], order) \
        -> tuple[tuple[LayerCapture, ...], tuple[ActivationStats, ...]]:
    """The records of one armed pass (execution order via ``order(name)``); see the module docstring."""
    layer_names = sorted(kept.outs, key=order)
    act_names = sorted(kept.act_out, key=order)
    any_t = next(iter(kept.outs.values()), None)
    if any_t is None:
        any_t = next(iter(kept.act_out.values()), None)
    device = any_t.device if any_t is not None else torch.device("cpu")
    flat = _Flat(device)
    out_idx = {n: flat.add(kept.outs[n]) for n in layer_names}
    pools: dict[str, tuple[_Pool, int, int | None]] = {}
    for n in layer_names:
        x, m = kept.pool_in.get(n), modules.get(n)
        if kinds.get(n) != "pool" or x is None or m is None or kept.outs[n].dim() != 3:
            continue
        window = pool_window(m, x, kept.shapes.get(n, tuple(kept.outs[n].shape)))
        if window is not None:
            arg = flat.add(window.argmax) if window.argmax is not None else None
            pools[n] = (window, flat.add(x), arg)
    pre_idx = [flat.add(kept.pre[n]) for n in act_names]      # consecutive: one slice for all of them
    out_idx_act = [flat.add(kept.act_out[n]) for n in act_names]
    flat.copy_to_host()

    layers = []
    for n in layer_names:
        raw = flat.take(out_idx[n])
        bad = flat.nonfinite(out_idx[n])
        shape = kept.shapes.get(n, tuple(raw.shape))
        maps = vector = None
        channels: tuple[int, ...] = ()
        if raw.ndim == 2:             # (C, L) of a 1-D conv: show as C maps of height 1
            raw = raw[:, None, :]
        if raw.ndim == 3:
            maps, channels = raw, tuple(range(raw.shape[0]))
        else:
            vector = raw.reshape(-1)
        pool = None
        if n in pools:
            w, xi, ai = pools[n]
            argmax = None
            if ai is not None:
                argmax = flat.take(ai).astype(np.int32)
                argmax.setflags(write=False)
            pool = PoolCapture(kernel=w.kernel, stride=w.stride, padding=w.padding, mode=w.mode,
                               input_maps=flat.take(xi), argmax=argmax)
        layers.append(LayerCapture(name=n, kind=kinds.get(n, "other"), shape=shape, maps=maps, channels=channels,
                                   vector=vector, nonfinite=bad, pool=pool))
    stats = _activation_stats(act_names, kept, flat.span(pre_idx), flat.sizes(pre_idx),
                              flat.span(out_idx_act), flat.sizes(out_idx_act))
    return tuple(layers), stats
