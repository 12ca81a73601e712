"""Measures what pyqtgraph's drawing keeps, in a process of its own (the leak tests run it).

    python tests/gui/leak_probe.py image|curve

prints the bytes Python allocations still hold after 3,000 draws, after a warm-up. Python's
own allocations are traced (tracemalloc), so this is exact, not RSS noise.
"""
from __future__ import annotations

import os
import sys
import tracemalloc
from pathlib import Path


def image_renders() -> int:
    import numpy as np
    import pyqtgraph as pg
    item = pg.ImageItem(axisOrder="row-major")
    frames = [np.random.default_rng(i).random((28, 28)).astype(np.float32) for i in range(4)]

    def render(i):
        item.setImage(frames[i % 4], autoLevels=False, levels=(0.0, 1.0))
        item.render()
    return measure(render, warm=200)


def curve_frames() -> int:
    import numpy as np
    import pyqtgraph as pg
    from PyQt6.QtGui import QImage, QPainter
    # A thick solid pen: pyqtgraph draws it as line segments (the curves view's smoothed line).
    curve = pg.PlotCurveItem(pen=pg.mkPen("w", width=2))
    target = QImage(200, 100, QImage.Format.Format_ARGB32)
    x = np.arange(4000, dtype=float)
    y = np.sin(x / 50)

    def frame(i):
        n = 800 + i if i < 200 else 1000 + i % 997   # the history grows and is decimated, as a capped table is
        curve.setData(x[:n], y[:n], skipFiniteCheck=True)
        painter = QPainter(target)
        curve.paint(painter, None, None)
        painter.end()
    return measure(frame, warm=200)


def measure(draw, *, warm: int, n: int = 3000) -> int:
    for i in range(warm):              # caches, lookup tables
        draw(i)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(warm, warm + n):
            draw(i)
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def main(case: str) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from PyQt6.QtWidgets import QApplication
    _app = QApplication(sys.argv[:1])
    import visualizer.gui  # noqa: F401 - installs the workaround, as every view's import does
    print({"image": image_renders, "curve": curve_frames}[case]())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
