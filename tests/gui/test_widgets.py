"""LayerTree, DrawingPad, TrainingPanel and InputPanel, driven like a user would."""
from types import SimpleNamespace

import numpy as np
import pytest
from PyQt6.QtCore import QEvent, QObject, QPoint, Qt
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import QApplication, QHBoxLayout, QLabel, QWidget

from visualizer.gui.widgets import DrawingPad, InputPanel, LayerTree, ProbeInput, TrainingPanel
from visualizer.gui.widgets.layer_tree import COL_DETAIL, COL_KIND, COL_NAME, COL_PARAMS, COL_SHAPE
from visualizer.gui.widgets.live_text import LiveText
from visualizer.gui.widgets.log_spin_box import ladder_step
from visualizer.gui.widgets.mnist_preprocess import area_resize, mnist_center


def _layer(name, kind, shape, params, parent=None, functional=False, detail="", type_name="Conv2d"):
    return SimpleNamespace(name=name, kind=kind, type_name=type_name, output_shape=shape,
                           params=params, functional=functional, parent=parent, detail=detail,
                           activation=None, activation_params=())


def _info():
    return SimpleNamespace(layers=[
        _layer("features", "container", None, 0, type_name="Sequential"),
        _layer("features.0", "conv", (16, 10, 10), 1216, parent="features", detail="5x5, stride 1"),
        _layer("features.1", "activation", (16, 10, 10), 0, parent="features", type_name="ReLU"),
        _layer("relu_fn", "activation", (16, 10, 10), 0, functional=True, type_name="relu"),
        _layer("fc", "linear", (10,), 123456, type_name="Linear"),
    ], input_shape=(1, 28, 28), total_params=124672)


# -- LayerTree ---------------------------------------------------------------

@pytest.fixture
def tree(qtbot):
    t = LayerTree()
    qtbot.addWidget(t)
    t.set_model_info(_info())
    t.resize(600, 300)
    t.show()
    qtbot.waitExposed(t)
    return t


def test_layer_tree_hierarchy_and_columns(tree):
    assert tree.topLevelItemCount() == 3  # features, relu_fn, fc
    features = tree.item_for("features")
    assert features.childCount() == 2
    conv = tree.item_for("features.0")
    assert conv.parent() is features
    assert conv.text(COL_NAME) == "0"
    assert conv.text(COL_KIND) == "conv"
    assert not conv.icon(COL_KIND).isNull()
    assert conv.text(COL_SHAPE) == "16×10×10"
    assert conv.text(COL_DETAIL) == "5x5, stride 1"
    assert tree.item_for("fc").text(COL_PARAMS) == "123,456"
    assert tree.item_for("fc").text(COL_SHAPE) == "10"
    assert tree.item_for("relu_fn").font(COL_NAME).italic()
    assert not conv.font(COL_NAME).italic()


def test_layer_tree_click_and_arrow_keys_emit(tree, qtbot):
    conv = tree.item_for("features.0")
    rect = tree.visualItemRect(conv)
    with qtbot.waitSignal(tree.layer_selected, timeout=1000) as sig:
        QTest.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert sig.args == ["features.0"]
    tree.setFocus()
    with qtbot.waitSignal(tree.layer_selected, timeout=1000) as sig:
        QTest.keyClick(tree, Qt.Key.Key_Down)
    assert sig.args == ["features.1"]
    # Clicking the row that is already current still announces it.
    rect = tree.visualItemRect(tree.item_for("features.1"))
    with qtbot.waitSignal(tree.layer_selected, timeout=1000) as sig:
        QTest.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert sig.args == ["features.1"]


def test_layer_tree_select_is_silent_and_survives_rebuild(tree, qtbot):
    seen = []
    tree.layer_selected.connect(seen.append)
    assert tree.select("fc")
    assert tree.current_layer() == "fc"
    assert not tree.select("nope")
    assert tree.select("fc")
    tree.set_model_info(_info())  # same model rebuilt: selection kept
    assert tree.current_layer() == "fc"
    assert seen == []


def test_layer_tree_columns_widen_with_a_larger_font(tree):
    before = tree.columnWidth(COL_SHAPE)
    font = tree.font()
    font.setPointSizeF(font.pointSizeF() * 2)
    tree.setFont(font)
    assert tree.columnWidth(COL_SHAPE) > before * 1.5
    italic = tree.item_for("relu_fn").font(COL_NAME)
    assert italic.italic() and italic.pointSizeF() == pytest.approx(font.pointSizeF())


