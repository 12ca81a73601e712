"""OverviewStripView: a few channels of every spatial layer at once, input to output.

One ImageItem per layer (its first channels tiled 2x2), not one per channel:
with dozens of layers that is the difference between a cheap and an
expensive repaint. Items are rebuilt only when the set of layers changes.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QFontMetrics
from PyQt6.QtWidgets import QLabel, QSizePolicy, QWidget

from visualizer.core.reduce import grid_shape, tile
from visualizer.core.snapshot import LayerCapture

from . import colormaps
from .base import View
from .finite import finite_float32
from .images import display_input, image_box

CHANNELS_PER_LAYER = 4
LABEL_SHARE = 1.35   # a cell's height over its image's: the rest holds the label


def strip_tiles(cap: LayerCapture, n: int = CHANNELS_PER_LAYER) -> np.ndarray:
    """The first n channels of a layer tiled into one small image."""
    maps = finite_float32(cap.maps[:n])[0]
    rows, cols = grid_shape(len(maps), maps.shape[1], maps.shape[2])
    fill = 0.0 if cap.levels.signed else float(cap.levels.low)
    return tile(maps, rows, cols, pad=1, fill=fill)


class OverviewStripView(View):
    title = "Overview"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.graphics = self.make_graphics()
        self.badge = self.make_badge()
        self.message = QLabel()
        self.message.setWordWrap(True)   # wraps rather than widening the window (presentation fonts)
        self.message.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.compose([(self.message, 1), self.badge], self.graphics)
        self._names: tuple[str, ...] | None = None
        self._cols = 1
        self.items: dict[str, pg.ImageItem] = {}
        self._ranges: dict[str, tuple[float, float]] = {}
        self._signed: dict[str, bool] = {}     # the colour map each item has (a new one rebuilds its table)
        self._label_keys: dict[str, tuple] = {}   # what each label was fitted to
        self._boxes: dict[str, pg.ViewBox] = {}
        self._labels: dict[str, pg.TextItem] = {}
        self.message.setText("Every layer's first channels appear here once a capture arrives.")
        self.finish_setup()

    def _clear_data(self) -> None:
        self._rebuild(())

    def _area(self) -> tuple[int, int]:
        """The cells' area in pixels: from the view's own size, because the graphics
        widget is not laid out before the first show (less the message bar above it)."""
        return max(1, self.width()), max(1, self.height() - 40)

    def _columns(self, n: int) -> int:
        """Columns that make the tiles largest in the current widget (one row when it is a strip)."""
        w, h = self._area()
        label = LABEL_SHARE   # each cell is image plus label, a bit taller than wide
        return max(range(1, n + 1), key=lambda c: min(w / c, h / (label * -(-n // c)))) if n else 1

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._names and self._columns(len(self._names)) != self._cols:
            self._names = None   # re-flow on the next draw
        if self._names is None or self._probe is not None:
            self._schedule()     # labels fit the new cell width

    def _rebuild(self, names: tuple[str, ...]) -> None:
        self._cols = self._columns(len(names))
        self.graphics.ci.clear()
        self.items.clear()
        self._ranges.clear()
        self._signed.clear()
        self._label_keys.clear()
        self._boxes.clear()
        self._labels.clear()
        for i, name in enumerate(names):
            vb, img = image_box(self.graphics, i // self._cols, i % self._cols)
            vb.sigResized.connect(self._schedule)    # the label's room is measured in the box's pixels
            self._boxes[name], self.items[name] = vb, img
            # The name sits inside the box, just under the image, so it stays with it at any height.
            label = pg.TextItem("", anchor=(0.5, 0.0))
            vb.addItem(label, ignoreBounds=True)
            self._labels[name] = label
        self._names = names
        self._restyle()

    def _tick_font(self):
        # The names under the cells stay small next to their images, also on a projector.
        font = super()._tick_font()
        if self._presentation:
            font.setPointSize(max(9, self.font_pt() - 4))
        return font

    def _restyle(self) -> None:
        self.message.setVisible(not self._presentation)   # the cells say it; the room is the images'
        fg, _ = self.colors()
        font = self._tick_font()
        self._label_keys.clear()   # measured in the old font
        for label in self._labels.values():
            label.setColor(fg)
            label.setFont(font)

    def _cell_height(self) -> float:
        """Pixels of one cell's box (what the layout gives it, or its share of the view before that)."""
        w, h = self._area()
        rows = -(-max(1, len(self._labels)) // max(1, self._cols))
        return max(1.0, h / rows - 4)

    def _lines(self, metrics: QFontMetrics) -> int:
        """Name and shape on two lines where the cell is tall enough for them and an image, else the name."""
        return 2 if self._cell_height() >= 4 * metrics.height() + 16 else 1

    def _label(self, name: str, shape, metrics: QFontMetrics) -> int:
        """Name (elided in the middle) and shape under a cell, as much as its width holds; returns its lines.

        Cells of a deep model are narrow: full labels ran into each other. The full
        text is always in the cell's tooltip.
        """
        w, _h = self._area()
        room = int(w / max(1, self._cols)) - 8
        key = (tuple(shape), room, self._lines(metrics), metrics.height(), self._presentation)
        if self._label_keys.get(name, (None,))[0] == key:
            return self._label_keys[name][1]   # measured and set already: the same text fits the same room
        lines = self._fit_label(name, shape, room, metrics)
        self._label_keys[name] = (key, lines)
        return lines

    def _fit_label(self, name: str, shape, room: int, metrics: QFontMetrics) -> int:
        dims = "×".join(map(str, shape))
        tip = f"{name}: {dims}"
        if self._boxes[name].toolTip() != tip:
            self._boxes[name].setToolTip(tip)
        if room < metrics.horizontalAdvance("Mm…"):
            # Cells of a deep model too narrow for even an elided name: no label (the tooltip names it),
            # rather than labels running into each other.
            self.set_text(self._labels[name], "")
            return 0
        text = metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, room)
        lines = 1
        if self._lines(metrics) == 2 and metrics.horizontalAdvance(dims) <= room:
            text += "\n" + dims
            lines = 2
        self.set_text(self._labels[name], text)
        return lines

    def _place(self, name: str, shape, lines: int, metrics: QFontMetrics) -> None:
        """The image at the top of its box, with the label's lines of text below it, in pixels: the
        box's range is stretched so that exactly that many pixels are left under the image."""
        h, w = shape[:2]
        vb = self._boxes[name]
        box_h = vb.height() if vb.height() > 1 else self._cell_height()
        text_px = lines * metrics.height() + 12 if lines else 2   # the text item has a margin round it
        image_px = max(8.0, box_h - text_px)
        total = h * box_h / image_px
        self._labels[name].setPos(w / 2, h)
        if self._ranges.get(name) != (w, total):
            self._ranges[name] = (w, total)
            vb.setRange(xRange=(0, w), yRange=(0, total), padding=0.0)

    def _draw(self) -> None:
        snap = self._probe
        if snap is None:
            self._rebuild(())
            return
        spatial = [c for c in snap.layers if c.maps is not None and len(c.maps)]
        names = ("input",) + tuple(c.name for c in spatial)
        if not spatial:
            self.message.setText("No spatial layers in this capture: the model has no convolutional "
                                 "feature maps (or none were requested).")
        else:
            self.message.setText(f"first {CHANNELS_PER_LAYER} channels of each of {len(spatial)} layers, input → output")
        rebuilt = names != self._names
        if rebuilt:
            self._rebuild(names)
        inp = finite_float32(display_input(snap.input_image))[0]
        self.items["input"].setImage(inp, autoLevels=False, levels=(0.0, 1.0))
        metrics = QFontMetrics(self._tick_font())   # the labels' font: measured once a draw
        lines = self._label("input", inp.shape[-2:], metrics)
        self._place("input", inp.shape, lines, metrics)
        bad_total = 0
        for cap in spatial:
            img, bad = finite_float32(strip_tiles(cap))
            bad_total += bad + cap.nonfinite
            item = self.items[cap.name]
            lv = colormaps.display_levels(cap.levels.low, cap.levels.high, cap.levels.signed)
            if self._signed.get(cap.name) != cap.levels.signed:
                item.setColorMap(colormaps.for_signed(cap.levels.signed))
                self._signed[cap.name] = cap.levels.signed
            item.setImage(img, autoLevels=False, levels=lv)
            lines = self._label(cap.name, cap.shape, metrics)
            self._place(cap.name, img.shape, lines, metrics)
        self.set_badge(self.badge, bad_total)
