"""A small grid of numbers drawn on their own colours: a conv patch, a kernel, the products.

One ImageItem for the colours and one TextItem per cell, created when the grid's shape
changes and otherwise updated in place. Text is black or white, whichever reads on the
cell's colour. Cells outside the real input (padding) show their value in grey italics,
and one cell can be ringed (the winner of a max-pooling window).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtGui import QColor, QFont, QFontMetricsF

from . import colormaps
from .finite import finite_float32
from .images import image_box

MAX_NUMBERED = 7      # wider kernels (AlexNet's 11x11) are drawn in colour only: the numbers would not fit
FILL = 0.85           # share of a cell's width the widest number may take
MIN_PX = 7            # below this the numbers are hidden: colour only
PAD_GREY = QColor(128, 128, 128)


def format_number(v: float) -> str:
    """Short enough for a cell, precise enough to add up by eye: 0.12, -3.4, 123."""
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def readable_on(color: QColor) -> QColor:
    lum = 0.299 * color.redF() + 0.587 * color.greenF() + 0.114 * color.blueF()
    return QColor("black") if lum > 0.5 else QColor("white")


class NumberGrid:
    """A titled grid of values in a GraphicsLayout cell: ``set(values, inside=None, ring=None)``."""

    def __init__(self, layout: pg.GraphicsLayout, row: int, col: int):
        self.box, self.item = image_box(layout, row, col)
        self.box.setMouseEnabled(False, False)
        self.texts: list[pg.TextItem] = []
        self.values = np.zeros((0, 0), np.float32)
        self.levels = (-1.0, 1.0)
        self.ring = pg.PlotDataItem(pen=pg.mkPen("#00c853", width=3))
        self.box.addItem(self.ring)
        self._shape: tuple[int, int] | None = None
        self._font = QFont()
        self._max_px = 14
        self._fitted: tuple[int, bool] | None = None    # (pixel size, visible) the texts have now
        self.item.setColorMap(colormaps.diverging())
        self.box.sigResized.connect(lambda *_: self.fit_text())

    def set_font_pt(self, pt: int) -> None:
        """The largest size the numbers may have (they shrink to fit their cells)."""
        self._max_px = max(MIN_PX, round(pt * 4 / 3))
        self.fit_text()

    def cell_pixels(self) -> float:
        """Screen pixels per cell (square: the box keeps the aspect ratio)."""
        view = self.box.viewRect()
        if view.width() <= 0 or view.height() <= 0:
            return 0.0
        return min(self.box.width() / view.width(), self.box.height() / view.height())

    def fit_text(self) -> None:
        """Numbers as large as the cells allow (up to the view's font), hidden when they cannot be read."""
        if not self.texts:
            return
        widest = max((getattr(t, "number", "") for t in self.texts), key=len, default="") or "-0.00"
        probe = QFont(self._font)
        probe.setPixelSize(100)
        width = QFontMetricsF(probe).horizontalAdvance(widest) or 1.0
        px = int(min(self._max_px, 100 * FILL * self.cell_pixels() / width))
        visible = px >= MIN_PX
        if self._fitted == (px, visible):
            return   # a TextItem's setFont re-lays it out: per frame, for 75 cells, that was ~5 ms
        self._fitted = (px, visible)
        if visible:
            self._font.setPixelSize(px)
        for t in self.texts:
            t.setVisible(visible)
            if visible:
                t.setFont(self._font)

    def text_pixel_size(self) -> int:
        return self._font.pixelSize() if self.texts and self.texts[0].isVisible() else 0

    def _rebuild(self, shape: tuple[int, int]) -> None:
        for t in self.texts:
            self.box.removeItem(t)
        self.texts = []
        self._fitted = None
        h, w = shape
        if h <= MAX_NUMBERED and w <= MAX_NUMBERED:
            for r in range(h):
                for c in range(w):
                    t = pg.TextItem("", anchor=(0.5, 0.5))
                    t.setFont(self._font)
                    t.html = ""
                    t.setPos(c + 0.5, r + 0.5)
                    self.box.addItem(t)
                    self.texts.append(t)
        self.box.setRange(xRange=(0, w), yRange=(0, h), padding=0.02)
        self._shape = shape

    def set(self, values, inside: np.ndarray | None = None, ring: tuple[int, int] | None = None,
            levels: tuple[float, float] | None = None) -> None:
        v, _ = finite_float32(values)
        v = v.reshape(v.shape[-2:]) if v.ndim > 2 else v
        if v.shape != self._shape:
            self._rebuild(v.shape)
        lo, hi = float(v.min()) if v.size else 0.0, float(v.max()) if v.size else 0.0
        self.levels = levels or colormaps.symmetric(lo, hi)
        cmap = colormaps.diverging()
        self.item.setImage(v, autoLevels=False, levels=self.levels)
        self.values = v
        if self.texts:
            span = self.levels[1] - self.levels[0] or 1.0
            colours = cmap.map(np.clip((v.ravel() - self.levels[0]) / span, 0, 1), mode="qcolor")
            flags = np.ones(v.shape, bool) if inside is None else np.asarray(inside, bool)
            for t, value, colour, real in zip(self.texts, v.ravel(), colours, flags.ravel()):
                text = format_number(float(value))
                if real:
                    html = f'<span style="color:{readable_on(colour).name()}">{text}</span>'
                else:   # a padding cell: its (zero) value, in grey italics
                    html = f'<i><span style="color:{PAD_GREY.name()}">{text}</span></i>'
                if t.html != html:    # setHtml lays the text out again: only for a changed cell
                    t.setHtml(html)
                    t.html = html
                t.number = text
            self.fit_text()
        if ring is None:
            self.ring.setData([], [])
        else:
            r, c = ring
            self.ring.setData([c, c + 1, c + 1, c, c], [r, r, r + 1, r + 1, r])

    def shown_numbers(self) -> list[str]:
        """The numbers drawn, row by row (what a user reads off the grid)."""
        return [getattr(t, "number", "") for t in self.texts]

    def clear(self) -> None:
        self.item.clear()
        for t in self.texts:
            t.setHtml("")
            t.html = ""
            t.number = ""
        self.ring.setData([], [])
