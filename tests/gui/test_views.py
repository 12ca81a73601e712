"""The live views, fed fake LeNet-shaped snapshots (numpy only), checked through their graphics items."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from PyQt6.QtCore import QPointF, Qt
from PyQt6.QtGui import QFontMetrics

from tests.gui.alive import keep
from tests.gui.snapshot_factory import make_probe, make_training, spatial_capture
from visualizer.core.reduce import make_mosaic, tile
from visualizer.core.snapshot import EpochEnd, LayerCapture, Levels, Mosaic
from visualizer.gui.views import (
    ActivationView,
    CurvesView,
    FeatureMapView,
    FilterView,
    GradientView,
    OverviewStripView,
    PoolingView,
    ProbabilityView,
)
from visualizer.gui.views.activation_functions import evaluate
from visualizer.gui.views.base import PRESENTATION_PT
from visualizer.gui.views.colour_scale import steady_levels
from visualizer.gui.views.series import GrowableTable, ema


def build(qtbot, cls, size=(900, 600)):
    v = cls()
    qtbot.addWidget(v)
    keep(v)
    v.resize(*size)
    return v


# --- feature maps -----------------------------------------------------------
def test_feature_map_mosaic_matches_layer_and_uses_symmetric_levels(qtbot):
    probe = make_probe()
    v = build(qtbot, FeatureMapView)
    v.set_layer("C3")
    v.show_probe(probe)
    v.flush()
    cap = probe.layer("C3")
    assert v.mosaic_item.image.shape == cap.mosaic.image.shape
    lo, hi = v.mosaic_item.levels
    top = max(abs(cap.levels.low), abs(cap.levels.high))
    assert lo == pytest.approx(-hi) and top <= hi <= top + 2 * top / 16    # rounded outward to a step
    assert tuple(v.colorbar.levels()) == pytest.approx((lo, hi))
    assert v.input_item.image.shape == (32, 32)
    v.set_layer("relu1")
    v.flush()
    assert v.mosaic_item.levels[0] == pytest.approx(0.0)   # non-negative maps: sequential levels from 0


def test_feature_map_levels_hold_still_while_the_data_stays_inside_them(qtbot):
    """The colour bar's axis is redrawn only when its levels change: not for every small change of range."""
    base = make_probe()
    v = build(qtbot, FeatureMapView)
    v.set_layer("C3")
    maps = base.layer("C3").maps

    def show(scale):
        cap = spatial_capture("C3", "conv", maps * np.float32(scale))
        v.show_probe(dataclasses.replace(base, layers=(cap,)))
        v.flush()
        return tuple(v.colorbar.levels()), tuple(v.mosaic_item.levels)

    bar, image = show(1.0)
    assert bar == pytest.approx(image)
    assert show(0.97) == (bar, image)                     # a little smaller: the same levels
    grown_bar, _ = show(1.5)                              # outgrown: wider, and still what the image uses
    assert grown_bar[1] >= 1.5 * float(np.abs(maps).max())
    shrunk_bar, shrunk_image = show(0.2)                  # far inside: narrower again
    assert shrunk_bar[1] < 0.3 * grown_bar[1] and shrunk_bar == pytest.approx(shrunk_image)


def test_the_mosaic_is_painted_from_rgb32_in_the_colours_of_its_colour_map(qtbot):
    """The picture QPainter draws each paint is kept in RGB32 (an indexed one is converted at every
    paint), with exactly the colours the colour map gives the values."""
    from PyQt6.QtGui import QImage
    probe = make_probe()
    v = build(qtbot, FeatureMapView)
    v.set_layer("C3")
    v.show()
    v.show_probe(probe)
    v.flush()
    qtbot.waitUntil(lambda: v.mosaic_item.qimage is not None)     # laid out and painted
    q = v.mosaic_item.qimage
    assert q is not None and q.format() == QImage.Format.Format_RGB32
    image, (lo, hi) = v.mosaic_item.image, v.mosaic_item.levels
    lut = v.colorbar.colorMap().getLookupTable(nPts=256, alpha=False)
    for y, x in ((0, 0), (3, 4), (image.shape[0] - 1, image.shape[1] - 1)):
        i = int(np.clip((image[y, x] - lo) / (hi - lo) * 256, 0, 255))
        pixel = q.pixelColor(x, y)
        assert abs(pixel.red() - int(lut[i][0])) <= 2 and abs(pixel.blue() - int(lut[i][2])) <= 2


def test_steady_levels_keep_zero_and_symmetry():
    assert steady_levels(None, (0.0, 3.72)) == (0.0, 3.8)
    assert steady_levels(None, (0.0, 3.7)) == (0.0, 3.7)              # on the grid already
    assert steady_levels(None, (-3.72, 3.72)) == (-3.8, 3.8)
    assert steady_levels((0.0, 3.8), (0.0, 3.2)) == (0.0, 3.8)        # fills 84%: kept
    assert steady_levels((0.0, 3.8), (0.0, 2.5)) == (0.0, 2.5)        # fills 66%: new levels
    assert steady_levels((0.0, 3.8), (0.0, 3.85)) == (0.0, 3.9)       # outside: new levels


