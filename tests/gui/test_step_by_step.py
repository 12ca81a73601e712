"""StepByStepView draws the records core computes from the real model: the numbers shown are the record's."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from PyQt6.QtCore import QPointF, Qt
from PyQt6.QtGui import QFontMetricsF, QImage

from tests.gui.alive import keep
from visualizer.core.assemble import data_for
from visualizer.core.checkpoint import load_model
from visualizer.core.datasets import load_dataset
from visualizer.core.explain.capture import model_input
from visualizer.core.explain.steps import explain_conv, explain_linear, explain_pool
from visualizer.gui.views.number_grid import format_number
from visualizer.gui.views.step_by_step import StepByStepView

MODELS = Path(__file__).resolve().parents[2] / "models"
@pytest.fixture(scope="module")
def lenet():
    bundle = load_model(MODELS / "lenet5_mnist.pt")
    data = data_for(bundle, load_dataset("mnist", seed=0), val_fraction=0.2, seed=0, reuse_normalisation=True)
    image01, _ = data.sample(0)
    return bundle, model_input(image01, bundle.mean, bundle.std)


def build(qtbot, size=(900, 540), show=False):
    v = StepByStepView()
    qtbot.addWidget(v)
    keep(v)
    v.resize(*size)
    if show:
        v.show()
        qtbot.waitExposed(v)
    return v


def numbers(a) -> list[str]:
    return [format_number(float(x)) for x in np.asarray(a).ravel()]


def test_conv_record_is_drawn_number_for_number(qtbot, lenet):
    bundle, x = lenet
    s = explain_conv(bundle.model, x, "C3", 7, 4, 5)
    v = build(qtbot)
    v.show_step(s)
    v.flush()
    for k in (0, 3):
        v.input_channel.setValue(k)
        v.flush()
        assert np.array_equal(v.patch.item.image, s.patches[k]) and v.patch.shown_numbers() == numbers(s.patches[k])
        assert np.array_equal(v.kernel.item.image, s.kernel[k]) and v.kernel.shown_numbers() == numbers(s.kernel[k])
        assert v.products.shown_numbers() == numbers(s.products[k])
        assert np.array_equal(v.input_item.image, s.padded_inputs[k])
    assert np.array_equal(v.output_item.image, s.output_map)
    text = v.equation.text()
    for csum in s.channel_sums:
        assert format_number(float(csum)) in text
    assert f"bias {format_number(s.bias)}" in text and f"<b>{s.total:.4f}</b>" in text
    assert f"real output {s.output:.4f} ✓" in text and "C3_act" in text
    assert "C3</b>, output channel 7, position (y=4, x=5): 5×5, stride 1, padding 0" in v.headline.text()
    # the window on the input map: 5x5 cells from (y=4, x=5); the output marker on (4, 5)
    xs, ys = v.window.getData()
    assert (min(xs), max(xs), min(ys), max(ys)) == (5, 10, 4, 9)
    mx, my = v.marker.getData()
    assert (min(mx), min(my)) == (5, 4)


def test_padding_and_stride_are_drawn(qtbot):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.ReLU())
    x = np.random.default_rng(0).normal(size=(2, 7, 7)).astype(np.float32)
    s = explain_conv(model, x, "0", 1, 0, 1)
    v = build(qtbot)
    v.show_step(s)
    v.flush()
    xs, ys = v.real_input.getData()                     # the real input inside the padded map
    assert (min(xs), max(xs), min(ys), max(ys)) == (1, 8, 1, 8)
    xs, ys = v.window.getData()                         # window at output (0, 1): padded columns 2..4
    assert (min(xs), max(xs), min(ys), max(ys)) == (2, 5, 0, 3)
    xs, ys = v.next_window.getData()                    # the next one, two columns on: the stride
    assert (min(xs), max(xs)) == (4, 7)
    grey_italic = v.patch.padding_cells()                # padding cells: grey italics
    assert grey_italic == [not inside for inside in s.inside.ravel()]
    assert "stride 2, padding 1" in v.headline.text() and "padded" in v._t_input.text


@pytest.mark.parametrize("size", [(900, 540), (1280, 720)])
def test_numbers_fit_their_cells_at_projector_sizes(qtbot, lenet, size):
    bundle, x = lenet
    v = build(qtbot, size, show=True)
    v.show_step(explain_conv(bundle.model, x, "C3", 2, 0, 0))
    v.flush()
    qtbot.waitUntil(lambda: v.patch.cell_pixels() > 0)
    for grid in (v.patch, v.kernel, v.products):
        px = grid.text_pixel_size()
        assert px >= 10, px                                 # readable from the back of a room: >= 10 px
        fm = QFontMetricsF(grid._font)
        widest = max(fm.horizontalAdvance(t) for t in grid.shown_numbers())
        assert widest <= grid.cell_pixels(), (widest, grid.cell_pixels())
    assert v.equation.width() <= v.width() and v.headline.width() <= v.width()


def test_every_cell_shows_its_number_on_screen(qtbot, lenet):
    """The numbers are painted, cell by cell, in black or white on the cell's colour: a grab of
    each cell has text pixels far from the cell's colour, and none once the numbers are hidden."""
    bundle, x = lenet
    v = build(qtbot, (1280, 720), show=True)
    v.show_step(explain_conv(bundle.model, x, "C3", 2, 0, 0))
    v.flush()
    grid = v.kernel
    qtbot.waitUntil(lambda: grid.text_pixel_size() >= 10)

    def text_pixels_per_cell() -> list[int]:
        image = v.graphics.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
        view = v.graphics.viewport()
        h, w = grid.values.shape
        counts = []
        for r in range(h):
            for c in range(w):
                corner = [grid.box.mapViewToScene(QPointF(c + dx, r + dy)) for dx, dy in ((0.2, 0.2), (0.8, 0.8))]
                (x0, y0), (x1, y1) = [(int(p.x()), int(p.y())) for p in corner]
                assert view.rect().contains(x0, y0) and view.rect().contains(x1, y1)
                px = np.array([[image.pixelColor(xx, yy).getRgb()[:3] for xx in range(x0, x1)]
                               for yy in range(y0, y1)], float).reshape(-1, 3)
                background = np.median(px, axis=0)
                counts.append(int((np.abs(px - background).sum(axis=1) > 120).sum()))
        return counts

    shown = text_pixels_per_cell()
    assert min(shown) >= 5, shown                        # every one of the 25 cells has its number drawn
    grid.number_item.setVisible(False)
    assert max(text_pixels_per_cell()) <= 2              # and what was counted was the numbers


