"""An AxisItem whose grid lines are cheap to draw.

pyqtgraph draws a plot's grid as long translucent tick lines from its axes.
Qt's raster engine draws translucent cosmetic lines very slowly when the
painter has no clip set (measured: 50 grid lines, 3-7 ms unclipped, 0.1 ms
with any clip), which made every re-tick of a gridded axis cost several
milliseconds. Clipping to the axis's own bounding rect (which already spans
the grid) changes nothing on screen and takes the fast path.

The axes also stop at the minor ticks: pyqtgraph's third level added some
60 faint grid lines to a plot, most of what a re-tick computed and drew
(each re-range of a live plot re-ticks its axes in the next paint).
"""
from __future__ import annotations

import pyqtgraph as pg
from PyQt6.QtCore import Qt


class LiveAxis(pg.AxisItem):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.setStyle(maxTickLevel=1)   # major and minor ticks (and grid lines); see the docstring

    def paint(self, p, opt, widget):
        p.setClipRect(self.boundingRect(), Qt.ClipOperation.IntersectClip)
        super().paint(p, opt, widget)


def live_axes() -> dict[str, LiveAxis]:
    """``axisItems`` for a new PlotItem: the axes that carry grids (left, bottom) as LiveAxis."""
    return {name: LiveAxis(name) for name in ("left", "bottom")}
