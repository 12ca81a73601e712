"""Replaying a run and attaching to a live one, in the real window: what the views draw is the step asked for."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.gui.test_main_window import WAIT, open_window
from visualizer.core.architectures import build_model
from visualizer.core.record.run_reader import RunReader
from visualizer.gui.settings import Settings
from visualizer.gui.views.gradients import log_heights
from visualizer.record import Recorder

REPO = pathlib.Path(__file__).resolve().parents[2]


def record_lenet_run(path, steps=60) -> None:
    """A user's plain training loop on random digits, recording every few steps."""
    torch.manual_seed(0)
    x = torch.rand(256, 1, 32, 32)
    y = torch.randint(0, 10, (256,))
    model = build_model("lenet5", in_channels=1, input_size=32)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    with Recorder(model, path, probe=(x[:1], y[:1]), optimizer=opt, hz=1000, budget=1.0, channels=6) as rec:
        for step in range(steps):
            i = torch.arange(step * 32, step * 32 + 32) % 256
            opt.zero_grad()
            loss = F.cross_entropy(model(x[i]), y[i])
            loss.backward()
            rec.step(step, loss=loss, epoch=step // 20)
            if step % 20 == 19:
                rec.epoch_end(step // 20, step, train_loss=float(loss.detach()))
            opt.step()


@pytest.fixture
def window(qtbot, tmp_path):
    w = open_window(qtbot, Settings(tmp_path / "settings.ini"))
    yield w
    w.close()


def view(window, name):
    return next(v for v in window.views if type(v).__name__ == name)


def drawn(window, name):
    v = view(window, name)
    v.flush()
    return v


def test_a_run_opens_scrubs_and_every_view_shows_the_chosen_step(qtbot, window, tmp_path):
    run = tmp_path / "run.cnnviz"
    record_lenet_run(run)
    reader = RunReader(run)
    steps = reader.snapshot_steps()
    target = int(steps[len(steps) // 2])
    _, expected = reader.load_snapshot(target)
    reader.close()

    assert window.open_path(str(run))
    assert window.timeline_dock.isVisible() and window.controller.showing_external
    assert window.session.model.arch == "LeNet5" and window.layer_tree.layer_names()[0] == "C1"
    window.timeline.seek_requested.emit(target)            # what dragging the handle there asks
    qtbot.waitUntil(lambda: window.session.latest_training.step == target, timeout=WAIT)

    fm = drawn(window, "FeatureMapView")
    layer = expected.probe.layer(window.session.layer)
    np.testing.assert_allclose(fm.mosaic_item.image, layer.mosaic.image, atol=1e-6)   # the drawn maps are step B's
    grads = drawn(window, "GradientView")
    np.testing.assert_allclose(grads.heights, log_heights([g.weight_norm for g in expected.gradients]), atol=1e-6)
    filt = drawn(window, "FilterView")
    assert filt._probe.filters[0].name == expected.probe.filters[0].name
    assert window.timeline.position.text().startswith(f"step {target:,}")
    curves = drawn(window, "CurvesView")
    assert curves.csv_table() is not None

    # step through snapshots, jump to an epoch
    window.replay.step_by(+1)
    assert window.session.latest_training.step == int(steps[len(steps) // 2 + 1])
    window.replay.seek_epoch(0)
    assert window.session.latest_training.step <= 19

    # compare: pin A, scrub to B, show B - A (a diverging, signed map)
    window.replay.seek(int(steps[1]))
    window.timeline.pin_requested.emit()
    _, a = RunReader(run).load_snapshot(int(steps[1]))
    window.replay.seek(target)
    window.timeline.compare_requested.emit("B - A")
    fm = drawn(window, "FeatureMapView")
    diff = expected.probe.layer(window.session.layer).maps - a.probe.layer(window.session.layer).maps
    np.testing.assert_allclose(fm._shown.maps, diff, atol=1e-5)
    assert fm._shown.levels.signed
    window.controller.set_compare("B")

    # back to the engine's model
    window.timeline.close_requested.emit()
    assert not window.timeline_dock.isVisible() and not window.controller.showing_external
    qtbot.waitUntil(lambda: window.session.model.arch == "lenet5", timeout=WAIT)


def test_a_damaged_or_foreign_run_is_refused_and_changes_nothing(window, tmp_path):
    model = window.session.model
    for name, data in (("empty.cnnviz", b""), ("foreign.cnnviz", b"this is not a run " * 100)):
        path = tmp_path / name
        path.write_bytes(data)
        assert not window.open_path(str(path))
        level, text = window.last_message
        assert level == "error" and name in text
    assert window.session.model is model and not window.controller.showing_external


def test_attach_to_a_live_recorder_in_another_process(qtbot, window, tmp_path):
    script = textwrap.dedent("""
        import sys, time, torch, torch.nn.functional as F
        from visualizer.core.architectures import build_model
        from visualizer.record import Recorder
        x, y = torch.rand(64, 1, 32, 32), torch.randint(0, 10, (64,))
        model = build_model("lenet5", in_channels=1, input_size=32)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        with Recorder(model, None, probe=x[:1], optimizer=opt, hz=30, budget=1.0, serve="127.0.0.1:0",
                      token="t0ken") as rec:
            print(rec.address, flush=True)
            step, end = 0, time.time() + 90
            while time.time() < end:
                opt.zero_grad()
                loss = F.cross_entropy(model(x[:32]), y[:32])
                loss.backward()
                rec.step(step, loss=loss)
                opt.step()
                step += 1
    """)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        address = proc.stdout.readline().strip()
        assert not window.attach(address, "wrong")
        assert window.last_message[0] == "error" and "token" in window.last_message[1]
        assert window.attach(address, "t0ken")
        assert window.session.model.arch == "LeNet5"
        window.controller.select_layer("C3")                      # the viewer says what to capture
        qtbot.waitUntil(lambda: window.session.latest_training is not None
                        and window.session.latest_training.probe.layer("C3") is not None
                        and window.session.latest_training.probe.layer("C3").maps.shape[0] == 16, timeout=WAIT)
        first = window.session.latest_training.step
        qtbot.waitUntil(lambda: window.session.latest_training.step > first, timeout=WAIT)   # live
        proc.kill()                                              # the connection drops
        qtbot.waitUntil(lambda: window.last_message is not None and "ended" in window.last_message[1],
                        timeout=WAIT)
        # what it had stays on screen: the last live maps are still drawn, nothing was cleared
        fm = drawn(window, "FeatureMapView")
        assert window.controller.showing_external and window.session.latest_training is not None
        assert fm._probe is window.session.latest_training.probe and fm.mosaic_item.image is not None
    finally:
        proc.kill()
        proc.wait(30)


def test_two_checkpoints_compare_the_same_way(qtbot, window, tmp_path):
    """Pin the open model's probe as A, open another checkpoint as B: the views show B - A."""
    from visualizer.core.checkpoint import save_checkpoint
    from visualizer.core.model_bundle import ModelBundle

    model = build_model("lenet5", in_channels=1, input_size=32)
    path = tmp_path / "other.pt"
    save_checkpoint(path, ModelBundle(model, (1, 32, 32), tuple(str(i) for i in range(10)), arch="lenet5",
                                      arch_options={"in_channels": 1, "num_classes": 10, "input_size": 32},
                                      mean=(0.1307,), std=(0.3081,)))
    a = window.session.latest_probe
    window.act_pin.trigger()
    assert window.controller.pinned is a
    window.compare_actions["B - A"].trigger()
    assert window.open_path(str(path))
    qtbot.waitUntil(lambda: window.session.model.source == str(path) and window.session.latest_probe is not None
                    and window.session.latest_probe is not a
                    and window.controller._raw_probe_snap.layer(window.session.layer) is not None, timeout=WAIT)
    b = window.controller._raw_probe_snap
    layer = window.session.layer
    fm = drawn(window, "FeatureMapView")
    np.testing.assert_allclose(fm._shown.maps, b.layer(layer).maps - a.layer(layer).maps, atol=1e-5)
