"""Where the probe input comes from: a dataset sample, an opened image, or a drawing."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QPixmap
from PyQt6.QtWidgets import QComboBox, QGridLayout, QGroupBox, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from .drawing_pad import DrawingPad
from .image_convert import display_to_qimage, to_display_uint8

PREVIEW_SIZE = 76     # beside the sample controls, so a 720-pixel screen keeps room for the layer tree
ALL_CLASSES = -1


@dataclass(frozen=True)
class ProbeInput:
    """One image to probe: (H, W) or (C, H, W) float32 in [0, 1], raw (not normalised)."""

    image01: np.ndarray
    label: int | None
    note: str


class InputPanel(QWidget):
    """Emits what the user wants probed; the main window loads/feeds it and calls back
    ``show_input``/``set_note`` with what the model actually received."""

    sample_requested = pyqtSignal(int)      # index into the dataset
    image_open_requested = pyqtSignal()
    input_chosen = pyqtSignal(object)       # ProbeInput

    def __init__(self, parent=None, *, seed: int | None = None):
        super().__init__(parent)
        self._labels = np.zeros(0, np.int64)
        self._class_names: tuple[str, ...] = ()
        self._visible = np.zeros(0, np.int64)  # dataset indices passing the class filter
        self._pos = -1                          # position in _visible of the shown sample
        self._rng = np.random.default_rng(seed)

        self.class_filter = QComboBox()
        self.class_filter.setToolTip("Step only through samples of this class")
        self.prev_button = QPushButton("◀")
        self.next_button = QPushButton("▶")
        self.random_button = QPushButton("Random")
        self.prev_button.setToolTip("Previous sample")
        self.next_button.setToolTip("Next sample")
        self.random_button.setToolTip("A random sample (of the chosen class)")
        self.sample_label = QLabel("No dataset")
        self.open_button = QPushButton("Open image…")
        self.open_button.setToolTip("Probe the network with an image file")
        self.pad = DrawingPad()

        self.preview = QLabel()
        self.preview.setFixedSize(PREVIEW_SIZE, PREVIEW_SIZE)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setFrameShape(QLabel.Shape.Box)
        self.preview.setAccessibleName("Current input")
        self._shown: np.ndarray | None = None   # the pixels on the preview now
        self.note_label = QLabel("")
        self.note_label.setWordWrap(True)
        self.note_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.note_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        # The current input beside the controls that choose it: one compact box, not three.
        sample_box = QGroupBox("Current input")
        g = QGridLayout(sample_box)
        g.setContentsMargins(6, 4, 6, 4)
        g.setVerticalSpacing(3)
        g.addWidget(self.preview, 0, 0, 3, 1, Qt.AlignmentFlag.AlignTop)
        g.addWidget(self.class_filter, 0, 1, 1, 3)
        for i, b in enumerate((self.prev_button, self.next_button, self.random_button)):
            b.setMinimumWidth(30)
            b.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            g.addWidget(b, 1, 1 + i)
        g.addWidget(self.open_button, 2, 1, 1, 3)
        g.addWidget(self.sample_label, 3, 0, 1, 4)
        g.addWidget(self.note_label, 4, 0, 1, 4)
        g.setColumnStretch(1, 2)
        g.setColumnStretch(2, 2)
        g.setColumnStretch(3, 3)     # "Random" is the longest word
        self.sample_label.setWordWrap(True)
        self.sample_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.note_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.class_filter.setToolTip("Step only through samples of this class")
        self.class_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.class_filter.setMinimumContentsLength(6)
        self.open_button.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

        draw_box = QGroupBox("Draw")
        v = QVBoxLayout(draw_box)
        v.setContentsMargins(6, 4, 6, 4)
        v.addWidget(self.pad)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(sample_box)
        lay.addWidget(draw_box, 1)

        self.prev_button.clicked.connect(lambda: self._move(-1))
        self.next_button.clicked.connect(lambda: self._move(+1))
        self.random_button.clicked.connect(self._random)
        self.class_filter.currentIndexChanged.connect(self._on_filter_changed)
        self.open_button.clicked.connect(self.image_open_requested)
        self.pad.drawing_changed.connect(self._on_drawing)
        self._update_sample_controls()

    # -- dataset ----------------------------------------------------------
    def set_dataset(self, class_names, labels) -> None:
        """A new dataset: reset the filter and the position (emits nothing)."""
        self._class_names = tuple(str(c) for c in class_names)
        self._labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        self.class_filter.blockSignals(True)
        self.class_filter.clear()
        self.class_filter.addItem("All classes", ALL_CLASSES)
        for i, name in enumerate(self._class_names):
            count = int((self._labels == i).sum())
            self.class_filter.addItem(f"{name} ({count})", i)
        self.class_filter.blockSignals(False)
        self._visible = np.arange(self._labels.size, dtype=np.int64)
        self._pos = 0 if self._visible.size else -1
        self._update_sample_controls()

    def current_index(self) -> int | None:
        return int(self._visible[self._pos]) if 0 <= self._pos < self._visible.size else None

    def set_index(self, index: int) -> None:
        """Show ``index`` as the current sample without emitting (e.g. restored state)."""
        hits = np.flatnonzero(self._visible == int(index))
        if hits.size == 0:  # outside the filter: drop the filter rather than refuse
            self.class_filter.blockSignals(True)
            self.class_filter.setCurrentIndex(0)
            self.class_filter.blockSignals(False)
            self._visible = np.arange(self._labels.size, dtype=np.int64)
            hits = np.flatnonzero(self._visible == int(index))
        if hits.size:
            self._pos = int(hits[0])
        self._update_sample_controls()

    def _request(self) -> None:
        self._update_sample_controls()
        idx = self.current_index()
        if idx is not None:
            self.sample_requested.emit(idx)

    def _move(self, delta: int) -> None:
        if self._visible.size == 0:
            return
        self._pos = (self._pos + delta) % self._visible.size  # wrap: browsing never dead-ends
        self._request()

    def _random(self) -> None:
        if self._visible.size == 0:
            return
        self._pos = int(self._rng.integers(self._visible.size))
        self._request()

    def _on_filter_changed(self, _i: int) -> None:
        cls = self.class_filter.currentData()
        if cls is None or cls == ALL_CLASSES:
            self._visible = np.arange(self._labels.size, dtype=np.int64)
        else:
            self._visible = np.flatnonzero(self._labels == int(cls)).astype(np.int64)
        self._pos = 0 if self._visible.size else -1
        self._request()

    def _update_sample_controls(self) -> None:
        have = self._visible.size > 0
        for b in (self.prev_button, self.next_button, self.random_button):
            b.setEnabled(have)
        self.class_filter.setEnabled(self._labels.size > 0)
        idx = self.current_index()
        if idx is None:
            self.sample_label.setText("No dataset" if self._labels.size == 0 else "No sample of this class")
            return
        label = int(self._labels[idx])
        name = self._class_names[label] if 0 <= label < len(self._class_names) else str(label)
        self.sample_label.setText(f"Sample {idx} ({self._pos + 1} of {self._visible.size}), class: {name}")

    # -- drawing / display --------------------------------------------------
    def _on_drawing(self, image01) -> None:
        note = "drawing, centred like MNIST" if self.pad.mnist_style else "drawing"
        self.show_input(image01)
        self.input_chosen.emit(ProbeInput(image01=np.asarray(image01, np.float32), label=None, note=note))

    def show_input(self, image01) -> None:
        """Show what the model is looking at now (any (H, W) or (C, H, W) in [0, 1])."""
        pixels = to_display_uint8(image01)
        # Every probe of a training run shows the same input: a new pixmap for each
        # (10 a second) only churned Qt's pixmap cache, which kept up to 10 MB of them.
        if self._shown is not None and np.array_equal(pixels, self._shown):
            return
        self._shown = pixels
        img = display_to_qimage(pixels)
        pm = QPixmap.fromImage(img).scaled(
            PREVIEW_SIZE - 4, PREVIEW_SIZE - 4, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.FastTransformation)  # nearest: pixels stay visible
        self.preview.setPixmap(pm)

    def set_note(self, text: str) -> None:
        self.note_label.setText(text)
