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

import numpy as np
import torch

from .pool_window import PoolGeometry, PoolWindow, window
from .reduce import activation_stats
from .snapshot import ActivationStats, LayerCapture, PoolCapture


@dataclass
class PassTensors:
    """What one armed forward kept, by layer name (one-sample tensors, private clones)."""

    outs: dict[str, torch.Tensor] = field(default_factory=dict)       # (C', H, W) or (F,)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # full per-sample output shape
    pool_in: dict[str, torch.Tensor] = field(default_factory=dict)    # (C', Hi, Wi) input of a pooling layer
    pre: dict[str, torch.Tensor] = field(default_factory=dict)        # activation input (whole sample)
    act_out: dict[str, torch.Tensor] = field(default_factory=dict)    # activation output (whole sample)
    act_fn: dict[str, tuple[str, tuple]] = field(default_factory=dict)  # activation function and params
    pool_geom: dict[str, PoolGeometry] = field(default_factory=dict)  # window of each pooling layer kept


class HostCopy:
    """Tensors to send to the host together (one copy); ``take()`` after the copy gives each back as numpy."""

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

    def take_counted(self, ref) -> tuple[np.ndarray, int]:
        """(values, how many were non-finite) of part ``ref``, or of the leading ``shape`` of a part
        given as ``(part, shape)``."""
        if isinstance(ref, int):
            return self.take(ref), self.nonfinite(ref)
        i, shape = ref
        a = self._offsets[i]
        n = int(np.prod(shape))
        bad = 0 if self._bad is None else int(self._bad[a:a + n].sum())
        return self._host[a:a + n].reshape(shape), bad

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


def reduce_pass(kept: PassTensors, kinds: dict[str, str], order) \
        -> tuple[tuple[LayerCapture, ...], tuple[ActivationStats, ...]]:
    """The records of one armed pass (execution order via ``order(name)``); see the module docstring."""
    any_t = next(iter(kept.outs.values()), None)
    if any_t is None:
        any_t = next(iter(kept.act_out.values()), None)
    flat = HostCopy(any_t.device if any_t is not None else torch.device("cpu"))
    finish = stage_pass(kept, kinds, order, flat)
    flat.copy_to_host()
    return finish()


def stage_pass(kept: PassTensors, kinds: dict[str, str], order, flat: "HostCopy"):
    """Put one pass's tensors into ``flat``; returns ``finish()`` giving the records once ``flat`` is on the host.

    Split in two so that a caller can send other figures (filters, gradient norms) in the same copy.
    """
    layer_names = sorted(kept.outs, key=order)
    act_names = sorted(kept.act_out, key=order)
    pre_idx = [flat.add(kept.pre[n]) for n in act_names]      # consecutive: one slice for all of them
    out_idx_act = [flat.add(kept.act_out[n]) for n in act_names]
    act_of = dict(zip(act_names, out_idx_act))
    # An activation's kept maps are the first channels of its whole output, already on the way:
    # cut them out on the host instead of sending them twice.
    out_idx = {n: ((act_of[n], tuple(kept.outs[n].shape))
                   if n in act_of and kept.outs[n].data_ptr() == kept.act_out[n].data_ptr()
                   else flat.add(kept.outs[n]))
               for n in layer_names}
    pools: dict[str, tuple[PoolWindow, int, int | None]] = {}
    for n in layer_names:
        x, g = kept.pool_in.get(n), kept.pool_geom.get(n)
        if kinds.get(n) != "pool" or x is None or g is None or kept.outs[n].dim() != 3:
            continue
        w = window(g, x, kept.shapes.get(n, tuple(kept.outs[n].shape)))
        if w is not None:
            arg = flat.add(w.argmax) if w.argmax is not None else None
            pools[n] = (w, flat.add(x), arg)
    return lambda: _finish(kept, kinds, flat, layer_names, act_names, out_idx, pools, pre_idx, out_idx_act)


def _finish(kept, kinds, flat, layer_names, act_names, out_idx, pools, pre_idx, out_idx_act):
    layers = []
    for n in layer_names:
        raw, bad = flat.take_counted(out_idx[n])
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
    stats = activation_stats(act_names, [kept.act_fn[n] for n in act_names], flat.span(pre_idx),
                             flat.sizes(pre_idx), flat.span(out_idx_act), flat.sizes(out_idx_act))
    return tuple(layers), stats
