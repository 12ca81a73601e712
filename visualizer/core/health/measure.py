"""Measure a model's health on one batch of its data: activations, gradients, one optimizer step.

One pass over at least 256 samples (in chunks of the training batch size, so BatchNorm
sees batches like training's) in train mode, as training runs it: the probe's batch
observer sums every activation layer's output; one backward pass of cross-entropy gives
the weight gradients (read by ``Inspector.gradient_stats``); one real optimizer step on a
throw-away copy of the parameters gives each layer's update/weight ratio.

Looking changes nothing: every module's train/eval flag, every buffer (BatchNorm running
statistics), every ``.grad`` and the random number generator are put back as they were,
and the parameters themselves are never stepped.
"""
from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import TrainConfig
from ..errors import ModelError
from ..inspector import Inspector
from .activations import ActivationBatch, merge_batches
from .records import DEFAULT_THRESHOLDS, ZERO_DEAD_FUNCTIONS, HealthReport, LayerHealth, Thresholds
from .report import GradientFigures, report

MIN_SAMPLES = 256          # a unit is "dead" only if it is zero for every one of at least this many samples


class Cancelled(Exception):
    """The caller's cancel flag was set; nothing was changed."""


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
    ds = data.split(split)
    n = len(ds)
    if samples < MIN_SAMPLES:
        raise ValueError(f"the health report needs at least {MIN_SAMPLES} samples (a unit is dead only if it "
                         f"is zero for all of them), not {samples}")
    if n < samples:
        raise ValueError(f"the health report asks for {samples} samples but the {split} split of "
                         f"{data.name or 'this data set'} has only {n}")
    pick = np.sort(np.random.default_rng(seed).permutation(n)[:samples])
    x = ds.images[torch.as_tensor(ds.indices[pick])].float().div_(255.0)
    c = x.shape[1]
    # The data's own normalisation, without the training split's augmentation.
    mean = torch.tensor(data.mean, dtype=torch.float32).view(1, c, 1, 1)
    std = torch.tensor(data.std, dtype=torch.float32).view(1, c, 1, 1)
    return (x - mean) / std, torch.as_tensor(ds.labels[pick], dtype=torch.long)


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


# --------------------------------------------------------------------------- looking without touching

@contextlib.contextmanager
def untouched(model: nn.Module):
    """Train mode for the duration; afterwards flags, buffers, grads and the RNG are as before."""
    modes = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    grads = [(p, p.grad) for p in model.parameters()]
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices):
        try:
            for p, _ in grads:
                p.grad = None
            model.train()
            yield model
        finally:
            for m, mode in modes:
                m.training = mode
            with torch.no_grad():
                for b, saved in buffers:
                    b.copy_(saved)
            for p, g in grads:
                p.grad = g


def describe_optimizer(config: TrainConfig) -> str:
    name = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}[config.optimizer]
    extra = f", momentum {config.momentum:g}" if config.optimizer == "sgd" and config.momentum else ""
    clip = f", gradients clipped at {config.grad_clip:g}" if config.grad_clip else ""
    return f"one {name} step (lr {config.lr:g}{extra}{clip}) on a copy of the weights"


def throwaway_step(model: nn.Module, config: TrainConfig) -> dict[int, torch.Tensor]:
    """{id(parameter): its value after one real optimizer step}, the model's own parameters untouched.

    A fresh optimizer (as at the start of training) steps copies of the parameters that have
    a gradient, with copies of those gradients, clipped as training would clip them.
    """
    params = [p for p in model.parameters() if p.requires_grad and p.grad is not None]
    copies = []
    for p in params:
        c = p.detach().clone().requires_grad_(True)
        c.grad = p.grad.detach().clone()
        copies.append(c)
    if not copies:
        return {}
    if config.grad_clip:
        torch.nn.utils.clip_grad_norm_(copies, config.grad_clip)
    if config.optimizer == "sgd":
        opt = torch.optim.SGD(copies, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                              weight_decay=config.weight_decay)
    elif config.optimizer == "adam":
        opt = torch.optim.Adam(copies, lr=config.lr, weight_decay=config.weight_decay)
    else:
        opt = torch.optim.AdamW(copies, lr=config.lr, weight_decay=config.weight_decay)
    opt.step()
    return {id(p): c.detach() for p, c in zip(params, copies)}