def test_layer_tree_orphan_parent_falls_back_to_dotted_prefix(qtbot):
    t = LayerTree()
    qtbot.addWidget(t)
    t.set_model_info(SimpleNamespace(layers=[
        _layer("block", "container", None, 0),
        _layer("block.conv", "conv", (4, 8, 8), 40, parent="block.missing"),
    ]))
    assert t.item_for("block.conv").parent() is t.item_for("block")


def test_layer_tree_detail_falls_back_to_activation(qtbot):
    t = LayerTree()
    qtbot.addWidget(t)
    act = _layer("act", "activation", (4,), 0, type_name="LeakyReLU")
    act.activation, act.activation_params = "leaky_relu", (("negative_slope", 0.01),)
    t.set_model_info(SimpleNamespace(layers=[act]))
    assert t.item_for("act").text(COL_DETAIL) == "leaky_relu(negative_slope=0.01)"


def test_layer_tree_shows_real_introspection(qtbot):
    import torch

    from visualizer.core import introspect
    nn, F = torch.nn, torch.nn.functional

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(1, 4, 3), nn.MaxPool2d(2))
            self.fc = nn.Linear(4 * 3 * 3, 10)

        def forward(self, x):
            x = F.relu(self.body(x))
            return self.fc(x.flatten(1))

    info = introspect.introspect(Tiny(), (1, 8, 8))
    t = LayerTree()
    qtbot.addWidget(t)
    t.set_model_info(info)
    assert t.layer_names() == [layer.name for layer in info.layers]
    for layer in info.layers:
        item = t.item_for(layer.name)
        assert item.font(COL_NAME).italic() == bool(layer.functional)
        if layer.parent in t.layer_names():
            assert item.parent() is t.item_for(layer.parent)
    assert any(layer.functional for layer in info.layers)
    conv = next(layer for layer in info.layers if layer.kind == "conv")
    assert t.item_for(conv.name).text(COL_SHAPE) == "4×6×6"
    assert t.item_for(conv.name).text(COL_PARAMS) == "40"


# -- DrawingPad --------------------------------------------------------------

@pytest.fixture
def pad(qtbot):
    p = DrawingPad(mnist_style=False)
    qtbot.addWidget(p)
    p.resize(300, 340)
    p.show()
    qtbot.waitExposed(p)
    return p


def _drag(canvas, points):
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, pos=points[0])
    for pt in points[1:]:
        QTest.mouseMove(canvas, pt)
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=points[-1])


def _canvas_point(pad, fx, fy):
    r = pad.canvas.target_rect()
    return QPoint(int(r.x() + fx * r.width()), int(r.y() + fy * r.height()))


def test_drawing_emits_ink_where_drawn(pad, qtbot):
    seen = []
    pad.drawing_changed.connect(seen.append)
    # A horizontal stroke across the top-left quarter.
    pts = [_canvas_point(pad, 0.1 + 0.03 * i, 0.2) for i in range(11)]
    with qtbot.waitSignal(pad.drawing_changed, timeout=1000):
        _drag(pad.canvas, pts)
    img = seen[-1]
    assert img.shape == (28, 28) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    assert img[5:7, 4:11].mean() > 0.5          # under the stroke (row 0.2*28 = 5.6)
    assert img[14:, :].max() == 0.0             # the bottom half stays black
    assert img[:, 20:].max() == 0.0             # and the right side
    pad.clear()
    assert pad.is_empty()
    assert pad.current_image().max() == 0.0


def test_right_click_clears(pad):
    _drag(pad.canvas, [_canvas_point(pad, 0.5, 0.5), _canvas_point(pad, 0.6, 0.6)])
    assert pad.current_image().max() > 0
    QTest.mouseClick(pad.canvas, Qt.MouseButton.RightButton, pos=_canvas_point(pad, 0.5, 0.5))
    assert pad.current_image().max() == 0.0
    _drag(pad.canvas, [_canvas_point(pad, 0.5, 0.5), _canvas_point(pad, 0.6, 0.6)])
    pad.clear_button.click()
    assert pad.is_empty()


