"""Each lesson, opened in the real window (thread engine): the model, options, data, speed, the view in
front, the layer and its highlight, and the explanation panel are what the lesson says; variants,
lesson files and a lesson opened while training."""
from __future__ import annotations

import os
import time

import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QApplication

from tests.gui.test_main_window import LIMIT, open_window
from visualizer.core.lesson_catalog import LESSONS, LESSONS_BY_NAME
from visualizer.core.lessons import SAMPLE, VIEW_KEYS, read_lesson, write_lesson
from visualizer.gui.controller import Controller
from visualizer.gui.lesson_runner import find_view, highlighted_layers
from visualizer.gui.main_window import MainWindow
from visualizer.gui.session import PAUSED, RUNNING, STOPPED
from visualizer.gui.settings import Settings

WAIT = 60.0
TRAIN_KEYS = ("epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "schedule", "seed",
              "max_steps_per_sec", "clip_enabled")


def wait_until(cond, timeout: float = WAIT) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        QApplication.processEvents()
        if cond():
            return
        time.sleep(0.01)
    assert cond(), "timed out"


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory):
    """One window for all the lessons (opening them one after another, as a lecturer does)."""
    folder = tmp_path_factory.mktemp("lessons-window")
    old = os.environ.get("CNN_VISUALIZER_CONFIG_DIR")
    os.environ["CNN_VISUALIZER_CONFIG_DIR"] = str(folder)
    settings = Settings(folder / "settings.ini")
    w = MainWindow(settings, controller=Controller(settings, sample_limit=LIMIT))
    w.controller.ask_trust = lambda req: False
    w.controller.ask_model_spec = lambda path, info: None
    w.controller.offer_safetensors = lambda source: None
    w.start_flow.ask = lambda model, offer_only: "continue"
    w.resize(1600, 1000)
    w.show()
    w.start()
    wait_until(lambda: w.session.model is not None and w.session.latest_probe is not None)
    yield w
    w.close()
    w.deleteLater()
    assert not w.controller.worker.is_running()
    if old is None:
        os.environ.pop("CNN_VISUALIZER_CONFIG_DIR", None)
    else:
        os.environ["CNN_VISUALIZER_CONFIG_DIR"] = old


def opened(w, lesson, variant=None) -> None:
    """Wait until the lesson's model is open, with its data, layer and highlight in place."""
    def done():
        model = w.session.model
        data = w.controller.data
        layer = lesson.selected_layer(variant)
        return (model is not None and not w.lesson_runner.pending and w.lesson_runner.matches(model)
                and data is not None
                and data.spec == lesson.dataset and (not layer or w.session.layer == layer)
                and (not lesson.highlight or bool(w.layer_tree.highlighted())))
    wait_until(done)


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda les: les.name)
def test_each_lesson_sets_what_it_says(window, lesson):
    w = window
    w.lesson_runner.open(lesson)
    opened(w, lesson)
    model = w.session.model
    # the model
    assert model.arch == lesson.arch()
    if lesson.model == SAMPLE:
        assert os.path.basename(model.source) == "lenet5_mnist.pt"
    else:
        assert model.source is None     # built here: fresh weights
        have = dict(model.arch_options)
        assert all(have[k] == v for k, v in lesson.model_options().items())
    # the data
    data = w.controller.data
    assert data.spec == lesson.dataset
    assert data.n_train + data.n_val == (lesson.limit or LIMIT)
    # the training settings, as the panel shows them and as a run would use them
    values = w.training_panel.values()
    want = lesson.panel_values()
    for key in TRAIN_KEYS + ("activation", "pooling", "batchnorm", "dropout", "width", "rotation"):
        assert values[key] == pytest.approx(want[key]) if isinstance(want[key], float) else values[key] == want[key], key
    speed = lesson.train_config().max_steps_per_sec
    assert w.training_panel.speed.currentData() == speed
    assert w.training_config().max_steps_per_sec == speed and w.training_config().lr == pytest.approx(want["lr"])
    # the view in front, the layer and the highlighted block
    front = find_view(w, lesson.front)
    assert front.isVisible() and not front.visibleRegion().isEmpty()
    if lesson.layer:
        assert w.session.layer == lesson.layer and w.layer_tree.current_layer() == lesson.layer
    marked = highlighted_layers(model.info, lesson.highlight)
    assert w.layer_tree.highlighted() == tuple(marked)
    if lesson.highlight:
        assert marked and w.layer_tree.item_for(marked[0]).font(0).bold()
    if lesson.filter_mode:
        assert find_view(w, "filters").mode.currentText() == lesson.filter_mode
    # the explanation
    panel = w.lesson_panel
    assert w.lesson_dock.isVisible() and lesson.title in w.lesson_dock.windowTitle()
    assert panel.text.text() == lesson.text and lesson.title in panel.heading.text()
    assert panel.formula.isVisibleTo(panel) == bool(lesson.formula)
    assert sorted(panel.buttons) == sorted(v.title for v in lesson.variants)
    assert w.presentation_bar.lesson.currentData() == lesson.name


