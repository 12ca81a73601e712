"""Looking during training, in the engine without Qt or threads.

- Live top patches (engine/live_patches.py) fed from the training passes equal a search over the
  same images when the layer's weights do not change; augmented batches are refused with the reason;
  every hook is gone when the run ends.
- The live health check can be turned off; what looking costs a training step is measured.
"""
from __future__ import annotations

import functools
import statistics
import time

import numpy as np

from visualizer.core.channels.top_patches import ImageSource, search_top_patches
from visualizer.core.config import Augment, TrainConfig
from visualizer.core.engine import live, live_patches
from visualizer.core.engine.engine import Engine
from visualizer.core.engine.messages import describe_error
from visualizer.core.health import measure
from visualizer.core.snapshot import CaptureRequest
from visualizer.core.training import TrainingControl

LIMIT = 256


class Viewer:
    """Takes every event and, like the window once it has drawn, asks for the next snapshot."""

    def __init__(self):
        self.events: list = []
        self.control: TrainingControl | None = None

    def __call__(self, name, payload) -> None:
        self.events.append((name, payload))
        if name == "training_snapshot" and self.control is not None:
            self.control.snapshot_consumed()

    def of(self, name: str) -> list:
        return [p for n, p in self.events if n == name]

    def train(self, engine: Engine, config: TrainConfig, augment=None, **kwargs) -> None:
        self.control = TrainingControl()
        try:
            engine.train(config, self.control, augment, **kwargs)
        except Exception as exc:  # noqa: BLE001 - what EngineService._guarded does
            self.events.append(("failed", describe_error(exc)))


def sample_engine(limit: int = LIMIT) -> tuple[Engine, Viewer]:
    viewer = Viewer()
    engine = Engine(viewer, sample_limit=limit)
    engine.load_sample()
    viewer.events.clear()
    return engine, viewer


# --------------------------------------------------------------------------- live top patches

def test_live_patches_of_a_layer_that_does_not_change_equal_a_search_of_the_training_split(monkeypatch):
    """...also when a health check runs mid-run: its batch (train mode, gradients on, the training batch
    size) is not training images at the last batch's positions and must not be fed."""
    from visualizer.core.engine.analysis import analyse
    monkeypatch.setattr(live_patches, "FEED_BUDGET", 1.0)     # look at every batch (no pacing)
    engine, viewer = sample_engine(limit=400)                 # 360 training images: a health batch of 256
    checks = []

    def between_events():
        if len(checks) < 2:
            checks.append(analyse(engine, "health", {}, CaptureRequest()))

    try:
        model = engine.bundle.model
        model.C1.weight.requires_grad_(False)                 # C1 (the first layer) then never changes
        model.C1.bias.requires_grad_(False)
        engine.live_patches_layer = "C1"
        viewer.train(engine, TrainConfig(epochs=2, batch_size=32, lr=0.05), between_events=between_events)
        assert len(checks) == 2 and checks[0].samples == 256
        results = viewer.of("live_top_patches")
        assert results and all(r.layer == "C1" and r.split == "train" for r in results)
        last = results[-1]
        n = len(engine.data.train)
        assert last.complete and last.searched == last.total == n
        searched = search_top_patches(model, "C1", ImageSource.from_split(engine.data, "train"),
                                      input_shape=engine.bundle.input_shape)
        for a, b in zip(last.channels, searched.channels):
            assert np.array_equal(a.indices, b.indices) and np.array_equal(a.positions, b.positions)
            np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)
            assert np.array_equal(a.patches, b.patches)
        # The run is over: no hook of the live patches (nor of the trainer's probe) is left on the model.
        assert not model.C1._forward_hooks and not model._forward_hooks
    finally:
        engine.close()


