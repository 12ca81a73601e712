"""The top-patches view drawn from a real search on the shipped LeNet-5 over the digits."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PyQt6.QtCore import QPointF, Qt

from tests.gui.alive import keep
from visualizer.core.assemble import data_for
from visualizer.core.channels.top_patches import ImageSource, search_top_patches
from visualizer.core.checkpoint import load_model
from visualizer.core.datasets import load_dataset
from visualizer.gui.views.top_patches import TopPatchesView

REPO = Path(__file__).resolve().parents[2]
@pytest.fixture(scope="module")
def searches():
    bundle = load_model(REPO / "models" / "lenet5_digits.pt")
    data = data_for(bundle, load_dataset("digits"), val_fraction=0.1, reuse_normalisation=True)
    source = ImageSource.from_split(data, "val")
    full = search_top_patches(bundle.model, "C3", source)
    seen = []
    partial = search_top_patches(bundle.model, "C3", source, batch_size=32, progress=lambda d, t: seen.append(d),
                                 cancel=lambda: len(seen) >= 2)
    return full, partial


def build(qtbot, size=(1280, 720)):
    v = TopPatchesView()
    qtbot.addWidget(v)
    keep(v)
    v.resize(*size)
    return v


def test_one_cell_per_channel_with_its_patches_best_first(qtbot, searches):
    full, _ = searches
    v = build(qtbot)
    v.set_patches(full)
    v.flush()
    grid = v._grid
    assert v.mosaic_item.image.shape == (*grid.shape, 3) and grid.channels == 16
    image = v.mosaic_item.image
    for channel, rank in ((0, 0), (5, 0), (5, 8), (15, 4)):
        y, x = grid.origin(channel, rank)
        patch = full.channels[channel].patches[rank]           # (14, 14, 1) uint8
        drawn = image[y:y + grid.patch_h, x:x + grid.patch_w]
        assert np.array_equal(drawn, np.repeat(patch, 3, axis=-1))
    assert v.summary.text().startswith("C3: top 9 of 179 val images per channel · field 14×14 px, 2 px apart")


def test_clicking_a_patch_emits_its_dataset_index(qtbot, searches):
    full, _ = searches
    v = build(qtbot)
    v.set_patches(full)
    v.show()
    qtbot.waitExposed(v)
    v.flush()
    y, x = v._grid.origin(5, 2)
    scene = v.mosaic_item.mapToScene(QPointF(x + 3.5, y + 3.5))
    where = v.graphics.mapFromScene(scene)
    with qtbot.waitSignal(v.patch_selected) as sig:
        qtbot.mouseClick(v.graphics.viewport(), Qt.MouseButton.LeftButton, pos=where)
    index = int(full.channels[5].indices[2])
    assert sig.args == [index, "val"]
    assert v.readout.text().startswith(f"channel 5 · #3 · image {index} of val · score ")
    assert v.marker.isVisible()
    assert v.select_patch_at(y - 2, x - 2) is None      # the gap between two cells selects nothing


def test_progress_cancel_and_a_cancelled_result(qtbot, searches):
    full, partial = searches
    v = build(qtbot)
    v.set_layer("C3")
    assert v.search_button.text() == "Find top patches of C3"
    with qtbot.waitSignal(v.search_requested) as sig:
        v.search_button.click()
    assert sig.args == ["C3"] and not v.search_button.isEnabled()
    v.set_progress(64, 179)
    assert not v.progress.isHidden() and v.progress.value() == 64 and v.progress.maximum() == 179
    with qtbot.waitSignal(v.cancel_requested):
        v.cancel_button.click()
    v.set_patches(partial)
    v.flush()
    assert partial.cancelled and partial.searched == 64
    assert v.progress.isHidden() and v.cancel_button.isHidden() and v.search_button.isEnabled()
    assert "(cancelled at 64 of 179)" in v.summary.text()
    header, rows = v.csv_table()
    assert header[:4] == ("channel", "rank", "index", "score") and all(r[2] < 64 for r in rows)
    v.set_patches(full)
    v.flush()
    assert "cancelled" not in v.summary.text()


def test_readable_at_1280x720_and_exported_as_png(qtbot, searches, tmp_path):
    full, _ = searches
    v = build(qtbot)
    v.set_patches(full)
    v.show()
    qtbot.waitExposed(v)
    v.flush()
    (x0, x1), (y0, y1) = v.box.viewRange()
    h, w = v._grid.shape
    assert x0 <= 0 and x1 >= w and y0 <= 0 and y1 >= h                   # the whole mosaic is in view
    scale = v.box.width() / (x1 - x0)
    assert scale * v._grid.patch_w >= 20                                   # a 14-pixel patch drawn >= 20 px
    assert v.summary.fontMetrics().horizontalAdvance(v.summary.text()) < v.summary.width()
    path = tmp_path / "top_patches.png"
    v.export_png(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
