"""Step by step and class activation maps in the real window (thread engine): a click on a feature map
asks for that window's arithmetic, the numbers shown are the real feature map's, and they follow
training and the drawing pad."""
from __future__ import annotations

import re

import numpy as np
import pytest
from PyQt6.QtCore import QPoint, Qt

from tests.gui.test_main_window import WAIT, open_window
from visualizer.core.config import TrainConfig
from visualizer.core.explain.records import ClassActivationMap, ConvStep, LinearStep, PoolStep
from visualizer.gui.lesson_runner import find_view
from visualizer.gui.session import PAUSED, STOPPED
from visualizer.gui.settings import Settings

REAL = re.compile(r"real output (-?[0-9.]+)")


@pytest.fixture
def window(qtbot, tmp_path):
    w = open_window(qtbot, Settings(tmp_path / "settings.ini"))
    # The first probe of a new model can be the engine's default one (no layers); the window's own follows.
    qtbot.waitUntil(lambda: w.session.latest_probe.layer("C1") is not None, timeout=WAIT)
    yield w
    w.close()
    assert not w.controller.worker.is_running()


def raise_view(qtbot, w, key):
    view = find_view(w, key)
    dock = w.view_docks[view]
    dock.show()
    dock.raise_()
    qtbot.waitUntil(view.isVisible, timeout=WAIT)
    return view


def shown_real_output(step_view) -> float:
    """The "real output" number the step view shows, read from its text."""
    m = REAL.search(step_view.equation.text())
    assert m, step_view.equation.text()
    return float(m.group(1))


def click_mosaic(fm, channel: int, y: int, x: int) -> None:
    """Where a user clicks on the mosaic to hit (y, x) of ``channel``: the view's own click handling."""
    fm.flush()
    m = fm._shown.mosaic
    i = list(m.channels).index(channel)
    r, c = divmod(i, m.cols)
    fm.select_tile_at(r * (m.tile_h + m.pad) + y + 0.5, c * (m.tile_w + m.pad) + x + 0.5)


def test_a_click_on_a_feature_map_explains_that_position_with_its_real_value(qtbot, window):
    w = window
    step = raise_view(qtbot, w, "step_by_step")
    qtbot.waitUntil(lambda: isinstance(step.step_record, ConvStep) and step.step_record.layer == "C1", timeout=WAIT)
    assert step.step_record.position == (14, 14)            # opens in the middle of the map
    fm = raise_view(qtbot, w, "feature_maps")
    click_mosaic(fm, 2, 10, 12)
    asked = w.explain_link.step.asked
    qtbot.wait(200)
    assert w.explain_link.step.asked == asked        # its tab is behind: nothing is computed for it yet
    raise_view(qtbot, w, "step_by_step")            # the user turns to it: that position's arithmetic
    qtbot.waitUntil(lambda: step.step_record.out_channel == 2 and step.step_record.position == (10, 12),
                    timeout=WAIT)
    rec = step.step_record
    value = float(w.session.latest_probe.layer("C1").maps[2][10, 12])
    assert rec.output == pytest.approx(value, abs=1e-5) and rec.total == pytest.approx(value, abs=1e-4)
    # A click on the enlarged channel picks one position and brings the arithmetic to the front.
    fm = raise_view(qtbot, w, "feature_maps")
    assert fm.select_position(5, 6)
    qtbot.waitUntil(lambda: step.step_record.position == (5, 6) and step.isVisible(), timeout=WAIT)
    step.flush()
    shown = shown_real_output(step)
    fm.flush()
    readout = float(fm.readout_text().rsplit(":", 1)[1])     # what the feature map view says there
    assert shown == pytest.approx(readout, abs=1e-4) and "✓" in step.equation.text()
    assert "C1" in step.headline.text() and "output channel 2" in step.headline.text()
    assert step.unit.value() == 2 and step.unit.maximum() == 5


def test_the_numbers_follow_the_weights_during_training(qtbot, window):
    w = window
    step = raise_view(qtbot, w, "step_by_step")
    qtbot.waitUntil(lambda: isinstance(step.step_record, ConvStep), timeout=WAIT)
    before = step.step_record.output
    w.controller.start_training(TrainConfig(epochs=1000, batch_size=32, lr=0.05, snapshot_hz=30,
                                            max_steps_per_sec=10))
    qtbot.waitUntil(lambda: w.session.latest_training is not None and w.session.latest_training.step >= 5,
                    timeout=WAIT)
    w.controller.pause()

    def agrees_with_the_map():
        rec, probe = step.step_record, w.session.latest_probe
        if not isinstance(rec, ConvStep) or probe is None:
            return False
        y, x = rec.position
        return abs(rec.output - float(probe.layer("C1").maps[rec.out_channel][y, x])) < 1e-5
    qtbot.waitUntil(lambda: w.session.training_state == PAUSED and agrees_with_the_map()
                    and w.explain_link.step.in_flight is None, timeout=WAIT)
    during = step.step_record.output
    assert during != pytest.approx(before, abs=1e-6)       # the weights moved, and the numbers with them
    step.flush()
    y, x = step.step_record.position
    assert shown_real_output(step) == pytest.approx(
        float(w.session.latest_probe.layer("C1").maps[0][y, x]), abs=1e-4)
    # One more step: a new snapshot, and the arithmetic asked for again by itself.
    asked = w.explain_link.step.asked
    step_before = w.session.latest_training.step
    w.act_step.trigger()
    qtbot.waitUntil(lambda: w.session.latest_training.step > step_before and w.explain_link.step.asked > asked
                    and agrees_with_the_map() and w.explain_link.step.in_flight is None, timeout=WAIT)
    assert step.step_record.output != pytest.approx(during, abs=1e-7)
    w.controller.stop()
    qtbot.waitUntil(lambda: w.session.training_state == STOPPED, timeout=WAIT)


