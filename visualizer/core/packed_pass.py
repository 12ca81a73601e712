"""One probe pass as it leaves the trainer: the host values in flat arrays, and their layout.

A probe pass's records (a :class:`~.snapshot.LayerCapture` per kept layer, the
:class:`~.snapshot.ActivationStats` of every activation) are cheap to send but not to build:
a LeNet-5 pass has a dozen layers, and building their records (views into the values,
finiteness counts, the activation histograms and moments) is a third of what a snapshot costs
the training thread. So the trainer sends the values as they came off the device, with
a layout that says where each layer's values are, and the records are built where the snapshot
is first read: in the window's process (its reader thread), or a recorder's writer thread.
The activations' inputs, needed only for their statistics, come in an array of their own that
is dropped once the statistics are built.

numpy only, no torch: this is what the window's process unpickles.
"""
from __future__ import annotations

import itertools
import math
import threading
from dataclasses import dataclass

import numpy as np

from .reduce import activation_stats
from .snapshot import LayerCapture, PoolCapture


class HostValues:
    """Parts copied to the host together: one read-only float32 array, cut back into its parts.

    NaN and inf were replaced by 0 on arrival; ``nonfinite`` counts them per part.
    """

    def __init__(self, host: np.ndarray, shapes: list[tuple[int, ...]], bad: np.ndarray | None):
        self.host = host
        self.shapes = shapes
        self.bad = bad
        self.offsets = list(itertools.accumulate((math.prod(s) for s in shapes), initial=0))

    @classmethod
    def arrived(cls, host: np.ndarray, shapes: list[tuple[int, ...]]) -> "HostValues":
        """Values as copied from the device: the non-finite ones are replaced and counted; read-only after."""
        bad = None
        if host.size and not np.isfinite(host).all():
            bad = ~np.isfinite(host)
            host = np.where(bad, np.float32(0), host)
        host.setflags(write=False)
        return cls(host, shapes, bad)

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.host.setflags(write=False)   # unpickled arrays are writeable; the records are views of this one

    def take(self, i: int) -> np.ndarray:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.host[a:b].reshape(self.shapes[i])

    def take_counted(self, ref) -> tuple[np.ndarray, int]:
        """(values, how many were non-finite) of part ``ref``, or of the leading ``shape`` of a part
        given as ``(part, shape)``."""
        if isinstance(ref, int):
            return self.take(ref), self.nonfinite(ref)
        i, shape = ref
        a = self.offsets[i]
        n = math.prod(shape)
        bad = 0 if self.bad is None else int(self.bad[a:a + n].sum())
        return self.host[a:a + n].reshape(shape), bad

    def span(self, indices: list[int]) -> np.ndarray:
        """The values of consecutive parts ``indices``, flat, as one view."""
        if not indices:
            return np.zeros(0, np.float32)
        return self.host[self.offsets[indices[0]]:self.offsets[indices[-1] + 1]]

    def sizes(self, indices: list[int]) -> tuple[int, ...]:
        return tuple(self.offsets[i + 1] - self.offsets[i] for i in indices)

    def nonfinite(self, i: int) -> int:
        if self.bad is None:
            return 0
        return int(self.bad[self.offsets[i]:self.offsets[i + 1]].sum())

    def parts(self, first: int, end: int) -> "HostValues":
        """Parts ``first`` .. ``end - 1`` alone, renumbered from 0 (views, no copy; pickled, only their values
        travel)."""
        a, b = self.offsets[first], self.offsets[end]
        out = HostValues.__new__(HostValues)
        out.host, out.shapes = self.host[a:b], self.shapes[first:end]
        out.bad = None if self.bad is None else self.bad[a:b]
        out.offsets = [o - a for o in self.offsets[first:end + 1]]
        return out