def test_augmented_training_says_once_why_its_patches_cannot_follow():
    engine, viewer = sample_engine()
    try:
        engine.live_patches_layer = "C3"
        viewer.train(engine, TrainConfig(epochs=2, batch_size=32), Augment(rotation=10.0))
        said = [t for t in viewer.of("notice") if "cannot follow training" in t]
        assert len(said) == 1 and "augmented" in said[0] and "Find top patches" in said[0]
        assert viewer.of("live_top_patches") == []
        assert viewer.of("finished")[-1].reason == "completed"
    finally:
        engine.close()


def test_a_layer_without_top_patches_is_refused_and_training_goes_on():
    engine, viewer = sample_engine()
    try:
        engine.live_patches_layer = "S2"
        viewer.train(engine, TrainConfig(epochs=1, batch_size=32))
        said = [t for t in viewer.of("notice") if "cannot follow training" in t]
        assert len(said) == 1 and "S2" in said[0] and "not a 2-D conv layer" in said[0]
        assert viewer.of("finished")[-1].reason == "completed" and not viewer.of("failed")
    finally:
        engine.close()


# --------------------------------------------------------------------------- live health

def test_the_live_health_check_can_be_turned_off():
    engine, viewer = sample_engine()
    try:
        engine.live_health = False
        viewer.train(engine, TrainConfig(epochs=1, batch_size=32, instrumentation_budget=1.0))
        assert viewer.of("training_snapshot")
        assert viewer.of("health_report") == [] and viewer.of("health_alerts") == []
        engine.live_health = True
        viewer.train(engine, TrainConfig(epochs=1, batch_size=32, instrumentation_budget=1.0))
        reports = viewer.of("health_report")
        assert reports and reports[-1].source == "training" and reports[-1].step > 0
    finally:
        engine.close()


def _timed(spent: dict, key: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - t0
    return wrapper


def test_looking_while_training_costs_a_few_percent_of_a_lenet_step(monkeypatch):
    """The time spent in looking code (the health observer on measured steps, judging each snapshot,
    the top-patch hook on every step, cutting out the patches) against the run's time, with the app's
    snapshot pacing, on the smallest model (where it weighs most); and the plain step times, on and off."""
    spent = {"judging": 0.0, "observer": 0.0, "patch hook": 0.0}
    monkeypatch.setattr(live.LiveLooking, "after_event", _timed(spent, "judging", live.LiveLooking.after_event))
    monkeypatch.setattr(measure.BatchActivationObserver, "__call__",
                        _timed(spent, "observer", measure.BatchActivationObserver.__call__))
    monkeypatch.setattr(live_patches.LivePatches, "_observe",
                        _timed(spent, "patch hook", live_patches.LivePatches._observe))
    engine, viewer = sample_engine(limit=2400)
    config = TrainConfig(epochs=1, batch_size=64)     # the app's pacing: 30 snapshots/s, 1% of training time
    step_ms: dict[str, list[float]] = {"off": [], "on": []}
    share = []
    try:
        for _ in range(3):
            for mode in ("off", "on"):
                engine.live_health = mode == "on"
                engine.live_patches_layer = "C1" if mode == "on" else None
                for k in spent:
                    spent[k] = 0.0
                stamps: list[float] = []
                t0 = time.perf_counter()
                # CPU time of this thread (the engine's): other processes on the machine do not count.
                viewer.train(engine, config, on_step=lambda *_, s=stamps: s.append(time.thread_time()))
                total = time.perf_counter() - t0
                step_ms[mode].append(1e3 * statistics.mean(b - a for a, b in zip(stamps, stamps[1:])))
                if mode == "on":
                    share.append(sum(spent.values()) / total)
                    parts = {k: f"{100 * v / total:.1f}%" for k, v in spent.items()}
    finally:
        engine.close()
    off, on = statistics.median(step_ms["off"]), statistics.median(step_ms["on"])
    print(f"LeNet-5, batch 64: step {off:.2f} ms of CPU with looking off, {on:.2f} ms on (health + top patches of C1); "
          f"looking code took {100 * min(share):.1f}-{100 * max(share):.1f}% of the run (last: {parts})")
    assert statistics.median(share) < 0.05