def test_normalisation_modes_change_the_image(qtbot):
    probe = make_probe()
    v = build(qtbot, FeatureMapView)
    v.set_layer("relu1")
    v.show_probe(probe)
    v.flush()
    per_layer = v.mosaic_item.image.copy()
    v.set_normalisation("per channel")
    v.flush()
    per_channel = v.mosaic_item.image
    assert per_channel.shape == per_layer.shape
    assert not np.allclose(per_channel, per_layer)
    m = probe.layer("relu1").mosaic
    for i in range(len(m.channels)):  # every non-flat tile is stretched to reach 1
        r, c = divmod(i, m.cols)
        t = per_channel[r * (m.tile_h + 1): r * (m.tile_h + 1) + m.tile_h, c * (m.tile_w + 1): c * (m.tile_w + 1) + m.tile_w]
        assert t.max() == pytest.approx(1.0)


def test_fixed_normalisation_freezes_levels_across_steps(qtbot):
    v = build(qtbot, FeatureMapView)
    v.set_layer("C1")
    v.set_normalisation("fixed")
    first = make_probe(seed=0)
    v.show_probe(first)
    v.flush()
    frozen = v.mosaic_item.levels
    v.show_probe(make_probe(seed=5))   # other weights: other range
    v.flush()
    assert tuple(v.mosaic_item.levels) == tuple(frozen)
    v.set_normalisation("per layer")
    v.flush()
    assert tuple(v.mosaic_item.levels) != tuple(frozen)


def test_clicking_a_tile_selects_channel_and_fills_readout(qtbot):
    probe = make_probe()
    cap = probe.layer("C3")
    v = build(qtbot, FeatureMapView)
    v.set_layer("C3")
    v.show_probe(probe)
    v.flush()
    m = cap.mosaic
    y, x = 1 * (m.tile_h + 1) + 3, 1 * (m.tile_w + 1) + 7   # tile (row 1, col 1): channel 5 of a 4-wide grid
    with qtbot.waitSignal(v.channel_selected) as sig:
        v.select_tile_at(y, x)
    assert sig.args == [5]
    assert v.channel_item.image.shape == (10, 10)
    assert v.readout_text() == f"ch 5 (y=3, x=7): {cap.maps[5][3, 7]:.4f}"
    assert v.select_tile_at(m.tile_h, 0) is None   # the padding row selects nothing


def test_mouse_click_on_mosaic_selects_channel(qtbot):
    probe = make_probe()
    v = build(qtbot, FeatureMapView)
    v.set_layer("C3")
    v.show_probe(probe)
    v.show()
    qtbot.waitExposed(v)
    v.flush()
    m = probe.layer("C3").mosaic
    scene_pt = v.mosaic_item.mapToScene(QPointF(2 * (m.tile_w + 1) + 4.5, 0 * (m.tile_h + 1) + 4.5))
    view_pt = v.graphics.mapFromScene(scene_pt)
    with qtbot.waitSignal(v.channel_selected) as sig:
        qtbot.mouseClick(v.graphics.viewport(), Qt.MouseButton.LeftButton, pos=view_pt)
    assert sig.args == [2]


def test_hovering_the_enlarged_channel_reads_out_pixel_values(qtbot):
    probe = make_probe()
    v = build(qtbot, FeatureMapView)
    v.set_layer("C1")
    v.show_probe(probe)
    v.show()
    qtbot.waitExposed(v)
    v.flush()
    v.select_tile_at(0.5, 29 + 0.5)   # tile 1
    v._scene_moved(v.channel_item.mapToScene(QPointF(9.5, 4.5)))
    assert v.readout_text() == f"ch 1 (y=4, x=9): {probe.layer('C1').maps[1][4, 9]:.4f}"


def test_vector_layer_is_bars_and_missing_layer_is_explained(qtbot):
    probe = make_probe()
    v = build(qtbot, FeatureMapView)
    v.set_layer("F6")
    v.show_probe(probe)
    v.flush()
    assert v.stack.currentWidget() is v.vector_graphics
    assert len(v.vector_bars.opts["height"]) == 84
    v.set_layer("nope")
    v.flush()
    assert v.stack.currentWidget() is v.message and "nope" in v.message.text()


def test_model_without_spatial_layers_says_why(qtbot):
    probe = make_probe()
    flat = dataclasses.replace(probe, layers=tuple(c for c in probe.layers if c.maps is None))
    v = build(qtbot, FeatureMapView)
    v.show_probe(flat)
    v.flush()
    assert "no spatial" in v.message.text()


def test_nonfinite_maps_show_badge_and_stay_finite(qtbot):
    probe = make_probe(inject_nonfinite=True)
    v = build(qtbot, FeatureMapView)
    v.set_layer("C3")
    v.show_probe(probe)
    v.flush()
    assert not v.badge.isHidden() and v.badge.text() == "101 non-finite values replaced"
    assert np.isfinite(v.mosaic_item.image).all()


