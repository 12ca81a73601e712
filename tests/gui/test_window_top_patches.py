"""The Top patches view in the real window (thread engine): a search over the training split with
progress and cancel, accumulation from the training passes while training runs, and a click on a
patch making its image the probe input (the patch is then the receptive field cut from the input)."""
from __future__ import annotations

import time

import numpy as np
import pytest
from PyQt6.QtCore import QPointF, Qt

from tests.gui.looking_window import WAIT, open_window, show_view, stop, view_of
from visualizer.core.config import TrainConfig
from visualizer.gui.settings import Settings
from visualizer.gui.top_patches_presenter import WHILE_TRAINING

LIVE = TrainConfig(epochs=10_000, batch_size=32)


@pytest.fixture
def window(qtbot, tmp_path):
    w = open_window(qtbot, Settings(tmp_path / "settings.ini"))
    yield w
    w.close()
    assert not w.controller.worker.is_running()


def click_patch(qtbot, view, channel: int, rank: int) -> int:
    """A real mouse click on the patch (channel, rank) of the grid; returns the image's index."""
    view.flush()
    y, x = view._grid.origin(channel, rank)
    scene = view.mosaic_item.mapToScene(QPointF(x + view._grid.patch_w / 2, y + view._grid.patch_h / 2))
    with qtbot.waitSignal(view.patch_selected) as sig:
        qtbot.mouseClick(view.graphics.viewport(), Qt.MouseButton.LeftButton, pos=view.graphics.mapFromScene(scene))
    return sig.args[0]


def field_of_input(probe, box) -> np.ndarray:
    """The (h, w, C) uint8 pixels of the probe input inside ``box`` (y0, x0, y1, x1): what the patch must show."""
    y0, x0, y1, x1 = (int(v) for v in box)
    pixels = np.clip(np.asarray(probe.input_image) * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.moveaxis(pixels[:, y0:y1, x0:x1], 0, -1)


def assert_patch_is_the_input(window, view, channel: int, rank: int, index: int) -> None:
    ch = view.result.channels[channel]
    assert int(ch.indices[rank]) == index
    probe = window.session.latest_probe
    y0, x0, y1, x1 = (int(v) for v in ch.boxes[rank])
    # C1's fields lie inside the image (5x5, no padding): the patch is exactly those input pixels.
    assert np.array_equal(ch.patches[rank][: y1 - y0, : x1 - x0], field_of_input(probe, ch.boxes[rank]))
    assert f"image {index} of the training split" in window.input_panel.note_label.text()


def test_a_search_with_progress_then_a_click_makes_that_image_the_probe_input(qtbot, window):
    view = view_of(window, "Top patches")
    show_view(qtbot, window, view)
    window.controller.select_layer("S2")
    assert not view.search_button.isEnabled() and "conv layers" in view.search_button.toolTip()
    window.controller.select_layer("C1")
    assert view.search_button.isEnabled() and view.search_button.text() == "Find top patches of C1"
    progress = []
    window.controller.analysis_progress.connect(lambda p: progress.append((p.done, p.total)))
    qtbot.mouseClick(view.search_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.result is not None, timeout=WAIT)
    r = view.result
    assert r.layer == "C1" and r.split == "train" and r.complete and len(r.channels) == 6
    assert progress and progress[-1] == (r.total, r.total) and view.progress.isHidden()
    view.flush()
    assert view.summary.text().startswith(f"C1: top 9 of {r.total} train images per channel")
    before = window.session.latest_probe
    index = click_patch(qtbot, view, channel=3, rank=0)
    # The probe that answers the click (one already on its way may still show the old input).
    qtbot.waitUntil(lambda: window.session.latest_probe is not before and _input_is(window, view, 3, 0),
                    timeout=WAIT)
    assert_patch_is_the_input(window, view, 3, 0, index)
    assert window.input_panel.preview.pixmap() is not None


def test_while_training_the_patches_follow_the_training_batches(qtbot, window):
    view = view_of(window, "Top patches")
    show_view(qtbot, window, view)
    window.controller.select_layer("C1")
    live = []
    window.controller.live_top_patches.connect(live.append)
    window.controller.start_training(LIVE)
    qtbot.waitUntil(lambda: view.result is not None and view.result.searched > 0, timeout=WAIT)
    assert view.result.split == "train" and view.result.layer == "C1"
    assert not view.search_button.isEnabled() and view.search_button.toolTip() == WHILE_TRAINING
    # Every training step the budget allows is looked at: within an epoch or two every training image has
    # been seen (on a slow machine the budget skips more batches, hence the longer wait).
    qtbot.waitUntil(lambda: view.result.complete, timeout=3 * WAIT)
    assert all(len(c.indices) == 9 for c in view.result.channels)
    before = window.session.latest_probe
    index = click_patch(qtbot, view, channel=1, rank=2)
    # The next training snapshot's probe shows the clicked training image.
    qtbot.waitUntil(lambda: window.session.latest_probe is not before and _input_is(window, view, 1, 2),
                    timeout=WAIT)
    assert_patch_is_the_input(window, view, 1, 2, index)
    # Nobody looks at the view: the engine stops accumulating (no hook, no results).
    show_view(qtbot, window, view_of(window, "Feature maps"))
    assert window.looking.top_patches.watching is None
    qtbot.wait(300)                    # the wish reaches the engine at its next training event
    n = len(live)
    qtbot.wait(2500)                   # results come at most once a second while watched
    assert len(live) == n
    window.controller.pause()
    show_view(qtbot, window, view)
    assert view.search_button.isEnabled()   # paused: a search is offered again
    stop(qtbot, window)


def _input_is(window, view, channel, rank) -> bool:
    ch = view.result.channels[channel]
    y0, x0, y1, x1 = (int(v) for v in ch.boxes[rank])
    return np.array_equal(ch.patches[rank][: y1 - y0, : x1 - x0],
                          field_of_input(window.session.latest_probe, ch.boxes[rank]))


def test_cancel_stops_a_long_search_promptly(qtbot, tmp_path):
    w = open_window(qtbot, Settings(tmp_path / "settings.ini"))
    try:
        view = view_of(w, "Top patches")
        show_view(qtbot, w, view)
        w.controller.set_dataset("shapes", limit=3000)
        w.controller.rebuild("resnet18", {})
        qtbot.waitUntil(lambda: w.session.model.arch == "resnet18" and w.controller.data.spec == "shapes",
                        timeout=60_000)
        layer = "layer4.1.conv2"
        w.controller.select_layer(layer)
        progress = []
        w.controller.analysis_progress.connect(lambda p: progress.append(p.done))
        qtbot.mouseClick(view.search_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: len(progress) >= 1 and not view.progress.isHidden(), timeout=60_000)
        assert not view.cancel_button.isHidden() and not view.search_button.isEnabled()
        t0 = time.perf_counter()
        qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: view.result is not None, timeout=WAIT)
        elapsed = time.perf_counter() - t0
        r = view.result
        assert r.cancelled and r.searched < r.total == 2700 and r.searched == progress[-1]
        print(f"cancelled after {r.searched} of {r.total} images; the answer came {elapsed:.2f} s after Cancel")
        assert elapsed < 3.0, f"the search went on {elapsed:.1f} s after Cancel"
        assert view.progress.isHidden() and view.cancel_button.isHidden() and view.search_button.isEnabled()
        view.flush()
        assert f"(cancelled at {r.searched:,} of 2,700)" in view.summary.text()
    finally:
        w.close()
