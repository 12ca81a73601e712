"""The health report on models broken on purpose, each trained or evaluated for real.

Every broken model is a healthy one with one thing done wrong (a frozen layer, a ReLU
bias far negative, a learning rate far too high, a deep sigmoid net without skips), and
each test checks the flag a user would see on that layer, and no false alarm elsewhere
where none is due.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from visualizer.core.assemble import data_for, new_model_bundle
from visualizer.core.config import TrainConfig
from visualizer.core.datasets import load_dataset
from visualizer.core.errors import ModelError
from visualizer.core.gradient_pass import Cancelled
from visualizer.core.health import DEAD, EXPLODING, NOT_LEARNING, VANISHING, HealthMonitor
from visualizer.core.health.measure import BatchActivationObserver, health_batch, health_rows, measure_health
from visualizer.core.health.records import FROZEN_ADVICE, NO_GRADIENT_ADVICE
from visualizer.core.inspector import Inspector
from visualizer.core.model_bundle import ModelBundle
from visualizer.core.snapshot import CaptureRequest, Diverged, TrainingSnapshot
from visualizer.core.training import Trainer, TrainingControl

LENET_WEIGHTED = ("C1", "C3", "C5", "F6", "output")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def trained_lenet(digits, epochs=3, freeze=None, **options):
    bundle = new_model_bundle("lenet5", digits, seed=0, **options)
    if freeze:
        for p in bundle.model.get_submodule(freeze).parameters():
            p.requires_grad_(False)
    data = data_for(bundle, digits, val_fraction=0.0)
    trainer = Trainer(bundle, data, TrainConfig(epochs=epochs, batch_size=64, snapshot_hz=0))
    try:
        for _ in trainer.run():
            pass
    finally:
        trainer.close()
    return bundle, data


def health_of(bundle, data, **kw):
    x, y = health_batch(data, 256)
    with Inspector(bundle) as inspector:
        return measure_health(inspector, x, y, **kw)


@pytest.fixture(scope="module")
def healthy(digits):
    return trained_lenet(digits)


# --------------------------------------------------------------------------- healthy

def test_a_healthy_lenet_trained_a_little_raises_no_flag(healthy):
    bundle, data = healthy
    report = health_of(bundle, data)
    assert report.samples == 256 and report.source == "batch"
    assert [l.name for l in report.layers] == ["C1", "C1_act", "C3", "C3_act", "C5", "C5_act", "F6", "F6_act",
                                               "output"]
    assert report.flagged() == ()
    for row in report.layers:
        if row.name in LENET_WEIGHTED:
            assert row.grad_norm > 0 and 0 < row.grad_relative <= 1 and 1e-6 < row.update_ratio < 0.1
            assert row.dead_fraction is None
        else:
            assert row.function == "relu" and 0 <= row.dead_fraction < 0.5 and row.saturated_fraction is None
        assert row.act_std > 0
    assert max(l.grad_relative for l in report.layers if l.grad_relative is not None) == 1.0


def test_figures_equal_a_brute_force_pass_over_the_same_batch(healthy):
    """Dead units, mean and std as a user would compute them from the batch's outputs directly."""
    bundle, data = healthy
    x, y = health_batch(data, 256, seed=3)
    with Inspector(bundle) as inspector:
        report = measure_health(inspector, x, y, chunk=48)   # chunks of 48: merging must not change a figure
    outs = {}
    hooks = [bundle.model.get_submodule(n).register_forward_hook(
        lambda m, a, o, n=n: outs.__setitem__(n, o.detach().double().numpy())) for n in
        ("C1", "C1_act", "C3_act", "F6_act")]
    try:
        with torch.no_grad():
            bundle.model(x)
    finally:
        for h in hooks:
            h.remove()
    for name, out in outs.items():
        row = report.layer(name)
        assert row.act_mean == pytest.approx(out.mean(), rel=1e-4, abs=1e-7)
        assert row.act_std == pytest.approx(out.std(), rel=1e-4)
        if name != "C1":
            units = out.reshape(out.shape[0], out.shape[1], -1)
            dead = np.all(units == 0, axis=(0, 2)).mean()
            assert row.dead_fraction == pytest.approx(dead)


