"""GradientView: per-layer weight-gradient magnitudes on a true log scale.

Bars are log10 heights drawn up from a baseline (pyqtgraph's log mode does
not apply to BarGraphItem: bars would stay linear under log ticks). Layers
are ordered input to output, so a network whose gradients vanish toward the
input (deep sigmoid, plain without residuals) shows a staircase spanning
decades, while ReLU/residual networks stay flat. Thresholds are drawn as
labelled lines and offending bars are coloured.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import QCheckBox, QLabel, QStackedWidget, QWidget

from visualizer.core.snapshot import TrainingSnapshot

from .bars import set_category_ticks
from .base import SIDE_BY_SIDE_BELOW, View
from .ranges import STEP_AXIS, RangeFollower, step_bounds
from .series import DOTS_BELOW, HISTORY_CAP, GrowableTable

FLOOR = 1e-12
EXPLODE_COLOUR = QColor("#d32f2f")
VANISH_COLOUR = QColor("#78909c")
MAX_LEGEND = 8


def log_heights(values) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    v = np.where(np.isfinite(v), v, np.inf)   # a non-finite norm is an explosion, shown at the top
    return np.log10(np.clip(v, FLOOR, 1e300))


class GradientView(View):
    title = "Gradients"
    lesson_key = "gradients"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.vanish = 1e-7     # ||grad W|| below this: the layer effectively stops learning
        self.explode = 1e2     # above this: one step moves weights far; divergence follows
        self._names: tuple[str, ...] = ()
        self.history = GrowableTable(1, cap=HISTORY_CAP)
        self.marks: list[str] = []
        self.heights = np.zeros(0)

        self.ratio = QCheckBox("show update ratio ‖ΔW‖/‖W‖")
        self.ratio.toggled.connect(lambda _: self._schedule())
        self.summary = self.live_label()

        self.graphics = self.make_graphics()
        g = self.graphics
        self.plot = self.add_plot(g, row=0, col=0)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.showGrid(y=True, alpha=0.2)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7)
        self.plot.addItem(self.bars)
        opts = {"position": 0.01, "anchors": [(0, 1), (0, 1)]}
        self.vanish_line = pg.InfiniteLine(angle=0, movable=False, label="", labelOpts=opts)
        self.explode_line = pg.InfiniteLine(angle=0, movable=False, label="", labelOpts=opts)
        self.plot.addItem(self.vanish_line)
        self.plot.addItem(self.explode_line)
        self.plot.setLabel("bottom", "layer (input → output)")
        self._bar_state = None      # (names, y range, axis label, line texts) last applied to the bar plot

        self.history_plot = self.add_plot(g, row=1, col=0)
        self.history_plot.setLabel("bottom", "step")
        self.history_plot.setClipToView(True)
        self.history_plot.setDownsampling(auto=True, mode="peak")
        self.history_legend = self.history_plot.addLegend(offset=(-10, 5), colCount=2)
        self.history_follower = RangeFollower(self.history_plot.vb, x=STEP_AXIS, y=(0.1, 0.1))
        self._history_state = None  # (axis label, sparse) last applied to the history plot
        self.curves: list[pg.PlotDataItem] = []
        self.depth_note = g.addLabel("", row=2, col=0)
        g.ci.layout.setRowStretchFactor(0, 3)
        g.ci.layout.setRowStretchFactor(1, 2)
        self.side_by_side = False

        self.message = QLabel("Gradient magnitudes appear once training runs.")
        self.message.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(g)
        self.stack.addWidget(self.message)
        self.stack.setCurrentWidget(self.message)
        self.compose([(self.summary, 1), self.ratio], self.stack)
        self.finish_setup()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._arrange()

    def _arrange(self) -> None:
        """Bars over history when there is height for both, side by side when there is not
        (a projector's short view: stacked, each plot was too flat to read)."""
        g = self.graphics
        side = g.height() < SIDE_BY_SIDE_BELOW and g.width() > 2 * g.height()
        if side == self.side_by_side:
            return
        self.side_by_side = side
        layout = g.ci.layout
        g.ci.removeItem(self.history_plot)
        g.ci.removeItem(self.depth_note)
        if side:
            g.ci.addItem(self.history_plot, row=0, col=1)
            g.ci.addItem(self.depth_note, row=1, col=0, colspan=2)
            layout.setRowStretchFactor(1, 0)
        else:
            g.ci.addItem(self.history_plot, row=1, col=0)
            g.ci.addItem(self.depth_note, row=2, col=0)
            layout.setRowStretchFactor(1, 2)

    # --- history ---------------------------------------------------------------
    def _ingest_training(self, snap: TrainingSnapshot) -> None:
        names = tuple(g.name for g in snap.gradients)
        if not names:
            return
        if names != self._names:
            # A new model (or a changed parameter set): old columns no longer line up.
            self._names = names
            self.history = GrowableTable(1 + 3 * len(names), cap=HISTORY_CAP)
            self._rebuild_curves()
        nan = float("nan")
        row = [snap.step]
        row += [g.weight_norm for g in snap.gradients]
        row += [nan if g.bias_norm is None else g.bias_norm for g in snap.gradients]
        row += [g.update_ratio for g in snap.gradients]
        self.history.append(row)

    def _clear_data(self) -> None:
        self._names = ()
        self.history = GrowableTable(1, cap=HISTORY_CAP)
        self._rebuild_curves()
        self.history_follower.reset()

    def csv_table(self):
        if not self._names or not len(self.history):
            return None
        n = len(self._names)
        d = self.history.data

        def cell(v):
            return "" if not math.isfinite(v) else repr(float(v))

        rows = [(int(r[0]), name, cell(r[1 + j]), cell(r[1 + n + j]), cell(r[1 + 2 * n + j]))
                for r in d for j, name in enumerate(self._names)]
        return ("step", "layer", "weight_norm", "bias_norm", "update_ratio"), rows

    def _rebuild_curves(self) -> None:
        for c in self.curves:
            self.history_plot.removeItem(c)
        self.history_legend.clear()
        self.curves = []
        n = len(self._names)
        cmap = pg.colormap.get("plasma")
        for j, name in enumerate(self._names):
            colour = cmap.map(0.05 + 0.85 * j / max(1, n - 1), mode="qcolor")
            curve = pg.PlotDataItem(pen=pg.mkPen(colour, width=self.line_width()))
            self.history_plot.addItem(curve)
            if n <= MAX_LEGEND:
                self.history_legend.addItem(curve, name)
            self.curves.append(curve)
        self._history_state = None

    def _restyle(self) -> None:
        w = self.line_width()
        for c in self.curves:
            c.setPen(pg.mkPen(c.opts["pen"].color(), width=w))
        fg, _ = self.colors()
        for line, colour in ((self.vanish_line, VANISH_COLOUR), (self.explode_line, EXPLODE_COLOUR)):
            line.setPen(pg.mkPen(colour, width=w, style=Qt.PenStyle.DashLine))
            line.label.setColor(colour)
            line.label.setFont(self._tick_font())
        self._bar_state = self._history_state = None   # labels are re-set with the new style

    # --- drawing --------------------------------------------------------------
    def _draw(self) -> None:
        snap = self._training
        if snap is None or not snap.gradients:
            self.message.setText("Gradient magnitudes appear once training runs." if snap is None else
                                 "This model has no trainable parameters with gradients.")
            self.stack.setCurrentWidget(self.message)
            return
        ratio = self.ratio.isChecked()
        names = [g.name for g in snap.gradients]
        values = [g.update_ratio if ratio else g.weight_norm for g in snap.gradients]
        h = log_heights(values)
        lv, le = math.log10(self.vanish), math.log10(self.explode)
        if ratio:
            self.marks = ["ok"] * len(h)
            lines = ()
            label = "log10 ‖ΔW‖/‖W‖"
        else:
            self.marks = ["explode" if v > le else "vanish" if v < lv else "ok" for v in h]
            lines = (lv, le)
        label = "log10 ‖ΔW‖/‖W‖" if ratio else "log10 ‖∇W‖₂"
        finite_h = h[np.isfinite(h)]
        low = min([*finite_h, *lines]) if len(finite_h) or lines else -1.0
        high = max([*finite_h, *lines]) if len(finite_h) or lines else 1.0
        baseline = math.floor(low) - 0.5
        self.heights = h
        colours = {"explode": EXPLODE_COLOUR, "vanish": VANISH_COLOUR, "ok": self.accent()}
        self.bars.setOpts(x=np.arange(len(h)), y0=baseline, height=h - baseline, width=0.7,
                          brushes=[colours[m] for m in self.marks])
        # Ranges, ticks, labels and line texts change rarely (a decade crossed, a new model,
        # the ratio toggle); re-applying them per frame re-laid out and re-ticked every axis.
        state = (tuple(names), baseline, math.ceil(high) + 0.5, label, ratio, lv, le)
        if state != self._bar_state:
            self.plot.setYRange(baseline, math.ceil(high) + 0.5, padding=0)
            self.plot.setXRange(-0.6, len(h) - 0.4, padding=0)
            self.plot.setLabel("left", label)
            set_category_ticks(self.plot.getAxis("bottom"), names)
            for line, pos, text in ((self.vanish_line, lv, f"vanishing < {self.vanish:g}"),
                                    (self.explode_line, le, f"exploding > {self.explode:g}")):
                line.setVisible(not ratio)
                line.setValue(pos)
                line.label.setFormat(text)
            self._bar_state = state
        self._draw_history(ratio, label)
        self._summarise(names, h, ratio)
        self.stack.setCurrentWidget(self.graphics)

    def _draw_history(self, ratio: bool, label: str) -> None:
        n = len(self._names)
        d = self.history.data
        if not len(d) or len(self.curves) != n:
            return
        steps = d[:, 0]
        first = 1 + (2 * n if ratio else 0)
        with np.errstate(divide="ignore"):
            logs = np.log10(np.clip(np.nan_to_num(d[:, first:first + n], nan=FLOOR, posinf=1e300), FLOOR, None))
        sparse = len(steps) < DOTS_BELOW   # a few points: dots too (a lone point has no line)
        restyle = (label, sparse) != self._history_state
        for j, curve in enumerate(self.curves):
            if restyle:
                curve.setSymbol("o" if sparse else None)
                curve.setSymbolSize(5)
                curve.setSymbolPen(None)
                curve.setSymbolBrush(curve.opts["pen"].color())
            curve.setData(steps, logs[:, j], skipFiniteCheck=True)   # clipped to finite logs above
        if restyle:
            self.history_plot.setLabel("left", label)
            self._history_state = (label, sparse)
        # Whole decades: the axis re-ranges when a layer crosses into another decade, not at
        # every new extreme of a noisy norm (each re-range re-ticks the axes).
        self.history_follower.update(x=step_bounds(steps[0], steps[-1], self._training),
                                     y=(math.floor(float(logs.min())), math.ceil(float(logs.max()))))
        legend = "" if n <= MAX_LEGEND else " (dark = first layer)"
        self.style_label(self.depth_note, f"history per layer, colour by depth: input (purple) → output (yellow){legend}")

    def _summarise(self, names, h, ratio: bool) -> None:
        bad = [f"{n} ({m})" for n, m in zip(names, self.marks) if m != "ok"]
        parts = []
        if len(h) >= 2 and np.isfinite(h[0]) and np.isfinite(h[-1]) and not ratio:
            spread = h[0] - h[-1]
            trend = ("shrinking toward the input" if spread < -1 else
                     "growing toward the input" if spread > 1 else "even across depth")
            parts.append(f"first/last layer: 10^{spread:+.1f} ({trend})")
        if bad:
            parts.append("marked: " + ", ".join(bad))
        self.summary.setText("  ·  ".join(parts))
