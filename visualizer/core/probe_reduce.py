"""One armed pass's kept tensors → snapshot records, with one host copy and no per-layer numpy loops.

What a snapshot costs is not its size (a LeNet-5 snapshot is a few tens of kilobytes) but
Python work per layer. So everything is batched across layers. On the model's device only
what must be: max-pooling winners, recomputed on the kept one-sample inputs. Then every
kept number travels to the host in flat float32 tensors (one device synchronisation on a
GPU), made finite in one pass and frozen, and leaves the trainer as those arrays plus their
layout (packed_pass.py): the records are cut out of them, and the statistics of all
activation layers (range, 64-bin histogram, mean, std, dead and saturated fractions)
computed as segment reductions over their concatenated values, where the snapshot is
first read, not in the training thread.

Presentation (mosaics, display levels) is not computed here: the snapshot's cached
properties derive it where it is shown.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .packed_pass import HostValues, PackedPass, PassLayout
from .pool_window import PoolGeometry, window
from .snapshot import ActivationStats, LayerCapture


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
    """Tensors to send to the host together; ``take()`` after the copy gives each back as numpy.

    Two host arrays: ``values``, which the snapshot keeps, and ``scratch``, for parts needed only
    until the records are built (the activations' inputs, read once for their statistics): a
    snapshot kept in the window would otherwise hold them as long as itself (a quarter more
    memory on ResNet-18). On a GPU both are cut on the device first, so the first copy is the one
    that waits for the device and the second has nothing left to wait for.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self._parts: dict[bool, list[torch.Tensor]] = {False: [], True: []}
        self._shapes: dict[bool, list[tuple[int, ...]]] = {False: [], True: []}
        self.values: HostValues | None = None    # after copy_to_host
        self.scratch: HostValues | None = None   # after copy_to_host

    def add(self, t: torch.Tensor, *, scratch: bool = False) -> int:
        flat = t.detach().reshape(-1)
        if flat.dtype != torch.float32 or flat.device != self.device:
            flat = flat.to(device=self.device, dtype=torch.float32)
        self._parts[scratch].append(flat)
        self._shapes[scratch].append(tuple(t.shape))
        return len(self._parts[scratch]) - 1

    @property
    def count(self) -> int:
        """Parts added so far (the next part's number)."""
        return len(self._parts[False])

    @property
    def scratch_count(self) -> int:
        """Scratch parts added so far (the next one's number)."""
        return len(self._parts[True])

    def copy_to_host(self) -> None:
        joined = {k: torch.cat(parts) if parts else None for k, parts in self._parts.items()}
        host = {k: t.cpu().numpy() if t is not None else np.zeros(0, np.float32) for k, t in joined.items()}
        self._parts = {False: [], True: []}
        self.values = HostValues.arrived(host[False], self._shapes[False])
        self.scratch = HostValues.arrived(host[True], self._shapes[True])

    def take(self, i: int) -> np.ndarray:
        return self.values.take(i)


def reduce_pass(kept: PassTensors, kinds: dict[str, str], order) \
        -> tuple[tuple[LayerCapture, ...], tuple[ActivationStats, ...]]:
    """The records of one armed pass (execution order via ``order(name)``); see the module docstring."""
    any_t = next(iter(kept.outs.values()), None)
    if any_t is None:
        any_t = next(iter(kept.act_out.values()), None)
    flat = HostCopy(any_t.device if any_t is not None else torch.device("cpu"))
    finish = stage_pass(kept, kinds, order, flat)
    flat.copy_to_host()
    return finish().records()


def stage_pass(kept: PassTensors, kinds: dict[str, str], order, flat: HostCopy):
    """Put one pass's tensors into ``flat``; returns ``finish()`` giving the pass as a
    :class:`~.packed_pass.PackedPass` once ``flat`` is on the host (its records are built when read).

    Split in two so that a caller can send other figures (filters, gradient norms) in the same copy.
    """
    first, scratch_first = flat.count, flat.scratch_count
    layer_names = sorted(kept.outs, key=order)
    act_names = sorted(kept.act_out, key=order)
    # consecutive: one slice for all of them, in the scratch array (dropped once the statistics are built)
    pre_idx = [flat.add(kept.pre[n], scratch=True) - scratch_first for n in act_names]
    out_idx_act = [flat.add(kept.act_out[n]) - first for n in act_names]
    act_of = dict(zip(act_names, out_idx_act))
    # An activation's kept maps are the first channels of its whole output, already on the way:
    # cut them out on the host instead of sending them twice.
    outputs = {n: ((act_of[n], tuple(kept.outs[n].shape))
                   if n in act_of and kept.outs[n].data_ptr() == kept.act_out[n].data_ptr()
                   else flat.add(kept.outs[n]) - first)
               for n in layer_names}
    pools: dict[str, tuple] = {}
    for n in layer_names:
        x, g = kept.pool_in.get(n), kept.pool_geom.get(n)
        if kinds.get(n) != "pool" or x is None or g is None or kept.outs[n].dim() != 3:
            continue
        w = window(g, x, kept.shapes.get(n, tuple(kept.outs[n].shape)))
        if w is not None:
            arg = flat.add(w.argmax) - first if w.argmax is not None else None
            pools[n] = (w.kernel, w.stride, w.padding, w.mode, flat.add(x) - first, arg)
    layout = PassLayout(layer_names=tuple(layer_names), kinds={n: kinds.get(n, "other") for n in layer_names},
                        shapes={n: kept.shapes[n] for n in layer_names if n in kept.shapes}, outputs=outputs,
                        pools=pools, act_names=tuple(act_names),
                        act_functions=tuple(kept.act_fn[n] for n in act_names),
                        act_inputs=tuple(pre_idx), act_outputs=tuple(out_idx_act))
    end, scratch_end = flat.count, flat.scratch_count
    return lambda: PackedPass(layout, flat.values.parts(first, end), flat.scratch.parts(scratch_first, scratch_end))
