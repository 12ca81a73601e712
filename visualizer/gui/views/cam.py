"""CamView: where the model looks for a class, as a heat map over the input.

Draws ``core.explain.records.ClassActivationMap`` records: the input in grey (or colour),
the heat map above it through a colour map at an adjustable opacity, and a colour bar
from 0 (no evidence) to 1 (the strongest). A class picker ("predicted" or any class), a
method picker (CAM, Grad-CAM, or automatic) and a layer picker ask the engine for another
map through signals; the view itself computes nothing.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSlider, QWidget

from visualizer.core.explain.records import CAM_METHODS, ClassActivationMap

from . import colormaps
from .base import STRETCH, View
from .finite import finite_float32
from .images import display_input, fit, image_box

PREDICTED = -1           # class_requested(PREDICTED): the model's own prediction, whatever it becomes
METHOD_NAMES = {"auto": "automatic", "cam": "CAM", "grad-cam": "Grad-CAM"}


class CamView(View):
    title = "Class activation map"
    lesson_key = "cam"
    tab_title = "Where it looks"
    class_requested = pyqtSignal(int)      # a class index, or PREDICTED
    method_requested = pyqtSignal(str)     # one of CAM_METHODS

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._cam: ClassActivationMap | None = None
        self.classes = QComboBox()
        self.classes.addItem("predicted class", PREDICTED)
        self.classes.activated.connect(lambda i: self.class_requested.emit(int(self.classes.itemData(i))))
        self.method = QComboBox()
        for m in CAM_METHODS:
            self.method.addItem(METHOD_NAMES[m], m)
        self.method.activated.connect(lambda i: self.method_requested.emit(str(self.method.itemData(i))))
        self.layers = QComboBox()
        self.layers.addItem("default layer", "")
        self.layers.activated.connect(lambda i: self.layer_requested.emit(str(self.layers.itemData(i))))
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(60)
        self.opacity.setMaximumWidth(120)
        self.opacity.setMinimumWidth(50)
        for box in (self.classes, self.method, self.layers):
            # Short minimums: the bar must fit beside a projector's side panels.
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(7)
        self.opacity.setToolTip("opacity of the heat map over the input")
        self.opacity.valueChanged.connect(lambda v: self.heat_item.setOpacity(v / 100))

        self.graphics = self.make_graphics()
        self._caption = self.graphics.addLabel("", row=0, col=0, colspan=2)
        self.box, self.input_item = image_box(self.graphics, 1, 0)
        self.heat_item = pg.ImageItem(axisOrder="row-major")
        self.heat_item.setOpacity(self.opacity.value() / 100)
        self.box.addItem(self.heat_item)
        self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=colormaps.heat_overlay(), interactive=False, width=14,
                                        label="evidence for the class (relative)")
        self.graphics.addItem(self.colorbar, row=1, col=1)
        self.colorbar.setImageItem(self.heat_item)
        self.note = QLabel()
        self.note.setWordWrap(True)
        # The overlay slider sits under the map, beside the note: the bar above must fit a projector's
        # narrow views column.
        below = QWidget()
        row = QHBoxLayout(below)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.note, 1)
        row.addWidget(QLabel("overlay:"))
        row.addWidget(self.opacity)
        self.compose([STRETCH, "class:", self.classes, "method:", self.method, "layer:", self.layers],
                     self.graphics, [below])
        self._shape = None
        self._names: tuple[str, ...] = ()
        self.note.setText("The heat map appears once a class activation map is computed for the current input.")
        self.finish_setup()

    # --- input ------------------------------------------------------------
    def show_cam(self, record: ClassActivationMap) -> None:
        if not isinstance(record, ClassActivationMap):
            raise TypeError(f"CamView draws ClassActivationMap records, not {type(record).__name__}")
        self._cam = record
        self._schedule()

    @property
    def cam_record(self) -> ClassActivationMap | None:
        return self._cam

    def set_layer_choices(self, names) -> None:
        """The layers Grad-CAM may use (``core.explain.records.grad_cam_layers(info)``)."""
        current = self.layers.currentData()
        self.layers.clear()
        self.layers.addItem("default layer", "")
        for n in names:
            self.layers.addItem(n, n)
        i = self.layers.findData(current)
        self.layers.setCurrentIndex(max(i, 0))

    def show_problem(self, text: str) -> None:
        """No map for the current input (the model has no conv layer, the request failed): say why."""
        self._cam = None
        self.note.setText(text)
        self._schedule()

    def reset_choices(self) -> None:
        """A new model: the predicted class, automatic method, default layer (no signals)."""
        for box in (self.classes, self.method, self.layers):
            box.setCurrentIndex(0)

    def _clear_data(self) -> None:
        self._cam = None

    # --- drawing ------------------------------------------------------------
    def _sync_classes(self, names: tuple[str, ...]) -> None:
        if names == self._names:
            return
        chosen = self.classes.currentData()
        self.classes.clear()
        self.classes.addItem("predicted class", PREDICTED)
        for i, n in enumerate(names):
            self.classes.addItem(f"{i}: {n}" if n != str(i) else n, i)
        self.classes.setCurrentIndex(max(self.classes.findData(chosen), 0))
        self._names = names

    def _draw(self) -> None:
        r = self._cam
        if r is None:
            self.input_item.clear()
            self.heat_item.clear()
            self.style_label(self._caption, "")
            return
        self._sync_classes(tuple(r.class_names))
        shown = display_input(r.input_image)
        heat, bad = finite_float32(r.heatmap)
        self.input_item.setImage(shown, autoLevels=False, levels=(0.0, 1.0))
        # (the bar keeps the 0..1 it was made with: told again, it re-ticks its axis every frame)
        self.heat_item.setImage(np.clip(heat, 0.0, 1.0), autoLevels=False, levels=(0.0, 1.0))
        if heat.shape != self._shape:
            fit(self.box, heat.shape)
            self._shape = heat.shape
        p = float(r.probabilities[r.class_index]) if r.class_index < len(r.probabilities) else float("nan")
        method = METHOD_NAMES.get(r.method, r.method)
        where = r.layer if r.source_layer == r.layer else f"{r.layer} (maps after {r.source_layer})"
        self.style_label(self._caption, f"{method} at {where} for class '{r.class_name}' (p = {p:.2f}); "
                                        f"predicted: '{r.class_names[r.predicted]}'")
        notes = []
        if r.peak <= 0:
            notes.append("No positive evidence for this class at this layer: the map is empty.")
        if bad:
            notes.append(f"{bad} non-finite values drawn as 0")
        notes.append("Bright: the regions whose features raise this class's score the most.")
        self.note.setText("  ".join(notes))