def test_a_variant_rebuilds_with_its_change_and_a_layer_variant_only_selects(window):
    w = window
    les = LESSONS_BY_NAME["max_vs_average_pooling"]
    w.lesson_runner.open(les)
    opened(w, les)
    wait_until(lambda: w.session.latest_probe is not None and w.session.latest_probe.layer("S2") is not None)
    pooling = find_view(w, "pooling")
    pooling.flush()
    assert "max 2×2" in pooling.geometry_text()
    w.lesson_panel.buttons["Average pooling"].click()
    variant = les.variant("Average pooling")
    wait_until(lambda: dict(w.session.model.arch_options).get("pooling") == "avg"
               and w.session.layer == "S2" and w.session.latest_probe is not None
               and w.session.latest_probe.layer("S2") is not None
               and w.session.latest_probe.layer("S2").pool.mode == "avg")
    pooling.flush()
    assert "avg 2×2" in pooling.geometry_text() and w.lesson_panel.current_variant() == variant.title
    assert w.training_panel.pooling.currentData() == "avg"

    conv = LESSONS_BY_NAME["convolution_step_by_step"]
    w.lesson_runner.open(conv)
    opened(w, conv)
    model = w.session.model
    w.lesson_panel.buttons["C3: across 6 channels"].click()
    wait_until(lambda: w.session.layer == "C3")
    assert w.session.model is model      # nothing was rebuilt for a layer


def test_a_lesson_opened_while_training_stops_the_run_first_and_can_start_its_own(window):
    w = window
    w.lesson_runner.open(LESSONS_BY_NAME["minibatch_sgd"])
    opened(w, LESSONS_BY_NAME["minibatch_sgd"])
    w.controller.start_training(w.training_config())
    wait_until(lambda: w.session.latest_training is not None)
    watch = LESSONS_BY_NAME["watch_lenet5_learn"]
    w.lesson_runner.open(watch, start=True)
    opened(w, watch)
    wait_until(lambda: w.session.training_state == RUNNING and w.session.latest_training is not None
               and abs(w.session.latest_training.lr - 0.003) < 1e-12)
    assert w.status_lr.text() == "LR 0.003"
    w.controller.stop()
    wait_until(lambda: w.session.training_state == STOPPED)