# --------------------------------------------------------------------------- the measurement

def measure_health(inspector: Inspector, images: torch.Tensor, labels: torch.Tensor, *,
                   config: TrainConfig | None = None, thresholds: Thresholds = DEFAULT_THRESHOLDS,
                   chunk: int | None = None, progress: Callable[[int, int], None] | None = None,
                   cancel: Callable[[], bool] | None = None) -> HealthReport:
    """The health of every layer of ``inspector.model`` on ``images`` (normalised) and ``labels``.

    ``config``: the optimizer of the throw-away step (default: ``TrainConfig()``, SGD lr 0.01
    momentum 0.9); its ``batch_size`` is the chunk size unless ``chunk`` is given.
    ``progress(done, total)`` is called after each chunk; ``cancel()`` returning True stops
    between chunks with :class:`Cancelled` (the model is left as it was).
    """
    probe = inspector.layer_probe
    if probe is None:
        raise ModelError("this model cannot be hooked (TorchScript), so its layers cannot be measured")
    config = config or TrainConfig()
    n = int(images.shape[0])
    if n < MIN_SAMPLES:
        raise ValueError(f"the health report needs at least {MIN_SAMPLES} samples, got {n}")
    if labels.shape != (n,):
        raise ValueError(f"{n} images but labels of shape {tuple(labels.shape)}")
    model = inspector.model
    p0 = next(model.parameters(), None)
    device = p0.device if p0 is not None else torch.device("cpu")
    dtype = p0.dtype if p0 is not None and p0.is_floating_point() else torch.float32
    chunk = max(2, int(chunk or config.batch_size))   # BatchNorm in train mode needs 2 samples
    rows = health_rows(inspector)
    observer = BatchActivationObserver.for_rows(rows)
    batches: dict[str, ActivationBatch] = {}
    bounds = [(s, min(n, s + chunk)) for s in range(0, n, chunk)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < 2:
        bounds[-2:] = [(bounds[-2][0], n)]   # a last chunk of one sample would break BatchNorm
    with untouched(model):
        for start, stop in bounds:
            if cancel is not None and cancel():
                raise Cancelled("the health check was cancelled")
            x = images[start:stop].to(device=device, dtype=dtype)
            y = labels[start:stop].to(device)
            probe.arm((), want_grads=False, stats=False, batch_observer=observer)
            try:
                with probe.functional():
                    logits = model(x)
                    loss = _loss(logits, y, n)
            finally:
                probe.disarm()
            loss.backward()
            batches = merge_batches(batches, observer.take())
            if progress is not None:
                progress(stop, n)
        stepped = throwaway_step(model, config)
        weights = dict(inspector.weighted_layers)
        prev = {name: stepped[id(m.weight)] for name, m in weights.items() if id(m.weight) in stepped}
        stats = inspector.gradient_stats(prev_params=prev, act_grad_norms={})
    gradients = {}
    for g in stats:
        w = weights[g.name].weight
        has_grad = w.requires_grad and g.name in prev
        gradients[g.name] = GradientFigures(g.name, g.weight_norm if has_grad else None, g.weight_l2,
                                            g.update_ratio if has_grad else 0.0)
    return report(rows, batches, gradients, source="batch", samples=n, optimizer=describe_optimizer(config),
                  thresholds=thresholds)


def _loss(logits, y: torch.Tensor, total: int) -> torch.Tensor:
    """Cross-entropy of the chunk scaled so that the chunks' gradients add up to the whole batch's mean."""
    from ..introspect import first_tensor
    out = first_tensor(logits)
    if out is None or out.dim() != 2:
        shape = None if out is None else tuple(out.shape)
        raise ModelError(f"the model's output has shape {shape}; the health report needs class scores (N, K)")
    k = int(out.shape[1])
    if int(y.max()) >= k:
        raise ValueError(f"the data has labels up to {int(y.max())} but the model has {k} outputs: "
                         "choose the data set the model was trained on")
    return F.cross_entropy(out, y, reduction="sum") / total
