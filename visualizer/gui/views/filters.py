"""FilterView: the kernels of one conv layer as a mosaic.

A first layer with 3 input channels is drawn in colour (each filter scaled
symmetrically on its own, 0 -> mid grey), which is how the edge and colour
detectors of a trained network become recognisable. Deeper layers show one
kernel per (output, input) pair, or the mean over inputs. Weights, the change
since training began, or the weight gradient are all signed: diverging
colormap, symmetric levels: one range for the whole layer, or each output
filter scaled to its own range ("per filter"), which shows a filter's pattern
early in training while its weights are still small next to another's.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import QCheckBox, QComboBox, QLabel, QWidget

from visualizer.core.reduce import grid_shape, tile
from visualizer.core.snapshot import FilterCapture

from . import colormaps
from .base import STRETCH, View
from .colour_scale import ColourScale
from .finite import finite_float32
from .images import fit, image_box

WEIGHTS, DELTA, GRAD = "weights", "change since start", "gradient"
BOTH = "weights and change"     # the two side by side: what the filters are, and what training did to them
MODES = (WEIGHTS, DELTA, GRAD, BOTH)
PER_LAYER, PER_FILTER = "per layer", "per filter"
SCALES = (PER_LAYER, PER_FILTER)   # the words of core.recipes.FILTER_SCALES
MAX_INPUTS = 64   # wider layers: first 64 input channels (the mosaic would be unreadable anyway)


def rgb_filters(w: np.ndarray) -> np.ndarray:
    """(O, 3, kh, kw) -> (O, kh, kw, 3) in [0, 1], each filter scaled by its own max |w|."""
    m = np.abs(w).reshape(len(w), -1).max(axis=1)
    m = np.where(m > 0, m, 1.0)[:, None, None, None]
    return np.clip(0.5 + 0.5 * w / m, 0.0, 1.0).transpose(0, 2, 3, 1).astype(np.float32)


def per_filter_scaled(w: np.ndarray) -> np.ndarray:
    """(O, ...) -> the same, each output filter divided by its own max |value| (into [-1, 1]); zero stays 0."""
    m = np.abs(w).reshape(len(w), -1).max(axis=1) if w.size else np.ones(len(w), np.float32)
    m = np.where(m > 0, m, 1.0).astype(np.float32)
    return (w / m.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32)


def kernel_grid(w: np.ndarray, pad: int = 1) -> np.ndarray:
    """(O, I, kh, kw) -> one image: a row per output filter, a column per input channel."""
    o, i, kh, kw = w.shape
    return tile(w.reshape(o * i, kh, kw), o, i, pad=pad, fill=0.0)


class FilterView(View):
    title = "Filters"
    lesson_key = "filters"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.mode = QComboBox()
        self.mode.addItems(MODES)
        self.mode.currentTextChanged.connect(lambda _: self._schedule())
        self.scale = QComboBox()
        self.scale.addItems(SCALES)
        self.scale.setToolTip("per layer: one colour range for all kernels; "
                              "per filter: each filter on its own symmetric range")
        self.scale.currentTextChanged.connect(lambda _: self._schedule())
        self.average = QCheckBox("average inputs")
        self.average.setToolTip("One kernel per filter: the average over its input channels")
        for box in (self.mode, self.scale):
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(9)
        self.average.toggled.connect(lambda _: self._schedule())
        self.layer_label = self.live_label()

        self.graphics = self.make_graphics()
        self._title1 = self.graphics.addLabel("", row=0, col=0)
        self._title2 = self.graphics.addLabel("", row=0, col=2)
        self.box, self.item = image_box(self.graphics, 1, 0)
        self.colorbar = pg.ColorBarItem(values=(-1, 1), colorMap=colormaps.diverging(), interactive=False, width=14)
        self.graphics.addItem(self.colorbar, row=1, col=1)
        self.colorbar.setImageItem(self.item)
        # The second mosaic of "weights and change": the change since the start, on its own range.
        self.box2, self.item2 = image_box(self.graphics, 1, 2)
        self.colorbar2 = pg.ColorBarItem(values=(-1, 1), colorMap=colormaps.diverging(), interactive=False, width=14)
        self.graphics.addItem(self.colorbar2, row=1, col=3)
        self.colorbar2.setImageItem(self.item2)
        # Steady levels, told to each bar only when they change (colour_scale.py): weights move a
        # little every snapshot, and a bar given new levels re-draws its axis each time.
        self._bar_scales = {True: ColourScale(self.colorbar), False: ColourScale(self.colorbar2)}
        self._scaled = {True: None, False: None}   # what each bar's steady levels were found for
        self._shape2 = None
        self._both = None
        self._show_second(False)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.compose([self.layer_label, STRETCH, self.average, "show:", self.mode, "scale:", self.scale],
                     self.graphics, [self.note])
        self._shape = None
        self.note.setText("Filters appear once a capture of a conv layer arrives.")
        self.finish_setup()

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown filter mode {mode!r}; one of {MODES}")
        self.mode.setCurrentText(mode)
        self._schedule()

    def set_scale(self, scale: str) -> None:
        if scale not in SCALES:
            raise ValueError(f"unknown filter scale {scale!r}; one of {SCALES}")
        self.scale.setCurrentText(scale)
        self._schedule()

    def _pick(self) -> tuple[FilterCapture | None, str]:
        snap = self._probe
        if snap is None or not snap.filters:
            return None, "No conv layer kernels in this capture (the model may have no conv layers)."
        match = next((f for f in snap.filters if f.name == self._layer), None)
        if match is not None:
            return match, ""
        first = snap.filters[0]
        why = f"'{self._layer}' is not a conv layer; showing the first conv layer, {first.name}." if self._layer \
            else f"Showing the first conv layer, {first.name}."
        return first, why

    def _show_second(self, on: bool) -> None:
        if on == self._both:
            return   # (re-set every frame, the layout was invalidated every frame)
        for item in (self.box2, self.colorbar2, self._title1, self._title2):
            item.setVisible(on)
        lay = self.graphics.ci.layout
        self._both = on
        lay.setColumnStretchFactor(0, 1)
        lay.setColumnStretchFactor(2, 1 if on else 0)
        for col in (2, 3):
            lay.setColumnMaximumWidth(col, 1e6 if on else 0)
        self._share_columns()
        lay.setRowMaximumHeight(0, 1e6 if on else 0)   # the titles only mean something beside each other

    def _share_columns(self) -> None:
        """Side by side, both mosaics get the same width (their titles' lengths would tip it)."""
        lay = self.graphics.ci.layout
        if self._both:
            half = max(40.0, (self.graphics.width() - 2 * 90) / 2)
            for col in (0, 2):
                lay.setColumnMinimumWidth(col, half)
                lay.setColumnMaximumWidth(col, half)
        else:
            lay.setColumnMinimumWidth(0, 0)
            lay.setColumnMaximumWidth(0, 3.0e38)
            lay.setColumnMinimumWidth(2, 0)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._share_columns()

    def _draw(self) -> None:
        cap, why = self._pick()
        if cap is None:
            self.item.clear()
            self.item2.clear()
            self._show_second(False)
            self.note.setText(why)
            self.clear_label(self.layer_label)
            return
        model = self.mode.model()
        for row, data in enumerate((cap.weight, cap.delta, cap.grad, cap.delta)):
            model.item(row).setEnabled(data is not None)
        mode = self.mode.currentText()
        notes = [why] if why else []
        both = mode == BOTH and cap.delta is not None
        if mode == BOTH and cap.delta is None:
            notes.append(f"No change since start for {cap.name} yet (it appears once training runs).")
        data = {WEIGHTS: cap.weight, DELTA: cap.delta, GRAD: cap.grad, BOTH: cap.weight}[mode]
        if data is None:
            notes.append(f"No {mode} for {cap.name} in this capture; showing the weights.")
            data = cap.weight
        w, bad = self._draw_mosaic(cap.name, data, self.item, self.box, self.colorbar, notes, first=True)
        self._show_second(both)
        if both:
            _, bad2 = self._draw_mosaic(cap.name, cap.delta, self.item2, self.box2, self.colorbar2, [], first=False)
            bad += bad2
            self.style_label(self._title1, "weights")
            self.style_label(self._title2, "change since the start")
        o, i = w.shape[:2]
        shown = f"{o} of {cap.out_channels}" if o < cap.out_channels else f"{o}"
        self.layer_label.setText(f"<b>{cap.name}</b>: {shown} filters × {cap.in_channels} inputs, "
                                 f"{w.shape[2]}×{w.shape[3]}")
        if bad:
            notes.append(f"{bad} non-finite values drawn as 0")
        self.note.setText("  ·  ".join(dict.fromkeys(notes)))

    def _draw_mosaic(self, name: str, data, item, box, colorbar, notes: list, *, first: bool):
        """One mosaic of kernels into ``item``; returns the (sanitised, maybe truncated) weights and bad count."""
        w, bad = finite_float32(data)
        o, i = w.shape[:2]
        colour = i == 3 and not self.average.isChecked()
        single = i == 1 or self.average.isChecked()   # one kernel per filter: a square grid reads best
        if i > MAX_INPUTS and not self.average.isChecked():
            w = w[:, :MAX_INPUTS]
            notes.append(f"first {MAX_INPUTS} of {i} input channels")
        if colour:
            tiles = rgb_filters(w)
            rows, cols = grid_shape(o, w.shape[2], w.shape[3])
            image = tile(tiles, rows, cols, pad=1, fill=0.5)
            colorbar.hide()
            item.setImage(image, autoLevels=False, levels=(0.0, 1.0))
            notes.append("RGB: each filter scaled to its own range, grey = 0.")
        else:
            per_filter = self.scale.currentText() == PER_FILTER
            if single:
                mean = w.mean(axis=1)
                rows, cols = grid_shape(o, w.shape[2], w.shape[3])
                image = tile(per_filter_scaled(mean) if per_filter else mean, rows, cols, pad=1, fill=0.0)
            else:
                image = kernel_grid(per_filter_scaled(w) if per_filter else w)
            bar_scale = self._bar_scales[first]
            shown = (name, self.mode.currentText(), per_filter, single)
            if shown != self._scaled[first]:      # another layer or way of showing it: new levels
                bar_scale.restart()
                self._scaled[first] = shown
            if per_filter:
                levels = (-1.0, 1.0)
                notes.append("each filter scaled to its own range: ±1 = its largest |value|")
            else:
                levels = bar_scale.steady(colormaps.symmetric(float(image.min()), float(image.max())))
            colorbar.show()
            item.setImage(image, autoLevels=False, levels=levels)
            bar_scale.show(levels, signed=True)
            if not single:
                notes.append("rows: output filters; columns: input channels")
        if first:
            if image.shape != self._shape:
                fit(box, image.shape)
                self._shape = image.shape
        elif image.shape != self._shape2:
            fit(box, image.shape)
            self._shape2 = image.shape
        return w, bad
