"""The Health view drawn from real reports: LeNet-5 trained on digits, then broken on purpose."""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QImage

from tests.gui.alive import keep
from visualizer.core.assemble import data_for, new_model_bundle
from visualizer.core.config import TrainConfig
from visualizer.core.datasets import load_dataset
from visualizer.core.health import DEAD, EXPLODING, VANISHING
from visualizer.core.health.measure import health_batch, measure_health
from visualizer.core.health.records import format_figure
from visualizer.core.inspector import Inspector
from visualizer.core.training import Trainer
from visualizer.gui.views.health import COLUMNS, FLAG_COLOURS, HealthView


@pytest.fixture(scope="module")
def reports():
    digits = load_dataset("digits")
    bundle = new_model_bundle("lenet5", digits, seed=0)
    data = data_for(bundle, digits, val_fraction=0.0)
    trainer = Trainer(bundle, data, TrainConfig(epochs=3, batch_size=64, snapshot_hz=0))
    try:
        for _ in trainer.run():
            pass
    finally:
        trainer.close()
    x, y = health_batch(data, 256)
    broken = copy.deepcopy(bundle)
    with torch.no_grad():
        broken.model.C3.bias.fill_(-100.0)
    out = {}
    for key, b, config in (("healthy", bundle, None), ("dead", broken, None), ("lr", bundle, TrainConfig(lr=5.0))):
        with Inspector(b) as inspector:
            out[key] = measure_health(inspector, x, y, config=config)
    return out


def build(qtbot, size=(1280, 720)):
    v = HealthView()
    qtbot.addWidget(v)
    keep(v)
    v.resize(*size)
    return v


def cell(v, row_name, column):
    return v.table.item(v._names.index(row_name), COLUMNS.index(column))


def test_rows_show_the_reports_figures_with_thresholds_in_the_titles(qtbot, reports):
    r = reports["healthy"]
    v = build(qtbot)
    v.set_report(r)
    v.flush()
    assert v.table.rowCount() == len(r.layers) == 9
    assert cell(v, "C3_act", "dead_fraction").text() == f"{r.layer('C3_act').dead_fraction:.0%}"
    assert cell(v, "C1", "grad_norm").text() == f"{r.layer('C1').grad_norm:.2g}"
    assert cell(v, "C1", "dead_fraction").text() == "-"
    titles = [v.table.horizontalHeaderItem(i).text() for i in range(len(COLUMNS))]
    assert titles[COLUMNS.index("dead_fraction")] == "dead units\n> 50%"
    assert titles[COLUMNS.index("grad_relative")] == "∇ vs largest\n< 0.001"
    assert titles[COLUMNS.index("update_ratio")] == "‖ΔW‖/‖W‖\n> 0.1 | < 1e-06"
    assert "no flags" in v.summary.text() and "256 samples" in v.summary.text()
    assert all(cell(v, n, "flag").text() == "" for n in v._names)
    assert cell(v, "C1", "grad_relative").toolTip() == "vanishing when < 0.001"


def test_flagged_cells_are_coloured_and_the_advice_is_written_out(qtbot, reports):
    v = build(qtbot)
    v.set_report(reports["dead"])
    v.flush()
    dead = cell(v, "C3_act", "dead_fraction")
    assert dead.text() == "100%" and dead.background().color() == FLAG_COLOURS[DEAD]
    assert cell(v, "C3_act", "flag").text() == "dead"
    assert cell(v, "C3_act", "what to try").text().startswith("its units never fire")
    assert cell(v, "C1", "grad_relative").background().color() == FLAG_COLOURS[VANISHING]
    assert cell(v, "C1", "act_mean").background().style() == Qt.BrushStyle.NoBrush   # only the cells that flag
    assert "layers flagged" in v.summary.text()
    # Nothing selected: the first flagged layer's advice in full below the table.
    assert v.detail.text().startswith("<b>C1</b> — <b>vanishing</b>: no gradient reaches this layer")
    v.set_layer("C3_act")
    v.flush()
    assert "<b>C3_act</b> — <b>dead</b>: its units never fire" in v.detail.text()

    v.set_report(reports["lr"])         # the same rows: updated in place, colours follow the new flags
    v.flush()
    assert cell(v, "output", "update_ratio").background().color() == FLAG_COLOURS[EXPLODING]
    assert cell(v, "C3_act", "dead_fraction").background().style() == Qt.BrushStyle.NoBrush


