"""CamView draws the class activation maps core computes: the heat map drawn is the record's, coloured by its bar."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PyQt6.QtGui import QImage

from tests.gui.alive import keep
from visualizer.core.assemble import data_for
from visualizer.core.checkpoint import load_model
from visualizer.core.datasets import load_dataset
from visualizer.core.explain.cam import cam_for_bundle
from visualizer.core.explain.records import grad_cam_layers
from visualizer.core.introspect import introspect
from visualizer.core.snapshot import frozen_array
from visualizer.gui.views import colormaps
from visualizer.gui.views.cam import PREDICTED, CamView

MODELS = Path(__file__).resolve().parents[2] / "models"
@pytest.fixture(scope="module")
def lenet_digit():
    bundle = load_model(MODELS / "lenet5_mnist.pt")
    data = data_for(bundle, load_dataset("mnist", seed=0), val_fraction=0.2, seed=0, reuse_normalisation=True)
    return bundle, data.sample(0)[0]


def build(qtbot, size=(900, 540)):
    v = CamView()
    qtbot.addWidget(v)
    keep(v)
    v.resize(*size)
    return v


def test_heat_map_is_drawn_over_the_input_with_its_colour_bar(qtbot, lenet_digit):
    bundle, image01 = lenet_digit
    r = cam_for_bundle(bundle, image01, layer="C1")
    v = build(qtbot)
    v.show_cam(r)
    v.flush()
    assert np.array_equal(v.heat_item.image, r.heatmap) and tuple(v.heat_item.levels) == (0.0, 1.0)
    assert np.array_equal(v.input_item.image, image01[0])
    assert tuple(v.colorbar.levels()) == (0.0, 1.0)
    # The colours drawn: the hottest pixel gets the bar's top colour, a cold one its (transparent) bottom.
    v.heat_item.render()
    drawn = v.heat_item.qimage
    hy, hx = np.unravel_index(np.argmax(r.heatmap), r.heatmap.shape)
    cy, cx = np.unravel_index(np.argmin(r.heatmap), r.heatmap.shape)
    top = colormaps.heat_overlay().map(np.array([1.0]), mode="qcolor")[0]
    hot = drawn.pixelColor(int(hx), int(hy))
    assert (hot.red(), hot.green(), hot.blue()) == pytest.approx((top.red(), top.green(), top.blue()), abs=3)
    assert drawn.pixelColor(int(cx), int(cy)).alpha() < 10
    caption = v._caption.text
    assert f"Grad-CAM at C1 (maps after C1_act) for class '{r.class_name}'" in caption
    assert f"predicted: '{r.class_names[r.predicted]}'" in caption


def test_class_and_method_pickers_ask_for_another_map(qtbot, lenet_digit):
    bundle, image01 = lenet_digit
    v = build(qtbot)
    v.show_cam(cam_for_bundle(bundle, image01))
    v.flush()
    assert [v.classes.itemText(i) for i in range(v.classes.count())] == ["predicted class", *bundle.class_names]
    with qtbot.waitSignal(v.class_requested) as sig:
        v.classes.activated.emit(4)
    assert sig.args == [3]
    with qtbot.waitSignal(v.class_requested) as sig:
        v.classes.activated.emit(0)
    assert sig.args == [PREDICTED]
    with qtbot.waitSignal(v.method_requested) as sig:
        v.method.activated.emit(v.method.findData("grad-cam"))
    assert sig.args == ["grad-cam"]
    v.set_layer_choices(grad_cam_layers(introspect(bundle.model, bundle.input_shape)))
    assert [v.layers.itemData(i) for i in range(v.layers.count())] == ["", "C1", "C3"]
    with qtbot.waitSignal(v.layer_requested) as sig:
        v.layers.activated.emit(2)
    assert sig.args == ["C3"]
    # the engine answers with the map of class 3: drawn, and the picker still says what was picked
    r3 = cam_for_bundle(bundle, image01, class_index=3)
    v.classes.setCurrentIndex(4)
    v.show_cam(r3)
    v.flush()
    assert np.array_equal(v.heat_item.image, r3.heatmap) and v.classes.currentData() == 3
    assert "for class '3'" in v._caption.text


def test_an_empty_map_says_so_and_screenshot(qtbot, lenet_digit, tmp_path):
    bundle, image01 = lenet_digit
    v = build(qtbot, (1280, 720))
    maps = [cam_for_bundle(bundle, image01, layer="C1", class_index=c) for c in range(10)]
    # a class with no positive evidence at this layer (or, if every class has some, such a map made by hand)
    empty = next((m for m in maps if m.peak <= 0), None) or replace(
        maps[0], heatmap=frozen_array(np.zeros_like(maps[0].heatmap)), raw=frozen_array(np.zeros_like(maps[0].raw)),
        peak=0.0)
    v.show_cam(empty)
    v.flush()
    assert "No positive evidence" in v.note.text() and float(np.max(v.heat_item.image)) == 0.0
    v.set_presentation(True)
    v.show_cam(maps[maps[0].predicted])
    v.export_png(tmp_path / "cam.png")
    img = QImage(str(tmp_path / "cam.png"))
    assert (img.width(), img.height()) == (1280, 720)
    with pytest.raises(TypeError):
        v.show_cam("not a record")
