"""The whole window offscreen: sample model, training into every view, controls,
selection, drawing, bad files, closing mid-training, non-finite data, persistence."""
from __future__ import annotations

import time

import numpy as np
import psutil
import pytest
import torch
from PyQt6.QtCore import QPoint, Qt

from tests.gui.snapshot_factory import make_probe, make_training
from visualizer.core.config import TrainConfig
from visualizer.core.training import Trainer
from visualizer.gui.controller import Controller
from visualizer.gui.main_window import MainWindow
from visualizer.gui.session import PAUSED, RUNNING, STOPPED
from visualizer.gui.settings import Settings

LIMIT = 256
WAIT = 20_000
# Long enough never to finish during a test (each test stops it): LeNet steps take milliseconds.
SHORT = TrainConfig(epochs=10_000, batch_size=32, snapshot_hz=30)


def open_window(qtbot, settings: Settings) -> MainWindow:
    controller = Controller(settings, sample_limit=LIMIT)
    w = MainWindow(settings, controller=controller)
    # Modal dialogs would block the test's event loop: tests answer for the user.
    controller.ask_trust = lambda req: False
    controller.ask_model_spec = lambda path, info: None
    controller.offer_safetensors = lambda source: None
    w.start_flow.ask = lambda model, offer_only: "continue"   # Start on the trained sample: keep training it
    w.training_panel.epochs.setValue(1000)  # the panel's runs (Step, Space) must outlast each test
    w.training_panel.batch_size.setValue(32)
    qtbot.addWidget(w)
    w.show()
    w.start()
    qtbot.waitUntil(lambda: w.session.model is not None and w.session.latest_probe is not None, timeout=WAIT)
    return w


@pytest.fixture
def settings(tmp_path):
    return Settings(tmp_path / "settings.ini")


@pytest.fixture
def window(qtbot, settings):
    w = open_window(qtbot, settings)
    yield w
    w.close()
    assert not w.controller.worker.is_running(), "worker thread still running after close"


def start(qtbot, w: MainWindow, config: TrainConfig = SHORT) -> None:
    w.controller.start_training(config)
    assert w.session.training_state == RUNNING
    qtbot.waitUntil(lambda: w.session.latest_training is not None, timeout=WAIT)


def stop(qtbot, w: MainWindow) -> None:
    w.controller.stop()
    qtbot.waitUntil(lambda: w.session.training_state == STOPPED, timeout=WAIT)


def test_opens_the_sample_model_ready_to_train(window):
    model = window.session.model
    assert model.arch == "lenet5" and len(model.class_names) == 10
    assert window.layer_tree.layer_names() == [layer.name for layer in model.info.layers]
    assert window.session.training_state == STOPPED
    assert window.training_panel.start_button.isEnabled()
    assert window.act_run.shortcut().toString() == "Space"
    assert "lenet5" in window.status_model.text()


def test_training_snapshots_reach_every_view_with_the_right_shapes(qtbot, window):
    start(qtbot, window)
    qtbot.waitUntil(lambda: all(v._training is not None and v._probe is not None for v in window.views),
                    timeout=WAIT)
    window.controller.pause()
    snap = window.session.latest_training
    for v in window.views:
        v.flush()
    fm = next(v for v in window.views if type(v).__name__ == "FeatureMapView")
    layer = fm._probe.layer(window.session.layer)
    assert layer is not None and fm.mosaic_item.image.shape == layer.mosaic.image.shape
    grads = next(v for v in window.views if type(v).__name__ == "GradientView")
    assert grads._training.gradients and len(grads._training.gradients) == len(snap.gradients)
    assert window.status_step.text().startswith("Step ") and window.progress.value() > 0
    assert window.training_panel.state() == PAUSED
    stop(qtbot, window)