def test_drawing_is_throttled_and_release_always_emits(pad):
    seen = []
    pad.drawing_changed.connect(seen.append)
    pad._clock = lambda: 100.0  # frozen time: every move after the first is "too soon"
    pts = [_canvas_point(pad, 0.2 + 0.02 * i, 0.5) for i in range(20)]
    QTest.mousePress(pad.canvas, Qt.MouseButton.LeftButton, pos=pts[0])
    for pt in pts[1:]:
        QTest.mouseMove(pad.canvas, pt)
    assert len(seen) == 1
    assert pad._pending.isActive()  # the latest ink is still owed
    QTest.mouseRelease(pad.canvas, Qt.MouseButton.LeftButton, pos=pts[-1])
    assert len(seen) == 2
    assert not pad._pending.isActive()
    assert seen[-1].sum() > seen[0].sum()  # the release carries the whole stroke


def test_output_size_and_set_image(pad):
    pad.set_output_size(14, 20)
    img = np.zeros((28, 28), np.float32)
    img[:, 14:] = 1.0
    pad.set_image(img)
    out = pad.current_image()
    assert out.shape == (14, 20)
    assert out[:, :9].max() < 0.05 and out[:, 11:].min() > 0.95


def test_mnist_style_centres_and_scales_a_small_corner_drawing(qtbot):
    p = DrawingPad(mnist_style=True)
    qtbot.addWidget(p)
    p.resize(300, 340)
    p.show()
    qtbot.waitExposed(p)
    # A small vertical bar in the top-left corner.
    pts = [_canvas_point(p, 0.1, 0.05 + 0.01 * i) for i in range(16)]
    _drag(p.canvas, pts)
    out = p.current_image()
    ys, xs = np.indices(out.shape)
    cy, cx = (ys * out).sum() / out.sum(), (xs * out).sum() / out.sum()
    assert abs(cy - 14.0) < 0.75 and abs(cx - 14.0) < 0.75  # where MNIST puts it
    rows = np.flatnonzero(out.max(axis=1) > 0.05)
    assert 18 <= rows[-1] - rows[0] + 1 <= 21  # the longer side fills the 20-pixel box


def test_mnist_style_reproduces_real_mnist_digits(qtbot, mnist_dir):
    """An MNIST digit shown on the pad and read back through the MNIST-style path
    must come out as the same digit: the pad prepares drawings exactly like MNIST."""
    import gzip
    raw = gzip.open(mnist_dir / "t10k-images-idx3-ubyte.gz").read()
    digits = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)[:30] / 255.0
    p = DrawingPad(mnist_style=True)
    qtbot.addWidget(p)
    for d in digits:
        p.set_image(d)
        out = p.current_image()
        assert np.corrcoef(out.ravel(), d.ravel())[0, 1] > 0.99
        assert np.abs(out - d).max() < 0.05


def test_mnist_center_function():
    canvas = np.zeros((100, 100), np.float32)
    canvas[5:15, 70:90] = 1.0  # wide blob, top right
    out = mnist_center(canvas)
    cols = np.flatnonzero(out.max(axis=0) > 0.05)
    assert cols[-1] - cols[0] + 1 == 20
    assert mnist_center(np.zeros((50, 50))).max() == 0.0
    # Area resize preserves the mean.
    a = np.random.default_rng(0).random((37, 53))
    assert abs(area_resize(a, 10, 7).mean() - a.mean()) < 1e-5


# -- TrainingPanel -----------------------------------------------------------

@pytest.fixture
def panel(qtbot):
    p = TrainingPanel()
    qtbot.addWidget(p)
    return p


def _field(cfg, name):
    return cfg[name] if isinstance(cfg, dict) else getattr(cfg, name)


def test_config_reflects_edits(panel):
    panel.epochs.setValue(7)
    panel.batch_size.setValue(32)
    panel.optimizer.setCurrentIndex(panel.optimizer.findData("adam"))
    panel.lr.setValue(0.003)
    panel.weight_decay.setValue(1e-4)
    panel.schedule.setCurrentIndex(panel.schedule.findData("step"))
    panel.step_size.setValue(2)
    panel.gamma.setValue(0.5)
    panel.clip_enabled.setChecked(True)
    panel.grad_clip.setValue(2.5)
    panel.nesterov.setChecked(True)
    panel.seed.setValue(42)
    cfg = panel.config()
    expected = dict(epochs=7, batch_size=32, optimizer="adam", lr=0.003, weight_decay=1e-4,
                    schedule="step", step_size=2, gamma=0.5, grad_clip=2.5, seed=42,
                    nesterov=False)  # nesterov is dropped for Adam
    for k, v in expected.items():
        assert _field(cfg, k) == pytest.approx(v) if isinstance(v, float) else _field(cfg, k) == v, k
    panel.clip_enabled.setChecked(False)
    assert _field(panel.config(), "grad_clip") is None
    assert panel.batch_size.value() == 32
    assert TrainingPanel().batch_size.value() == 64  # the default


