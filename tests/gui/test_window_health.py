"""The Health view in the real window (thread engine): live during training, and "Check now" on a
loaded model, on the shipped LeNet-5 and on it broken on purpose (C3's bias far negative: its ReLU
is dead). What is checked is what a user sees: the layer marked in the tree (dot, tooltip), the
status bar's line, the Health view's table."""
from __future__ import annotations

import pytest
from PyQt6.QtCore import Qt

from tests.gui.looking_window import (
    WAIT,
    StatusLog,
    dead_relu_lenet,
    open_bundle,
    open_window,
    sample_lenet,
    show_view,
    stop,
    view_of,
)
from visualizer.core.config import TrainConfig
from visualizer.core.health import DEAD
from visualizer.gui.session import RUNNING
from visualizer.gui.settings import Settings
from visualizer.gui.views.health import COLUMNS
from visualizer.gui.widgets.layer_tree import COL_NAME

# The app's snapshot pacing (30 Hz, 1% of training time); 128 samples a batch, so the 256 a dead-unit
# verdict needs are in after two measured steps. Long enough never to finish during a test.
LIVE = TrainConfig(epochs=10_000, batch_size=128)
FLAG_COL = COLUMNS.index("flag")


@pytest.fixture
def window(qtbot, tmp_path):
    w = open_window(qtbot, Settings(tmp_path / "settings.ini"))
    yield w
    w.close()
    assert not w.controller.worker.is_running()


def marks(w):
    return w.looking.health.marks.marked()


def flag_cell(view, layer: str) -> str:
    view.flush()
    row = [view.table.item(r, 0).text() for r in range(view.table.rowCount())].index(layer)
    return view.table.item(row, FLAG_COL).text()


def test_a_dead_relu_is_marked_in_the_tree_and_named_in_the_status_bar_while_training(qtbot, window):
    status = StatusLog(window)
    view = view_of(window, "Health")
    show_view(qtbot, window, view)
    open_bundle(qtbot, window, dead_relu_lenet())
    window.controller.start_training(LIVE)
    assert window.session.training_state == RUNNING
    qtbot.waitUntil(lambda: marks(window).get("C3_act", ())[:1] == (DEAD,), timeout=60_000)
    qtbot.waitUntil(lambda: bool(status.containing("C3_act: dead")), timeout=WAIT)
    line = status.containing("C3_act: dead")[0]
    assert "dead units 100% (> 50%)" in line and "LeakyReLU" in line
    item = window.layer_tree.item_for("C3_act")
    assert not item.icon(COL_NAME).isNull() and "dead: its units never fire" in item.toolTip(COL_NAME)
    assert "C1_act" not in marks(window) and "F6_act" not in marks(window)   # the ReLUs that do fire
    assert view.report.source == "training" and view.report.layer("C3_act").dead_fraction == 1.0
    assert flag_cell(view, "C3_act") == DEAD
    qtbot.wait(1500)   # more snapshots, the same flag: it is not announced again
    stop(qtbot, window)
    assert len(status.containing("C3_act: dead")) == 1


def test_training_the_healthy_lenet_marks_nothing(qtbot, window):
    status = StatusLog(window)
    view = view_of(window, "Health")
    show_view(qtbot, window, view)
    window.controller.start_training(LIVE)
    # Judged: gradients of many steps and activations of at least 256 training samples.
    qtbot.waitUntil(lambda: view.report is not None and view.report.samples >= 256
                    and window.session.latest_training is not None and window.session.latest_training.step >= 20,
                    timeout=60_000)
    stop(qtbot, window)
    assert marks(window) == {}
    assert view.report.flagged() == ()
    assert not [t for t in status.texts if any(f in t for f in ("dead", "vanishing", "exploding", "saturated",
                                                                "not learning"))]
    assert "no flags" in view.summary.text()


def test_check_now_on_a_loaded_model_marks_the_dead_relu_and_the_status_bar_names_it(qtbot, window):
    status = StatusLog(window)
    view = view_of(window, "Health")
    show_view(qtbot, window, view)
    open_bundle(qtbot, window, dead_relu_lenet())
    qtbot.mouseClick(view.check_button, Qt.MouseButton.LeftButton)
    assert not view.check_button.isEnabled()          # one check at a time
    qtbot.waitUntil(lambda: view.report is not None and view.check_button.isEnabled(), timeout=WAIT)
    assert view.report.source == "batch" and view.report.samples == 256
    assert marks(window)["C3_act"] == (DEAD,)
    line = status.containing("Health check:")[-1]
    assert "C3_act (dead)" in line and "LeakyReLU" in line
    assert flag_cell(view, "C3_act") == DEAD
    # The sample model opened again: the marks go with the old model's tree, a check finds nothing.
    window.controller.open_sample()
    qtbot.waitUntil(lambda: window.session.model.source and view.report is None, timeout=WAIT)
    assert marks(window) == {}
    qtbot.mouseClick(view.check_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.report is not None and view.check_button.isEnabled(), timeout=WAIT)
    assert marks(window) == {} and view.report.flagged() == ()
    assert "Health check: no flags" in status.texts[-1]


def test_check_now_during_training_answers_between_steps(qtbot, window):
    view = view_of(window, "Health")
    show_view(qtbot, window, view)
    open_bundle(qtbot, window, sample_lenet())
    window.controller.start_training(LIVE)
    qtbot.waitUntil(lambda: window.session.latest_training is not None, timeout=WAIT)
    view.check_button.click()
    qtbot.waitUntil(lambda: view.check_button.isEnabled() and view.check_button.text() == "Check now",
                    timeout=WAIT)
    assert window.session.training_state == RUNNING
    stop(qtbot, window)


def test_in_the_app_the_flags_cross_from_the_training_process(qtbot, tmp_path):
    """As the app runs (the engine in a child process): the broken model saved as a checkpoint, opened
    from the file, trained; its flag reaches the window's tree and status bar as plain records."""
    from visualizer.core.checkpoint import save_checkpoint
    from visualizer.gui.controller import Controller
    from visualizer.gui.main_window import MainWindow

    path = tmp_path / "dead_relu.pt"
    save_checkpoint(path, dead_relu_lenet())
    settings = Settings(tmp_path / "settings.ini")
    controller = Controller(settings, sample_limit=600, process=True)
    w = MainWindow(settings, controller=controller)
    qtbot.addWidget(w)
    try:
        w.show()
        w.start(str(path))
        status = StatusLog(w)
        qtbot.waitUntil(lambda: w.session.model is not None and w.session.model.source == str(path), timeout=60_000)
        w.controller.start_training(LIVE)
        qtbot.waitUntil(lambda: marks(w).get("C3_act", ())[:1] == (DEAD,), timeout=60_000)
        qtbot.waitUntil(lambda: bool(status.containing("C3_act: dead")), timeout=WAIT)
        stop(qtbot, w)
    finally:
        w.close()
    assert not w.controller.worker.is_running()
