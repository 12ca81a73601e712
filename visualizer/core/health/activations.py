"""What a batch did in one layer's output, as sums that add up across batches (numpy only).

The measuring side reduces each layer's whole-batch output, in torch, to a few numbers
and one boolean per unit (did it fire at all?); :class:`ActivationBatch` holds them.
Two batches merge by adding the sums and OR-ing the masks, so the live monitor can
collect the 256 samples a dead-unit verdict needs from several small training batches,
and a chunked measurement gives the same figures as one big batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ActivationBatch:
    """Sums over ``samples`` samples of one layer's output."""

    samples: int
    count: int                        # values summed (samples x units x positions)
    total: float                      # sum of the values
    total_sq: float                   # sum of their squares
    saturated: int | None = None      # values in the flat tails (sigmoid/tanh), else None
    alive: np.ndarray | None = None   # (units,) bool: nonzero for some sample and position (ReLU family)

    def merge(self, other: ActivationBatch) -> ActivationBatch:
        alive = self.alive
        if alive is None or other.alive is None or alive.shape != other.alive.shape:
            alive = other.alive if alive is None else alive
        else:
            alive = alive | other.alive
        sat = None if self.saturated is None or other.saturated is None else self.saturated + other.saturated
        return ActivationBatch(samples=self.samples + other.samples, count=self.count + other.count,
                               total=self.total + other.total, total_sq=self.total_sq + other.total_sq,
                               saturated=sat, alive=alive)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    @property
    def std(self) -> float:
        if not self.count:
            return 0.0
        m = self.total / self.count
        if not (math.isfinite(m) and math.isfinite(self.total_sq)):
            return float("inf")
        return math.sqrt(max(self.total_sq / self.count - m * m, 0.0))

    @property
    def dead_fraction(self) -> float | None:
        if self.alive is None or self.alive.size == 0:
            return None
        return float(1.0 - np.count_nonzero(self.alive) / self.alive.size)

    @property
    def saturated_fraction(self) -> float | None:
        if self.saturated is None or not self.count:
            return None
        return float(self.saturated / self.count)


def merge_batches(a: dict[str, ActivationBatch], b: dict[str, ActivationBatch]) -> dict[str, ActivationBatch]:
    """Layer-wise merge of two {layer: batch} maps (layers in only one of them are kept as they are)."""
    out = dict(a)
    for name, batch in b.items():
        out[name] = out[name].merge(batch) if name in out else batch
    return out
