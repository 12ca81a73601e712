"""CurvesView: training loss and accuracy over steps, with smoothing and validation points.

Every snapshot's ``history`` rows are appended (snapshots are sparse, history
is not), into bounded growable buffers. Smoothing is an exponential moving
average extended incrementally, so a long run costs only its new points per
frame; it is recomputed only when the slider moves or the buffer decimates.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QFontMetrics
from PyQt6.QtWidgets import QLabel, QSlider, QWidget

from visualizer.core.snapshot import EpochEnd, TrainingSnapshot

from .base import SIDE_BY_SIDE_BELOW, View
from .ranges import STEP_AXIS, RangeFollower, step_bounds
from .series import HISTORY_CAP, STEP_HISTORY_CAP, GrowableTable, ema

TRAIN_COLOUR = "#1e88e5"
VAL_COLOUR = "#e53935"
VAL_DOTS_MAX = 60   # validation points drawn as dots up to this many (then as a line)


class SmoothedColumn:
    """The EMA of one column of a GrowableTable, extended as rows arrive."""

    def __init__(self):
        self.values = np.zeros(0)
        self._alpha = None
        self._decimations = -1

    def update(self, table: GrowableTable, col: int, alpha: float) -> np.ndarray:
        x = table.data[:, col]
        if alpha != self._alpha or table.decimations != self._decimations or len(self.values) > len(x):
            self.values = ema(x, alpha)
        elif len(x) > len(self.values):
            prev = self.values[-1] if len(self.values) else None
            self.values = np.concatenate([self.values, ema(x[len(self.values):], alpha, prev)])
        self._alpha, self._decimations = alpha, table.decimations
        return self.values


MIN_PLOT_HEIGHT = 80   # pixels of plot the dock layout may not take away


class CurvesView(View):
    title = "Loss and accuracy"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.train = GrowableTable(3, cap=STEP_HISTORY_CAP)  # step, loss, accuracy (older half decimated beyond)
        self.val = GrowableTable(3, cap=HISTORY_CAP)  # step, val loss, val accuracy per epoch
        self._smooth_loss, self._smooth_acc = SmoothedColumn(), SmoothedColumn()
        self._accuracy_gaps = False   # some rows have no accuracy (NaN)

        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(60)
        self.smoothing.valueChanged.connect(lambda _: self._schedule())
        self.smoothing_label = QLabel("0.00")
        self.smoothing_label.setFixedWidth(self.smoothing_label.sizeHint().width() + 6)
        self.latest = self.live_label("No training yet.")

        self.graphics = self.make_graphics()
        g = self.graphics
        self.loss_plot = self.add_plot(g, row=0, col=0)
        self.acc_plot = self.add_plot(g, row=1, col=0)
        self.acc_plot.setXLink(self.loss_plot)
        self.loss_plot.setLabel("left", "loss")
        self.acc_plot.setLabel("left", "accuracy")
        self.acc_plot.setLabel("bottom", "step")
        self.loss_plot.getAxis("bottom").setStyle(showValues=False)   # stacked: see _arrange
        self.acc_plot.setYRange(0, 1, padding=0.02)
        for p in (self.loss_plot, self.acc_plot):
            p.showGrid(x=True, y=True, alpha=0.2)
            p.setClipToView(True)
            p.setDownsampling(auto=True, mode="peak")
            p.addLegend(offset=(-10, 5), colCount=2)   # one row: the plots are short
        self.loss_raw = self.loss_plot.plot()
        self.loss_smooth = self.loss_plot.plot(name="train")
        self.loss_val = self.loss_plot.plot(name="validation", symbol="o", symbolSize=8)
        self.acc_raw = self.acc_plot.plot()
        self.acc_smooth = self.acc_plot.plot(name="train")
        self.acc_val = self.acc_plot.plot(name="validation", symbol="o", symbolSize=8)
        # Steps and loss re-range only when the data outgrows the view (see ranges.py);
        # accuracy keeps its fixed 0..1 and shares the step axis.
        for c in (self.loss_raw, self.acc_raw):
            # Peak downsampling to ~1 bin per pixel (pyqtgraph's default is 5): the same
            # envelope on screen, a fifth of the segments to stroke per paint.
            c.opts["autoDownsampleFactor"] = 1.0
        for c in (self.loss_smooth, self.acc_smooth):
            # The smoothed line is smooth: a point every 4 pixels draws the same line, and
            # its thick pen (stroked, not a fast 1-pixel line) made it half of a frame's paint.
            c.setDownsampling(auto=True, method="mean")
            c.opts["autoDownsampleFactor"] = 0.25
        self.follower = RangeFollower(self.loss_plot.vb, x=STEP_AXIS, y=(0.15, 0.05), y_floor=0.0)
        self.follower.watch(self.acc_plot.vb)
        self._loss_bounds = (np.inf, -np.inf)
        self._val_drawn = None     # the validation table's version the val curves show
        self.side_by_side = False
        self.compose([(self.latest, 1), "smoothing", self.smoothing, self.smoothing_label], g)
        self.finish_setup()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._arrange()

    def _arrange(self) -> None:
        """Loss over accuracy when there is height for both, side by side when there is not."""
        g = self.graphics
        side = g.height() < SIDE_BY_SIDE_BELOW and g.width() > 2 * g.height()
        if side == self.side_by_side:
            return
        self.side_by_side = side
        g.ci.removeItem(self.acc_plot)
        g.ci.addItem(self.acc_plot, row=0 if side else 1, col=1 if side else 0)
        bottom = self.loss_plot.getAxis("bottom")
        if side:
            self.loss_plot.setLabel("bottom", "step")
        else:
            bottom.showLabel(False)
        # Stacked, the accuracy plot's step axis below serves both (the x axes are linked);
        # numbers on the loss plot's too would be a second set of labels to lay out again
        # every time the step range grows.
        bottom.setStyle(showValues=side)
        self._style_plot(self.loss_plot)

    def _restyle(self) -> None:
        # As wide as "0.00" in the font it has now (presentation mode enlarges it).
        metrics = QFontMetrics(self.smoothing_label.font())
        self.smoothing_label.setFixedWidth(metrics.horizontalAdvance("0.00") + 8)
        # Plots stay readable however tall the other docks want to be: the step axis, its label
        # and the margins take about three lines of the current font, the plot itself the rest.
        self.graphics.setMinimumHeight(MIN_PLOT_HEIGHT + 3 * metrics.height())
        w = self.line_width()
        faint = pg.mkColor(TRAIN_COLOUR)
        faint.setAlpha(70)
        for raw, smooth, val in ((self.loss_raw, self.loss_smooth, self.loss_val),
                                 (self.acc_raw, self.acc_smooth, self.acc_val)):
            raw.setPen(pg.mkPen(faint, width=max(1.0, w / 2)))
            smooth.setPen(pg.mkPen(TRAIN_COLOUR, width=w))
            val.setPen(pg.mkPen(VAL_COLOUR, width=w))
            val.setSymbolBrush(VAL_COLOUR)
            val.setSymbolSize(14 if self._presentation else 8)

    def alpha(self) -> float:
        return self.smoothing.value() / 100.0

    def _ingest_training(self, snap: TrainingSnapshot) -> None:
        h = np.asarray(snap.history, dtype=np.float64).reshape(-1, 3)
        # A recorded run may know each step's loss but not its accuracy (the user's loop gave none):
        # keep the loss; an unknown accuracy stays NaN and is left out of the accuracy curves.
        h = h[np.isfinite(h[:, :2]).all(axis=1)]
        self._accuracy_gaps = self._accuracy_gaps or not np.isfinite(h[:, 2]).all()
        if len(self.train) and len(h):
            h = h[h[:, 0] > self.train.data[-1, 0]]  # a re-sent row must not draw a loop back
        self.train.append(h)
        self._grow_loss_bounds(h[:, 1])

    def _grow_loss_bounds(self, losses) -> None:
        # Kept as rows arrive: a min/max over a million-row history per frame is not free.
        losses = np.asarray(losses, dtype=np.float64)
        losses = losses[np.isfinite(losses)]
        if len(losses):
            lo, hi = self._loss_bounds
            self._loss_bounds = (min(lo, float(losses.min())), max(hi, float(losses.max())))

    def _ingest_epoch(self, ev: EpochEnd) -> None:
        if ev.val_loss is not None or ev.val_accuracy is not None:
            nan = float("nan")
            self.val.append((ev.step, nan if ev.val_loss is None else ev.val_loss,
                             nan if ev.val_accuracy is None else ev.val_accuracy))
            self._grow_loss_bounds([nan if ev.val_loss is None else ev.val_loss])

    def _clear_data(self) -> None:
        self.train.clear()
        self.val.clear()
        self._smooth_loss, self._smooth_acc = SmoothedColumn(), SmoothedColumn()
        self._loss_bounds = (np.inf, -np.inf)
        self._accuracy_gaps = False
        self.follower.reset()

    def csv_table(self):
        if not len(self.train) and not len(self.val):
            return None
        rows = [(int(s), "train", float(l), float(a)) for s, l, a in self.train.data]
        rows += [(int(s), "validation", "" if np.isnan(l) else float(l), "" if np.isnan(a) else float(a))
                 for s, l, a in self.val.data]
        return ("step", "split", "loss", "accuracy"), rows

    def _follow(self, d: np.ndarray, v: np.ndarray) -> None:
        firsts = [t[0, 0] for t in (d, v) if len(t)]
        lasts = [t[-1, 0] for t in (d, v) if len(t)]
        if not firsts:
            return
        lo, hi = self._loss_bounds
        self.follower.update(x=step_bounds(min(firsts), max(lasts), self._training), y=(lo, hi) if lo <= hi else None)

    def _draw(self) -> None:
        a = self.alpha()
        self.smoothing_label.setText(f"{a:.2f}")
        d = self.train.data
        if len(d):
            steps = d[:, 0]
            # Rows are finite (filtered on the way in): skip pyqtgraph's per-frame check.
            self.loss_raw.setData(steps, d[:, 1], skipFiniteCheck=True)
            self.loss_smooth.setData(steps, self._smooth_loss.update(self.train, 1, a), skipFiniteCheck=True)
            if not self._accuracy_gaps:
                self.acc_raw.setData(steps, d[:, 2], skipFiniteCheck=True)
                self.acc_smooth.setData(steps, self._smooth_acc.update(self.train, 2, a), skipFiniteCheck=True)
            else:
                known = np.isfinite(d[:, 2])
                self.acc_raw.setData(steps[known], d[known, 2], skipFiniteCheck=True)
                self.acc_smooth.setData(steps[known], ema(d[known, 2], a), skipFiniteCheck=True)
        else:
            for c in (self.loss_raw, self.acc_raw, self.loss_smooth, self.acc_smooth):
                c.setData([], [])
        v = self.val.data
        # A dot per validation while they are few; past that, the line alone. pyqtgraph
        # rebuilds every dot on each setData, and kept memory for each: with the digits'
        # many short epochs, a 30-minute run grew by ~2 MB a minute for the dots alone.
        symbol = "o" if len(v) <= VAL_DOTS_MAX else None
        if self._val_drawn != self.val.version:
            # (once an epoch: re-set every frame, the dots were rebuilt every frame)
            for curve, col in ((self.loss_val, 1), (self.acc_val, 2)):
                if curve.opts["symbol"] != symbol:
                    curve.setSymbol(symbol)
                curve.setData(v[:, 0], v[:, col]) if len(v) else curve.setData([], [])
            self._val_drawn = self.val.version
        self._follow(d, v)
        t = self._training
        if t is not None:
            # Learning rate and speed are in the status bar: this line must fit a narrow column.
            acc = f" · accuracy {100 * t.accuracy:.1f}%" if np.isfinite(t.accuracy) else ""
            self.latest.setText(f"step {t.step} · epoch {t.epoch + 1} · loss {t.loss:.4f}{acc}")
