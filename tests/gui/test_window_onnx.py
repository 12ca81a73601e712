"""ONNX models in the real window (thread engine): the shipped LeNet-5 exported with
torch.onnx.export(dynamo=True) opens through File › Open, drag and drop, Open Recent and the
command line's path; its layer table, feature maps, pooling, activations and prediction show as
for a PyTorch model (and agree with PyTorch on the same input); training is not offered and says
why; a refused file or a missing [onnx] extra gives one message naming the file, and the model
shown before stays."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl
from PyQt6.QtGui import QDropEvent

from tests.extras import require
from tests.gui.looking_window import WAIT, open_window, sample_lenet, show_view, view_of
from visualizer.core.onnx import TRAINING_REFUSAL
from visualizer.gui.session import STOPPED
from visualizer.gui.settings import Settings
from visualizer.gui.window_files import MODEL_FILTER

require("onnxruntime", "onnx")
require("onnxscript", "onnx")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(the PyTorch LeNet-5, its ONNX file)."""
    model = sample_lenet().model.eval()
    path = tmp_path_factory.mktemp("onnx") / "lenet5.onnx"
    torch.onnx.export(model, (torch.zeros(1, 1, 32, 32),), str(path), dynamo=True, verbose=False)
    return model, path


@pytest.fixture
def window(qtbot, tmp_path):
    w = open_window(qtbot, Settings(tmp_path / "settings.ini"))
    yield w
    w.close()
    assert not w.controller.worker.is_running()


def wait_opened(qtbot, w, path) -> None:
    qtbot.waitUntil(lambda: w.session.model.source == str(path) and w.session.latest_probe is not None
                    and w.session.latest_probe.layers and w.session.latest_probe.layers[0].name
                    in w.layer_tree.layer_names(), timeout=WAIT)


def test_an_exported_model_shows_as_a_pytorch_model_and_agrees_with_it(qtbot, window, exported):
    model, path = exported
    assert "*.onnx" in MODEL_FILTER and "*.ckpt" in MODEL_FILTER        # File › Open lists them
    assert window.open_path(str(path))                                  # what File › Open does with the choice
    wait_opened(qtbot, window, path)
    m = window.session.model
    assert m.arch == "onnx" and m.training_refusal
    names = window.layer_tree.layer_names()
    assert names == [layer.name for layer in m.info.layers]
    kinds = [layer.kind for layer in m.info.layers]
    assert kinds.count("conv") == 3 and kinds.count("pool") == 2 and kinds.count("linear") == 2
    assert kinds.count("activation") == 4
    assert "lenet5.onnx" in window.status_model.text() and "lenet5.onnx" in window.windowTitle()

    probe = window.session.latest_probe
    # The same image through PyTorch (the ONNX file assumes mean 0, std 1: the loader says so).
    x = torch.from_numpy(np.array(probe.input_image)).unsqueeze(0)
    with torch.no_grad():
        c1 = model.C1(x)[0].numpy()
        probs = torch.softmax(model(x), 1)[0].numpy()
    np.testing.assert_allclose(probe.probabilities, probs, rtol=1e-4, atol=1e-6)
    k = int(np.argmax(probs))
    assert window.status_prediction.text() == f"Prediction: {k} ({100 * probs[k]:.0f}%)"

    conv = next(layer.name for layer in m.info.layers if layer.kind == "conv")
    window.controller.select_layer(conv)
    fm = view_of(window, "Feature maps")
    show_view(qtbot, window, fm)
    qtbot.waitUntil(lambda: window.session.latest_probe.layer(conv) is not None, timeout=WAIT)
    cap = window.session.latest_probe.layer(conv)
    np.testing.assert_allclose(cap.maps, c1, rtol=1e-4, atol=1e-5)
    fm.flush()
    assert fm.mosaic_item.image.shape[:2] == cap.mosaic.image.shape[:2] and len(cap.channels) == 6

    pool = next(layer.name for layer in m.info.layers if layer.kind == "pool")
    window.controller.select_layer(pool)
    pv = view_of(window, "Pooling")
    show_view(qtbot, window, pv)
    qtbot.waitUntil(lambda: window.session.latest_probe.layer(pool) is not None, timeout=WAIT)
    pv.flush()
    assert pv.stack.currentWidget() is pv.graphics and "max 2×2, stride 2" in pv.geometry_text()
    assert pv.winners.data.size > 0                                    # the winning positions are marked

    acts = window.session.latest_probe.activations
    assert [a.function for a in acts] == ["relu"] * 4
    filters = view_of(window, "Filters")
    show_view(qtbot, window, filters)
    filters.flush()
    # The kernels come with the snapshot that answers the latest request (a probe already on its way
    # when the pooling layer was chosen may carry none).
    qtbot.waitUntil(lambda: bool(window.session.latest_probe.filters), timeout=WAIT)
    fl = window.session.latest_probe.filters
    assert fl and np.array_equal(fl[0].weight, model.C1.weight.detach().numpy())   # from the initializers