def test_a_busy_gui_does_not_let_snapshots_pile_up(qtbot, window, monkeypatch):
    worker = window.controller.worker
    in_flight, peak = [0], [0]

    def arrived(_snap):
        in_flight[0] += 1
        peak[0] = max(peak[0], in_flight[0])

    acknowledge = worker.snapshot_consumed

    def consumed():
        in_flight[0] = max(0, in_flight[0] - 1)
        acknowledge()

    monkeypatch.setattr(worker, "snapshot_consumed", consumed)
    worker.training_snapshot.connect(arrived)
    start(qtbot, window, TrainConfig(epochs=10_000, batch_size=32, snapshot_hz=1000))
    qtbot.waitUntil(lambda: window.session.latest_training.step >= 3, timeout=WAIT)
    rss0 = psutil.Process().memory_info().rss
    step0 = window.session.latest_training.step
    # The GUI thread is busy (as if drawing very slowly) while the worker keeps training.
    t_end = time.perf_counter() + 1.5
    while time.perf_counter() < t_end:
        sum(range(10_000))
    qtbot.waitUntil(lambda: window.session.latest_training.step > step0 + 5, timeout=WAIT)
    assert peak[0] == 1, "more than one snapshot was in flight"
    assert psutil.Process().memory_info().rss - rss0 < 50 * 2**20
    stop(qtbot, window)


def test_pause_step_resume_stop_through_the_panel(qtbot, window):
    panel = window.training_panel
    window.act_step.trigger()  # from Stopped: one batch, then paused
    assert window.session.training_state == PAUSED
    qtbot.waitUntil(lambda: window.session.latest_training is not None, timeout=WAIT)
    assert window.session.latest_training.step == 1
    qtbot.mouseClick(panel.step_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.session.latest_training.step == 2, timeout=WAIT)
    assert panel.pause_button.text() == "Resume"
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)  # Resume
    assert window.session.training_state == RUNNING and panel.pause_button.text() == "Pause"
    qtbot.waitUntil(lambda: window.session.latest_training.step > 4, timeout=WAIT)
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    assert window.session.training_state == PAUSED and panel.step_button.isEnabled()
    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.session.training_state == STOPPED, timeout=WAIT)
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()


def test_space_toggles_training(qtbot, window):
    window.act_run.trigger()
    assert window.session.training_state == RUNNING
    window.act_run.trigger()
    assert window.session.training_state == PAUSED
    stop(qtbot, window)


def test_change_layer_and_channel(qtbot, window):
    tree = window.layer_tree
    tree.setCurrentItem(tree.item_for("C3"))  # what a click or the arrow keys do
    qtbot.waitUntil(lambda: window.session.layer == "C3", timeout=WAIT)
    fm = next(v for v in window.views if type(v).__name__ == "FeatureMapView")
    assert fm._layer == "C3"
    qtbot.waitUntil(lambda: fm._probe is not None and fm._probe.layer("C3") is not None, timeout=WAIT)
    fm.flush()
    assert fm.mosaic_item.image.shape == fm._probe.layer("C3").mosaic.image.shape
    fm.channel_selected.emit(5)
    assert window.session.channel == 5
    window.move_layer(+1)
    assert window.session.layer == window.session.layer_names()[window.session.layer_names().index("C3") + 1]


