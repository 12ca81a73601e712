"""PoolingView: a pooling layer's input and output side by side, one channel at a time.

Max pooling's winners are marked on the input (the flat argmax indices from
the capture turned into (y, x)), and the window geometry is spelled out, so
that "2x2, stride 2" can be seen rather than read.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import QCheckBox, QComboBox, QLabel, QSpinBox, QStackedWidget, QWidget

from visualizer.core.snapshot import LayerCapture

from . import colormaps
from .base import View
from .colour_scale import ColourScale
from .finite import finite_float32
from .images import fit, image_box


def winner_positions(argmax: np.ndarray, input_width: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices into Hi*Wi -> (ys, xs) of the winning input pixels."""
    flat = np.asarray(argmax, dtype=np.int64).ravel()
    return flat // input_width, flat % input_width


def window_lines(kernel, stride, padding, shape_out) -> np.ndarray:
    """Segment end points (pairs) outlining every pooling window, in input coordinates."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = shape_out
    pts = []
    for r in range(ho):
        for c in range(wo):
            y0, x0 = r * sh - ph, c * sw - pw
            y1, x1 = y0 + kh, x0 + kw
            pts += [(x0, y0), (x1, y0), (x1, y0), (x1, y1), (x1, y1), (x0, y1), (x0, y1), (x0, y0)]
    return np.asarray(pts, dtype=np.float32).reshape(-1, 2)


class PoolingView(View):
    title = "Pooling"
    lesson_key = "pooling"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.channel = QSpinBox()
        self.channel.setPrefix("channel ")
        self.channel.valueChanged.connect(lambda _: self._schedule())
        self.grid = QCheckBox("show windows")
        self.grid.toggled.connect(lambda _: self._schedule())
        self.geometry = self.live_label()
        # The pooling layer shown: the selected layer when it is one, else the one picked here (the
        # first pooling layer by default), so the view opens on a pooling layer, not on a complaint.
        self.layer_box = QComboBox()
        self.layer_box.setToolTip("The pooling layer to show")
        self.layer_box.activated.connect(self._layer_picked)
        self._pool_names: list[str] = []

        self.graphics = self.make_graphics()
        g = self.graphics
        self._t_in = g.addLabel("input", row=0, col=0)
        self._t_out = g.addLabel("output", row=0, col=1)
        self.input_box, self.input_item = image_box(g, 1, 0)
        self.output_box, self.output_item = image_box(g, 1, 1)
        self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=colormaps.sequential(), interactive=False, width=14)
        g.addItem(self.colorbar, row=1, col=2)
        self.colorbar.setImageItem([self.input_item, self.output_item])
        self.scale = ColourScale(self.colorbar)
        self.winners = pg.ScatterPlotItem(size=7, symbol="o", pen=pg.mkPen("#ff1744", width=1.5), brush=None)
        self.input_box.addItem(self.winners)
        self.windows = pg.PlotDataItem(connect="pairs", pen=pg.mkPen((255, 255, 255, 110), width=1))
        self.input_box.addItem(self.windows)

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(g)
        self.stack.addWidget(self.message)
        self.badge = self.make_badge()
        self.compose([(self.geometry, 1), self.badge, self.layer_box, self.grid, self.channel], self.stack)
        self._shape = None
        self._prompt("Select a pooling layer to see what it keeps.")
        self.finish_setup()

    def _prompt(self, text: str) -> None:
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message)
        self.clear_label(self.geometry)

    def _pooling_layers(self) -> list[LayerCapture]:
        return [c for c in self._probe.layers if c.pool is not None] if self._probe else []

    def _model_changed(self, model) -> None:
        self._set_pool_names([li.name for li in getattr(model.info, "layers", ()) if li.kind == "pool"])
        super()._model_changed(model)

    def _set_pool_names(self, names) -> None:
        names = list(names)
        if names == self._pool_names:
            return
        self._pool_names = names
        self.layer_box.clear()
        for n in names:
            self.layer_box.addItem(n, n)
        self.layer_box.setEnabled(bool(names))
        self._layer_changed()

    def _layer_changed(self) -> None:
        if self._layer in self._pool_names:
            self.layer_box.setCurrentIndex(self._pool_names.index(self._layer))

    def _layer_picked(self, index: int) -> None:
        name = self.layer_box.itemData(index)
        if name:
            self.layer_requested.emit(name)   # the window follows (and captures it, on a big model)
            self._schedule()

    def shown_layer(self) -> str | None:
        """The pooling layer on show: the selected layer if it pools, else the picker's."""
        if self._layer in self._pool_names or not self._pool_names:
            return self._layer
        return self.layer_box.currentData()

    def _draw(self) -> None:
        if self._probe is None:
            self._prompt("Select a pooling layer to see what it keeps.")
            return
        if not self._pool_names:   # no model info (a run file's snapshot): the captured pooling layers
            self._set_pool_names([c.name for c in self._pooling_layers()])
        name = self.shown_layer()
        cap = self._probe.layer(name) if name else None
        if cap is None or cap.pool is None or cap.maps is None:
            if not self._pool_names:
                self._prompt("This model has no pooling layer: it shrinks its maps with strided "
                             "convolutions, or not at all.")
            else:
                self._prompt(f"Pooling layer '{name}' has no capture yet: pick it in the layer tree, or wait "
                             "for the next snapshot.")
            return
        pool = cap.pool
        n = min(len(cap.maps), len(pool.input_maps))
        self.channel.setRange(0, max(0, n - 1))
        i = self.channel.value()
        src, bad_in = finite_float32(pool.input_maps[i])
        out, bad_out = finite_float32(cap.maps[i])
        lo = float(min(src.min(), out.min()))
        hi = float(max(src.max(), out.max()))
        signed = lo < 0
        levels = self.scale.steady(colormaps.display_levels(lo, hi, signed))
        self.input_item.setImage(src, autoLevels=False, levels=levels)
        self.output_item.setImage(out, autoLevels=False, levels=levels)
        self.scale.show(levels, signed)
        if pool.argmax is not None and i < len(pool.argmax):
            ys, xs = winner_positions(pool.argmax[i], src.shape[1])
            self.winners.setData(x=xs + 0.5, y=ys + 0.5)
        else:
            self.winners.setData(x=[], y=[])
        if self.grid.isChecked():
            seg = window_lines(pool.kernel, pool.stride, pool.padding, out.shape)
            self.windows.setData(seg[:, 0], seg[:, 1])
        else:
            self.windows.setData([], [])
        shapes = (src.shape, out.shape)
        if shapes != self._shape:
            fit(self.input_box, src.shape)
            fit(self.output_box, out.shape)
            self._shape = shapes
        (kh, kw), (sh, sw), (ph, pw) = pool.kernel, pool.stride, pool.padding
        stride = f"{sh}" if sh == sw else f"{sh}×{sw}"
        padding = f"{ph}" if ph == pw else f"{ph}×{pw}"
        self.geometry.setText(f"<b>{cap.name}</b>: {pool.mode} {kh}×{kw}, stride {stride}, padding {padding}: "
                              f"{src.shape[0]}×{src.shape[1]} → {out.shape[0]}×{out.shape[1]}")
        marks = "winners circled" if pool.argmax is not None else "average pooling: no winners"
        self.style_label(self._t_in, f"input, channel {cap.channels[i] if i < len(cap.channels) else i} ({marks})")
        self.style_label(self._t_out, "output")
        self.set_badge(self.badge, cap.nonfinite + bad_in + bad_out)
        self.stack.setCurrentWidget(self.graphics)

    def geometry_text(self) -> str:
        return self.geometry.text()
