"""A small grid of numbers drawn on their own colours: a conv patch, a kernel, the products.

One ImageItem for the colours and one item that paints every cell's number (CellNumbers).
Text is black or white, whichever reads on the cell's colour. Cells outside the real input
(padding) show their value in grey italics, and one cell can be ringed (the winner of a
max-pooling window).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import QColor, QFont, QFontMetricsF

from . import colormaps
from .finite import finite_float32
from .images import image_box

MAX_NUMBERED = 7      # wider kernels (AlexNet's 11x11) are drawn in colour only: the numbers would not fit
FILL = 0.85           # share of a cell's width the widest number may take
MIN_PX = 7            # below this the numbers are hidden: colour only
PAD_GREY = QColor(128, 128, 128)
BLACK, WHITE = QColor("black"), QColor("white")


def format_number(v: float) -> str:
    """Short enough for a cell, precise enough to add up by eye: 0.12, -3.4, 123."""
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def readable_on(rgb: np.ndarray) -> np.ndarray:
    """(N, 3+) colours as bytes -> True where black text reads on them (white elsewhere)."""
    rgb = np.asarray(rgb, dtype=np.float64)[:, :3] / 255.0
    return rgb @ np.array([0.299, 0.587, 0.114]) > 0.5


class CellNumbers(pg.GraphicsObject):
    """Every cell's number, painted in one go at a fixed pixel size, centred in its cell.

    One item, not a TextItem per cell: a TextItem lays out its HTML again on every change,
    and a live step-by-step view changes most of its 75 numbers on every snapshot (that was
    3-5 ms a draw; painting 75 short strings is a fraction of a millisecond).
    """

    def __init__(self):
        super().__init__()
        self.grid_shape = (0, 0)
        self.numbers: list[str] = []
        self.colours: list[QColor] = []
        self.italic: list[bool] = []
        self.font = QFont()
        self._italic_font = QFont(self.font)
        self._italic_font.setItalic(True)

    def set_shape(self, shape: tuple[int, int]) -> None:
        self.prepareGeometryChange()
        self.grid_shape = shape
        self.set_cells([], [], [])

    def set_cells(self, numbers: list[str], colours: list[QColor], italic: list[bool]) -> None:
        self.numbers, self.colours, self.italic = numbers, colours, italic
        self.update()

    def set_pixel_size(self, px: int) -> None:
        self.font.setPixelSize(px)
        self._italic_font = QFont(self.font)
        self._italic_font.setItalic(True)
        self.update()

    def boundingRect(self) -> QRectF:
        h, w = self.grid_shape
        return QRectF(0, 0, w, h)

    def paint(self, painter, *args) -> None:
        if not self.numbers:
            return
        _, w = self.grid_shape
        to_device = painter.transform()
        corner = to_device.map(QPointF(0, 0))
        cell = to_device.map(QPointF(1, 1)) - corner
        cw, ch = abs(cell.x()), abs(cell.y())
        painter.save()
        painter.resetTransform()   # text at its pixel size, not scaled with the view
        flags = Qt.AlignmentFlag.AlignCenter
        font = None
        for i, text in enumerate(self.numbers):
            r, c = divmod(i, w)
            centre = to_device.map(QPointF(c + 0.5, r + 0.5))
            want = self._italic_font if self.italic[i] else self.font
            if want is not font:
                painter.setFont(want)
                font = want
            painter.setPen(self.colours[i])
            painter.drawText(QRectF(centre.x() - cw, centre.y() - ch / 2, 2 * cw, ch), flags, text)
        painter.restore()


class NumberGrid:
    """A titled grid of values in a GraphicsLayout cell: ``set(values, inside=None, ring=None)``."""

    def __init__(self, layout: pg.GraphicsLayout, row: int, col: int):
        self.box, self.item = image_box(layout, row, col)
        self.box.setMouseEnabled(False, False)
        self.number_item = CellNumbers()
        self.box.addItem(self.number_item)
        self.values = np.zeros((0, 0), np.float32)
        self.levels = (-1.0, 1.0)
        self.ring = pg.PlotDataItem(pen=pg.mkPen("#00c853", width=3))
        self.box.addItem(self.ring)
        self._shape: tuple[int, int] | None = None
        self._max_px = 14
        self._fitted: tuple[int, bool] | None = None    # (pixel size, visible) the numbers have now
        self.item.setColorMap(colormaps.diverging())
        self.box.sigResized.connect(lambda *_: self.fit_text())

    @property
    def _font(self) -> QFont:
        return self.number_item.font

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
        if not self.number_item.numbers:
            return
        widest = max(self.number_item.numbers, key=len, default="") or "-0.00"
        probe = QFont(self._font)
        probe.setPixelSize(100)
        width = QFontMetricsF(probe).horizontalAdvance(widest) or 1.0
        px = int(min(self._max_px, 100 * FILL * self.cell_pixels() / width))
        visible = px >= MIN_PX
        if self._fitted == (px, visible):
            return
        self._fitted = (px, visible)
        if visible:
            self.number_item.set_pixel_size(px)
        self.number_item.setVisible(visible)

    def text_pixel_size(self) -> int:
        return self._font.pixelSize() if self.number_item.numbers and self.number_item.isVisible() else 0

    def _rebuild(self, shape: tuple[int, int]) -> None:
        h, w = shape
        self.number_item.set_shape(shape)
        self._fitted = None
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
        self.item.setImage(v, autoLevels=False, levels=self.levels)
        self.values = v
        h, w = v.shape
        if h <= MAX_NUMBERED and w <= MAX_NUMBERED and v.size:
            span = self.levels[1] - self.levels[0] or 1.0
            rgb = colormaps.diverging().map(np.clip((v.ravel() - self.levels[0]) / span, 0, 1), mode="byte")
            black = readable_on(rgb)
            real = np.ones(v.size, bool) if inside is None else np.asarray(inside, bool).ravel()
            # a padding cell shows its (zero) value in grey italics
            colours = [(BLACK if b else WHITE) if r else PAD_GREY for b, r in zip(black.tolist(), real.tolist())]
            self.number_item.set_cells([format_number(x) for x in v.ravel().tolist()], colours, (~real).tolist())
            self.fit_text()
        else:
            self.number_item.set_cells([], [], [])
        if ring is None:
            self.ring.setData([], [])
        else:
            r, c = ring
            self.ring.setData([c, c + 1, c + 1, c, c], [r, r, r + 1, r + 1, r])

    def shown_numbers(self) -> list[str]:
        """The numbers drawn, row by row (what a user reads off the grid)."""
        return list(self.number_item.numbers)

    def padding_cells(self) -> list[bool]:
        """Per cell, row by row: drawn as padding (grey italics)."""
        return [italic and colour == PAD_GREY for italic, colour in zip(self.number_item.italic, self.number_item.colours)]

    def clear(self) -> None:
        self.item.clear()
        self.number_item.set_cells([], [], [])
        self.ring.setData([], [])