def test_drawing_on_the_pad_changes_the_prediction(qtbot, window):
    before = window.session.latest_probe
    canvas = window.input_panel.pad.canvas
    w, h = canvas.width(), canvas.height()
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(w // 2, h // 5))
    for i in range(1, 13):
        qtbot.mouseMove(canvas, QPoint(w // 2 + (i % 3) * 4, h // 5 + i * h // 20))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(w // 2, h * 4 // 5))
    qtbot.waitUntil(lambda: window.session.latest_probe is not before
                    and window.session.latest_probe.input_image.max() > 0.5
                    and window.session.latest_probe.label is None, timeout=WAIT)
    after = window.session.latest_probe
    assert after.input_image.shape == window.session.model.input_shape
    assert not np.allclose(after.probabilities, before.probabilities)
    assert window.status_prediction.text().startswith("Prediction:")


def test_a_bad_file_gives_a_message_and_the_app_keeps_working(qtbot, window, tmp_path):
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"PK\x03\x04 a damaged archive, not a model" * 50)
    window.open_path(str(bad))
    qtbot.waitUntil(lambda: window.last_message is not None, timeout=WAIT)
    level, text = window.last_message
    assert level == "error" and "garbage.pt" in text
    assert window.session.model.arch == "lenet5"  # the old model is still there
    before = window.session.latest_probe
    window.controller.use_sample(3)
    qtbot.waitUntil(lambda: window.session.latest_probe is not before, timeout=WAIT)


def test_a_worker_failure_shows_a_message_and_returns_to_stopped(qtbot, window, monkeypatch):
    def boom(self, *args, **kwargs):
        raise RuntimeError("simulated failure inside the step")

    monkeypatch.setattr(Trainer, "_train_step", boom)
    window.controller.start_training(SHORT)
    qtbot.waitUntil(lambda: window.session.training_state == STOPPED and window.last_message is not None,
                    timeout=WAIT)
    assert "simulated failure" in window.last_message[1]
    assert window.training_panel.state() == STOPPED


def test_closing_mid_training_stops_and_joins_the_worker(qtbot, settings):
    w = open_window(qtbot, settings)
    start(qtbot, w)
    assert w.close()
    assert not w.controller.worker.is_running()


def test_snapshots_with_nan_and_inf_render_without_hanging(qtbot, window):
    probe = make_probe(inject_nonfinite=True)
    window.controller._on_probe(probe)
    window.controller._on_training_snapshot(make_training(probe=probe))
    for v in window.views:
        v.set_layer("C3")
        v.flush()
    assert all(v._probe is probe for v in window.views)
    qtbot.wait(50)  # a few event-loop turns: a frozen loop would trip the test timeout
    fm = next(v for v in window.views if type(v).__name__ == "FeatureMapView")
    assert np.isfinite(fm.mosaic_item.image).all()


def test_pickled_model_asks_for_trust_and_remembers_it(qtbot, window, tmp_path):
    from visualizer.core.architectures import build_model
    from visualizer.core.checkpoint import TrustStore

    path = tmp_path / "whole_model.pt"
    torch.save(build_model("lenet5", in_channels=1, num_classes=10, input_size=32), path)
    asked = []
    window.controller.ask_trust = lambda req: asked.append(req) or False
    window.open_path(str(path))
    qtbot.waitUntil(lambda: len(asked) == 1, timeout=WAIT)
    assert window.session.model.source != str(path)  # refused: still the sample
    window.controller.ask_trust = lambda req: asked.append(req) or True   # trusted once, not remembered
    window.controller.offer_safetensors = lambda source: None
    window.open_path(str(path))
    qtbot.waitUntil(lambda: window.session.model.source == str(path), timeout=WAIT)
    assert window.session.model.trusted
    assert not TrustStore().is_trusted(asked[-1].info.sha256)
    assert str(path) in window.settings.recent_files()
    window.controller.open_sample()
    qtbot.waitUntil(lambda: window.session.model.source != str(path), timeout=WAIT)
    window.controller.ask_trust = lambda req: asked.append(req) or (True, True)  # "Remember this file"
    window.open_path(str(path))
    qtbot.waitUntil(lambda: window.session.model.source == str(path), timeout=WAIT)
    assert len(asked) == 3 and TrustStore().is_trusted(asked[-1].info.sha256)
    window.controller.open_sample()
    qtbot.waitUntil(lambda: window.session.model.source != str(path), timeout=WAIT)
    window.open_path(str(path))                      # remembered by hash: no question
    qtbot.waitUntil(lambda: window.session.model.source == str(path), timeout=WAIT)
    assert len(asked) == 3


def test_state_dict_asks_for_the_architecture(qtbot, window, tmp_path):
    from visualizer.core.architectures import build_model

    path = tmp_path / "weights.pth"
    torch.save(build_model("lenet5", in_channels=1, num_classes=10, input_size=32).state_dict(), path)
    window.controller.ask_model_spec = lambda p, info: {
        "arch": "lenet5", "arch_options": {"in_channels": 1, "num_classes": 10, "input_size": 32}}
    window.open_path(str(path))
    qtbot.waitUntil(lambda: window.session.model.source == str(path), timeout=WAIT)
    assert window.session.model.arch == "lenet5"


def test_exports_png_svg_and_csv(qtbot, window, tmp_path):
    start(qtbot, window)
    qtbot.waitUntil(lambda: window.session.latest_training.step >= 3, timeout=WAIT)
    stop(qtbot, window)
    fm = window.current_view
    assert window.export_view(fm, "png", str(tmp_path / "v.png"))
    assert window.export_view(fm, "svg", str(tmp_path / "v.svg"))
    assert window.export_view(window.curves, "csv", str(tmp_path / "curves.csv"))
    assert (tmp_path / "v.png").stat().st_size > 1000
    assert "<svg" in (tmp_path / "v.svg").read_text()[:2000]
    assert len((tmp_path / "curves.csv").read_text().splitlines()) > 2
    grads = next(v for v in window.views if type(v).__name__ == "GradientView")
    assert window.export_view(grads, "csv", str(tmp_path / "gradients.csv"))
    assert len((tmp_path / "gradients.csv").read_text().splitlines()) > 2


def test_layout_theme_and_choices_persist(qtbot, settings):
    w = open_window(qtbot, settings)
    curves_dock = w.view_docks[w.curves]
    curves_dock.hide()
    w.set_theme("light")
    w.training_panel.batch_size.setValue(17)
    w.close()
    assert settings.window_state() is not None and settings.theme == "light"
    again = MainWindow(Settings(settings.path), controller=Controller(Settings(settings.path)))
    qtbot.addWidget(again)
    try:
        assert not again.view_docks[again.curves].isVisibleTo(again)
        assert again.training_panel.batch_size.value() == 17
        assert again.theme_actions["light"].isChecked()
    finally:
        again.close()


def test_a_layout_saved_with_other_docks_is_not_restored(qtbot, settings):
    # An upgrade adds views: the layout an older version saved, without their docks, must not place
    # them (Qt stacked them over the view tabs); the defaults are used, every view among the tabs.
    w = open_window(qtbot, settings)
    newer = ("StepByStepView", "CamView", "HealthView", "TopPatchesView")
    for view in [v for v in w.views if type(v).__name__ in newer]:   # an older window, without these
        dock = w.view_docks[view]
        w.removeDockWidget(dock)
        dock.setParent(None)
        dock.deleteLater()
    w.view_docks[w.curves].hide()
    older = w.saveState(w.layout_version())
    w.close()
    settings.save_window(w.saveGeometry(), older)
    settings.sync()
    again = MainWindow(Settings(settings.path), controller=Controller(Settings(settings.path)))
    qtbot.addWidget(again)
    again.resize(1280, 720)
    again.show()
    try:
        assert not again.dock_sizes.restored
        assert again.view_docks[again.curves].isVisibleTo(again)
        first = again.view_docks[again.views[1]]            # the first tab (views[0] is the overview strip)
        tabbed = set(again.tabifiedDockWidgets(first)) | {first}
        tab_views = [v for v in again.views if v not in (again.overview, again.curves)]
        assert {again.view_docks[v] for v in tab_views} <= tabbed
    finally:
        again.close()


def test_the_views_get_the_width_and_keep_it_when_the_window_grows(qtbot, settings):
    # Side panels at their default widths, the views' column the widest; a bigger window
    # (maximised on a projector) widens the views, the panels keep the width the user gave them.
    w = MainWindow(settings, controller=Controller(settings))
    qtbot.addWidget(w)
    w.resize(1500, 900)
    w.show()
    views = w.view_docks[w.current_view]
    qtbot.waitUntil(lambda: w.dock_sizes.side_widths is not None, timeout=5000)
    assert views.width() > max(w.layers_dock.width(), w.training_dock.width()) * 2
    assert 260 <= w.layers_dock.width() <= 400 and 290 <= w.training_dock.width() <= 420
    default, right = w.layers_dock.width(), w.training_dock.width()
    w.resizeDocks([w.layers_dock, views, w.training_dock], [380, w.width() - 380 - right, right],
                  Qt.Orientation.Horizontal)   # the user drags a panel wider
    qtbot.waitUntil(lambda: w.layers_dock.width() > default + 30, timeout=5000)
    qtbot.wait(50)
    left, right, middle = w.layers_dock.width(), w.training_dock.width(), views.width()
    w.resize(1900, 1000)
    qtbot.waitUntil(lambda: views.width() > middle + 300, timeout=5000)
    assert abs(w.layers_dock.width() - left) < 8 and abs(w.training_dock.width() - right) < 8
    w.resize(1500, 900)
    w.reset_layout()
    qtbot.waitUntil(lambda: abs(w.layers_dock.width() - default) < 8, timeout=5000)
    w.close()


def test_training_does_not_re_lay_out_the_window_every_frame(qtbot, window):
    # Every re-layout of the main window moved the side panels' separators a few pixels and
    # repainted whole panels: at 30 snapshots a second that was most of a frame.
    from PyQt6.QtCore import QEvent, QObject

    class Count(QObject):
        n = 0

        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.LayoutRequest:
                Count.n += 1
            return False

    start(qtbot, window)
    qtbot.wait(500)
    widths = (window.layers_dock.width(), window.training_dock.width())
    counter = Count()
    window.installEventFilter(counter)
    first = window.session.latest_training.step
    qtbot.waitUntil(lambda: window.session.latest_training.step > first + 20, timeout=WAIT)
    qtbot.wait(1000)
    window.removeEventFilter(counter)
    window.controller.stop()
    assert Count.n <= 3, Count.n
    assert (window.layers_dock.width(), window.training_dock.width()) == widths


def test_open_image_as_input_shows_a_note(qtbot, window, tmp_path):
    from PIL import Image

    rgb = np.zeros((60, 90, 3), np.uint8)
    rgb[10:50, 40:50] = 255
    Image.fromarray(rgb).save(tmp_path / "bar.png")
    before = window.session.latest_probe
    assert window.open_path(str(tmp_path / "bar.png"))  # images go to the input, not the model
    qtbot.waitUntil(lambda: window.session.latest_probe is not before, timeout=WAIT)
    assert window.session.latest_probe.input_image.shape == window.session.model.input_shape
    assert "bar.png" in window.input_panel.note_label.text()
    assert window.session.model.arch == "lenet5"


def test_drop_a_model_file_opens_it(qtbot, window, tmp_path):
    from PyQt6.QtCore import QMimeData, QPointF, QUrl
    from PyQt6.QtGui import QDropEvent

    from visualizer.core.architectures import build_model
    from visualizer.core.checkpoint import save_checkpoint
    from visualizer.core.model_bundle import ModelBundle

    path = tmp_path / "dropped.pt"
    model = build_model("lenet5", in_channels=1, num_classes=10, input_size=32)
    save_checkpoint(path, ModelBundle(model, (1, 32, 32), tuple(str(i) for i in range(10)), arch="lenet5",
                                      arch_options={"in_channels": 1, "num_classes": 10, "input_size": 32}))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.session.model.source == str(path), timeout=WAIT)
    window._fill_recent()
    assert str(path) in [a.text() for a in window.recent_menu.actions()]


def test_presentation_mode_and_shortcut_list(qtbot, window):
    window.set_theme("light")
    window.act_presentation.trigger()
    assert window.theme_actions["high_contrast"].isChecked()
    assert all(v._presentation for v in window.views)
    window.act_presentation.trigger()
    assert window.theme_actions["light"].isChecked()
    assert not any(v._presentation for v in window.views)
    from visualizer.gui.dialogs import ShortcutsDialog
    dlg = ShortcutsDialog(window.shortcut_actions, window)
    keys = {dlg.table.item(r, 1).text() for r in range(dlg.table.rowCount())}
    assert {"Space", "F11", "Ctrl+O"} <= keys


def test_uncaught_exceptions_become_messages(qtbot, window):
    import sys
    import threading

    from visualizer.gui.app import install_exception_hooks

    saved = sys.excepthook, threading.excepthook
    try:
        install_exception_hooks(lambda: window)
        try:
            raise KeyError("from a slot")
        except KeyError:
            sys.excepthook(*sys.exc_info())
        qtbot.waitUntil(lambda: window.last_message is not None, timeout=WAIT)
        assert "from a slot" in window.last_message[1]
        window.last_message = None
        t = threading.Thread(target=lambda: 1 / 0)
        t.start()
        t.join()
        qtbot.waitUntil(lambda: window.last_message is not None, timeout=WAIT)
        assert "ZeroDivisionError" in window.last_message[1]
    finally:
        sys.excepthook, threading.excepthook = saved


def test_learning_rate_changes_while_training_and_save_and_reset(qtbot, window, tmp_path):
    start(qtbot, window)
    window.training_panel.lr.setValue(0.05)  # the one knob that works live
    qtbot.waitUntil(lambda: abs(window.session.latest_training.lr - 0.05) < 1e-9, timeout=WAIT)
    path = tmp_path / "saved.pt"
    with qtbot.waitSignal(window.controller.saved, timeout=WAIT):
        window.controller.save(str(path))  # between two steps, training goes on
    stop(qtbot, window)
    from visualizer.core.checkpoint import load_model
    assert load_model(path).arch == "lenet5"

    before = window.session.latest_probe.probabilities
    with qtbot.waitSignal(window.controller.notice, timeout=WAIT, check_params_cb=lambda t: "reset" in t):
        window.controller.reset_weights()
    qtbot.waitUntil(lambda: not np.allclose(window.session.latest_probe.probabilities, before), timeout=WAIT)


def test_a_completed_run_shows_its_last_step_and_full_progress(qtbot, window):
    with qtbot.waitSignal(window.controller.run_ended, timeout=60_000) as sig:
        window.controller.start_training(TrainConfig(epochs=1, batch_size=32))
    assert sig.args[0].reason == "completed"
    assert window.status_step.text() == f"Step {sig.args[0].step}"
    assert window.progress.value() == window.progress.maximum()
    assert window.training_panel.state() == STOPPED


def test_slow_motion_speed_changes_while_training(qtbot, window):
    from dataclasses import replace
    start(qtbot, window, replace(SHORT, max_steps_per_sec=5.0))
    panel = window.training_panel
    panel.speed.setCurrentIndex(panel.speed.findData(0.0))       # back to full speed, live
    step0 = window.session.latest_training.step
    qtbot.waitUntil(lambda: window.session.latest_training.step > step0 + 50, timeout=WAIT)
    panel.speed.setCurrentIndex(panel.speed.findData(2.0))       # slow motion, live
    qtbot.waitUntil(lambda: window.controller.worker.service._control._speed == 2.0, timeout=WAIT)
    stop(qtbot, window)


def test_a_probe_replaced_by_a_new_model_is_still_acknowledged(qtbot, window, monkeypatch):
    """A probe the views had no time to draw before a new model arrived must be acknowledged, or idle
    probing stops for good (the engine waits for it)."""
    c = window.controller
    acks = []
    monkeypatch.setattr(c.worker, "probe_consumed", lambda: acks.append("probe"))
    c._on_probe(window.session.latest_probe)        # delivered, not yet drawn
    c._on_model_loaded(window.session.model)        # a new model replaces it at once
    qtbot.waitUntil(lambda: acks == ["probe"], timeout=WAIT)


def test_a_failed_save_during_training_leaves_it_running(qtbot, window, tmp_path):
    start(qtbot, window)
    window.controller.save(str(tmp_path / "no_such_folder" / "model.pt"))
    qtbot.waitUntil(lambda: window.last_message is not None, timeout=WAIT)
    assert window.last_message[0] == "error" and "model.pt" in window.last_message[1]
    assert window.session.training_state == RUNNING
    assert window.training_panel.state() == RUNNING
    step0 = window.session.latest_training.step
    qtbot.waitUntil(lambda: window.session.latest_training.step > step0 + 3, timeout=WAIT)  # it goes on
    stop(qtbot, window)


def test_a_killed_worker_process_is_reported_and_restarted(qtbot, settings):
    import os
    import signal

    c = Controller(settings, sample_limit=LIMIT, process=True)
    messages: list = []
    c.message.connect(lambda level, text: messages.append((level, text)))
    c.start()
    try:
        c.open_sample()
        qtbot.waitUntil(lambda: c.session.model is not None and c.data is not None, timeout=60_000)
        c.start_training(SHORT)
        qtbot.waitUntil(lambda: c.session.latest_training is not None, timeout=WAIT)
        with qtbot.waitSignal(c.session.model_changed, timeout=60_000):  # reopened in a fresh process
            os.kill(c.worker.pid, signal.SIGKILL)
        assert any(level == "error" and "stopped unexpectedly" in text and "exit code -9" in text
                   for level, text in messages), messages
        assert c.session.training_state == STOPPED and c.worker.is_running()
        assert c.session.model.arch == "lenet5"
        qtbot.waitUntil(lambda: c.data is not None, timeout=WAIT)
        c.start_training(SHORT)  # and it trains again
        qtbot.waitUntil(lambda: c.session.latest_training is not None and c.session.latest_training.step > 2,
                        timeout=WAIT)
    finally:
        assert c.shutdown()
    assert not c.worker.is_running()


def test_trust_without_a_hash_is_refused(qtbot, settings, monkeypatch):
    from types import SimpleNamespace

    from visualizer.core.engine.messages import TrustRequest

    c = Controller(settings, sample_limit=LIMIT)
    try:
        loads: list = []
        messages: list = []
        monkeypatch.setattr(c.worker, "load_file", lambda path, **kw: loads.append((path, kw)))
        c.message.connect(lambda level, text: messages.append((level, text)))
        c.ask_trust = lambda req: True
        c._on_trust_required(TrustRequest("/somewhere/whole.pt", None, "needs trust"))
        assert loads == [] and messages and messages[0][0] == "error" and "whole.pt" in messages[0][1]
        c._on_trust_required(TrustRequest("/somewhere/whole.pt", SimpleNamespace(sha256="ab" * 32), "needs trust"))
        assert loads == [("/somewhere/whole.pt", {"trust": "ab" * 32})]  # the hash, never a bare True
    finally:
        assert c.shutdown()


def test_a_drawn_image_is_copied_before_it_crosses_to_the_worker(qtbot, settings, monkeypatch):
    c = Controller(settings, sample_limit=LIMIT)
    try:
        drawn = np.zeros((1, 32, 32), np.float32)
        drawn[0, 4:8, 4:8] = 1.0
        c.use_image(drawn)
        request = c.capture_request()
        drawn[:] = 0.5  # the pad keeps drawing into its own array
        assert request.probe_input is not drawn and not request.probe_input.flags.writeable
        assert request.probe_input.max() == 1.0 and request.probe_input[0, 0, 0] == 0.0
        seeds: list = []
        monkeypatch.setattr(c.worker, "reset_weights", lambda seed=None: seeds.append(seed))
        c.config_provider = lambda: TrainConfig(seed=5)
        c.reset_weights()
        assert seeds == [5]  # the training panel's seed
    finally:
        assert c.shutdown()


def _feature_map_draws(window) -> list:
    """Record every draw of the feature-map view, as the user would see it: (step, image)."""
    fm = next(v for v in window.views if type(v).__name__ == "FeatureMapView")
    draws: list = []
    original = fm._draw

    def recording_draw():
        original()
        step = fm._training.step if fm._training is not None else -1
        draws.append((step, np.array(fm.mosaic_item.image)))
    fm._draw = recording_draw
    return draws


def _assert_live(qtbot, window) -> None:
    """Training runs and, with no flush() or any other help, the feature maps redraw by themselves."""
    draws = _feature_map_draws(window)
    window.controller.start_training(SHORT)
    qtbot.waitUntil(lambda: len({s for s, _ in draws if s > 0}) >= 3, timeout=WAIT)
    window.controller.stop()
    live = [(s, img) for s, img in draws if s > 0]
    steps = [s for s, _ in live]
    assert steps == sorted(steps) and len(set(steps)) >= 3
    images = [img for _, img in live]
    assert any(not np.array_equal(images[0], img) for img in images[1:]), "the drawn maps never changed"


def test_views_redraw_by_themselves_while_training(qtbot, window):
    _assert_live(qtbot, window)


@pytest.mark.slow
def test_views_redraw_by_themselves_with_the_engine_in_a_child_process(qtbot, settings):
    controller = Controller(settings, sample_limit=LIMIT, process=True)
    w = MainWindow(settings, controller=controller)
    controller.ask_trust = lambda req: False
    controller.offer_safetensors = lambda source: None
    qtbot.addWidget(w)
    w.show()
    w.start()
    try:
        qtbot.waitUntil(lambda: w.session.model is not None and w.session.latest_probe is not None, timeout=60_000)
        _assert_live(qtbot, w)
    finally:
        w.close()
    assert not w.controller.worker.is_running()