def test_options_and_augment(panel, qtbot):
    with qtbot.waitSignal(panel.model_options_changed, timeout=1000) as sig:
        panel.batchnorm.setChecked(True)
    assert sig.args[0]["batchnorm"] is True
    panel.activation.setCurrentIndex(panel.activation.findData("tanh"))
    panel.dropout.setValue(0.25)
    opts = panel.options()
    assert opts["activation"] == "tanh" and opts["dropout"] == 0.25 and opts["batchnorm"]
    assert {"arch", "pooling", "width", "dataset"} <= opts.keys()
    panel.rotation.setValue(15)
    panel.hflip.setChecked(True)
    assert panel.augment() == {"rotation": 15.0, "translation": 0.0, "scale": 0.0, "hflip": True}


def test_combos_show_readable_names(panel):
    from visualizer.gui.widgets.choices import names
    for box in (panel.dataset, panel.arch, panel.activation, panel.optimizer, panel.schedule):
        texts = [box.itemText(i) for i in range(box.count())]
        assert texts and all(t and not t.startswith("<") and "method" not in t for t in texts), texts
    assert panel.optimizer.itemText(panel.optimizer.findData("adamw")) == "AdamW"
    # Registries may be dicts of plain description strings (datasets) or of specs.
    fake = type("M", (), {})
    import sys
    sys.modules["_fake_registry"] = fake
    fake.REG = {"digits": "a description", "x": type("S", (), {"title": "Ex"})()}
    try:
        assert names("_fake_registry", "REG", ()) == [("digits", "Digits (8×8, built in)"), ("x", "Ex")]
        assert names("_no_such_module", "REG", ("sgd",)) == [("sgd", "SGD")]
    finally:
        del sys.modules["_fake_registry"]


def test_dataset_browse_entry_emits_and_keeps_selection(panel, qtbot):
    before = panel.options()["dataset"]
    browse = panel.dataset.count() - 1
    with qtbot.waitSignal(panel.dataset_browse, timeout=1000):
        panel.dataset.setCurrentIndex(browse)
    assert panel.options()["dataset"] == before
    panel.add_dataset("/data/my_digits")
    assert panel.options()["dataset"] == "/data/my_digits"
    assert panel.dataset.itemData(panel.dataset.count() - 1) == "__browse__"


def test_set_state_enables_and_disables(panel):
    panel.set_state("running")
    assert not panel.start_button.isEnabled()
    assert panel.pause_button.isEnabled() and panel.pause_button.text() == "Pause"
    assert panel.stop_button.isEnabled()
    assert not panel.step_button.isEnabled()
    assert not panel.arch.isEnabled() and not panel.batch_size.isEnabled()
    assert not panel.dataset.isEnabled() and not panel.optimizer.isEnabled()
    assert panel.lr.isEnabled()
    panel.set_state("paused")
    assert panel.pause_button.text() == "Resume" and panel.step_button.isEnabled()
    panel.set_state("stopped")
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()
    assert panel.arch.isEnabled() and panel.batch_size.isEnabled()
    with pytest.raises(ValueError):
        panel.set_state("flying")


def test_buttons_emit_and_pause_toggles(panel, qtbot):
    with qtbot.waitSignal(panel.start, timeout=1000):
        panel.start_button.click()
    panel.set_state("running")
    with qtbot.waitSignal(panel.pause, timeout=1000):
        panel.pause_button.click()
    panel.set_state("paused")
    with qtbot.waitSignal(panel.resume, timeout=1000):
        panel.pause_button.click()
    with qtbot.waitSignal(panel.step, timeout=1000):
        panel.step_button.click()
    with qtbot.waitSignal(panel.stop, timeout=1000):
        panel.stop_button.click()
    assert "(Space)" in panel.start_button.toolTip()
    panel.set_shortcuts({"save": "Ctrl+Alt+S"})
    assert "(Ctrl+Alt+S)" in panel.save_button.toolTip()