def test_raw_inf_arrays_are_guarded_by_the_view(qtbot):
    """A capture that skipped sanitising (inf and an all-NaN tile) must not reach setImage raw."""
    maps = np.random.default_rng(0).normal(size=(4, 6, 6)).astype(np.float32)
    maps[0, 1, 1] = np.inf
    maps[2] = np.nan
    m = make_mosaic(np.nan_to_num(maps))
    raw = np.array(m.image)
    raw[1, 1] = np.inf
    raw[7:13, 0:6] = np.nan
    m = Mosaic(raw, m.rows, m.cols, m.tile_h, m.tile_w, m.pad, m.channels)
    cap = LayerCapture("bad", "conv", (4, 6, 6), maps, (0, 1, 2, 3), None, 0)
    # Presentation is derived where it is shown; plant raw values where a view would find them.
    cap.__dict__.update(mosaic=m, levels=Levels(-np.inf, np.inf, True), channel_levels=None)
    probe = make_probe()
    probe = dataclasses.replace(probe, layers=(cap,))
    v = build(qtbot, FeatureMapView)
    v.set_layer("bad")
    v.show_probe(probe)
    v.set_normalisation("per channel")
    v.flush()
    assert np.isfinite(v.mosaic_item.image).all()
    assert not v.badge.isHidden() and "non-finite values replaced" in v.badge.text()
    v.set_normalisation("per layer")
    v.flush()
    assert np.isfinite(v.mosaic_item.image).all() and np.isfinite(v.mosaic_item.levels).all()
    assert v.badge.text() == "37 non-finite values replaced"
    v.select_tile_at(7.5, 0.5)
    assert np.isfinite(v.channel_item.image).all()


def test_retiling_reproduces_the_mosaic_geometry():
    probe = make_probe()
    cap = probe.layer("C3")
    m = cap.mosaic
    assert np.array_equal(tile(cap.maps, m.rows, m.cols, m.pad, fill=0.0), m.image)


# --- overview ---------------------------------------------------------------
def test_overview_has_one_image_per_spatial_layer(qtbot):
    probe = make_probe()
    v = build(qtbot, OverviewStripView, (1200, 300))
    v.show_probe(probe)
    v.flush()
    spatial = [c.name for c in probe.layers if c.maps is not None]
    assert list(v.items) == ["input", *spatial]
    assert v.items["C1"].image.shape == (28 * 2 + 1, 28 * 2 + 1)   # 4 channels, 2x2
    assert v.items["S4"].image.shape == (11, 11)
    assert v._cols == len(spatial) + 1   # a wide strip is one row


def test_overview_colours_follow_a_layer_whose_values_turn_signed(qtbot):
    from visualizer.gui.views import colormaps
    v = build(qtbot, OverviewStripView, (1200, 300))
    for activation, signed in (("relu", False), ("tanh", True), ("relu", False)):
        v.show_probe(make_probe(activation=activation))
        v.flush()
        lut = colormaps.for_signed(signed).getLookupTable(nPts=len(v.items["relu1"].lut), alpha=False)
        assert np.array_equal(v.items["relu1"].lut[:, :3], lut[:, :3]), activation


def test_overview_labels_fit_their_cells(qtbot):
    # Wide cells: name and shape; narrow ones: the name (elided) only, never running into
    # the next cell; the full text is always the cell's tooltip.
    probe = make_probe()
    v = build(qtbot, OverviewStripView, (1400, 300))
    v.show()                # resized while shown, as a docked view is
    qtbot.waitExposed(v)
    v.show_probe(probe)
    v.flush()
    assert v._labels["C1"].toPlainText() == "C1\n6×28×28"
    v.resize(1400, 110)     # a short strip: no room under the images for a second line
    v.flush()
    assert v._labels["C1"].toPlainText() == "C1"
    v.resize(1400, 300)
    v.set_presentation(True)   # projector fonts: cells narrower than a shape's text
    v.resize(440, 110)
    v.flush()
    metrics = QFontMetrics(v._tick_font())
    cell = v.graphics.width() / v._cols
    assert cell < metrics.horizontalAdvance("16×10×10")
    for name, label in v._labels.items():
        lines = label.toPlainText().split("\n")
        assert all(metrics.horizontalAdvance(line) <= cell for line in lines), (name, lines)
    assert v._boxes["C1"].toolTip() == "C1: 6×28×28"


# --- filters ------------------------------------------------------------------
def test_filters_mosaic_modes_and_colour(qtbot):
    probe = make_probe()
    v = build(qtbot, FilterView)
    v.set_layer("C3")
    v.show_probe(probe)
    v.flush()
    assert v.item.image.shape == (16 * 6 - 1, 6 * 6 - 1)   # O' rows x I columns of 5x5 kernels
    lo, hi = v.item.levels
    assert lo == pytest.approx(-hi)
    model = v.mode.model()
    assert model.item(0).isEnabled() and not model.item(1).isEnabled() and not model.item(2).isEnabled()
    v.average.setChecked(True)
    v.flush()
    assert v.item.image.shape == (4 * 6 - 1, 4 * 6 - 1)
    v.average.setChecked(False)
    v.set_layer("C1")
    v.set_mode("gradient")
    v.flush()
    grad = probe.filters[0].grad
    # the gradient's own range (steady levels: rounded out to a nice step of at most a 20th of it)
    assert np.abs(grad).max() <= v.item.levels[1] <= 1.1 * np.abs(grad).max()
    v.set_layer("relu1")
    v.flush()
    assert "not a conv layer" in v.note.text()

    rgb = make_probe(in_channels=3)
    v.set_layer("C1")
    v.set_mode("weights")
    v.show_probe(rgb)
    v.flush()
    assert v.item.image.shape == (2 * 6 - 1, 3 * 6 - 1, 3) and not v.colorbar.isVisible()


