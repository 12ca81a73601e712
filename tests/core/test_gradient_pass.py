"""The looking-only backward pass (render of an untrained model, the health report): the gradients,
loss and accuracy one step would see, computed in chunks, with the model left exactly as it was."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from visualizer.core.config import TrainConfig
from visualizer.core.gradient_pass import batch_gradients
from visualizer.core.inspector import Inspector
from visualizer.core.model_bundle import ModelBundle


class Net(nn.Module):
    """A functional conv with its own Parameters, a BatchNorm module, a residual add, a functional linear."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 1, 3, 3) * 0.3)
        self.bn = nn.BatchNorm2d(6)
        self.conv = nn.Conv2d(6, 6, 3, padding=1)
        self.fc_w = nn.Parameter(torch.randn(3, 6) * 0.3)

    def forward(self, x):
        h = F.relu(self.bn(F.conv2d(x, self.w, padding=1)))
        h = F.relu(self.conv(h)) + h
        return F.linear(F.adaptive_avg_pool2d(h, 1).flatten(1), self.fc_w)


def test_gradients_loss_and_accuracy_are_those_of_one_training_step_and_nothing_moves():
    torch.manual_seed(0)
    model = Net()
    x, y = torch.randn(10, 1, 8, 8), torch.randint(0, 3, (10,))
    reference = Net()
    reference.load_state_dict(model.state_dict())
    reference.train()
    chunks = ((0, 4), (4, 8), (8, 10))
    for a, b in chunks:      # BatchNorm normalises per chunk in train mode, as training's batches are
        (F.cross_entropy(reference(x[a:b]), y[a:b], reduction="sum") / 10).backward()
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    with Inspector(ModelBundle(model, (1, 8, 8), ("a", "b", "c"))) as inspector:
        # chunks of 4, 4 and 2: their gradients add up to the whole batch's mean
        measured = batch_gradients(inspector, x, y, config=TrainConfig(batch_size=4))
    stats = {g.name: g for g in measured.stats}
    assert list(stats) == ["F.conv2d", "bn", "conv", "F.linear"]
    assert stats["F.conv2d"].weight_norm == pytest.approx(float(reference.w.grad.norm()), rel=1e-4)
    assert stats["F.linear"].weight_norm == pytest.approx(float(reference.fc_w.grad.norm()), rel=1e-4)
    assert stats["conv"].bias_norm == pytest.approx(float(reference.conv.bias.grad.norm()), rel=1e-4)
    assert all(s.update_ratio > 0 for s in stats.values()) and measured.stepped == set(stats)
    with torch.no_grad():
        fresh = Net()
        fresh.load_state_dict(model.state_dict())
        outs = [fresh.train()(x[a:b]) for a, b in chunks]
        chunk_loss = sum(F.cross_entropy(o, y[a:b], reduction="sum") for o, (a, b) in zip(outs, chunks)) / 10
        correct = sum(int((o.argmax(1) == y[a:b]).sum()) for o, (a, b) in zip(outs, chunks))
    assert measured.loss == pytest.approx(float(chunk_loss), rel=1e-5)
    assert measured.accuracy == correct / 10
    # looked at, not trained: weights, BatchNorm statistics, grads and the eval flag as before
    assert all(torch.equal(v, buffers[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters()) and not model.training
