"""Measure a model's health on one batch of its data: activations, gradients, one optimizer step.

One looking-only backward pass (``core/gradient_pass.py``: train mode, chunks of the
training batch size, a throw-away optimizer step for the update ratios, nothing changed
afterwards) over at least 256 samples, with the probe's batch observer summing every
activation layer's output on the way.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..config import TrainConfig
from ..gradient_pass import batch_gradients, data_batch
from ..inspector import Inspector
from .activations import ActivationBatch, merge_batches
from .records import DEFAULT_THRESHOLDS, ZERO_DEAD_FUNCTIONS, HealthReport, LayerHealth, Thresholds
from .report import GradientFigures, report

MIN_SAMPLES = 256          # a unit is "dead" only if it is zero for every one of at least this many samples


# --------------------------------------------------------------------------- rows and batches

def health_rows(inspector: Inspector) -> tuple[LayerHealth, ...]:
    """Empty rows (name, kind, function, trainable) for every weighted and activation layer, in order."""
    weighted = dict(inspector.weighted_layers)
    rows = []
    for layer in inspector.info.leaves():
        if layer.calls == 0:
            continue   # never runs in forward (an auxiliary head): nothing to measure
        if layer.name in weighted:
            w = weighted[layer.name].weight
            rows.append(LayerHealth(name=layer.name, kind=layer.kind, trainable=bool(w.requires_grad)))
        elif layer.kind == "activation":
            rows.append(LayerHealth(name=layer.name, kind="activation", function=layer.activation))
    return tuple(rows)


def health_batch(data, samples: int = MIN_SAMPLES, *, seed: int = 0, split: str = "train"
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random batch of ``samples`` normalised, un-augmented images of ``data`` and their labels."""
    if samples < MIN_SAMPLES:
        raise ValueError(f"the health report needs at least {MIN_SAMPLES} samples (a unit is dead only if it "
                         f"is zero for all of them), not {samples}")
    return data_batch(data, samples, seed=seed, split=split)


# --------------------------------------------------------------------------- the batch observer

class BatchActivationObserver:
    """A probe ``batch_observer``: sums each wanted layer's whole-batch output on the device.

    ``wanted``: {layer name: activation function or None}. Per call, a few reductions of
    the batch (no copy of it is kept); ``take()`` makes the one host copy per layer and
    starts over. See the README for what it costs a training step.
    """

    def __init__(self, wanted: dict[str, str | None]):
        self.wanted = dict(wanted)
        self._sums: dict[str, list] = {}

    @classmethod
    def for_rows(cls, rows) -> BatchActivationObserver:
        return cls({r.name: r.function for r in rows})

    def __call__(self, name: str, kind: str, function: str | None, t: torch.Tensor) -> None:
        if name not in self.wanted or t.dim() == 0 or not t.is_floating_point():
            return
        fn = self.wanted[name] or function
        with torch.no_grad():
            v = t.detach()
            # Two passes, not torch.var_mean: its CPU kernel took longer than LeNet's convolutions.
            # Centred before squaring, so a near-constant output keeps its tiny variance.
            flat = v.reshape(-1).float()
            mean = flat.mean()
            centred = flat - mean
            sums = torch.stack([mean.double(), (torch.dot(centred, centred) / max(flat.numel(), 1)).double()])
            sat = None
            if fn == "sigmoid":
                sat = ((v < 0.01) | (v > 0.99)).sum()
            elif fn == "tanh":
                sat = (v.abs() > 0.99).sum()
            alive = None
            if fn in ZERO_DEAD_FUNCTIONS and v.dim() >= 2:
                # A unit is a channel (conv) or a feature (linear): it shares its weights across
                # positions, so it stops learning only if it is zero at all of them, for every sample.
                dims = (0, *range(2, v.dim()))
                alive = v.amax(dim=dims) > 0
            self._sums.setdefault(name, []).append((int(v.shape[0]), int(v.numel()), sums, sat, alive))

    def take(self) -> dict[str, ActivationBatch]:
        """The sums since the last ``take()``, as numpy records; the observer starts empty again."""
        out = {}
        for name, parts in self._sums.items():
            for samples, count, moments, sat, alive in parts:
                mean, var = (float(m) for m in moments.cpu())
                batch = ActivationBatch(samples=samples, count=count, total=mean * count,
                                        total_sq=(var + mean * mean) * count,
                                        saturated=None if sat is None else int(sat),
                                        alive=None if alive is None else alive.cpu().numpy().copy())
                out[name] = out[name].merge(batch) if name in out else batch
        self._sums = {}
        return out


# --------------------------------------------------------------------------- the measurement

def describe_optimizer(config: TrainConfig) -> str:
    name = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}[config.optimizer]
    extra = f", momentum {config.momentum:g}" if config.optimizer == "sgd" and config.momentum else ""
    clip = f", gradients clipped at {config.grad_clip:g}" if config.grad_clip else ""
    return f"one {name} step (lr {config.lr:g}{extra}{clip}) on a copy of the weights"


def measure_health(inspector: Inspector, images: torch.Tensor, labels: torch.Tensor, *,
                   config: TrainConfig | None = None, thresholds: Thresholds = DEFAULT_THRESHOLDS,
                   chunk: int | None = None, progress: Callable[[int, int], None] | None = None,
                   cancel: Callable[[], bool] | None = None) -> HealthReport:
    """The health of every layer of ``inspector.model`` on ``images`` (normalised) and ``labels``.

    ``config``: the optimizer of the throw-away step (default: ``TrainConfig()``, SGD lr 0.01
    momentum 0.9); its ``batch_size`` is the chunk size unless ``chunk`` is given.
    ``progress(done, total)`` is called after each chunk; ``cancel()`` returning True stops
    between chunks with ``gradient_pass.Cancelled`` (the model is left as it was).
    """
    config = config or TrainConfig()
    n = int(images.shape[0])
    if n < MIN_SAMPLES:
        raise ValueError(f"the health report needs at least {MIN_SAMPLES} samples, got {n}")
    rows = health_rows(inspector)
    observer = BatchActivationObserver.for_rows(rows)
    batches: dict[str, ActivationBatch] = {}

    def after_chunk(done: int, total: int) -> None:
        nonlocal batches
        batches = merge_batches(batches, observer.take())
        if progress is not None:
            progress(done, total)

    measured = batch_gradients(inspector, images, labels, config=config, chunk=chunk, batch_observer=observer,
                               after_chunk=after_chunk, cancel=cancel)
    weights = dict(inspector.weighted_layers)
    gradients = {}
    for g in measured.stats:
        has_grad = weights[g.name].weight.requires_grad and g.name in measured.stepped
        gradients[g.name] = GradientFigures(g.name, g.weight_norm if has_grad else None, g.weight_l2,
                                            g.update_ratio if has_grad else 0.0)
    return report(rows, batches, gradients, source="batch", samples=n, optimizer=describe_optimizer(config),
                  thresholds=thresholds)
