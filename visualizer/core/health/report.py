"""From measured figures to a judged :class:`HealthReport` (numpy only).

Shared by the one-batch measurement (``measure.py``) and the live monitor
(``monitor.py``): both hand over per-layer activation sums and gradient figures, and this
module turns them into rows the same way, so a layer is called "vanishing" for the same
reason on the command line and during training.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Mapping

from .activations import ActivationBatch
from .records import (
    DEFAULT_THRESHOLDS,
    SATURATING_FUNCTIONS,
    ZERO_DEAD_FUNCTIONS,
    HealthReport,
    LayerHealth,
    Thresholds,
    judge,
    relative_gradients,
)


@dataclass(frozen=True)
class GradientFigures:
    """What one optimizer step says about a weighted layer (GradientStats carries the same)."""

    name: str
    grad_norm: float | None           # None: the weight has no gradient (frozen, or unused)
    weight_l2: float
    update_ratio: float


def gradient_figures(stats: Iterable, frozen: Iterable[str] = ()) -> dict[str, GradientFigures]:
    """From ``snapshot.GradientStats`` rows (what the trainer measures per snapshot)."""
    frozen = set(frozen)
    return {g.name: GradientFigures(g.name, None if g.name in frozen else g.weight_norm, g.weight_l2, g.update_ratio)
            for g in stats}


def activation_figures(row: LayerHealth, batch: ActivationBatch | None) -> LayerHealth:
    if batch is None:
        return row
    return replace(row, samples=batch.samples, act_mean=batch.mean, act_std=batch.std,
                   dead_fraction=batch.dead_fraction if row.function in ZERO_DEAD_FUNCTIONS else None,
                   saturated_fraction=batch.saturated_fraction if row.function in SATURATING_FUNCTIONS else None)


def make_rows(rows: Iterable[LayerHealth], activations: Mapping[str, ActivationBatch],
              gradients: Mapping[str, GradientFigures], thresholds: Thresholds = DEFAULT_THRESHOLDS
              ) -> tuple[LayerHealth, ...]:
    """``rows`` (name, kind, function, trainable set) with their figures filled in and judged.

    Figures a row has no measurement for stay as they were (the live monitor keeps the
    last activation figures while new gradient figures arrive, and the other way round).
    """
    per_weight = {}
    for name, g in gradients.items():
        if g.grad_norm is not None and g.weight_l2 > 0:
            per_weight[name] = g.grad_norm / g.weight_l2
    relative = relative_gradients(per_weight)
    out = []
    for row in rows:
        row = activation_figures(row, activations.get(row.name))
        g = gradients.get(row.name)
        if g is not None:
            trainable = row.trainable is not False and g.grad_norm is not None
            row = replace(row, grad_norm=g.grad_norm if trainable else None,
                          grad_relative=relative.get(row.name) if trainable else None,
                          update_ratio=g.update_ratio)
        out.append(judge(row, thresholds))
    return tuple(out)


def report(rows: Iterable[LayerHealth], activations: Mapping[str, ActivationBatch],
           gradients: Mapping[str, GradientFigures], *, source: str, samples: int, step: int | None = None,
           optimizer: str = "", thresholds: Thresholds = DEFAULT_THRESHOLDS,
           notes: tuple[str, ...] = ()) -> HealthReport:
    return HealthReport(layers=make_rows(rows, activations, gradients, thresholds), samples=int(samples),
                        source=source, step=step, optimizer=optimizer, thresholds=thresholds, notes=notes)