def test_lr_editable_while_running_emits(panel, qtbot):
    panel.set_state("running")
    with qtbot.waitSignal(panel.lr_changed, timeout=1000) as sig:
        panel.lr.stepBy(1)
    assert sig.args[0] == pytest.approx(0.02)
    with qtbot.waitSignal(panel.lr_changed, timeout=1000) as sig:
        panel.lr.setValue(1e-5)
    assert sig.args[0] == pytest.approx(1e-5)
    assert panel.lr.text() == "1e-05"


def test_values_round_trip_including_qsettings_strings(panel, qtbot):
    panel.arch.setCurrentIndex(panel.arch.count() - 1)
    panel.batchnorm.setChecked(True)
    panel.lr.setValue(0.0005)
    panel.epochs.setValue(9)
    panel.clip_enabled.setChecked(True)
    panel.translation.setValue(0.1)
    saved = panel.values()
    other = TrainingPanel()
    qtbot.addWidget(other)
    other.set_values(saved)
    assert other.values() == saved
    # QSettings hands back strings.
    other.set_values({k: str(v).lower() for k, v in saved.items()})
    assert other.values() == saved
    other.set_values({"epochs": "not a number", "bogus": 1})
    assert other.values()["epochs"] == 9


def test_ladder_step():
    assert ladder_step(0.01, 1) == pytest.approx(0.02)
    assert ladder_step(0.01, -1) == pytest.approx(0.005)
    assert ladder_step(0.003, 1) == pytest.approx(0.005)
    assert ladder_step(0.003, -1) == pytest.approx(0.002)
    assert ladder_step(0.02, 3) == pytest.approx(0.2)


# -- InputPanel --------------------------------------------------------------

@pytest.fixture
def inputs(qtbot):
    p = InputPanel(seed=0)
    qtbot.addWidget(p)
    p.set_dataset(["zero", "one", "two"], np.array([0, 1, 2, 1, 0, 1]))
    return p


def test_input_panel_prev_next_random_and_class_filter(inputs, qtbot):
    with qtbot.waitSignal(inputs.sample_requested, timeout=1000) as sig:
        inputs.next_button.click()
    assert sig.args == [1]
    with qtbot.waitSignal(inputs.sample_requested, timeout=1000) as sig:
        inputs.prev_button.click()
    assert sig.args == [0]
    with qtbot.waitSignal(inputs.sample_requested, timeout=1000) as sig:
        inputs.prev_button.click()  # wraps around
    assert sig.args == [5]
    with qtbot.waitSignal(inputs.sample_requested, timeout=1000) as sig:
        inputs.class_filter.setCurrentIndex(inputs.class_filter.findData(1))
    assert sig.args == [1]
    got = []
    inputs.sample_requested.connect(got.append)
    inputs.next_button.click()
    inputs.next_button.click()
    inputs.next_button.click()
    assert got == [3, 5, 1]
    for _ in range(10):
        inputs.random_button.click()
    assert set(got[3:]) <= {1, 3, 5}
    assert "one" in inputs.sample_label.text()


def test_input_panel_empty_dataset_disables(qtbot):
    p = InputPanel()
    qtbot.addWidget(p)
    assert not p.next_button.isEnabled() and p.current_index() is None
    p.set_dataset(["a"], np.array([0, 0]))
    assert p.next_button.isEnabled()
    p.set_index(1)
    assert p.current_index() == 1


def test_input_panel_open_and_drawing(inputs, qtbot):
    with qtbot.waitSignal(inputs.image_open_requested, timeout=1000):
        inputs.open_button.click()
    inputs.resize(320, 700)
    inputs.show()
    qtbot.waitExposed(inputs)
    canvas = inputs.pad.canvas
    r = canvas.target_rect()
    a = QPoint(int(r.x() + r.width() * 0.3), int(r.y() + r.height() * 0.5))
    b = QPoint(int(r.x() + r.width() * 0.7), int(r.y() + r.height() * 0.5))
    with qtbot.waitSignal(inputs.input_chosen, timeout=1000) as sig:
        _drag(canvas, [a, b])
    probe = sig.args[0]
    assert isinstance(probe, ProbeInput)
    assert probe.image01.shape == (28, 28) and probe.image01.max() > 0.5
    assert probe.label is None and "drawing" in probe.note
    assert inputs.preview.pixmap() is not None and not inputs.preview.pixmap().isNull()
    inputs.set_note("resized 64×64 → 28×28")
    assert inputs.note_label.text() == "resized 64×64 → 28×28"
    inputs.show_input(np.random.default_rng(0).random((3, 32, 32)).astype(np.float32))
    assert not inputs.preview.pixmap().isNull()


