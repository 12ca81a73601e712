"""Real snapshots for record tests and bench/runfile_size.py: LeNet-5 training on the built-in digits.

Made by the real core (model, data, a few SGD steps, Inspector.probe with every
layer, filters with their change and gradient, gradient statistics), so sizes,
dtypes and value ranges are what a recorder will store. Needs torch; the record
modules themselves never import it.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from visualizer.core.architectures import build_model
from visualizer.core.datasets import DataOptions, load_dataset, prepare
from visualizer.core.inspector import Inspector
from visualizer.core.introspect import introspect
from visualizer.core.model_bundle import ModelBundle
from visualizer.core.snapshot import CaptureRequest, TrainingSnapshot, frozen_array

REQUEST = CaptureRequest(layers=("*",), filter_layers=("C1", "C3"))


def lenet_training_snapshots(count: int, seed: int = 0, steps_between: int = 3):
    """(ModelInfo, [TrainingSnapshot] * count): one snapshot every ``steps_between`` SGD steps."""
    torch.manual_seed(seed)
    model = build_model("lenet5", in_channels=1, input_size=32)
    data = prepare(load_dataset("digits", seed=seed), DataOptions(input_shape=(1, 32, 32), seed=seed))
    bundle = ModelBundle(model, (1, 32, 32), data.class_names, mean=data.mean, std=data.std)
    info = introspect(model, (1, 32, 32))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = torch.utils.data.DataLoader(data.train, batch_size=32, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed))
    out = []
    with Inspector(bundle, info) as inspector:
        initial = {n: m.weight.detach().clone() for n, m in inspector.weighted_layers}
        batches = iter(loader)
        step = 0
        history = []
        before_last_step = None
        while len(out) < count:
            try:
                x, y = next(batches)
            except StopIteration:
                batches = iter(loader)
                x, y = next(batches)
            model.train()
            opt.zero_grad()
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            acc = float((logits.argmax(1) == y).float().mean())
            history.append((step, loss.item(), acc))
            if step % steps_between == 0:
                image, label = data.sample(len(out) % len(data.val))
                probe = inspector.probe(REQUEST, image, label, initial=initial, grads=True)
                out.append(TrainingSnapshot(
                    step=step, epoch=0, batch=step, batches_per_epoch=len(loader), total_steps=10_000,
                    loss=loss.item(), accuracy=acc, lr=0.05, samples_per_sec=1000.0,
                    history=frozen_array(np.array(history, np.float32).reshape(-1, 3)),
                    gradients=inspector.gradient_stats(prev_params=before_last_step), probe=probe))
                history = []
            before_last_step = {n: m.weight.detach().clone() for n, m in inspector.weighted_layers}
            opt.step()
            step += 1
    return info, out
