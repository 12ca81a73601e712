"""B − A: the difference of two probe snapshots of the same model, for the compare mode.

Feature maps and filter kernels are subtracted where both snapshots have the same layer
with the same shape (two steps of one run, two runs or two checkpoints of one model); the
rest (prediction, activations, input) is B's. A difference is signed, so the views draw it
with their diverging colour map and symmetric levels, white where nothing changed.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from visualizer.core.snapshot import LayerCapture, ProbeSnapshot, frozen_array

COMPARE_MODES = ("B", "A", "B - A")


def _minus(b: np.ndarray | None, a: np.ndarray | None) -> np.ndarray | None:
    if b is None or a is None or b.shape != a.shape:
        return None
    return frozen_array(np.asarray(b, np.float32) - np.asarray(a, np.float32))


def _layer_difference(b: LayerCapture, a: LayerCapture | None) -> LayerCapture:
    if a is None:
        return dataclasses.replace(b, maps=None if b.maps is None else frozen_array(np.zeros_like(b.maps)),
                                   vector=None if b.vector is None else frozen_array(np.zeros_like(b.vector)),
                                   pool=None)
    return dataclasses.replace(b, maps=_minus(b.maps, a.maps) if b.maps is not None else None,
                               vector=_minus(b.vector, a.vector) if b.vector is not None else None, pool=None)


def difference(b: ProbeSnapshot, a: ProbeSnapshot) -> ProbeSnapshot:
    """``b`` with its maps and kernels replaced by ``b - a`` (zero where ``a`` has no such layer)."""
    a_layers = {c.name: c for c in a.layers}
    a_filters = {f.name: f for f in a.filters}
    layers = tuple(_layer_difference(c, a_layers.get(c.name)) for c in b.layers)
    filters = []
    for f in b.filters:
        other = a_filters.get(f.name)
        diff = _minus(f.weight, other.weight) if other is not None else None
        filters.append(dataclasses.replace(f, weight=diff if diff is not None else frozen_array(np.zeros_like(f.weight)),
                                           delta=None, grad=None))
    return dataclasses.replace(b, layers=layers, filters=tuple(filters))