def test_training_is_not_offered_and_says_why(qtbot, window, exported):
    _model, path = exported
    window.open_path(str(path))
    wait_opened(qtbot, window, path)
    panel = window.training_panel
    for b in (panel.start_button, panel.step_button, panel.reset_button, panel.save_button):
        assert not b.isEnabled() and "inspection only" in b.toolTip()
    assert not window.act_reset.isEnabled() and not window.act_save.isEnabled()
    health, patches = view_of(window, "Health"), view_of(window, "Top patches")
    assert not health.check_button.isEnabled() and "ONNX" in health.check_button.toolTip()
    assert not patches.search_button.isEnabled() and "ONNX" in patches.search_button.toolTip()
    window.act_run.trigger()                                            # Space, asked anyway
    assert window.last_message[0] == "warning"
    assert "Training is not available" in window.last_message[1] and TRAINING_REFUSAL in window.last_message[1]
    window.act_step.trigger()
    qtbot.wait(300)
    assert window.session.training_state == STOPPED and window.session.latest_training is None
    # Back to a PyTorch model: training is offered again.
    window.controller.open_sample()
    qtbot.waitUntil(lambda: window.session.model.arch == "lenet5", timeout=WAIT)
    assert panel.start_button.isEnabled() and "inspection only" not in panel.start_button.toolTip()
    assert window.act_save.isEnabled() and health.check_button.isEnabled()


def test_drag_and_drop_open_recent_and_the_command_line_path(qtbot, window, exported, tmp_path):
    _model, path = exported
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                      Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)
    wait_opened(qtbot, window, path)
    assert str(path) in window.settings.recent_files()
    window.controller.open_sample()
    qtbot.waitUntil(lambda: window.session.model.arch == "lenet5", timeout=WAIT)
    window._fill_recent()
    action = next(a for a in window.recent_menu.actions() if a.text() == str(path))
    action.trigger()
    wait_opened(qtbot, window, path)
    # `cnn-visualizer lenet5.onnx`: the app starts its window with the path (after the sample model).
    other = open_window(qtbot, Settings(tmp_path / "other.ini"), path=str(path))
    try:
        wait_opened(qtbot, other, path)
    finally:
        other.close()


def test_a_refused_file_and_a_missing_extra_each_give_one_message_naming_the_file(qtbot, window, tmp_path,
                                                                                    monkeypatch, exported):
    before = window.session.model
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"\x08\x07not a protobuf at all" * 50)
    boxes = len(window._messages)
    window.open_path(str(bad))
    qtbot.waitUntil(lambda: window.last_message is not None and "garbage.onnx" in window.last_message[1],
                    timeout=WAIT)
    assert window.last_message[0] == "error" and len(window._messages) == boxes + 1
    qtbot.wait(300)
    assert window.session.model is before                               # the model shown before stays

    _model, path = exported
    monkeypatch.setitem(sys.modules, "onnx", None)                      # as if the [onnx] extra were not installed
    window.open_path(str(path))
    qtbot.waitUntil(lambda: "cnn-visualizer[onnx]" in window.last_message[1], timeout=WAIT)
    assert str(path) in window.last_message[1] and len(window._messages) == boxes + 2
    qtbot.wait(300)
    assert window.session.model is before