def test_play_asks_for_the_next_window_and_waits_for_its_record(qtbot, lenet):
    bundle, x = lenet
    s = explain_conv(bundle.model, x, "C1", 0, 0, 27)
    v = build(qtbot)
    v.speed.setCurrentIndex(2)                          # 10 windows a second
    v.show_step(s)
    asked = []
    v.position_requested.connect(lambda y, xx: asked.append((y, xx)))
    v.play.setChecked(True)
    qtbot.waitUntil(lambda: len(asked) == 1, timeout=2000)
    assert asked == [(1, 0)]                            # row by row: the end of row 0 wraps to row 1
    qtbot.wait(450)                                     # four more ticks, but the record has not come
    assert len(asked) == 1
    v.show_step(explain_conv(bundle.model, x, "C1", 0, *asked[-1]))
    qtbot.waitUntil(lambda: len(asked) == 2, timeout=2000)
    assert asked[1] == (1, 1)
    v.play.setChecked(False)
    assert v.play.text() == "▶ Play"


def test_step_buttons_and_clicking_the_output_map(qtbot, lenet):
    bundle, x = lenet
    v = build(qtbot, show=True)
    v.show_step(explain_conv(bundle.model, x, "C1", 0, 3, 3))
    v.flush()
    with qtbot.waitSignal(v.position_requested) as sig:
        v.back.click()
    assert sig.args == [3, 2]
    v.show_step(explain_conv(bundle.model, x, "C1", 0, 3, 2))
    v.flush()
    qtbot.waitUntil(lambda: v.output_box.width() > 0)
    scene = v.output_item.mapToScene(QPointF(20.5, 7.5))
    at = v.graphics.mapFromScene(scene)
    with qtbot.waitSignal(v.position_requested) as sig:
        qtbot.mouseClick(v.graphics.viewport(), Qt.MouseButton.LeftButton, pos=at)
    assert sig.args == [7, 20]


