"""The training generator, without Qt: determinism, control, divergence, snapshots, resume."""
from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch
import torch.nn as nn

from visualizer.core.config import TrainConfig
from visualizer.core.model_bundle import ModelBundle
from visualizer.core.snapshot import CaptureRequest, Diverged, EpochEnd, Finished, Paused, TrainingSnapshot
from visualizer.core.training import Trainer, TrainingControl


class TinyData:
    """PreparedData-shaped: two classes of 1x12x12 images (bright top half vs bright bottom half)."""

    def __init__(self, n=96, seed=0):
        g = torch.Generator().manual_seed(seed)
        y = torch.arange(n) % 2
        x = torch.rand(n, 1, 12, 12, generator=g) * 0.3
        x[y == 0, :, :6] += 0.7
        x[y == 1, :, 6:] += 0.7
        self._x01, self._y = x, y
        self.mean, self.std = (0.5,), (0.25,)
        xn = (x - 0.5) / 0.25
        self.train = torch.utils.data.TensorDataset(xn[: n * 3 // 4], y[: n * 3 // 4])
        self.val = torch.utils.data.TensorDataset(xn[n * 3 // 4:], y[n * 3 // 4:])
        self.input_shape = (1, 12, 12)
        self.class_names = ("top", "bottom")

    def sample(self, i, split="val"):
        off = len(self.train) if split == "val" else 0
        return self._x01[off + i].numpy().copy(), int(self._y[off + i])

    def probe_sample(self, index):
        return self.sample(index % len(self.val))


def tiny_model(activation=nn.ReLU, bn=False):
    layers = [nn.Conv2d(1, 4, 3, padding=1)]
    if bn:
        layers.append(nn.BatchNorm2d(4))
    layers += [activation(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, padding=1), activation(),
               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2)]
    return nn.Sequential(*layers)


def bundle_for(model, data=None):
    data = data or TinyData()
    return ModelBundle(model, data.input_shape, data.class_names, data.mean, data.std, arch="tiny")


def run_all(trainer):
    return list(trainer.run())


def make(config=None, control=None, seed=0, model=None, **kw):
    torch.manual_seed(seed)
    data = TinyData()
    m = model or tiny_model(**kw)
    return Trainer(bundle_for(m, data), data, config or TrainConfig(epochs=2, batch_size=16, snapshot_hz=0, seed=seed),
                   control)


def weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_trains_and_reports_epochs():
    t = make(TrainConfig(epochs=4, batch_size=16, lr=0.1, snapshot_hz=0))
    events = run_all(t)
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.epoch for e in epochs] == [0, 1, 2, 3]
    assert isinstance(events[-1], Finished) and events[-1].reason == "completed"
    assert t.step == 4 * t.batches_per_epoch
    assert epochs[-1].val_accuracy is not None and epochs[-1].val_accuracy > 0.9
    assert epochs[-1].train_loss < epochs[0].train_loss


def test_deterministic_on_cpu():
    a, b = make(seed=3), make(seed=3)
    ea, eb = run_all(a), run_all(b)
    assert torch.equal(weights(a.model), weights(b.model))
    assert [e.train_loss for e in ea if isinstance(e, EpochEnd)] == [e.train_loss for e in eb if isinstance(e, EpochEnd)]
    c = make(seed=4)
    run_all(c)
    assert not torch.equal(weights(a.model), weights(c.model))


@pytest.mark.parametrize("opt", [dict(optimizer="sgd", nesterov=True), dict(optimizer="adam", lr=1e-3),
                                 dict(optimizer="adamw", lr=1e-3, weight_decay=0.01)])
@pytest.mark.parametrize("schedule", ["none", "step", "cosine"])
def test_optimizers_and_schedules(opt, schedule):
    t = make(TrainConfig(epochs=2, batch_size=32, schedule=schedule, snapshot_hz=0, grad_clip=1.0, **opt))
    lr0 = t.lr
    before = weights(t.model).clone()
    run_all(t)
    assert not torch.equal(before, weights(t.model))
    if schedule == "none":
        assert t.lr == lr0
    else:
        assert t.lr < lr0


def test_bad_config_is_refused():
    for bad in (dict(optimizer="rmsprop"), dict(schedule="linear"), dict(lr=0.0), dict(lr=float("nan")),
                dict(epochs=0), dict(optimizer="adam", nesterov=True)):
        with pytest.raises(ValueError):
            TrainConfig(**bad).validate()


def test_gradient_clipping_bounds_the_update():
    t = make(TrainConfig(epochs=1, batch_size=16, lr=1.0, momentum=0.0, grad_clip=1e-3, snapshot_hz=0))
    before = weights(t.model).clone()
    it = t.run()
    t.control.step(1)
    t.control.pause()
    for _ in it:
        if t.step == 1:
            break
    # plain SGD, lr 1: the update equals the clipped gradient, whose norm is at most 1e-3
    assert (weights(t.model) - before).norm().item() <= 1e-3 * 1.001


def test_pause_step_resume_stop():
    control = TrainingControl(start_paused=True)
    t = make(TrainConfig(epochs=3, batch_size=16, snapshot_hz=0), control)
    it = t.run()
    assert isinstance(next(it), Paused) and t.step == 0
    control.step(2)
    while t.step < 2:
        next(it)
    assert isinstance(next(it), Paused) and t.step == 2   # stays paused after the steps
    control.resume()
    while t.step < 5:
        next(it)
    control.stop()
    rest = list(it)
    assert isinstance(rest[-1], Finished) and rest[-1].reason == "stopped"
    assert t.step < t.total_steps


def test_stop_from_another_thread_while_paused():
    control = TrainingControl(start_paused=True)
    t = make(TrainConfig(epochs=1, batch_size=16, snapshot_hz=0), control)
    timer = threading.Timer(0.2, control.stop)
    timer.start()
    events = list(t.run())
    timer.join()
    assert isinstance(events[-1], Finished) and events[-1].reason == "stopped"


def test_learning_rate_change_while_running():
    t = make(TrainConfig(epochs=1, batch_size=16, lr=0.05, snapshot_hz=0))
    it = t.run()
    t.control.set_lr(0.001)
    for _ in it:
        pass
    assert t.lr == pytest.approx(0.001)
    with pytest.raises(ValueError):
        t.control.set_lr(-1)


def test_divergence_stops_before_the_step_with_last_good_weights():
    t = make(TrainConfig(epochs=5, batch_size=16, lr=1e6, momentum=0.0, snapshot_hz=0))
    seen = []
    t.on_step = lambda step, loss, acc: seen.append(weights(t.model).clone())
    events = run_all(t)
    d = events[-1]
    assert isinstance(d, Diverged), events[-3:]
    assert d.step < 20 and "learning rate" in d.message and f"step {d.step + 1}" in d.message
    final = weights(t.model)
    assert torch.isfinite(final).all()
    assert torch.equal(final, seen[-1]) if seen else True


def test_divergence_names_the_layer():
    class Exploding(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.boom = nn.Identity()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            x = self.conv(x)
            x = self.boom(x * float("inf"))
            return self.fc(x.mean((2, 3)))

    t = make(TrainConfig(epochs=1, batch_size=16, snapshot_hz=0), model=Exploding())
    d = run_all(t)[-1]
    assert isinstance(d, Diverged)
    assert d.layer == "boom"
    assert "boom" in d.message


def test_snapshots_bounded_and_one_in_flight():
    control = TrainingControl()
    # budget 1.0: no pacing by cost here, so only the in-flight rule limits snapshots
    t = make(TrainConfig(epochs=3, batch_size=8, snapshot_hz=1000.0, instrumentation_budget=1.0), control)
    control.request_capture(CaptureRequest(layers=("*",), filter_layers=("0",)))
    snaps = []
    for e in t.run():
        if isinstance(e, TrainingSnapshot):
            snaps.append(e)
            assert not control.consumed   # in flight: no other is made until consumed
            if len(snaps) < 3:
                control.snapshot_consumed()
    assert len(snaps) == 3     # never consumed after the third: no fourth
    s = snaps[0]
    assert s.probe is not None and s.probe.probabilities.shape == (2,)
    assert abs(float(s.probe.probabilities.sum()) - 1) < 1e-4
    assert s.history.shape[1] == 3 and not s.history.flags.writeable
    assert [g.name for g in s.gradients] == ["0", "3", "7"]
    assert all(g.weight_norm > 0 and math.isfinite(g.update_ratio) for g in s.gradients)
    assert all(g.act_grad_norm is not None and g.act_grad_norm > 0 for g in s.gradients)
    assert {c.name for c in s.probe.layers} >= {"0", "1", "2", "3"}
    assert s.probe.filters and s.probe.filters[0].name == "0"
    assert s.probe.filters[0].delta is not None


def test_rate_limit():
    control = TrainingControl()
    t = make(TrainConfig(epochs=3, batch_size=8, snapshot_hz=0.001), control)
    control.request_capture(CaptureRequest(layers=("0",)))
    snaps = []
    for e in t.run():
        if isinstance(e, TrainingSnapshot):
            snaps.append(e)
            control.snapshot_consumed()
    # the one answering the new request, then the rate allows none until the final one at the end
    assert len(snaps) == 2
    assert snaps[0].history.shape[0] == 1 and snaps[1].history.shape[0] == t.step - 1


def test_pacer_keeps_instrumentation_within_its_budget():
    import time as _time
    control = TrainingControl()
    t = make(TrainConfig(epochs=1, batch_size=8, snapshot_hz=100.0, instrumentation_budget=0.02), control)
    t._seen_request_version = control.request_version
    t._instrument_cost = 0.01                     # the last snapshot took 10 ms ...
    t._last_snapshot_time = _time.perf_counter() - 0.2
    assert not t._snapshot_due()                  # ... so the next is due 0.5 s later, not 0.01 s
    t._last_snapshot_time = _time.perf_counter() - 0.6
    assert t._snapshot_due()
    t.config.instrumentation_budget = 0.1         # 10 ms at 10%: every 0.1 s
    t._last_snapshot_time = _time.perf_counter() - 0.2
    assert t._snapshot_due()


def test_the_pacer_counts_what_snapshots_cost_elsewhere_in_the_process():
    import time as _time
    control = TrainingControl()
    t = make(TrainConfig(epochs=1, batch_size=8, snapshot_hz=100.0, instrumentation_budget=0.02), control)
    t._seen_request_version = control.request_version
    t._instrument_cost = 0.002                    # 2 ms in the trainer: every 0.1 s ...
    t._last_snapshot_time = _time.perf_counter() - 0.2
    assert t._snapshot_due()
    t.background_cost = lambda: 0.008            # ... plus 8 ms encoding on another thread: every 0.5 s
    assert not t._snapshot_due()
    t._last_snapshot_time = _time.perf_counter() - 0.6
    assert t._snapshot_due()


def test_one_slow_snapshot_does_not_freeze_the_pacer():
    # A snapshot slowed 200x by a busy machine must not space the next ones 200x apart.
    import time as _time
    control = TrainingControl()
    t = make(TrainConfig(epochs=1, batch_size=8, snapshot_hz=100.0, instrumentation_budget=0.02), control)
    t._seen_request_version = control.request_version
    for cost in (0.01, 0.012, 2.0):
        t._record_cost(cost)
    t._last_snapshot_time = _time.perf_counter() - 0.6
    assert t._snapshot_due()                      # paced by 10 ms (0.5 s apart), not by 2 s (100 s apart)
    for _ in range(5):
        t._record_cost(0.05)                      # slow every time: that is the real cost now
    assert not t._snapshot_due()


def test_paused_trainer_answers_a_new_request():
    control = TrainingControl(start_paused=True)
    t = make(TrainConfig(epochs=1, batch_size=16, snapshot_hz=10), control)
    it = t.run()
    first = next(it)
    if isinstance(first, TrainingSnapshot):
        control.snapshot_consumed()
    control.request_capture(CaptureRequest(layers=("3",), probe_index=2, request_id=7))
    e = next(it)
    while isinstance(e, Paused):
        e = next(it)
    assert isinstance(e, TrainingSnapshot) and e.probe.request_id == 7
    assert [c.name for c in e.probe.layers] == ["3"]
    assert t.step == 0
    control.stop()
    list(it)


def test_probe_pass_leaves_batchnorm_alone():
    t = make(TrainConfig(epochs=1, batch_size=16, snapshot_hz=0), bn=True)
    bn = t.model[1]
    before = (bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked))
    t.model.train()
    snap = t.probe_now(CaptureRequest(layers=("*",)))
    assert snap.layers
    assert torch.equal(before[0], bn.running_mean) and torch.equal(before[1], bn.running_var)
    assert int(bn.num_batches_tracked) == before[2]
    assert t.model.training   # mode restored


def test_resume_is_bit_identical():
    cfg = dict(batch_size=16, lr=0.05, snapshot_hz=0, seed=1)
    full = make(TrainConfig(epochs=4, **cfg), seed=1)
    run_all(full)

    first = make(TrainConfig(epochs=2, **cfg), seed=1)
    run_all(first)
    state = first.state_dict()
    second = make(TrainConfig(epochs=4, **cfg), seed=99)   # different init: everything must come from the state
    second.load_state_dict(state)
    run_all(second)
    assert torch.equal(weights(full.model), weights(second.model))
    assert second.step == full.step


def test_resume_mid_epoch_with_dropout_is_bit_identical():
    def model():
        torch.manual_seed(2)  # same initial weights for both runs
        return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Dropout(0.5), nn.Linear(400, 2))
    cfg = dict(epochs=2, batch_size=16, snapshot_hz=0, seed=2)
    full = make(TrainConfig(**cfg), seed=2, model=model())
    run_all(full)
    part = make(TrainConfig(**cfg), seed=2, model=model())
    it = part.run()
    part.control.step(3)
    part.control.pause()
    while part.step < 3:
        next(it)
    state = part.state_dict()
    rest = make(TrainConfig(**cfg), seed=5, model=model())
    rest.load_state_dict(state)
    run_all(rest)
    assert torch.equal(weights(full.model), weights(rest.model))


def test_reset_weights_gives_fresh_seeded_random_weights():
    t = make(TrainConfig(epochs=1, batch_size=16, snapshot_hz=0))
    run_all(t)
    trained = weights(t.model).clone()
    t.reset_weights()
    fresh = weights(t.model).clone()
    assert not torch.equal(trained, fresh) and t.step == 0 and t.epoch == 0
    run_all(t)
    t.reset_weights()
    assert torch.equal(fresh, weights(t.model))            # seeded: the same fresh start each time
    assert t.probe_now(CaptureRequest(layers=("0",))).layers


def test_unavailable_cuda_falls_back_with_notice(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)   # also on a machine with a GPU
    t = make(TrainConfig(epochs=1, batch_size=16, snapshot_hz=0, device="cuda"))
    assert t.device.type == "cpu" and any("CPU" in n for n in t.notices)


def test_snapshot_arrays_are_copies():
    control = TrainingControl()
    t = make(TrainConfig(epochs=1, batch_size=16, snapshot_hz=1000), control)
    control.request_capture(CaptureRequest(layers=("0",), filter_layers=("0",)))
    snap = next(e for e in t.run() if isinstance(e, TrainingSnapshot))
    w = snap.probe.filters[0].weight
    live = t.model[0].weight.detach().numpy()
    assert not np.shares_memory(w, live)
    with pytest.raises(ValueError):
        w[...] = 0


def test_a_final_snapshot_carries_the_last_steps():
    control = TrainingControl()
    t = make(TrainConfig(epochs=2, batch_size=8, snapshot_hz=0.001), control)
    steps = []
    for e in t.run():
        if isinstance(e, TrainingSnapshot):
            steps.extend(e.history[:, 0].tolist())
            control.snapshot_consumed()
    assert steps == [float(s) for s in range(1, t.step + 1)]   # every step reached the curves


def test_quitting_does_not_wait_for_a_final_snapshot_nobody_will_draw():
    """A window closing mid-run never takes the snapshot in flight: the engine's quit ends the run at
    once (a plain stop waits up to a second for the window to take it, then sends the last steps)."""
    import time as _time
    control = TrainingControl()
    t = make(TrainConfig(epochs=1000, batch_size=8, snapshot_hz=1000), control)
    events = t.run()
    while not isinstance(next(events), TrainingSnapshot):   # one in flight, never consumed
        pass
    next(events)               # the epoch's end: no snapshot comes while one is in flight
    control.stop(quitting=True)
    t0 = _time.perf_counter()
    rest = list(events)
    assert _time.perf_counter() - t0 < 0.5
    assert not any(isinstance(e, TrainingSnapshot) for e in rest) and rest[-1].reason == "stopped"

    control = TrainingControl()
    t = make(TrainConfig(epochs=1000, batch_size=8, snapshot_hz=1000), control)
    events = t.run()
    while not isinstance(next(events), TrainingSnapshot):
        pass
    next(events)
    threading.Timer(0.3, control.snapshot_consumed).start()   # the window takes it a little later
    control.stop()
    rest = list(events)
    assert isinstance(rest[-2], TrainingSnapshot) and rest[-2].history[-1, 0] == t.step


def test_slow_motion_limits_the_step_rate():
    import time as _time
    t = make(TrainConfig(epochs=1, batch_size=8, snapshot_hz=0, max_steps_per_sec=40))
    t0 = _time.perf_counter()
    run_all(t)
    assert t.step == 9 and _time.perf_counter() - t0 >= 8 / 40


def test_stop_wakes_a_slow_motion_trainer():
    control = TrainingControl()
    t = make(TrainConfig(epochs=1, batch_size=8, snapshot_hz=0, max_steps_per_sec=0.01), control)
    timer = threading.Timer(0.2, control.stop)
    timer.start()
    events = run_all(t)
    timer.join()
    assert isinstance(events[-1], Finished) and events[-1].reason == "stopped" and t.step == 1


def test_speed_changes_live():
    control = TrainingControl()
    t = make(TrainConfig(epochs=1, batch_size=8, snapshot_hz=0, max_steps_per_sec=0.01), control)
    threading.Timer(0.2, control.set_speed, args=(0.0,)).start()   # back to full speed
    events = run_all(t)
    assert isinstance(events[-1], Finished) and events[-1].reason == "completed" and t.step == 9
    with pytest.raises(ValueError):
        control.set_speed(-1)


def test_a_trainer_that_cannot_start_leaves_no_hooks():
    model = tiny_model()
    for p in model.parameters():
        p.requires_grad_(False)
    for _ in range(3):
        with pytest.raises(ValueError, match="no trainable parameters"):
            make(model=model)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_reinitialise_is_seeded():
    from visualizer.core.training import reinitialise
    a, b = tiny_model(bn=True), tiny_model(bn=True)
    reinitialise(a, 7)
    reinitialise(b, 7)
    assert torch.equal(weights(a), weights(b))
    reinitialise(b, 8)
    assert not torch.equal(weights(a), weights(b))


def test_a_non_finite_gradient_stops_training_and_names_the_layer():
    class InfGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            return g * float("inf")

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return self.fc(InfGrad.apply(self.conv(x)).mean((2, 3)))

    t = make(TrainConfig(epochs=1, batch_size=16, snapshot_hz=0), model=Net())
    before = weights(t.model).clone()
    d = run_all(t)[-1]
    assert isinstance(d, Diverged) and d.layer == "conv" and "gradient" in d.message
    assert torch.equal(before, weights(t.model))   # stopped before the optimizer step
