"""ActivationView: what each activation layer does to the values flowing through it now.

The function and its derivative are drawn over the live range of the layer's
inputs, over the histogram of the real pre-activation values: where the mass
of the histogram sits on the curve tells whether units are dead (ReLU, x < 0)
or saturated (sigmoid/tanh, f' ~ 0). The dead/saturated fractions are also
kept per layer over training.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import QComboBox, QLabel, QStackedWidget, QWidget

from visualizer.core.snapshot import ActivationStats, ProbeSnapshot, TrainingSnapshot

from .activation_functions import evaluate, plot_range
from .base import View
from .finite import finite_float32
from .probability_bars import ProbabilityBars
from .ranges import STEP_AXIS, RangeFollower, needs_refit, step_bounds
from .series import DOTS_BELOW, HISTORY_CAP, GrowableTable

POINTS = 400
FUNCTION_COLOUR = "#1e88e5"
DERIVATIVE_COLOUR = "#fb8c00"
DEAD_COLOUR = "#8e24aa"
SATURATED_COLOUR = "#e53935"


class ActivationView(View):
    title = "Activations"
    lesson_key = "activations"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._step: int | None = None
        self.history: dict[str, GrowableTable] = {}   # layer -> rows (step, dead, saturated)

        self.layers = QComboBox()
        self.layers.currentTextChanged.connect(lambda _: self._schedule())
        self.dead = self.live_label()
        self.saturated = self.live_label()

        self.graphics = self.make_graphics()
        g = self.graphics
        self.plot = self.add_plot(g, row=0, col=0)
        self.plot.setLabel("bottom", "pre-activation input x")
        self.plot.setLabel("left", "f(x), f′(x)")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.legend = self.plot.addLegend(offset=(10, 10))
        # The histogram lives in its own ViewBox on the right axis: counts and f(x) have unrelated scales.
        self.hist_box = pg.ViewBox()
        self.plot.showAxis("right")
        self.plot.scene().addItem(self.hist_box)
        self.plot.getAxis("right").linkToView(self.hist_box)
        self.plot.getAxis("right").setLabel("count of inputs")
        self.hist_box.setXLink(self.plot)
        self.hist_box.setZValue(-10)
        self.plot.vb.sigResized.connect(self._sync_hist_box)
        self.histogram = pg.PlotDataItem(stepMode="center", fillLevel=0, brush=(120, 144, 156, 90),
                                         pen=pg.mkPen((120, 144, 156, 200)))
        self.hist_box.addItem(self.histogram)
        self.function = self.plot.plot(name="f(x)")
        self.derivative = self.plot.plot(name="f′(x)")
        self.legend.addItem(self.histogram, "inputs now")
        # The input range and the counts move every snapshot; the view follows with
        # hysteresis instead of re-ranging (and re-ticking every axis) per frame.
        self.function_follower = RangeFollower(self.plot.vb, x=(0.0, 0.0), y=(0.05, 0.05), keep=0.6)
        self.hist_follower = RangeFollower(self.hist_box, x=None, y=(0.0, 0.25), keep=0.5)
        self._shown_function = None   # (name, function, params, x range) whose curves are on screen

        self.history_plot = self.add_plot(g, row=1, col=0)
        self.history_plot.setLabel("bottom", "step")
        self.history_plot.setLabel("left", "fraction")
        self.history_plot.setYRange(0, 1, padding=0.02)
        self.history_plot.addLegend(offset=(10, 5))
        self.dead_curve = self.history_plot.plot(name="dead")
        self.saturated_curve = self.history_plot.plot(name="saturated")
        self.history_follower = RangeFollower(self.history_plot.vb, x=STEP_AXIS, y=None)
        self._history_sparse = None
        g.ci.layout.setRowStretchFactor(0, 3)
        g.ci.layout.setRowStretchFactor(1, 1)

        self.prob_graphics = self.make_graphics()
        self.prob_plot = self.add_plot(self.prob_graphics)
        self.probability_bars = ProbabilityBars(self.prob_plot)

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.stack = QStackedWidget()
        for w in (self.graphics, self.prob_graphics, self.message):
            self.stack.addWidget(w)
        self.compose(["activation layer:", (self.layers, 1), self.dead, self.saturated], self.stack)
        self._say("Activation layers appear here once a capture arrives.")
        self.finish_setup()

    def _sync_hist_box(self) -> None:
        self.hist_box.setGeometry(self.plot.vb.sceneBoundingRect())

    def _restyle(self) -> None:
        w = self.line_width()
        self.function.setPen(pg.mkPen(FUNCTION_COLOUR, width=w))
        self.derivative.setPen(pg.mkPen(DERIVATIVE_COLOUR, width=w, style=pg.QtCore.Qt.PenStyle.DashLine))
        self.dead_curve.setPen(pg.mkPen(DEAD_COLOUR, width=w))
        self.saturated_curve.setPen(pg.mkPen(SATURATED_COLOUR, width=w))

    def _say(self, text: str) -> None:
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message)

    # --- data that every snapshot contributes, drawn or not --------------
    def _ingest_training(self, snap: TrainingSnapshot) -> None:
        self._step = snap.step

    def _ingest_probe(self, snap: ProbeSnapshot) -> None:
        names = [a.name for a in snap.activations]
        if names != [self.layers.itemText(i) for i in range(self.layers.count())]:
            keep = self.layers.currentText()
            self.layers.blockSignals(True)
            self.layers.clear()
            self.layers.addItems(names)
            if keep in names:
                self.layers.setCurrentText(keep)
            elif self._layer in names:
                self.layers.setCurrentText(self._layer)
            self.layers.blockSignals(False)
        if self._step is None:
            return  # not training: nothing to put on a step axis
        for a in snap.activations:
            table = self.history.setdefault(a.name, GrowableTable(3, cap=HISTORY_CAP))
            row = (self._step, a.frac_dead, a.frac_saturated)
            if len(table) and table.data[-1, 0] == self._step:
                table.replace_last(row)
            else:
                table.append(row)

    def _layer_changed(self) -> None:
        if self._layer and self.layers.findText(self._layer) >= 0:
            self.layers.setCurrentText(self._layer)

    def _clear_data(self) -> None:
        self.history.clear()
        self._step = None
        self.layers.clear()
        self._shown_function = None
        for f in (self.function_follower, self.hist_follower, self.history_follower):
            f.reset()

    def csv_table(self):
        if not self.history:
            return None
        rows = [(int(s), name, float(d), float(sat))
                for name, t in self.history.items() for s, d, sat in t.data]
        return ("step", "layer", "frac_dead", "frac_saturated"), rows

    def selected(self) -> ActivationStats | None:
        if self._probe is None:
            return None
        name = self.layers.currentText()
        return next((a for a in self._probe.activations if a.name == name), None)

    # --- drawing ----------------------------------------------------------
    def _x_range(self, a: ActivationStats) -> tuple[float, float]:
        """The function plot's x range: the live input range, kept while the inputs stay inside it."""
        lo, hi = plot_range(a.pre_min, a.pre_max, a.function)
        shown = self._shown_function
        if shown is not None and shown[:3] == (a.name, a.function, tuple(a.params)) \
                and not needs_refit(lo, hi, shown[3:], keep=0.6):
            return shown[3], shown[4]
        span = hi - lo
        return lo - 0.1 * span, hi + 0.1 * span   # headroom: the next snapshots' inputs fit

    def _set_title(self, text: str) -> None:
        if self.plot.titleLabel.text != text or not self.plot.titleLabel.isVisible():
            self.plot.setTitle(text)

    def _draw(self) -> None:
        if self._probe is None:
            self._say("Activation layers appear here once a capture arrives.")
            return
        if not self._probe.activations:
            self._say("This model has no activation layers that could be observed.")
            return
        a = self.selected()
        if a is None:
            self.layers.setCurrentIndex(0)
            a = self._probe.activations[0]
        self.dead.setText(f"dead: {100 * a.frac_dead:.1f}%")
        self.saturated.setText(f"saturated: {100 * a.frac_saturated:.1f}%")
        if a.function == "softmax":
            self.probability_bars.update(self._probe.probabilities, self._probe.class_names, self._probe.label,
                                         self.accent())
            title = f"{a.name}: softmax turns the logits into class probabilities"
            if self.prob_plot.titleLabel.text != title:
                self.prob_plot.setTitle(title)
            self.stack.setCurrentWidget(self.prob_graphics)
            return
        lo, hi = self._x_range(a)
        shown = (a.name, a.function, tuple(a.params), lo, hi)
        if shown != self._shown_function:
            # The curve depends only on the function and the x range, which changes
            # rarely now: recompute and re-range only then.
            x = np.linspace(lo, hi, POINTS)
            fx = evaluate(a.function, x, a.params)
            if fx is None:
                self.function.setData([], [])
                self.derivative.setData([], [])
                self._set_title(f"{a.name}: '{a.function}' has no known formula; inputs only")
                y = None
            else:
                self.function.setData(x, fx[0])
                self.derivative.setData(x, fx[1])
                self._set_title(f"{a.name}: {a.function}")
                finite = np.concatenate([fx[0], fx[1]])
                finite = finite[np.isfinite(finite)]
                y = (float(finite.min()), float(finite.max())) if len(finite) else None
            if self._shown_function is None or self._shown_function[:3] != shown[:3]:
                self.function_follower.reset()   # another layer or function: show it whole
            self.function_follower.update(x=(lo, hi), y=y)
            self._shown_function = shown
        counts, _ = finite_float32(a.pre.counts)
        edges, _ = finite_float32(a.pre.edges)
        if len(edges) == len(counts) + 1 and len(counts):
            self.histogram.setData(edges, counts, skipFiniteCheck=True)
            self.hist_follower.update(y=(0.0, max(1.0, float(counts.max()))))
        else:
            self.histogram.setData([0, 1], [0])
        self._sync_hist_box()
        table = self.history.get(a.name)
        if table is not None and len(table):
            d = table.data
            sparse = len(d) < DOTS_BELOW   # a few points: dots too (a lone point has no line)
            if sparse != self._history_sparse:
                for curve, colour in ((self.dead_curve, DEAD_COLOUR), (self.saturated_curve, SATURATED_COLOUR)):
                    curve.setSymbol("o" if sparse else None)
                    curve.setSymbolSize(6)
                    curve.setSymbolPen(None)
                    curve.setSymbolBrush(colour)
                self._history_sparse = sparse
            self.dead_curve.setData(d[:, 0], d[:, 1])
            self.saturated_curve.setData(d[:, 0], d[:, 2])
            self.history_follower.update(x=step_bounds(d[0, 0], d[-1, 0], self._training))
        else:
            self.dead_curve.setData([], [])
            self.saturated_curve.setData([], [])
        self.stack.setCurrentWidget(self.graphics)