def test_the_outlines_follow_the_window_and_stay_while_only_the_numbers_change(qtbot, lenet):
    """Training under a fixed window changes the numbers, not the outlines (not re-set each frame);
    another window moves them."""
    bundle, x = lenet
    model = bundle.model
    v = build(qtbot)
    v.show_step(explain_conv(model, x, "C3", 7, 4, 5))
    v.flush()
    sets = []
    set_window = v.window.setData
    v.window.setData = lambda *a, **k: (sets.append(a), set_window(*a, **k))
    with torch.no_grad():
        saved = model.C3.weight.clone()
        model.C3.weight.mul_(1.5)                  # a training step later: other weights, same window
        try:
            later = explain_conv(model, x, "C3", 7, 4, 5)
        finally:
            model.C3.weight.copy_(saved)
    v.show_step(later)
    v.flush()
    assert v.kernel.shown_numbers() == numbers(later.kernel[0]) and not sets
    xs, ys = v.window.getData()
    assert (min(xs), max(xs), min(ys), max(ys)) == (5, 10, 4, 9)
    v.show_step(explain_conv(model, x, "C3", 7, 2, 1))
    v.flush()
    xs, ys = v.window.getData()
    assert len(sets) == 1 and (min(xs), max(xs), min(ys), max(ys)) == (1, 6, 2, 7)
    mx, my = v.marker.getData()
    assert (min(mx), min(my)) == (1, 2)


def test_pool_record_rings_the_winner(qtbot, lenet):
    bundle, x = lenet
    s = next(p for p in (explain_pool(bundle.model, x, "S2", c, 7, 6) for c in range(6)) if p.output > 0)
    v = build(qtbot)
    v.show_step(s)
    v.flush()
    assert v.patch.shown_numbers() == numbers(s.patch) and not v.kernel.box.isVisible()
    r = int(np.flatnonzero(s.rows == s.winner[0])[0])
    c = int(np.flatnonzero(s.cols == s.winner[1])[0])
    xs, ys = v.patch.ring.getData()
    assert (min(xs), min(ys)) == (c, r)
    assert format_number(s.computed) == format_number(float(s.patch.max()))
    assert f"max of the window = <b>{s.computed:.4f}</b>" in v.equation.text() and "✓" in v.equation.text()


def test_linear_record_bars_are_the_top_contributions(qtbot, lenet):
    bundle, x = lenet
    s = explain_linear(bundle.model, x, "F6", 11, top_k=8)
    v = build(qtbot)
    v.show_step(s)
    v.flush()
    heights = list(v.bars.opts["height"])
    assert heights == pytest.approx([*map(float, s.products[s.top]), s.rest, s.bias])
    assert sum(heights) == pytest.approx(s.output, abs=1e-4)
    ticks = [t for _, t in v.bars_plot.getAxis("bottom")._tickLevels[0]]
    assert ticks[:8] == [f"x{int(i)}" for i in s.top] and ticks[-1] == "bias"
    with qtbot.waitSignal(v.channel_selected) as sig:
        v.forward.click()
    assert sig.args == [12]


def test_screenshot_of_the_view(qtbot, lenet, tmp_path):
    bundle, x = lenet
    v = build(qtbot, (1280, 720))
    v.set_presentation(True)
    v.show_step(explain_conv(bundle.model, x, "C3", 7, 4, 5))
    v.export_png(tmp_path / "step.png")
    img = QImage(str(tmp_path / "step.png"))
    assert (img.width(), img.height()) == (1280, 720)
    colours = {img.pixelColor(xx, yy).name() for xx in range(0, 1280, 16) for yy in range(0, 720, 16)}
    assert len(colours) > 20                            # drawn maps and grids, not an empty widget


def test_explain_records_and_the_views_need_no_torch():
    code = ("import sys, visualizer.core.explain.records, visualizer.gui.views.step_by_step, "
            "visualizer.gui.views.cam; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