@dataclass(frozen=True)
class PassLayout:
    """Where each record's values are in a pass's :class:`HostValues` (part numbers), and what else it needs."""

    layer_names: tuple[str, ...]                   # kept layers, execution order
    kinds: dict[str, str]
    shapes: dict[str, tuple[int, ...]]             # full per-sample output shapes
    outputs: dict[str, object]                     # layer -> part, or (part, leading shape) within one
    pools: dict[str, tuple]                        # layer -> (kernel, stride, padding, mode, input part, argmax part)
    act_names: tuple[str, ...]                     # activation layers, execution order
    act_functions: tuple[tuple[str, tuple], ...]   # (function, params) of each
    act_inputs: tuple[int, ...]                    # consecutive parts of the pass's inputs (not its values)
    act_outputs: tuple[int, ...]                   # consecutive parts


class PackedPass:
    """A pass's values and layout; :meth:`records` builds the records once (thread-safe), on first read.

    ``inputs``: the activations' inputs, needed only for their statistics: dropped once those are
    built (the records keep views of ``values``, so what stays is what the snapshot shows).
    """

    def __init__(self, layout: PassLayout, values: HostValues, inputs: HostValues | None,
                 stats: tuple | None = None):
        self.layout = layout
        self.values = values
        self.inputs = inputs
        self._stats = stats
        self._lock = threading.Lock()
        self._records = None

    def records(self):
        """(LayerCaptures, ActivationStats) of the pass."""
        with self._lock:
            if self._records is None:
                self._records = _build(self.layout, self.values, self.inputs, self._stats)
                self.inputs = None
            return self._records

    def __getstate__(self):
        # The values and layout travel; the records are built again where they arrive. Once built
        # here the inputs are gone, so the statistics travel instead.
        with self._lock:
            stats = self._records[1] if self._records is not None else self._stats
            return {"layout": self.layout, "values": self.values, "inputs": self.inputs, "stats": stats}

    def __setstate__(self, state):
        for a in state["stats"] or ():
            # unpickled arrays are writeable; built ones are not (reduce.activation_stats)
            a.pre.counts.setflags(write=False)
            a.pre.edges.setflags(write=False)
        self.__init__(state["layout"], state["values"], state["inputs"], state["stats"])


class Unbuilt:
    """One of a :class:`PackedPass`'s two record tuples, not built yet (``part`` 0: layers, 1: activations)."""

    def __init__(self, packed: PackedPass, part: int):
        self.packed = packed
        self.part = part

    def build(self):
        return self.packed.records()[self.part]


class Later:
    """``func(*args)``, computed when first read (``func`` a module-level function, so that it pickles)."""

    def __init__(self, func, *args):
        self.func = func
        self.args = args

    def build(self):
        return self.func(*self.args)


def _build(layout: PassLayout, values: HostValues, inputs: HostValues | None, stats: tuple | None):
    layers = []
    for n in layout.layer_names:
        raw, bad = values.take_counted(layout.outputs[n])
        shape = layout.shapes.get(n, tuple(raw.shape))
        maps = vector = None
        channels: tuple[int, ...] = ()
        if raw.ndim == 2:             # (C, L) of a 1-D conv: show as C maps of height 1
            raw = raw[:, None, :]
        if raw.ndim == 3:
            maps, channels = raw, tuple(range(raw.shape[0]))
        else:
            vector = raw.reshape(-1)
        pool = None
        if n in layout.pools:
            kernel, stride, padding, mode, xi, ai = layout.pools[n]
            argmax = None
            if ai is not None:
                argmax = values.take(ai).astype(np.int32)
                argmax.setflags(write=False)
            pool = PoolCapture(kernel=kernel, stride=stride, padding=padding, mode=mode,
                               input_maps=values.take(xi), argmax=argmax)
        layers.append(LayerCapture(name=n, kind=layout.kinds.get(n, "other"), shape=shape, maps=maps,
                                   channels=channels, vector=vector, nonfinite=bad, pool=pool))
    if stats is None:
        pre, out = list(layout.act_inputs), list(layout.act_outputs)
        stats = activation_stats(list(layout.act_names), list(layout.act_functions), inputs.span(pre),
                                 inputs.sizes(pre), values.span(out), values.sizes(out))
    return tuple(layers), stats