def test_a_saved_lesson_reopens_as_it_was(window, tmp_path):
    w = window
    les = LESSONS_BY_NAME["overfitting"]
    w.lesson_runner.open(les)
    opened(w, les)
    w.lesson_panel.buttons["+ dropout"].click()
    wait_until(lambda: dict(w.session.model.arch_options).get("dropout") == 0.5)
    w.training_panel.lr.setValue(0.002)
    w.controller.select_layer("C3")
    saved = w.lessons_menu.current_lesson("Friday: overfitting")
    path = tmp_path / "friday.lesson.json"
    assert w.lessons_menu.save_file(str(path), saved)
    # something else, then the file
    w.lesson_runner.open(LESSONS_BY_NAME["class_activation_maps"])
    opened(w, LESSONS_BY_NAME["class_activation_maps"])
    back = w.lessons_menu.open_file(str(path))
    assert back == saved
    opened(w, back)
    values = w.training_panel.values()
    assert values["dropout"] == 0.5 and values["lr"] == pytest.approx(0.002) and w.session.layer == "C3"
    assert w.controller.data.n_train + w.controller.data.n_val == 600
    assert w.lesson_panel.text.text() == les.text and "Friday: overfitting" in w.lesson_dock.windowTitle()


def test_a_bad_lesson_file_is_said_and_changes_nothing(window, tmp_path):
    w = window
    model, lesson = w.session.model, w.lesson_runner.lesson
    bad = tmp_path / "bad.lesson.json"
    bad.write_text('{"format": "cnn-visualizer-lesson", "version": 1, "name": "x", "title": "X", '
                   '"text": "Run my code.", "model": "/tmp/evil.py:Net"}')
    w.last_message = None
    assert w.lessons_menu.open_file(str(bad)) is None
    level, text = w.last_message
    assert level == "error" and "bad.lesson.json" in text and "model" in text
    assert w.session.model is model and w.lesson_runner.lesson is lesson
    for box in list(w._messages):
        box.close()


def test_a_lesson_from_a_file_with_every_field(window, tmp_path):
    w = window
    les = LESSONS_BY_NAME["vanishing_gradients"]
    path = tmp_path / "v.lesson.json"
    write_lesson(path, les)
    assert w.lessons_menu.open_file(str(path)) == les
    opened(w, les)
    assert w.session.model.arch == "plain18" and dict(w.session.model.arch_options)["activation"] == "sigmoid"


def test_lessons_menu_lists_every_lesson(qtbot, settings):
    w = open_window(qtbot, settings)
    try:
        titles = [a.text() for a in w.lessons_menu.menu.actions()]
        assert titles[0] == "Watch LeNet-5 learn"
        for les in LESSONS:
            assert les.name in w.lessons_menu.lesson_actions
        assert "Classic architectures" in titles
        assert w.lessons_menu.act_open.shortcut().toString() == "Ctrl+L"
    finally:
        w.close()


@pytest.fixture
def settings(tmp_path):
    return Settings(tmp_path / "settings.ini")


USER_MODEL = """
import torch.nn as nn


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        return self.fc(self.pool(self.conv(x).relu()).flatten(1))
"""


def test_the_training_panel_names_the_model_actually_open(qtbot, settings, tmp_path):
    w = open_window(qtbot, settings)
    panel = w.training_panel
    try:
        assert panel.model_note.text() == "Open: LeNet-5 from lenet5_mnist.pt, trained 12 epochs, 98.7% held out"
        assert panel.arch.currentText() == "LeNet-5"
        path = tmp_path / "tiny_net.py"
        path.write_text(USER_MODEL)
        w.open_path(f"{path}:TinyNet")
        qtbot.waitUntil(lambda: w.session.model.arch == f"{path}:TinyNet", timeout=20_000)
        assert panel.arch.currentText() == "tiny_net.py:TinyNet"          # not "LeNet-5"
        assert "your model tiny_net.py:TinyNet" in panel.model_note.text()
        assert not panel.activation.isEnabled() and not panel.width.isEnabled()   # built-in options only
        assert panel.values()["arch"] == "lenet5"        # a file's model is not a choice to restore next time
        model = w.session.model
        panel.batch_size.setValue(16)                    # a change that builds nothing
        panel.dropout.setValue(0.3)                      # greyed out, but set by a program: still nothing
        qtbot.wait(300)
        assert w.session.model is model and w.last_message is None
        panel.arch.setCurrentIndex(panel.arch.findData("simplecnn"))    # a built-in one is built again
        qtbot.waitUntil(lambda: w.session.model.arch == "simplecnn", timeout=20_000)
        assert panel.arch.findData("__open__:" + str(path) + ":TinyNet") < 0
        assert panel.model_note.text() == "Open: SimpleCNN, fresh weights" and panel.activation.isEnabled()
    finally:
        w.close()


