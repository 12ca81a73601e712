"""The pyqtgraph/PyQt6 leak workarounds (pyqtgraph_fixes.py): installed, leak-free, same result."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pyqtgraph as pg
import pyqtgraph.functions as pg_functions
from PyQt6 import QtCore
from pyqtgraph.Qt.internals import PrimitiveArray

import visualizer.gui  # noqa: F401 - installs the workaround, as every view's import does
from visualizer.gui import pyqtgraph_fixes


def kept_by_pyqtgraph(run) -> int:
    """Bytes that allocations made inside pyqtgraph's code still hold after ``run()``.

    Python's own allocations are traced, so this is exact, not RSS noise; only those with a
    pyqtgraph frame count, because the suite runs test files one after another in one worker
    process, and a thread an earlier test left running may allocate meanwhile (a CI run counted
    524 KB in this loop with the workaround in place)."""
    tracemalloc.start(30)
    try:
        before = tracemalloc.take_snapshot()
        run()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    inside = [tracemalloc.Filter(True, "*pyqtgraph*", all_frames=True)]
    diff = after.filter_traces(inside).compare_to(before.filter_traces(inside), "filename")
    return sum(d.size_diff for d in diff)


def test_installed_when_the_gui_package_is_imported():
    assert pg_functions.ndarray_to_qimage is pyqtgraph_fixes._ndarray_to_qimage
    assert PrimitiveArray.resize is pyqtgraph_fixes._resize_exactly


def test_a_growing_curve_drawn_as_segments_keeps_no_memory(qapp):
    # A curve whose history grows every frame: pyqtgraph drew a slice of its segment array,
    # and each slice kept 72 bytes (PyQt6 6.11): ~200 KB over these 3,000 frames.
    from PyQt6.QtGui import QImage, QPainter

    curve = pg.PlotCurveItem()
    target = QImage(200, 100, QImage.Format.Format_ARGB32)
    x = np.arange(4000, dtype=float)
    y = np.sin(x / 50)

    def frame(n):
        curve.setData(x[:n], y[:n], skipFiniteCheck=True)
        painter = QPainter(target)
        curve.paint(painter, None, None)
        painter.end()

    for n in range(800, 1000):      # warm-up
        frame(n)

    def frames():
        for i in range(3000):
            frame(1000 + i % 997)    # the history grows and is decimated, as a capped table is
    grown = kept_by_pyqtgraph(frames)
    assert grown < 30_000, f"{grown} bytes kept over 3,000 frames"


def test_segment_arrays_hold_exactly_what_is_drawn():
    segments = PrimitiveArray(QtCore.QLineF, 4)
    segments.resize(10)
    segments.ndarray()[:] = np.arange(40).reshape(10, 4)
    segments.resize(3)
    segments.ndarray()[:] = np.arange(12).reshape(3, 4)
    (lines,) = segments.drawargs()
    assert len(lines) == 3 and lines[2] == QtCore.QLineF(8, 9, 10, 11)


def test_rendering_an_image_item_many_times_keeps_no_memory(qapp):
    # Without the workaround each render kept ~100 bytes (PyQt6 6.11): ~300 KB over these
    # 3,000 renders.
    item = pg.ImageItem(axisOrder="row-major")
    frames = [np.random.default_rng(i).random((28, 28)).astype(np.float32) for i in range(4)]
    for i in range(200):   # warm-up: caches, lookup tables
        item.setImage(frames[i % 4], autoLevels=False, levels=(0.0, 1.0))
        item.render()

    def renders():
        for i in range(3000):
            item.setImage(frames[i % 4], autoLevels=False, levels=(0.0, 1.0))
            item.render()
    grown = kept_by_pyqtgraph(renders)
    assert grown < 30_000, f"{grown} bytes kept over 3,000 renders"


def test_the_qimage_shows_the_array_and_keeps_it_alive(qapp):
    from PyQt6.QtGui import QImage

    argb = np.zeros((2, 3, 4), np.uint8)
    argb[1, 2] = (1, 2, 3, 255)    # B, G, R, A in memory for Format_ARGB32 on little-endian
    argb.setflags(write=False)     # pyqtgraph may hand over read-only views
    qimg = pg_functions.ndarray_to_qimage(argb, QImage.Format.Format_ARGB32)
    del argb
    assert (qimg.width(), qimg.height()) == (3, 2)
    assert qimg.pixel(2, 1) == 0xFF030201
    assert qimg.pixel(0, 0) == 0