def test_looking_changes_nothing(digits):
    """Flags, BatchNorm buffers, parameters, existing grads and the RNG are as before."""
    bundle = new_model_bundle("lenet5", digits, seed=1, batchnorm=True, dropout=0.5)
    data = data_for(bundle, digits, val_fraction=0.0)
    model = bundle.model
    model.eval()
    model.F6_dropout.train()                    # a user's mix of modes must survive
    model.C1.weight.grad = torch.full_like(model.C1.weight, 7.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    rng = torch.get_rng_state()
    report = health_of(bundle, data)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert [m.training for m in model.modules()] == modes
    assert torch.equal(model.C1.weight.grad, torch.full_like(model.C1.weight, 7.0))
    assert all(p.grad is None for n, p in model.named_parameters() if n != "C1.weight")
    assert torch.equal(torch.get_rng_state(), rng)
    assert report.layer("C1_bn") is not None and report.layer("C1_bn").grad_norm > 0


# --------------------------------------------------------------------------- broken on purpose

def test_a_relu_whose_bias_is_far_negative_is_flagged_dead(healthy):
    bundle, data = healthy
    broken = copy.deepcopy(bundle)
    with torch.no_grad():
        broken.model.C3.bias.fill_(-100.0)
    report = health_of(broken, data)
    act = report.layer("C3_act")
    assert act.dead_fraction == 1.0 and act.flag == DEAD
    assert "LeakyReLU" in act.advice[0]
    # Nothing flows back through it: the layers before it (and C3 itself) get no gradient at all.
    for name in ("C1", "C3"):
        row = report.layer(name)
        assert row.grad_norm == 0 and row.flag == VANISHING and row.advice[0] == NO_GRADIENT_ADVICE
    assert report.layer("C1_act").flags == ()
    assert report.layer("output").flags == ()


def test_a_learning_rate_far_too_high_is_flagged_exploding(healthy):
    bundle, data = healthy
    report = health_of(bundle, data, config=TrainConfig(lr=5.0))
    for name in LENET_WEIGHTED:
        row = report.layer(name)
        assert row.update_ratio > 0.1 and row.flag == EXPLODING, row
        assert row.advice[0].startswith("lower the learning rate or clip gradients")
    assert "lr 5" in report.optimizer
    clipped = health_of(bundle, data, config=TrainConfig(lr=5.0, grad_clip=0.001))
    assert clipped.flagged() == ()   # the same step with clipping as training would clip is fine


def test_a_frozen_layer_is_flagged_not_learning(digits):
    bundle, data = trained_lenet(digits, freeze="C3")
    report = health_of(bundle, data)
    c3 = report.layer("C3")
    assert c3.trainable is False and c3.update_ratio == 0 and c3.grad_norm is None
    assert c3.flags == (NOT_LEARNING,) and c3.advice == (FROZEN_ADVICE,)
    assert [l.name for l in report.flagged()] == ["C3"]


def test_a_deep_sigmoid_plain_network_vanishes_towards_the_input():
    shapes = load_dataset("shapes", limit=600)
    bundle = new_model_bundle("plain18", shapes, seed=0, width=0.125, activation="sigmoid")
    data = data_for(bundle, shapes, val_fraction=0.0)
    trainer = Trainer(bundle, data, TrainConfig(epochs=1, batch_size=64, snapshot_hz=0))
    try:
        for _ in zip(range(5), trainer.run()):   # a few real steps
            pass
    finally:
        trainer.close()
    report = health_of(bundle, data)
    weighted = [l for l in report.layers if l.grad_norm is not None]
    assert [l.name for l in weighted][:2] == ["conv1", "layer1.0.conv1"] and weighted[-1].name == "fc"
    vanishing = [VANISHING in l.flags for l in weighted]
    assert all(vanishing[:8]), [(l.name, l.grad_relative) for l in weighted]
    assert not any(vanishing[-3:])
    # Towards the input, never back: the flagged layers are the first ones.
    assert vanishing == sorted(vanishing, reverse=True)
    assert weighted[0].grad_relative < 1e-9
    assert "ReLU" in weighted[0].advice[0]


def test_too_few_samples_and_unhookable_models_are_refused(healthy):
    bundle, data = healthy
    with pytest.raises(ValueError, match="at least 256 samples"):
        health_batch(data, 100)
    x, y = health_batch(data, 256)
    with Inspector(bundle) as inspector:
        with pytest.raises(ValueError, match="at least 256"):
            measure_health(inspector, x[:200], y[:200])
        with pytest.raises(Cancelled):
            measure_health(inspector, x, y, cancel=lambda: True)
    scripted = torch.jit.script(copy.deepcopy(bundle.model))
    with Inspector(ModelBundle(scripted, bundle.input_shape, bundle.class_names, probeable=False)) as inspector:
        with pytest.raises(ModelError, match="TorchScript"):
            measure_health(inspector, x, y)


class FunctionalNet(nn.Module):
    """Tutorial-style model: F.relu in forward, no activation modules to hook."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = F.relu(self.conv(x))
        return self.fc(x.mean((2, 3)))


def test_functional_relus_are_measured(healthy):
    _, data = healthy
    model = FunctionalNet()
    with torch.no_grad():
        model.conv.bias[:6] = -50.0             # six of the eight channels can never fire
    bundle = ModelBundle(model, data.input_shape, data.class_names)
    report = health_of(bundle, data)
    row = report.layer("F.relu")
    assert row is not None and row.function == "relu"
    assert row.dead_fraction == pytest.approx(6 / 8) and row.flag == DEAD


# --------------------------------------------------------------------------- live

def live_alerts(bundle, data, config, steps):
    """Train for real, feeding every snapshot's gradient figures to a monitor; all alerts in order."""
    control = TrainingControl()
    control.request_capture(CaptureRequest(layers=()))
    trainer = Trainer(bundle, data, config, control)
    with Inspector(bundle) as inspector:
        monitor = HealthMonitor(health_rows(inspector))
    alerts, snapshots = [], 0
    try:
        for event in trainer.run():
            if isinstance(event, TrainingSnapshot):
                snapshots += 1
                alerts += monitor.feed_snapshot(event)
                control.snapshot_consumed()
            if isinstance(event, Diverged) or trainer.step >= steps:
                break
    finally:
        control.stop()
        trainer.close()
    return alerts, monitor, snapshots


def test_live_training_with_a_learning_rate_far_too_high_reports_exploding_once(digits):
    bundle = new_model_bundle("lenet5", digits, seed=0)
    data = data_for(bundle, digits, val_fraction=0.0)
    config = TrainConfig(epochs=2, batch_size=64, lr=1.0, snapshot_hz=1000, instrumentation_budget=1.0)
    alerts, monitor, snapshots = live_alerts(bundle, data, config, steps=40)
    assert snapshots >= 10
    exploding = [(a.layer, a.flag) for a in alerts if a.flag == EXPLODING]
    assert exploding and len(exploding) == len(set(exploding))   # each new flag once, not every snapshot
    first = next(a for a in alerts if a.flag == EXPLODING)
    assert first.message.startswith(f"{first.layer}: exploding (‖ΔW‖/‖W‖ ")
    assert "lower the learning rate" in first.message and first.step >= 1
    assert monitor.report.source == "training"


def test_live_training_of_a_healthy_lenet_reports_nothing(digits):
    bundle = new_model_bundle("lenet5", digits, seed=0)
    data = data_for(bundle, digits, val_fraction=0.0)
    config = TrainConfig(epochs=2, batch_size=64, lr=0.01, snapshot_hz=1000, instrumentation_budget=1.0)
    alerts, monitor, snapshots = live_alerts(bundle, data, config, steps=40)
    assert snapshots >= 10 and alerts == []
    assert all(r.update_ratio is not None for r in monitor.report.layers if r.kind != "activation")


def test_live_dead_units_are_judged_on_256_samples_collected_from_training_batches(healthy):
    """A user's own loop: the probe's batch observer sums each 64-sample batch; dead is reported once."""
    bundle, data = healthy
    model = copy.deepcopy(bundle.model)
    with torch.no_grad():
        model.C3.bias.fill_(-100.0)
    broken = ModelBundle(model, bundle.input_shape, bundle.class_names, bundle.mean, bundle.std)
    inspector = Inspector(broken)
    rows = health_rows(inspector)
    monitor = HealthMonitor(rows)
    observer = BatchActivationObserver.for_rows(rows)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loader = torch.utils.data.DataLoader(data.train, batch_size=64, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    verdicts = []
    try:
        model.train()
        for step, (x, y) in enumerate(loader, start=1):
            inspector.layer_probe.arm((), want_grads=False, stats=False, batch_observer=observer)
            try:
                loss = F.cross_entropy(model(x), y)
            finally:
                inspector.layer_probe.disarm()
            opt.zero_grad()
            loss.backward()
            opt.step()
            verdicts.append(monitor.feed_activations(step, observer.take()))
            if step == 12:
                break
    finally:
        inspector.close()
    assert verdicts[:3] == [(), (), ()]          # 64, 128, 192 samples: too few to call a unit dead
    dead = [(i + 1, a.layer) for i, v in enumerate(verdicts) for a in v if a.flag == DEAD]
    # At 256 samples, and only once. Layers after the dead one get a constant input from it, so each of
    # their units is always on or always off; whether most of F6's are off (flagged too) comes down to the
    # last bits of training on a given machine, so it may be; the layer before it is alive.
    assert (4, "C3_act") in dead and all(step == 4 for step, _ in dead)
    assert len({layer for _, layer in dead}) == len(dead) and "C1_act" not in {layer for _, layer in dead}
    row = monitor.report.layer("C3_act")
    assert row.dead_fraction == 1.0 and row.samples >= 256
    assert monitor.flagged_layers["C3_act"] == (DEAD,)


def test_a_flag_that_clears_for_long_enough_is_reported_again(healthy):
    bundle, data = healthy
    with Inspector(bundle) as inspector:
        rows = health_rows(inspector)
    monitor = HealthMonitor(rows, clear_after=2)
    too_high = health_of(bundle, data, config=TrainConfig(lr=5.0))
    fine = health_of(bundle, data)
    first = monitor.feed_report(too_high)
    assert {a.layer for a in first} == set(LENET_WEIGHTED)
    assert monitor.feed_report(too_high) == ()          # still there: not again
    assert monitor.feed_report(fine) == ()
    assert monitor.feed_report(too_high) == ()          # gone once only: the same episode
    monitor.feed_report(fine)
    monitor.feed_report(fine)
    again = monitor.feed_report(too_high)               # gone twice in a row: a new episode
    assert {a.layer for a in again} == set(LENET_WEIGHTED)