def test_a_lesson_chosen_on_the_projector_sits_beside_the_views_and_stays_after(window):
    # In presentation mode the explanation goes beside the views (not above them); leaving
    # presentation mode brings back the layout from before, with this lesson's explanation shown.
    w = window
    w.lesson_dock.hide()
    w.set_presentation(True)
    try:
        les = LESSONS_BY_NAME["max_vs_average_pooling"]
        w.presentation_bar.lesson.setCurrentIndex(w.presentation_bar.lesson.findData(les.name))
        w.presentation_bar.lesson.activated.emit(w.presentation_bar.lesson.currentIndex())
        opened(w, les)
        wait_until(lambda: w.dockWidgetArea(w.lesson_dock) == Qt.DockWidgetArea.RightDockWidgetArea
                   and w.lesson_dock.isVisible(), 10)
        views = w.view_docks[w.current_view]
        assert w.lesson_dock.geometry().left() >= views.geometry().right()
    finally:
        w.set_presentation(False)
    wait_until(lambda: w.lesson_dock.isVisible(), 10)
    assert w.dockWidgetArea(w.lesson_dock) == Qt.DockWidgetArea.TopDockWidgetArea


def test_save_lesson_adds_the_suffix_and_asks_before_replacing_that_file(window, tmp_path, monkeypatch):
    """The save dialog asked about the name typed; the file written has the lesson suffix, and an
    existing file of that name is replaced only when the user says so."""
    from PyQt6.QtWidgets import QFileDialog, QInputDialog, QMessageBox
    w = window
    les = LESSONS_BY_NAME["overfitting"]
    w.lesson_runner.open(les)
    opened(w, les)
    typed = tmp_path / "tuesday"
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("Tuesday", True)))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(typed), "")))
    asked = []

    def answer(reply):
        def question(*a, **k):
            asked.append(a[2])
            return reply
        monkeypatch.setattr(QMessageBox, "question", staticmethod(question))

    answer(QMessageBox.StandardButton.No)
    w.lessons_menu.save_dialog()
    written = tmp_path / "tuesday.lesson.json"
    assert not typed.exists() and read_lesson(str(written)).title == "Tuesday" and asked == []
    written.write_text("kept")                         # now it exists: No leaves it alone
    w.lessons_menu.save_dialog()
    assert written.read_text() == "kept" and asked == [f"{written} exists. Replace it?"]
    answer(QMessageBox.StandardButton.Yes)
    w.lessons_menu.save_dialog()
    assert read_lesson(str(written)).title == "Tuesday"


def test_a_variant_does_not_restart_a_paused_run(window):
    """The variant rebuilds the model, so the paused run ends (stopped); it must not go on running."""
    w = window
    les = LESSONS_BY_NAME["max_vs_average_pooling"]
    w.lesson_runner.open(les)
    opened(w, les)
    w.controller.start_training(w.training_config())
    wait_until(lambda: w.session.latest_training is not None and w.session.training_state == RUNNING)
    w.controller.pause()
    wait_until(lambda: w.session.training_state == PAUSED)
    w.lesson_panel.buttons["Average pooling"].click()
    wait_until(lambda: dict(w.session.model.arch_options).get("pooling") == "avg")
    end = time.monotonic() + 2.0            # long enough for a wrongly started run to say so
    while time.monotonic() < end:
        QApplication.processEvents()
        assert w.session.training_state != RUNNING, "the variant started the paused run again"
        time.sleep(0.02)
    assert w.session.training_state == STOPPED


def test_every_view_a_lesson_can_bring_to_the_front_is_in_the_window(window):
    keys = [v.lesson_key for v in window.views if v.lesson_key is not None]
    assert sorted(keys) == sorted(VIEW_KEYS)          # each once
