"""FeatureMapView: every captured channel of the selected layer as one mosaic.

Left the input image, middle the layer's mosaic (one ImageItem for all
channels) with a colour bar, right the clicked channel enlarged with a pixel
readout. Non-spatial layers are shown as bars; a layer with no capture gets a
sentence saying why.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QComboBox, QLabel, QStackedWidget, QWidget

from visualizer.core.reduce import tile
from visualizer.core.snapshot import LayerCapture, ProbeSnapshot

from . import colormaps
from .base import STRETCH, View
from .colour_scale import ColourScale
from .finite import finite_float32
from .images import display_input, fit, image_box
from .tiling import per_channel_normalised

PER_LAYER, PER_CHANNEL, FIXED = "per layer", "per channel", "fixed"
NORMALISATIONS = (PER_LAYER, PER_CHANNEL, FIXED)


def default_layer(snap: ProbeSnapshot) -> LayerCapture | None:
    """The first conv layer with maps, else the first spatial layer."""
    spatial = [c for c in snap.layers if c.mosaic is not None]
    return next((c for c in spatial if "conv" in c.kind), spatial[0] if spatial else None)


class FeatureMapView(View):
    title = "Feature maps"
    lesson_key = "feature_maps"
    # A click on a channel: (channel, y, x) in its map; last: True when it was a click on the enlarged
    # channel (a deliberate pick of one position), False for the mosaic (which also picks the channel).
    position_selected = pyqtSignal(int, int, int, bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._mode = PER_LAYER
        self._fixed: tuple[tuple[float, float], bool] | None = None  # (levels, signed) frozen for FIXED
        self._tile: int | None = None        # index into the mosaic's channels of the enlarged tile
        self._shown: LayerCapture | None = None
        self._shown_levels = (0.0, 1.0)

        self.layer_label = self.live_label()
        self.normalisation = QComboBox()
        self.normalisation.addItems(NORMALISATIONS)
        self.normalisation.setToolTip("per layer: one scale for all channels; per channel: each tile "
                                      "stretched to its own range; fixed: the current scale frozen across steps")
        self.normalisation.currentTextChanged.connect(self.set_normalisation)
        self.badge = self.make_badge()

        self.graphics = self.make_graphics()
        g = self.graphics
        self._t_input = g.addLabel("input", row=0, col=0)
        self._t_mosaic = g.addLabel("", row=0, col=1)
        self._t_channel = g.addLabel("click a channel", row=0, col=3)
        self.input_box, self.input_item = image_box(g, 1, 0)
        self.mosaic_box, self.mosaic_item = image_box(g, 1, 1)
        self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=colormaps.sequential(), interactive=False,
                                        width=14)
        g.addItem(self.colorbar, row=1, col=2)
        self.channel_box, self.channel_item = image_box(g, 1, 3)
        # Linking after the bar exists: linking resets the colormap, so the scale sets it at the first draw.
        self.colorbar.setImageItem([self.mosaic_item, self.channel_item])
        self.scale = ColourScale(self.colorbar)
        self.readout = g.addLabel("", row=2, col=0, colspan=4)
        lay = g.ci.layout
        lay.setColumnStretchFactor(0, 2)
        lay.setColumnStretchFactor(1, 5)
        lay.setColumnStretchFactor(3, 2)
        g.scene().sigMouseClicked.connect(self._scene_clicked)
        g.scene().sigMouseMoved.connect(self._scene_moved)

        self.vector_graphics = self.make_graphics()
        self.vector_plot = self.add_plot(self.vector_graphics, row=0, col=0)
        self.vector_plot.setLabel("bottom", "unit")
        self.vector_plot.setLabel("left", "value")
        self.vector_bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=self.accent())
        self.vector_plot.addItem(self.vector_bars)

        self.message = self.make_note()
        self.stack = QStackedWidget()
        for w in (self.graphics, self.vector_graphics, self.message):
            self.stack.addWidget(w)
        self.note = QLabel()
        self.note.setWordWrap(True)

        self.compose([self.layer_label, STRETCH, self.badge, "normalise:", self.normalisation], self.stack,
                     [self.note])
        self._say("No feature maps yet: start training or choose an input sample.")

    # --- user controls ----------------------------------------------------
    def set_normalisation(self, mode: str) -> None:
        if mode not in NORMALISATIONS:
            raise ValueError(f"unknown normalisation {mode!r}; one of {NORMALISATIONS}")
        if self.normalisation.currentText() != mode:
            self.normalisation.setCurrentText(mode)  # re-enters through the signal
            return
        self._mode = mode
        self._fixed = None  # "fixed" freezes the levels of the next snapshot drawn
        self._schedule()
        self.finish_setup()

    def select_tile_at(self, y: float, x: float) -> int | None:
        """Enlarge the channel under mosaic image coordinates (y, x); returns its original channel index."""
        self.flush()   # coordinates refer to the latest snapshot, which may not be drawn yet
        cap = self._shown
        if cap is None or cap.mosaic is None:
            return None
        m = cap.mosaic
        i = m.tile_at(y, x)
        if i is None:
            return None
        self._tile = i
        self._draw_channel(cap)
        ty, tx = int(y) % (m.tile_h + m.pad), int(x) % (m.tile_w + m.pad)
        self._readout(cap, i, ty, tx)
        if 0 <= ty < m.tile_h and 0 <= tx < m.tile_w:
            self.position_selected.emit(m.channels[i], ty, tx, False)
        self.channel_selected.emit(m.channels[i])
        return m.channels[i]

    def select_position(self, y: int, x: int) -> bool:
        """A click at (y, x) of the enlarged channel: that position, for the step-by-step arithmetic."""
        cap = self._shown
        if cap is None or cap.mosaic is None or self._tile is None:
            return False
        a = self._channel_map(cap, self._tile)
        if not (0 <= y < a.shape[0] and 0 <= x < a.shape[1]):
            return False
        self._readout(cap, self._tile, y, x)
        self.position_selected.emit(cap.mosaic.channels[self._tile], int(y), int(x), True)
        return True

    # --- drawing ------------------------------------------------------------
    def _layer_changed(self) -> None:
        self._tile = None
        self._fixed = None
        self.scale.restart()

    def _clear_data(self) -> None:
        self._tile = None
        self._fixed = None
        self._shown = None
        self.scale.restart()

    def _say(self, text: str) -> None:
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message)
        self.clear_label(self.note)
        self.badge.hide()

    def _draw(self) -> None:
        snap = self._probe
        if snap is None:
            self._say("No feature maps yet: start training or choose an input sample.")
            return
        if self._layer is None:
            cap = default_layer(snap)
            if cap is None:
                self._say("This model has no spatial (convolutional) layers in this capture, so there are no "
                          "feature maps to show. Select a layer in the layer tree to see its outputs.")
                return
        else:
            cap = snap.layer(self._layer)
            if cap is None:
                self._say(f"Layer '{self._layer}' has no capture in this snapshot (it may not run for this input, "
                          "or its capture is still on its way).")
                return
        self.layer_label.setText(f"<b>{cap.name}</b> ({cap.kind}) {'×'.join(map(str, cap.shape))}")
        if cap.mosaic is None:
            self._draw_vector(cap)
        else:
            self._draw_spatial(snap, cap)

    def _draw_vector(self, cap: LayerCapture) -> None:
        self._shown = None
        v, bad = finite_float32(cap.vector if cap.vector is not None else np.zeros(0, np.float32))
        self.vector_bars.setOpts(x=np.arange(len(v)), height=v, width=0.8, brush=self.accent())
        self.vector_plot.setTitle(f"{cap.name} is not spatial: its {len(v)} outputs as bars")
        self.stack.setCurrentWidget(self.vector_graphics)
        self.set_badge(self.badge, cap.nonfinite + bad)
        self.note.setText(f"{cap.name} has no height and width, so there is no map to draw.")

    def _levels_for(self, cap: LayerCapture) -> tuple[tuple[float, float], bool]:
        lv = cap.levels
        current = (colormaps.display_levels(lv.low, lv.high, lv.signed), lv.signed)
        if self._mode == FIXED:
            if self._fixed is None:
                self._fixed = current
            return self._fixed
        return self.scale.steady(current[0]), lv.signed

    def _draw_spatial(self, snap: ProbeSnapshot, cap: LayerCapture) -> None:
        m = cap.mosaic
        if self._shown is None or self._shown.name != cap.name or self._shown.mosaic.image.shape != m.image.shape:
            refit = True
            self.scale.restart()
            if self._tile is not None and self._tile >= len(m.channels):
                self._tile = None
        else:
            refit = False
        self._shown = cap
        if self._mode == PER_CHANNEL and cap.maps is not None:
            signed = cap.levels.signed
            maps, bad_maps = finite_float32(cap.maps)
            norm = per_channel_normalised(maps, cap.channel_levels, signed)
            image = tile(norm, m.rows, m.cols, m.pad, fill=0.0)
            levels = (-1.0, 1.0) if signed else (0.0, 1.0)
            self.set_text(self._t_mosaic, f"{len(m.channels)} of {cap.shape[0]} channels, each stretched to its own range")
        else:
            image, bad_maps = m.image, 0
            levels, signed = self._levels_for(cap)
            self.set_text(self._t_mosaic, f"{len(m.channels)} of {cap.shape[0]} channels")
        image, bad = finite_float32(image)
        bad += bad_maps
        self._shown_levels = levels
        self.mosaic_item.setImage(image, autoLevels=False, levels=levels)
        self.scale.show(levels, signed)

        inp, _ = finite_float32(display_input(snap.input_image))
        self.input_item.setImage(inp, autoLevels=False, levels=(0.0, 1.0))
        self._draw_channel(cap)
        if refit:
            fit(self.mosaic_box, image.shape)
            fit(self.input_box, inp.shape)
        self.stack.setCurrentWidget(self.graphics)
        self.set_badge(self.badge, cap.nonfinite + bad)
        if cap.nonfinite or bad:
            self.note.setText(f"{cap.name} produced NaN or infinite values; they are drawn as 0.")
        else:
            self.clear_label(self.note)

    def _channel_map(self, cap: LayerCapture, i: int) -> np.ndarray:
        if cap.maps is not None:
            return finite_float32(cap.maps[i])[0]
        m = cap.mosaic
        r, c = divmod(i, m.cols)
        y, x = r * (m.tile_h + m.pad), c * (m.tile_w + m.pad)
        return finite_float32(m.image[y:y + m.tile_h, x:x + m.tile_w])[0]

    def _draw_channel(self, cap: LayerCapture) -> None:
        if self._tile is None:
            if self.channel_item.image is not None:
                self.channel_item.clear()
            self.set_text(self._t_channel, "click a channel")
            return
        a = self._channel_map(cap, self._tile)
        if self._mode == PER_CHANNEL:
            lv = cap.channel_levels[self._tile:self._tile + 1] if cap.channel_levels is not None else None
            a = per_channel_normalised(a[None], lv, cap.levels.signed)[0]
        first = self.channel_item.image is None or self.channel_item.image.shape != a.shape
        self.channel_item.setImage(a, autoLevels=False, levels=self._shown_levels)
        if first:
            fit(self.channel_box, a.shape)
        self.set_text(self._t_channel, f"channel {cap.mosaic.channels[self._tile]}")

    def _readout(self, cap: LayerCapture, i: int, y: int, x: int) -> None:
        a = self._channel_map(cap, i)
        if 0 <= y < a.shape[0] and 0 <= x < a.shape[1]:
            self.readout.setText(f"ch {cap.mosaic.channels[i]} (y={y}, x={x}): {a[y, x]:.4f}")

    def readout_text(self) -> str:
        return self.readout.text

    # --- mouse -----------------------------------------------------------------
    def _scene_clicked(self, ev) -> None:
        if self._shown is None:
            return
        p = self.mosaic_item.mapFromScene(ev.scenePos())
        if self.mosaic_item.image is not None and self.mosaic_item.sceneBoundingRect().contains(ev.scenePos()):
            self.select_tile_at(p.y(), p.x())
        elif self.channel_item.image is not None and self.channel_item.sceneBoundingRect().contains(ev.scenePos()):
            q = self.channel_item.mapFromScene(ev.scenePos())
            self.select_position(int(np.floor(q.y())), int(np.floor(q.x())))

    def _scene_moved(self, pos) -> None:
        cap = self._shown
        if cap is None or self._tile is None or self.channel_item.image is None:
            return
        if not self.channel_item.sceneBoundingRect().contains(pos):
            return
        p = self.channel_item.mapFromScene(pos)
        self._readout(cap, self._tile, int(p.y()), int(p.x()))
