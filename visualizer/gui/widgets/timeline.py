"""The timeline under the views while a run is replayed: the loss of every step as the track,
epochs marked, the shown step as a handle to drag or click, and the replay's controls.

It only displays and asks: ``seek_requested(step)``, ``step_requested(±1)``, ``play_requested``,
``epoch_requested(epoch)``, ``pin_requested``, ``compare_requested(mode)``, ``close_requested``;
``gui/replay.py`` does the work.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QToolButton, QVBoxLayout, QWidget

from visualizer.gui.views.axes import live_axes

from .live_text import LiveText

MAX_EPOCH_MARKS = 200     # more epochs than this are not marked one by one (the track would be all lines)


class Timeline(QWidget):
    seek_requested = pyqtSignal(int)
    step_requested = pyqtSignal(int)        # +1 / -1: the next or previous snapshot
    play_requested = pyqtSignal()
    epoch_requested = pyqtSignal(int)
    pin_requested = pyqtSignal()
    compare_requested = pyqtSignal(str)
    close_requested = pyqtSignal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("timeline")
        self.plot = pg.PlotWidget(axisItems=live_axes())
        self.plot.setMinimumHeight(70)
        self.plot.setMaximumHeight(140)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.getPlotItem().setLabel("left", "loss")
        item = self.plot.getPlotItem()
        item.setDownsampling(auto=True, mode="peak")   # an hour of steps is drawn as its envelope
        item.setClipToView(True)
        self.track = item.plot([], [], pen=pg.mkPen("#6fa8dc", width=1))
        self.snapshots = pg.ScatterPlotItem(size=4, pen=None, brush=pg.mkBrush(255, 255, 255, 90))
        item.addItem(self.snapshots)
        self.handle = pg.InfiniteLine(pos=0, angle=90, movable=True, pen=pg.mkPen("#ffb000", width=2))
        self.handle.sigDragged.connect(lambda line: self.seek_requested.emit(int(round(line.value()))))
        item.addItem(self.handle)
        self._epoch_lines: list[pg.InfiniteLine] = []
        item.scene().sigMouseClicked.connect(self._clicked)

        self.prev = QToolButton(text="◀")
        self.prev.setToolTip("Previous snapshot (Alt+Left)")
        self.prev.clicked.connect(lambda: self.step_requested.emit(-1))
        self.play = QToolButton(text="▶")
        self.play.setToolTip("Play / pause the run (Alt+Space)")
        self.play.clicked.connect(self.play_requested)
        self.next = QToolButton(text="▶▶")
        self.next.setToolTip("Next snapshot (Alt+Right)")
        self.next.clicked.connect(lambda: self.step_requested.emit(+1))
        self.epoch = QComboBox()
        self.epoch.setToolTip("Jump to the end of an epoch")
        self.epoch.activated.connect(lambda i: self.epoch_requested.emit(int(self.epoch.itemData(i))))
        self.pin = QPushButton("Pin A")
        self.pin.setToolTip("Pin the step shown as A, then scrub to B and compare")
        self.pin.clicked.connect(self.pin_requested)
        self.compare = QComboBox()
        for mode, text in (("B", "show B"), ("A", "show A"), ("B - A", "show B − A")):
            self.compare.addItem(text, mode)
        self.compare.setEnabled(False)
        self.compare.activated.connect(lambda i: self.compare_requested.emit(self.compare.itemData(i)))
        self.position = LiveText("", width_for="step 9,999,999 · snapshot 99,999 of 99,999")
        self.title = QLabel()
        self.close_button = QPushButton("Back to live")
        self.close_button.clicked.connect(self.close_requested)
        row = QHBoxLayout()
        for w in (self.prev, self.play, self.next, self.position):
            row.addWidget(w)
        row.addStretch(1)
        for w in (QLabel("epoch"), self.epoch, self.pin, self.compare, self.title, self.close_button):
            row.addWidget(w)
        root = QVBoxLayout(self)
        root.setContentsMargins(4, 2, 4, 2)
        root.addLayout(row)
        root.addWidget(self.plot)
        self._snap_steps = np.zeros(0, np.int64)

    # ---- what it shows ---------------------------------------------------------
    def set_run(self, title: str, steps: np.ndarray, snapshot_steps: np.ndarray, epochs) -> None:
        """The run's track (structured step array), its snapshots and epoch ends."""
        self.title.setText(title)
        self.title.setToolTip(title)
        self._snap_steps = np.asarray(snapshot_steps)
        if len(steps):
            loss = np.nan_to_num(np.asarray(steps["loss"], np.float64), nan=0.0, posinf=0.0, neginf=0.0)
            self.track.setData(np.asarray(steps["step"], np.float64), loss)
            on = np.searchsorted(steps["step"], self._snap_steps).clip(0, len(steps) - 1)
            self.snapshots.setData(self._snap_steps.astype(np.float64), loss[on])
            self.plot.getPlotItem().setXRange(float(steps["step"][0]), float(max(steps["step"][-1], 1)), padding=0.01)
        item = self.plot.getPlotItem()
        for line in self._epoch_lines:
            item.removeItem(line)
        self._epoch_lines = []
        if len(epochs) <= MAX_EPOCH_MARKS:
            for e in epochs:
                line = pg.InfiniteLine(pos=e.step, angle=90, pen=pg.mkPen((160, 160, 160, 120), style=Qt.PenStyle.DashLine))
                item.addItem(line)
                self._epoch_lines.append(line)
        current = self.epoch.currentData()
        self.epoch.clear()
        for e in epochs:
            self.epoch.addItem(str(e.epoch + 1), e.epoch)
        if current is not None:
            self.epoch.setCurrentIndex(max(0, self.epoch.findData(current)))

    def show_position(self, step: int) -> None:
        self.handle.setValue(step)
        i = int(np.searchsorted(self._snap_steps, step, side="right"))
        self.position.setText(f"step {step:,} · snapshot {i:,} of {len(self._snap_steps):,}")

    def set_playing(self, playing: bool) -> None:
        self.play.setText("❚❚" if playing else "▶")

    def set_pinned(self, step: int | None) -> None:
        self.compare.setEnabled(step is not None)
        self.pin.setText("Pin A" if step is None else f"A = step {step:,}")

    def _clicked(self, ev) -> None:
        vb = self.plot.getPlotItem().vb
        if ev.button() == Qt.MouseButton.LeftButton and vb.sceneBoundingRect().contains(ev.scenePos()):
            self.seek_requested.emit(int(round(vb.mapSceneToView(ev.scenePos()).x())))