def test_preview_is_redrawn_only_when_the_input_changes(qtbot):
    # Training shows the same input in every snapshot: no new pixmap (and cache entry) for each.
    inputs = InputPanel(seed=0)
    qtbot.addWidget(inputs)
    image = np.random.default_rng(1).random((28, 28)).astype(np.float32)
    inputs.show_input(image)
    first = inputs.preview.pixmap().cacheKey()
    inputs.show_input(image.copy())
    assert inputs.preview.pixmap().cacheKey() == first
    inputs.show_input(1.0 - image)
    assert inputs.preview.pixmap().cacheKey() != first


def test_architecture_choice_sets_width_and_greys_out_unused_options(panel, qtbot):
    panel._arch_specs = {
        "lenet5": SimpleNamespace(default_width=1.0, options=("activation", "pooling", "dropout")),
        "resnet18": SimpleNamespace(default_width=0.5, options=("activation", "batchnorm")),
    }
    with qtbot.waitSignal(panel.model_options_changed, timeout=1000) as sig:
        panel.arch.setCurrentIndex(panel.arch.findData("resnet18"))
    assert sig.args[0]["arch"] == "resnet18" and sig.args[0]["width"] == 0.5
    assert not panel.pooling.isEnabled() and not panel.dropout.isEnabled()
    assert panel.batchnorm.isEnabled() and panel.activation.isEnabled()
    panel.arch.setCurrentIndex(panel.arch.findData("lenet5"))
    assert panel.pooling.isEnabled() and panel.width.value() == 1.0
    panel.set_state("running")
    assert not panel.activation.isEnabled()


def test_config_is_a_valid_train_config(panel):
    from visualizer.core.config import TrainConfig

    panel.optimizer.setCurrentIndex(panel.optimizer.findData("sgd"))
    panel.nesterov.setChecked(True)
    panel.momentum.setValue(0.0)  # nesterov without momentum is invalid: the panel drops it
    cfg = panel.config()
    assert isinstance(cfg, TrainConfig)
    assert cfg.nesterov is False
    cfg.validate()


def test_speed_choice_reaches_the_config_live_and_persists(qtbot):
    from visualizer.gui.widgets.training_panel import TrainingPanel
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    assert panel.config().max_steps_per_sec == 0.0
    panel.set_state("running")
    assert panel.speed.isEnabled()
    with qtbot.waitSignal(panel.speed_changed) as sig:
        panel.speed.setCurrentIndex(panel.speed.findData(10.0))
    assert sig.args == [10.0] and panel.config().max_steps_per_sec == 10.0
    saved = {k: str(v) for k, v in panel.values().items()}   # QSettings hands back strings
    other = TrainingPanel()
    qtbot.addWidget(other)
    other.set_values(saved)
    assert other.config().max_steps_per_sec == 10.0


class _LayoutRequests(QObject):
    def __init__(self):
        super().__init__()
        self.count = 0

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.LayoutRequest:
            self.count += 1
        return False


@pytest.mark.parametrize("cls", [QLabel, LiveText])
def test_live_text_changes_never_re_lay_out_its_parents(qtbot, cls):
    parent = QWidget()
    qtbot.addWidget(parent)
    lay = QHBoxLayout(parent)
    label = cls("Step 1")
    lay.addWidget(label)
    parent.show()
    qtbot.waitExposed(parent)
    QApplication.processEvents()
    counter = _LayoutRequests()
    parent.installEventFilter(counter)
    for step in range(2, 40, 3):
        label.setText(f"Step {step ** 3}")
        QApplication.processEvents()
    assert label.text() == f"Step {38 ** 3}"
    if cls is QLabel:
        assert counter.count > 0      # what LiveText is for: a QLabel asks every time
    else:
        assert counter.count == 0


def test_live_text_plain_text_is_its_accessible_name_and_tooltip(qapp):
    field = LiveText("<b>C1</b> &middot; 6 channels")
    assert field.accessibleName() == field.toolTip() == "C1 \u00b7 6 channels"
    field.setText("Loss 0.25")
    assert field.accessibleName() == "Loss 0.25"


def test_live_text_status_field_is_as_wide_as_its_sample(qapp):
    field = LiveText("Step 1", width_for="Step 9,999,999")
    assert field.sizeHint().width() >= field.fontMetrics().horizontalAdvance("Step 9,999,999")
    assert field.sizeHint() == LiveText("Step 123456", width_for="Step 9,999,999").sizeHint()