# --- pooling ------------------------------------------------------------------
def test_pooling_marks_winners_at_argmax(qtbot):
    probe = make_probe()
    v = build(qtbot, PoolingView)
    v.set_layer("S2")
    v.show_probe(probe)
    v.channel.setValue(3)
    v.flush()
    pool = probe.layer("S2").pool
    xs, ys = v.winners.getData()
    flat = pool.argmax[3].ravel()
    assert np.array_equal(ys - 0.5, flat // 28) and np.array_equal(xs - 0.5, flat % 28)
    src = pool.input_maps[3]
    assert np.allclose(src[(ys - 0.5).astype(int), (xs - 0.5).astype(int)], probe.layer("S2").maps[3].ravel())
    assert "max 2×2, stride 2, padding 0: 28×28 → 14×14" in v.geometry_text()
    v.grid.setChecked(True)
    v.flush()
    assert len(v.windows.getData()[0]) == 14 * 14 * 8
    v.set_layer("C1")     # not a pooling layer: the view stays on the pooling layer of its picker
    v.flush()
    assert v.stack.currentWidget() is v.graphics and "S2" in v.geometry_text()
    assert [v.layer_box.itemText(i) for i in range(v.layer_box.count())] == ["S2", "S4"]
    with qtbot.waitSignal(v.layer_requested) as picked:
        v.layer_box.activated.emit(1)
    assert picked.args == ["S4"]
    v.set_layer("S4")
    v.flush()
    assert "S4" in v.geometry_text() and v.layer_box.currentText() == "S4"


# --- activations --------------------------------------------------------------
def test_activation_functions_match_numpy_references():
    x = np.linspace(-5, 5, 101)
    f, df = evaluate("relu", x)
    assert np.array_equal(f, np.maximum(x, 0)) and np.array_equal(df, (x > 0).astype(float))
    f, df = evaluate("leaky_relu", x, (("negative_slope", 0.2),))
    assert np.allclose(f, np.where(x > 0, x, 0.2 * x)) and np.allclose(df[x < 0], 0.2)
    f, df = evaluate("sigmoid", x)
    s = 1 / (1 + np.exp(-x))
    assert np.allclose(f, s) and np.allclose(df, s * (1 - s))
    f, df = evaluate("tanh", x)
    assert np.allclose(df, 1 - np.tanh(x) ** 2)
    f, _ = evaluate("gelu", np.array([1.0]))
    assert f[0] == pytest.approx(0.5 * (1 + math.erf(1 / math.sqrt(2))))
    f, _ = evaluate("elu", np.array([-1.0]), (("alpha", 2.0),))
    assert f[0] == pytest.approx(2.0 * (math.exp(-1) - 1))
    for name in ("silu", "gelu", "elu", "relu6"):   # derivatives agree with finite differences
        xs = np.array([-1.3, 0.7, 2.1])
        num = (evaluate(name, xs + 1e-5)[0] - evaluate(name, xs - 1e-5)[0]) / 2e-5
        assert np.allclose(evaluate(name, xs)[1], num, atol=1e-4), name


def test_activation_view_curves_histogram_and_history(qtbot):
    v = build(qtbot, ActivationView)
    for step in (10, 20, 30):
        v.show_training(make_training(step=step))
        v.show_probe(make_probe(seed=step))
    v.flush()
    a = v.selected()
    assert a.name == "relu1"
    x, y = v.function.getData()
    assert np.array_equal(y, np.maximum(x, 0))
    assert x.min() < a.pre_min and x.max() > a.pre_max
    hx, hy = v.histogram.getData()
    assert np.array_equal(hy, a.pre.counts)   # the live pre-activation histogram
    assert v.dead.text() == f"dead: {100 * a.frac_dead:.1f}%"
    sx, sy = v.dead_curve.getData()
    assert list(sx) == [10, 20, 30] and sy[-1] == pytest.approx(a.frac_dead)
    v.layers.setCurrentText("softmax")
    v.flush()
    assert v.stack.currentWidget() is v.prob_graphics
    assert len(v.probability_bars.bars.opts["height"]) == 10


def test_sigmoid_saturation_readout(qtbot):
    v = build(qtbot, ActivationView)
    v.show_probe(make_probe(activation="sigmoid"))
    v.flush()
    a = v.selected()
    x, y = v.derivative.getData()
    assert np.allclose(y, (1 / (1 + np.exp(-x))) * (1 - 1 / (1 + np.exp(-x))))
    assert v.saturated.text() == f"saturated: {100 * a.frac_saturated:.1f}%"


# --- gradients ----------------------------------------------------------------
def test_gradient_bars_are_true_log_and_mark_vanish_and_explode(qtbot, tmp_path):
    v = build(qtbot, GradientView)
    norms = (1e-9, 1e-4, 1e-2, 0.3, 5e2)
    v.show_training(make_training(step=1, norms=norms))
    v.show_training(make_training(step=2, norms=[n * 2 for n in norms]))
    v.flush()
    assert len(v.bars.opts["x"]) == 5
    tops = np.asarray(v.bars.opts["y0"]) + np.asarray(v.bars.opts["height"])
    assert np.allclose(tops, np.log10([n * 2 for n in norms]))
    assert v.marks == ["vanish", "ok", "ok", "ok", "explode"]
    assert v.vanish_line.value() == pytest.approx(-7) and v.explode_line.value() == pytest.approx(2)
    assert v.plot.getAxis("left").labelText == "log10 ‖∇W‖₂"
    assert len(v.curves) == 5 and np.allclose(v.curves[0].getData()[1], np.log10([1e-9, 2e-9]))
    path = tmp_path / "g.csv"
    assert v.export_csv(path)
    lines = path.read_text().splitlines()
    assert lines[0] == "step,layer,weight_norm,bias_norm,update_ratio" and len(lines) == 1 + 2 * 5
    assert lines[1].startswith("1,C1,1e-09,")
    v.ratio.setChecked(True)
    v.flush()
    assert not v.vanish_line.isVisible()   # ratio mode has no gradient thresholds


def test_gradient_view_separates_sigmoid_like_decay_from_flat_profile(qtbot):
    v = build(qtbot, GradientView)
    v.show_training(make_training(norms=(1e-8, 1e-6, 1e-4, 1e-2, 1e-1)))   # vanishing toward the input
    v.flush()
    assert "shrinking toward the input" in v.summary.text() and v.marks[0] == "vanish"
    v.show_training(make_training(norms=(0.05, 0.04, 0.06, 0.05, 0.08)))   # healthy, residual-like
    v.flush()
    assert "even across depth" in v.summary.text() and set(v.marks) == {"ok"}


# --- probabilities and curves -------------------------------------------------
def test_probability_bars_highlight_true_and_predicted(qtbot):
    probe = make_probe()
    v = build(qtbot, ProbabilityView)
    v.show_probe(probe)
    v.flush()
    assert np.allclose(v.bars.bars.opts["height"], probe.probabilities)
    assert v.bars.brushes[probe.label].name() == "#2e7d32"
    wrong = dataclasses.replace(probe, label=1)
    v.show_probe(wrong)
    v.flush()
    assert v.bars.brushes[1].name() == "#2e7d32" and v.bars.brushes[wrong.predicted].name() == "#c62828"
    assert "wrong" in v.headline.text()


def test_curves_append_history_smooth_and_export(qtbot, tmp_path):
    v = build(qtbot, CurvesView)
    for step in range(5, 55, 5):
        v.show_training(make_training(step=step, loss=2.0 / step, acc=step / 60))
    v.show_training(make_training(step=50))   # re-sent rows are not appended twice
    v.show_epoch(EpochEnd(0, 50, 0.5, 0.7, 0.6, 0.65))
    v.smoothing.setValue(50)
    v.flush()
    sx, sy = v.loss_smooth.getData()
    rx, ry = v.loss_raw.getData()
    assert list(rx) == list(range(1, 51))
    ref, y = [], None
    for val in ry:
        y = val if y is None else 0.5 * y + 0.5 * val
        ref.append(y)
    assert np.allclose(sy, ref)
    assert list(v.acc_val.getData()[1]) == [0.65]
    path = tmp_path / "c.csv"
    assert v.export_csv(path)
    lines = path.read_text().splitlines()
    assert lines[0] == "step,split,loss,accuracy" and len(lines) == 1 + 50 + 1 and lines[-1].startswith("50,validation")


def test_growable_table_is_bounded_and_ema_is_incremental():
    t = GrowableTable(2, cap=1000)
    for i in range(30):
        t.append(np.stack([np.arange(i * 100, i * 100 + 100), np.zeros(100)], axis=1))
    assert len(t) <= 1000 and t.decimations > 0 and t.data[-1, 0] == 2999
    x = np.random.default_rng(0).normal(size=1000)
    whole = ema(x, 0.9)
    parts = np.concatenate([ema(x[:300], 0.9), ema(x[300:], 0.9, prev=ema(x[:300], 0.9)[-1])])
    assert np.allclose(whole, parts)


def test_view_histories_stop_growing_at_their_caps(qtbot):
    # What keeps a long run's memory flat: every history table of a view has a cap,
    # and the step curve's is reached within minutes of LeNet-5 training.
    from visualizer.gui.views.series import HISTORY_CAP, STEP_HISTORY_CAP
    curves, grads = build(qtbot, CurvesView), build(qtbot, GradientView)
    rows = 20_000
    for i in range(1, 4):
        snap = make_training(step=i * rows, history_rows=rows)
        curves.show_training(snap)
    assert len(curves.train) <= STEP_HISTORY_CAP and curves.train.data[-1, 0] == 3 * rows
    for step in range(1, HISTORY_CAP + 50):
        grads.show_training(make_training(step=step, history_rows=1))
    assert len(grads.history) <= HISTORY_CAP and grads.history.data[-1, 0] == HISTORY_CAP + 49
    assert STEP_HISTORY_CAP <= 50_000 and HISTORY_CAP <= 5_000


def test_validation_points_are_set_once_an_epoch_and_follow_each_epoch_and_a_reset(qtbot):
    from visualizer.core.snapshot import EpochEnd
    v = build(qtbot, CurvesView)
    v.show_training(make_training(step=5))
    v.show_epoch(EpochEnd(0, 10, 0.5, 0.8, 0.4, 0.85))
    v.flush()
    assert list(v.loss_val.getData()[1]) == [0.4]
    sets = []
    v.loss_val.sigPlotChanged.connect(lambda *_: sets.append(1))
    for step in range(20, 200, 20):                         # frames without a new epoch
        v.show_training(make_training(step=step))
        v.flush()
    assert sets == [] and list(v.loss_val.getData()[1]) == [0.4]
    v.show_epoch(EpochEnd(1, 200, 0.5, 0.8, 0.3, 0.9))
    v.show_training(make_training(step=220))
    v.flush()
    assert list(v.loss_val.getData()[1]) == [0.4, 0.3] and list(v.acc_val.getData()[1]) == [0.85, 0.9]
    v.clear()
    v.flush()
    assert v.loss_val.getData()[0] is None or len(v.loss_val.getData()[0]) == 0


def test_many_validation_points_are_drawn_as_a_line(qtbot):
    # A dot per validation point while they are few; thousands of dots (a long run on the
    # digits) are a line: pyqtgraph kept memory for every dot on every redraw.
    from visualizer.core.snapshot import EpochEnd
    from visualizer.gui.views.curves import VAL_DOTS_MAX
    v = build(qtbot, CurvesView)
    v.show_training(make_training(step=5))
    for e in range(3):
        v.show_epoch(EpochEnd(e, 10 * e + 10, 0.5, 0.8, 0.4, 0.85))
    v.flush()
    assert v.loss_val.opts["symbol"] == "o" and v.acc_val.opts["symbol"] == "o"
    for e in range(3, VAL_DOTS_MAX + 5):
        v.show_epoch(EpochEnd(e, 10 * e + 10, 0.5, 0.8, 0.4, 0.85))
    v.flush()
    assert v.loss_val.opts["symbol"] is None and v.acc_val.opts["symbol"] is None
    assert len(v.loss_val.getData()[0]) == VAL_DOTS_MAX + 5


# --- contract: export, throttle, presentation -------------------------------
ALL = (FeatureMapView, OverviewStripView, FilterView, PoolingView, ActivationView, GradientView, ProbabilityView,
       CurvesView)


@pytest.mark.parametrize("cls", ALL)
def test_every_view_exports_png_svg_and_says_whether_it_has_a_table(qtbot, tmp_path, cls):
    v = build(qtbot, cls, (640, 420))
    v.set_layer("S2" if cls is PoolingView else "C3")
    v.show_training(make_training(probe=make_probe()))
    v.export_png(tmp_path / "v.png")
    v.export_svg(tmp_path / "v.svg")
    assert (tmp_path / "v.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (tmp_path / "v.svg").read_text()
    has_table = v.export_csv(tmp_path / "v.csv")
    assert has_table == (cls in (GradientView, CurvesView, ProbabilityView, ActivationView))
    if has_table:
        assert len((tmp_path / "v.csv").read_text().splitlines()) > 1
    v.copy_to_clipboard()
    v.clear()
    v.flush()


def test_views_repaint_at_most_once_per_burst(qtbot, monkeypatch):
    v = build(qtbot, ProbabilityView)
    v.show()
    qtbot.waitExposed(v)
    calls = []
    monkeypatch.setattr(v, "_draw", lambda: calls.append(1))
    for seed in range(20):
        v.show_probe(make_probe(seed=seed % 3))
    assert calls == []   # nothing drawn synchronously
    qtbot.waitUntil(lambda: len(calls) >= 1, timeout=2000)
    assert len(calls) == 1


def test_presentation_mode_thickens_lines_and_enlarges_fonts(qtbot):
    v = build(qtbot, CurvesView)
    normal = v.loss_smooth.opts["pen"].widthF()
    v.set_presentation(True)
    assert v.loss_smooth.opts["pen"].widthF() > normal
    # The size follows the screen: 12 pt on 720 lines up to 18 pt on 1080 and more (normal: 9 pt).
    pt = v.loss_plot.getAxis("left").style["tickFont"].pointSize()
    assert pt == v.font_pt() and PRESENTATION_PT[0] <= pt <= PRESENTATION_PT[1]
    v.set_presentation(False)
    assert v.loss_smooth.opts["pen"].widthF() == normal


def test_views_do_not_import_torch():
    import subprocess
    import sys
    code = "import sys, visualizer.gui.views, visualizer.gui.render; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# --- live-frame cost: what keeps a frame cheap (bench/gui_responsiveness.py) ---------
def _feed(v, frames: int, start: int = 0, probe=None):
    for i in range(frames):
        step = start + 25 * (i + 1)
        v.show_training(make_training(step=step, loss=2.0 / (1 + 0.01 * step) + 0.02 * math.sin(i),
                                      acc=min(1.0, step / 3000), history_rows=25, probe=probe))
        v.flush()


@pytest.mark.parametrize("cls", ALL)
def test_frames_update_items_in_place(qtbot, cls):
    """A steady stream of snapshots changes data, not the scene: no items created per frame."""
    v = build(qtbot, cls, (800, 500))
    v.set_layer("S2" if cls is PoolingView else "C3")
    probe = make_probe()
    _feed(v, 10, probe=probe)
    counts = [len(g.scene().items()) for g in v._graphics]
    _feed(v, 20, start=250, probe=probe)
    assert [len(g.scene().items()) for g in v._graphics] == counts


def test_growing_curves_rerange_rarely_and_axes_are_cached(qtbot):
    from PyQt6.QtWidgets import QGraphicsItem

    from visualizer.gui.views.axes import LiveAxis
    v = build(qtbot, CurvesView)
    _feed(v, 80)   # 2000 steps, one frame per 25
    # Auto-range re-fitted (and re-ticked every axis) on every frame; following with headroom
    # re-ranges only when the data outgrows the view.
    assert v.follower.refits <= 15
    (x0, x1), _ = v.loss_plot.vb.viewRange()
    assert x0 <= 25 and x1 >= 2000
    for p in (v.loss_plot, v.acc_plot):
        for name in ("left", "bottom"):
            ax = p.getAxis(name)
            assert isinstance(ax, LiveAxis)
            assert ax.cacheMode() == QGraphicsItem.CacheMode.DeviceCoordinateCache


def test_a_fast_runs_step_axes_span_its_first_epoch_and_a_stepped_run_fills_them(qtbot):
    """At full speed (many steps a snapshot) the step axes span the first epoch (100 batches here)
    from the start: its frames do not re-range (and re-tick) them, and past it they follow the run.
    Stepped a batch at a time, the axes stay close to the few steps there are."""
    curves, grads = build(qtbot, CurvesView), build(qtbot, GradientView)
    for step in range(10, 101, 10):
        for v in (curves, grads):
            v.show_training(make_training(step=step, history_rows=10))
            v.flush()
    assert curves.follower.refits == 1 and grads.history_follower.refits == 1     # the first fit only
    for vb in (curves.loss_plot.vb, grads.history_plot.vb):
        (x0, x1), _ = vb.viewRange()
        assert x0 <= 10 and x1 >= 100      # (the gradient history starts at the first snapshot)
    for v in (curves, grads):
        v.show_training(make_training(step=400, history_rows=10))
        v.flush()
    assert curves.loss_plot.vb.viewRange()[0][1] >= 400 and grads.history_plot.vb.viewRange()[0][1] >= 400

    stepped = build(qtbot, CurvesView)
    for step in range(1, 6):
        stepped.show_training(make_training(step=step, history_rows=1))
        stepped.flush()
    (x0, x1), _ = stepped.loss_plot.vb.viewRange()
    assert x1 <= 1 + 1.9 * 10 + 1      # ten single steps of room (and the follower's headroom), not an epoch


def test_live_axes_draw_major_and_minor_ticks_only(qtbot):
    """Two levels of ticks and grid lines (pyqtgraph's third added ~60 faint lines to every re-tick)."""
    v = build(qtbot, CurvesView)
    _feed(v, 40)
    for p in (v.loss_plot, v.acc_plot):
        for name in ("left", "bottom"):
            ax = p.getAxis(name)
            lo, hi = ax.range
            assert len(ax.tickValues(lo, hi, 1000)) == 2      # (pyqtgraph's default gives three here)


def test_a_falling_loss_gets_a_range_from_zero_and_a_flat_one_keeps_its_detail(qtbot):
    v = build(qtbot, CurvesView)
    _feed(v, 40)   # loss 2.0 / (1 + 0.01 step): 1.6 -> 0.095, each frame a new low
    _, (y0, y1) = v.loss_plot.vb.viewRange()
    assert y0 == 0.0 and y1 >= 1.6
    _feed(v, 40, start=1000)
    assert v.loss_plot.vb.viewRange()[1] == [y0, y1]     # new lows near zero no longer re-range
    flat = build(qtbot, CurvesView)
    for i in range(20):                                  # not learning: 2.30 +- 0.01
        flat.show_training(make_training(step=25 * (i + 1), loss=2.30 + 0.01 * math.sin(i), acc=0.1, history_rows=1))
        flat.flush()
    _, (y0, y1) = flat.loss_plot.vb.viewRange()
    assert 2.2 < y0 < 2.29 and y1 < 2.4                  # the wiggle is still visible


def test_following_stops_when_the_user_pans_and_resumes_with_auto_range(qtbot):
    v = build(qtbot, CurvesView)
    _feed(v, 5)
    v.loss_plot.vb.sigRangeChangedManually.emit([True, True])   # as a mouse drag does
    v.loss_plot.vb.setRange(xRange=(0, 10), padding=0)
    _feed(v, 20, start=125)
    assert v.loss_plot.vb.viewRange()[0][1] == pytest.approx(10)   # the user's view is kept
    v.loss_plot.autoBtnClicked()   # the plot's "A" button
    _feed(v, 1, start=700)
    assert v.loss_plot.vb.viewRange()[0][1] >= 725


def test_a_short_history_is_dotted_and_a_longer_one_a_line(qtbot):
    from visualizer.gui.views.series import DOTS_BELOW
    g = build(qtbot, GradientView)
    g.show_training(make_training(step=10, history_rows=1))
    g.flush()
    assert all(c.opts["symbol"] == "o" for c in g.curves)   # a lone point has no line: its dot is all there is
    for i in range(DOTS_BELOW):
        g.show_training(make_training(step=20 + 10 * i, history_rows=1))
    g.flush()
    assert all(c.opts["symbol"] is None for c in g.curves)


def test_gradient_history_spans_whole_decades_and_keeps_them_while_norms_jitter(qtbot):
    g = build(qtbot, GradientView)
    rng = np.random.default_rng(0)
    ranges = []
    for i in range(60):          # every layer's norm jumps around inside 1e-3 .. 1e-2, new extremes often
        g.show_training(make_training(step=10 * (i + 1), history_rows=1, norms=rng.uniform(1.1e-3, 9e-3, 5)))
        g.flush()
        ranges.append(tuple(g.history_plot.vb.viewRange()[1]))
    lo, hi = ranges[-1]
    assert lo <= -3 and hi >= -2 and hi - lo <= 1.3         # the decade, a little padding
    assert len(set(ranges[25:])) == 1                        # and kept, frame after frame


def test_gradient_and_activation_frames_do_not_rerange_every_frame(qtbot):
    g = build(qtbot, GradientView)
    a = build(qtbot, ActivationView)
    probe = make_probe()
    for view in (g, a):
        _feed(view, 60, probe=probe)
    assert g.history_follower.refits <= 12
    assert a.function_follower.refits <= 2 and a.hist_follower.refits <= 2


def test_per_frame_text_does_not_change_a_views_minimum_size(qtbot):
    """Per-frame status text must not resize the view (the main window re-laid out every dock)."""
    v = build(qtbot, CurvesView)
    _feed(v, 2)
    before = v.minimumSizeHint()
    v.latest.setText("step 123456789 · " * 20)
    assert v.minimumSizeHint() == before


def test_frame_pacer_spreads_views_over_the_event_loop_and_says_when_all_drew(qtbot):
    """Views due together draw in separate event-loop turns, GAP_MS apart; one that drew nothing uses no
    slot; a burst of requests is one draw; ``when_drawn`` fires once every asking view has drawn."""
    import time

    from PyQt6.QtCore import QObject

    from visualizer.gui.views.frame_pacer import FramePacer

    fired = []

    class Fake(QObject):
        def __init__(self, name, draws=True):
            super().__init__()
            self.name, self.draws = name, draws

        def draw_frame(self):
            fired.append((self.name, time.monotonic()))
            return self.draws

    pacer = FramePacer(gap_ms=20)
    idle, a, b = Fake("idle", draws=False), Fake("a"), Fake("b")
    for v in (idle, a, b, a, a):
        pacer.submit(v)
    done = []
    pacer.when_drawn(lambda: done.append(time.monotonic()))
    assert fired == [] and done == []   # nothing draws synchronously
    qtbot.waitUntil(lambda: len(done) == 1, timeout=2000)
    names = [n for n, _ in fired]
    times = dict(fired)
    assert names == ["idle", "a", "b"]
    assert times["a"] - times["idle"] < 0.015          # the idle view took no slot
    assert times["b"] - times["a"] >= 0.018             # the next view waits a gap
    assert done[0] >= times["b"]                        # told only after the last one drew
    pacer.submit(a)                                     # again at once: not before 1/30 s after its last draw
    qtbot.waitUntil(lambda: len(fired) == 4, timeout=2000)
    assert fired[-1][1] - times["a"] >= pacer.min_interval - 0.002
    nothing = []
    pacer.when_drawn(lambda: nothing.append(1))         # nothing waiting: at once
    assert nothing == [1]


def test_bar_labels_never_overlap_and_follow_the_axis_width(qtbot):
    # An 18-layer network's gradient bars: at a projector's width only every k-th layer is named,
    # spaced at least a label's width apart; a wider plot names more of them.
    import pyqtgraph as pg

    from visualizer.gui.views.bars import set_category_ticks
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    names = [f"layer{i // 4 + 1}.{i % 2}.conv{i % 3 + 1}" for i in range(18)]
    plot.resize(600, 300)
    plot.show()
    plot.setXRange(-0.5, 17.5, padding=0)
    axis = plot.getPlotItem().getAxis("bottom")
    set_category_ticks(axis, names)

    def labelled():
        qtbot.wait(50)
        major = axis._tickLevels[0]
        font = QFontMetrics(axis.style.get("tickFont") or axis.font())
        widest = max(font.horizontalAdvance(t) for _, t in major)
        per_bar = axis.geometry().width() / 18
        gaps = [(b - a) * per_bar for (a, _), (b, _) in zip(major, major[1:])]
        return major, widest, gaps

    major, widest, gaps = labelled()
    assert 1 < len(major) < 18 and min(gaps) >= widest
    plot.resize(1900, 300)
    qtbot.waitUntil(lambda: len(axis._tickLevels[0]) > len(major), timeout=3000)
    wider, widest, gaps = labelled()
    assert min(gaps) >= widest