def test_clicking_a_row_asks_for_that_layer_and_check_now_asks_for_a_report(qtbot, reports):
    v = build(qtbot)
    v.set_report(reports["healthy"])
    v.flush()
    with qtbot.waitSignal(v.layer_requested) as sig:
        v.table.cellClicked.emit(v._names.index("F6"), 3)
    assert sig.args == ["F6"]
    with qtbot.waitSignal(v.check_requested):
        v.check_button.click()
    header, rows = v.csv_table()
    assert header[:3] == ("layer", "kind", "function") and len(list(rows)) == 9
    v.clear()
    v.flush()
    assert v.stack.currentWidget() is v.message and "Check now" in v.message.text()


def _pixels(path) -> np.ndarray:
    img = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB32)
    ptr = img.constBits()
    ptr.setsize(img.sizeInBytes())
    return np.frombuffer(ptr, np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)[:, : img.width(), :3]


def test_readable_at_1280x720_and_exported_as_png(qtbot, reports, tmp_path):
    v = build(qtbot, (1280, 720))
    v.set_report(reports["dead"])
    v.show()
    qtbot.waitExposed(v)
    v.flush()
    assert v.table.horizontalScrollBar().maximum() == 0      # every column fits the width
    assert v.table.verticalScrollBar().maximum() == 0        # and every LeNet row the height
    assert v.summary.fontMetrics().horizontalAdvance(v.summary.text()) < v.summary.width()
    for col in range(len(COLUMNS) - 1):
        assert v.table.columnWidth(col) >= v.table.fontMetrics().horizontalAdvance(
            v.table.horizontalHeaderItem(col).text().split("\n")[0])
    path = tmp_path / "health.png"
    v.export_png(path)
    px = _pixels(path)
    assert px.shape[:2] == (720, 1280)
    rect = v.table.visualItemRect(cell(v, "C3_act", "dead_fraction"))
    origin = v.table.viewport().mapTo(v, rect.center())
    b, g, r = px[origin.y(), origin.x()]   # RGB32 is stored B, G, R, A
    assert (r, g, b) == FLAG_COLOURS[DEAD].getRgb()[:3]


def test_live_figures_keep_the_columns_until_a_text_outgrows_its_column(qtbot, reports):
    """A live report changes its figures every frame: the columns are not fitted again (which measured
    every cell, and made them jitter) until a text is wider than its column; then it fits."""
    r = reports["healthy"]
    v = build(qtbot)
    v.set_report(r)
    v.flush()
    fits = []
    fit = v.table.resizeColumnsToContents
    v.table.resizeColumnsToContents = lambda: (fits.append(1), fit())
    col = COLUMNS.index("act_mean")
    first = r.layers[0]
    for k in range(1, 6):       # the same kind of numbers, a little different each frame
        layer = dataclasses.replace(first, act_mean=first.act_mean * (1 + 0.01 * k))
        v.set_report(dataclasses.replace(r, layers=(layer, *r.layers[1:])))
        v.flush()
        assert v.table.item(0, col).text() == format_figure(layer.act_mean, "act_mean")
    assert not fits
    wide = dataclasses.replace(first, act_mean=-123456.789)
    v.set_report(dataclasses.replace(r, layers=(wide, *r.layers[1:])))
    v.flush()
    text = v.table.item(0, col).text()
    assert len(fits) == 1 and v.table.columnWidth(col) > v.table.fontMetrics().horizontalAdvance(text)
