"""One backward pass that only looks: the gradients a model has on a batch, with no training.

The health report and ``cnn-visualizer render`` of a model nobody trained both need what
one training step would see: the batch forward in train mode (in chunks of the training
batch size, so BatchNorm sees batches like training's; the chunks' gradients add up to the
whole batch's mean), one backward pass of cross-entropy (the weight gradients, read by
``Inspector.gradient_stats``), and one real optimizer step on a throw-away copy of the
parameters (each layer's update/weight ratio).

Looking changes nothing: every module's train/eval flag, every buffer (BatchNorm running
statistics), every ``.grad`` and the random number generator are put back as they were,
and the parameters themselves are never stepped.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import TrainConfig
from .errors import ModelError
from .inspector import Inspector
from .introspect import first_tensor
from .snapshot import GradientStats


class Cancelled(Exception):
    """The caller's cancel flag was set; nothing was changed."""


@dataclass(frozen=True)
class BatchGradients:
    stats: tuple[GradientStats, ...]   # every weighted layer, input to output (update ratio of the throw-away step)
    stepped: frozenset[str]            # layers whose weight that step moved (trainable, with a gradient)
    loss: float                        # mean cross-entropy of the batch
    accuracy: float                    # fraction of the batch classified right


def data_batch(data, samples: int, *, seed: int = 0, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random batch of ``samples`` normalised, un-augmented images of ``data`` and their labels."""
    ds = data.split(split)
    n = len(ds)
    if n < samples:
        raise ValueError(f"asked for {samples} samples but the {split} split of "
                         f"{data.name or 'this data set'} has only {n}")
    pick = np.sort(np.random.default_rng(seed).permutation(n)[:samples])
    x = ds.images[torch.as_tensor(ds.indices[pick])].float().div_(255.0)
    c = x.shape[1]
    # The data's own normalisation, without the training split's augmentation.
    mean = torch.tensor(data.mean, dtype=torch.float32).view(1, c, 1, 1)
    std = torch.tensor(data.std, dtype=torch.float32).view(1, c, 1, 1)
    return (x - mean) / std, torch.as_tensor(ds.labels[pick], dtype=torch.long)


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


def batch_gradients(inspector: Inspector, images: torch.Tensor, labels: torch.Tensor, *,
                    config: TrainConfig | None = None, chunk: int | None = None, batch_observer=None,
                    after_chunk: Callable[[int, int], None] | None = None,
                    cancel: Callable[[], bool] | None = None) -> BatchGradients:
    """The gradients of ``inspector.model`` on ``images`` (normalised) and ``labels``; see the module docstring.

    ``config``: the optimizer of the throw-away step (default ``TrainConfig()``); its
    ``batch_size`` is the chunk size unless ``chunk`` is given. ``batch_observer``: handed to
    the probe for every chunk (the health report's activation sums); ``after_chunk(done, total)``
    runs after each chunk; ``cancel()`` returning True stops between chunks with
    :class:`Cancelled` (the model is left as it was).
    """
    probe = inspector.layer_probe
    if probe is None:
        raise ModelError("this model cannot be hooked (TorchScript), so its layers cannot be measured")
    config = config or TrainConfig()
    n = int(images.shape[0])
    if n == 0:
        raise ValueError("the batch is empty")
    if labels.shape != (n,):
        raise ValueError(f"{n} images but labels of shape {tuple(labels.shape)}")
    model = inspector.model
    p0 = next(model.parameters(), None)
    device = p0.device if p0 is not None else torch.device("cpu")
    dtype = p0.dtype if p0 is not None and p0.is_floating_point() else torch.float32
    chunk = max(2, int(chunk or config.batch_size))   # BatchNorm in train mode needs 2 samples
    bounds = [(s, min(n, s + chunk)) for s in range(0, n, chunk)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < 2:
        bounds[-2:] = [(bounds[-2][0], n)]   # a last chunk of one sample would break BatchNorm
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    with untouched(model):
        for start, stop in bounds:
            if cancel is not None and cancel():
                raise Cancelled("cancelled")
            x = images[start:stop].to(device=device, dtype=dtype)
            y = labels[start:stop].to(device)
            probe.arm((), want_grads=False, stats=False, batch_observer=batch_observer)
            try:
                with probe.functional():
                    out = model(x)
            finally:
                probe.disarm()
            scores = class_scores_of(out, y)
            loss = F.cross_entropy(scores, y, reduction="sum") / n
            loss.backward()
            total_loss += loss.detach()
            correct += (scores.detach().argmax(1) == y).sum()
            if after_chunk is not None:
                after_chunk(stop, n)
        stepped = throwaway_step(model, config)
        weights = dict(inspector.weighted_layers)
        prev = {name: stepped[id(m.weight)] for name, m in weights.items() if id(m.weight) in stepped}
        stats = inspector.gradient_stats(prev_params=prev, act_grad_norms={})
    return BatchGradients(stats=stats, stepped=frozenset(prev), loss=float(total_loss), accuracy=int(correct) / n)


def class_scores_of(out, y: torch.Tensor) -> torch.Tensor:
    """The model's (N, K) class scores, or a ModelError/ValueError saying why they cannot be scored against ``y``."""
    scores = first_tensor(out)
    if scores is None or scores.dim() != 2:
        shape = None if scores is None else tuple(scores.shape)
        raise ModelError(f"the model's output has shape {shape}; a backward pass needs class scores (N, K)")
    k = int(scores.shape[1])
    if int(y.max()) >= k:
        raise ValueError(f"the data has labels up to {int(y.max())} but the model has {k} outputs: "
                         "choose the data set the model was trained on")
    return scores