def test_pooling_and_fully_connected_layers_and_a_layer_it_cannot_explain(qtbot, window):
    w = window
    step = raise_view(qtbot, w, "step_by_step")
    w.controller.select_layer("S2")
    qtbot.waitUntil(lambda: isinstance(step.step_record, PoolStep) and step.step_record.layer == "S2", timeout=WAIT)
    rec = step.step_record
    y, x = rec.position
    assert rec.computed == pytest.approx(float(w.session.latest_probe.layer("S2").maps[rec.channel][y, x]),
                                         abs=1e-5)
    w.controller.select_layer("output")
    qtbot.waitUntil(lambda: isinstance(step.step_record, LinearStep), timeout=WAIT)
    assert step.step_record.unit == w.session.latest_probe.predicted     # the predicted class's score
    w.controller.select_layer("C1_act")
    qtbot.waitUntil(lambda: step.step_record is None, timeout=WAIT)
    step.flush()
    assert "C1_act" in step.message.text() and "C1" in step.message.text()


def test_play_slides_the_window_one_request_at_a_time(qtbot, window):
    w = window
    step = raise_view(qtbot, w, "step_by_step")
    qtbot.waitUntil(lambda: isinstance(step.step_record, ConvStep), timeout=WAIT)
    seen = []
    step.speed.setCurrentIndex(step.speed.count() - 1)     # the fastest
    step.play.setChecked(True)
    qtbot.waitUntil(lambda: seen.append(step.step_record.position) or len(set(seen)) >= 4, timeout=WAIT)
    step.play.setChecked(False)
    assert w.explain_link.step.asked >= 4
    positions = sorted(set(seen))
    assert all(0 <= y < 28 and 0 <= x < 28 for y, x in positions)


def test_the_class_activation_map_defaults_to_the_prediction_and_follows_the_pad(qtbot, window):
    w = window
    cam = raise_view(qtbot, w, "cam")
    qtbot.waitUntil(lambda: isinstance(cam.cam_record, ClassActivationMap), timeout=WAIT)
    rec, probe = cam.cam_record, w.session.latest_probe
    assert rec.class_index == rec.predicted == probe.predicted and cam.classes.currentData() == -1
    assert [cam.layers.itemData(i) for i in range(cam.layers.count())] == ["", "C1", "C3"]
    assert w.session.layer == "C1"     # its layer picker is Grad-CAM's, not the window's selection
    # Draw on the pad: a new input, and a new map over it.
    canvas = w.input_panel.pad.canvas
    cw, ch = canvas.width(), canvas.height()
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(cw // 3, ch // 4))
    for i in range(1, 12):
        qtbot.mouseMove(canvas, QPoint(cw // 3 + i * cw // 30, ch // 4 + i * ch // 24))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(cw * 2 // 3, ch * 3 // 4))
    qtbot.waitUntil(lambda: w.session.latest_probe.label is None and cam.cam_record is not None
                    and np.allclose(cam.cam_record.input_image, w.session.latest_probe.input_image)
                    and w.explain_link.cam.in_flight is None, timeout=WAIT)
    assert not np.allclose(cam.cam_record.input_image, rec.input_image)
    assert cam.cam_record.class_index == w.session.latest_probe.predicted
    # Another class, asked through the view's own picker.
    cam.class_requested.emit(3)
    qtbot.waitUntil(lambda: cam.cam_record.class_index == 3, timeout=WAIT)
    cam.flush()
    assert cam.heat_item.image is not None and cam.heat_item.image.shape == rec.heatmap.shape


def test_a_lost_answer_is_asked_again_without_a_new_wish(qtbot, monkeypatch):
    # One request in flight; its answer never comes (the engine restarted). The newest wish is
    # sent once the answer counts as lost, even when nothing else happens (a paused window).
    from PyQt6.QtCore import QObject

    from visualizer.gui import explain_link

    class Engine(QObject):
        def __init__(self):
            super().__init__()
            self.sent = []

        def request_analysis(self, kind, **params):
            self.sent.append(params)
            return len(self.sent)

    monkeypatch.setattr(explain_link, "LOST_S", 0.3)
    engine = Engine()
    asker = explain_link.Asker(engine, "step", deliver=lambda r: None, fail=lambda e: None)
    asker.ask({"layer": "C1", "y": 1})
    asker.ask({"layer": "C1", "y": 2})            # waits: one in flight
    assert [p["y"] for p in engine.sent] == [1]
    qtbot.waitUntil(lambda: len(engine.sent) == 2, timeout=3000)
    assert engine.sent[1]["y"] == 2 and asker.in_flight == 2
